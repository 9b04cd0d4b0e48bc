"""Run a script inside the separate Blender venv (bpy needs numpy<2; the torch env has numpy 2).

Tests in the torch env call run_blender_script(); the script gets ``--out PATH`` appended and must
write its result there as JSON (stdout is unusable: bpy prints to it). The repo root is put on
PYTHONPATH so scripts can import the project's bpy-free modules. ``blender="4.5"`` runs the 4.5 LTS
venv instead of 5.0.1's.

``user_resources=PATH`` runs Blender with fresh user resources: config, scripts (legacy add-ons), extensions and datafiles all
under PATH, through BLENDER_USER_RESOURCES and the four BLENDER_USER_{CONFIG,SCRIPTS,EXTENSIONS,
DATAFILES} variables (both honoured by PyPI bpy 5.0.1: bpy.utils.user_resource() and the extension
repositories then point under PATH). Installing an add-on there never touches ~/.config/blender.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from training.data.paths import REPO_ROOT

# Blender versions the add-on is tested on: the venv holding each as a Python module (PyPI bpy).
BLENDER_VENVS = {"5.0": ".venv-blender", "4.5": ".venv-blender45"}
BLENDER_PINS = {"5.0": "bpy==5.0.1", "4.5": "bpy==4.5.*"}


def blender_python(version: str = "5.0") -> Path:
    """The interpreter of the venv holding bpy ``version`` ($MST_BLENDER_PYTHON overrides 5.0's).

    Missing: a failure under CI (a silent skip would hide that Blender never ran), a skip locally."""
    default = REPO_ROOT / BLENDER_VENVS[version] / "bin" / "python"
    path = Path(os.environ.get("MST_BLENDER_PYTHON", default)) if version == "5.0" else default
    if not path.exists():
        venv = BLENDER_VENVS[version]
        hint = f"python3.11 -m venv {venv} && {venv}/bin/pip install '{BLENDER_PINS[version]}' 'numpy<2'"
        message = f"Blender {version} python not found at {path}; create it (tools/setup.sh does) with: {hint}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _tail(text: str, n: int = 3000) -> str:
    return text[-n:] if text else "<empty>"


USER_RESOURCE_DIRS = {
    "BLENDER_USER_CONFIG": "config",
    "BLENDER_USER_SCRIPTS": "scripts",
    "BLENDER_USER_EXTENSIONS": "extensions",
    "BLENDER_USER_DATAFILES": "datafiles",
}


def user_resources_env(root) -> dict[str, str]:
    """Environment variables that put all of Blender's user resources under ``root`` (created)."""
    root = Path(root)
    env = {"BLENDER_USER_RESOURCES": str(root)}
    for name, sub in USER_RESOURCE_DIRS.items():
        (root / sub).mkdir(parents=True, exist_ok=True)
        env[name] = str(root / sub)
    return env


def run_blender_script(script, *args, timeout: float = 300, user_resources=None, blender: str = "5.0") -> dict:
    """Run ``script args... --out <tmp.json>`` with the Blender python; return the parsed JSON.

    ``user_resources``: a folder to hold Blender's user config/scripts/extensions/datafiles instead
    of the real user's (see user_resources_env); None keeps Blender's defaults. ``blender``: which
    version (BLENDER_VENVS)."""
    python = blender_python(blender)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env.pop("PYTHONHOME", None)
    if user_resources is not None:
        env.update(user_resources_env(user_resources))
    with tempfile.TemporaryDirectory(prefix="mst-blender-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [str(python), str(script), *map(str, args), "--out", str(out)]
        try:
            proc = subprocess.run(
                cmd, check=False, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
            )
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


def run_addon_script(script, folder, content, style, *args, timeout: float = 600, blender: str = "5.0") -> dict:
    """Build the add-on zip in ``folder`` and run an add-on script (its arguments:
    tools.blender_addon_session.addon_script_parser) with this Python as the runtime, the
    ``content`` and ``style`` clips as plain BVH files and fresh user resources under ``folder``."""
    from build_addon import build

    folder = Path(folder)
    return run_blender_script(
        script,
        build(folder / "dist"),
        "--runtime",
        sys.executable,
        "--content",
        plain_bvh(content, folder),
        "--style",
        plain_bvh(style, folder),
        *args,
        user_resources=folder / "user",
        timeout=timeout,
        blender=blender,
    )


def plain_bvh(path, folder) -> Path:
    """A .bvh or .bvh.gz clip as a plain .bvh file in ``folder`` (Blender's importer reads no .gz)."""
    path, folder = Path(path), Path(folder)
    out = folder / path.name.removesuffix(".gz")
    data = path.read_bytes()
    out.write_bytes(gzip.decompress(data) if path.suffix == ".gz" else data)
    return out


def _text(data) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")
