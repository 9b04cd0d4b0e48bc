"""Run a script inside the separate Blender venv (bpy needs numpy<2; the torch env has numpy 2).

Tests in the torch env call run_blender_script(); the script gets ``--out PATH`` appended and must
write its result there as JSON (stdout is unusable: bpy prints to it). The repo root is put on
PYTHONPATH so scripts can import the project's bpy-free modules.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from training.data.paths import REPO_ROOT

SETUP_HINT = "python3 -m venv .venv-blender && .venv-blender/bin/pip install bpy==5.0.1 'numpy<2'"


def blender_python() -> Path:
    """The Blender venv's interpreter ($MST_BLENDER_PYTHON or <repo>/.venv-blender/bin/python).

    Missing: a failure under CI (a silent skip would hide that Blender never ran), a skip locally."""
    path = Path(os.environ.get("MST_BLENDER_PYTHON", REPO_ROOT / ".venv-blender" / "bin" / "python"))
    if not path.exists():
        message = f"Blender python not found at {path}; create it from the repo root with: {SETUP_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _tail(text: str, n: int = 3000) -> str:
    return text[-n:] if text else "<empty>"


def run_blender_script(script, *args, timeout: float = 300) -> dict:
    """Run ``script args... --out <tmp.json>`` with the Blender python; return the parsed JSON."""
    python = blender_python()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env.pop("PYTHONHOME", None)
    with tempfile.TemporaryDirectory(prefix="mst-blender-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [str(python), str(script), *map(str, args), "--out", str(out)]
        try:
            proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            pytest.fail(
                f"Blender script timed out after {timeout} s: {cmd}\n"
                f"--- stdout tail ---\n{_tail(_text(e.stdout))}\n--- stderr tail ---\n{_tail(_text(e.stderr))}"
            )
        if proc.returncode != 0 or not out.exists():
            pytest.fail(
                f"Blender script failed (exit code {proc.returncode}, result file written: {out.exists()}): {cmd}\n"
                f"--- stdout tail ---\n{_tail(proc.stdout)}\n--- stderr tail ---\n{_tail(proc.stderr)}"
            )
        return json.loads(out.read_text())


def _text(data) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")
