"""blender_addon/runtime_install.py on REAL installs in temporary folders (no mocks).

Each install makes a real venv (python -m venv, about 3 s on 2 cores) and runs real pip (its
wheels come from the package index / local cache); the requirement sets are small so the file runs in
well under a minute: a tiny set reaches "ready", an impossible requirement ends "failed" naming it, a
cancel in the middle of pip leaves no process behind, and the default list equals pyproject's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib

from training.data.paths import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "blender_addon"))
import runtime_install as ri

INSTALL_TIMEOUT = 120


def _poll_until(installer, predicate, timeout=INSTALL_TIMEOUT):
    """Poll status() as the preferences panel does; every status on the way must be a known state."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = installer.status()
        assert status.state in (ri.MISSING, ri.INSTALLING, ri.READY, ri.FAILED), status
        if not seen or seen[-1] != status:
            seen.append(status)
        if predicate(status):
            return seen
        time.sleep(0.1)
    pytest.fail(f"no matching status within {timeout} s; statuses seen: {seen}\nlog:\n{installer.log_tail()}")


def test_small_real_install_reaches_ready(tmp_path):
    venv = tmp_path / "runtime"
    installer = ri.RuntimeInstaller(venv, base_python=sys.executable, requirements=["safetensors"])
    assert installer.status().state == ri.MISSING
    t0 = time.monotonic()
    assert installer.start().state == ri.INSTALLING
    assert time.monotonic() - t0 < 2.0, "start() must return at once, not wait for the install"
    assert installer.installing
    with pytest.raises(RuntimeError, match="already running"):
        installer.start()
    seen = _poll_until(installer, lambda s: s.state != ri.INSTALLING)
    elapsed = time.monotonic() - t0
    final = seen[-1]
    assert final.state == ri.READY, f"{final}\n{installer.log_tail()}"
    assert any("create venv" in s.reason for s in seen if s.state == ri.INSTALLING) or len(seen) >= 2

    log = installer.log_path.read_text()
    assert "Successfully installed safetensors" in log, log  # pip's own output streamed into the log
    assert "[mst-install] done" in log
    python = installer.python
    assert python == ri.venv_python(venv) and python.is_file()
    out = subprocess.run(
        [str(python), "-c", "import safetensors, sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(out.stdout.strip()).resolve() == venv.resolve()

    # A fresh installer (Blender restarted) sees the finished install without running anything...
    again = ri.RuntimeInstaller(venv, base_python=sys.executable, requirements=["safetensors"])
    assert again.status().state == ri.READY
    # ...and check() confirms it by importing in the venv's python.
    assert again.check().state == ri.READY
    # A venv that does not import a requirement is not ready.
    other = ri.RuntimeInstaller(venv, base_python=sys.executable, requirements=["mst_not_installed_xyz"])
    assert other.status().state == ri.MISSING
    checked = other.check()
    assert checked.state == ri.MISSING and "mst_not_installed_xyz" in checked.reason
    print(f"venv + pip install safetensors: ready in {elapsed:.1f} s")


def test_impossible_requirement_fails_with_a_reason_naming_it(tmp_path):
    requirement = "mst-no-such-package-xyz==0"
    installer = ri.RuntimeInstaller(tmp_path / "runtime", base_python=sys.executable, requirements=[requirement])
    installer.start()
    final = _poll_until(installer, lambda s: s.state != ri.INSTALLING)[-1]
    assert final.state == ri.FAILED, final
    assert requirement in final.reason and "exit code 1" in final.reason, final.reason
    assert not installer.installing
    # A fresh installer finds the unfinished venv: not ready.
    assert ri.RuntimeInstaller(tmp_path / "runtime", requirements=[requirement]).status().state == ri.MISSING


def _alive_in_group(pgid: int) -> list[str]:
    """Processes (not zombies) whose process group is ``pgid``, from /proc: 'pid state ppid: cmdline'."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
        except OSError:
            continue
        state, ppid, group = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(group) == pgid and state != "Z":
            alive.append(f"{entry.name} {state} ppid {ppid}: {cmd}")
    return alive


@pytest.mark.skipif(not Path("/proc").is_dir() or os.name == "nt", reason="process groups read from /proc")
def test_cancel_during_pip_leaves_nothing_running(tmp_path):
    installer = ri.RuntimeInstaller(
        tmp_path / "runtime", base_python=sys.executable, requirements=["numpy<2", "scipy", "safetensors"]
    )
    installer.start()
    pgid = installer.pid
    _poll_until(installer, lambda s: s.state != ri.INSTALLING or "pip install" in s.reason)
    assert installer.installing, f"the install ended before pip could be cancelled: {installer.status()}"
    time.sleep(0.5)  # pip is resolving / downloading / unpacking now
    in_group = _alive_in_group(pgid)
    assert len(in_group) >= 2, f"expected the driver and pip in the group: {in_group}"
    t0 = time.monotonic()
    final = installer.cancel(grace=3.0)
    took = time.monotonic() - t0
    assert final.state == ri.MISSING and final.reason == "install cancelled", final
    assert installer.status() == final and not installer.installing
    assert _alive_in_group(pgid) == [], "a process of the install outlived cancel()"
    assert "install cancelled" in installer.log_tail(5)
    assert not (tmp_path / "runtime" / ri.MARKER).exists()
    assert installer.cancel().state == ri.MISSING  # a second cancel is harmless
    print(f"cancel took {took:.2f} s")


def test_default_requirements_match_pyproject():
    deps = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert list(ri.RUNTIME_REQUIREMENTS) == deps
    installer = ri.RuntimeInstaller(Path("/nonexistent/mst-runtime"))
    assert installer.requirements == deps
    assert installer.imports == ["torch", "numpy", "scipy", "safetensors"]
    assert installer.base_python == Path(sys.executable)
    assert installer.status().state == ri.MISSING


def test_default_paths_are_short_user_paths(monkeypatch):
    path = ri.default_venv_dir()
    assert path.is_absolute() and len(str(path)) < 120
    assert path.parts[-2:] == (".motion_style_transfer", "runtime") or path.parts[-2:] == (
        "motion_style_transfer",
        "runtime",
    )
    assert ri.venv_python("/x/v") == (Path("/x/v/Scripts/python.exe") if os.name == "nt" else Path("/x/v/bin/python"))
    assert [ri.import_name(r) for r in ("numpy<2", "scikit-learn>=1", "torch==2.13.0 ; python_version>'3'")] == [
        "numpy",
        "scikit_learn",
        "torch",
    ]
