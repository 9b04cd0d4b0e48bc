"""Back end of "Install runtime" in the add-on preferences (DESIGN §2), standard library only.

``RuntimeInstaller`` creates the runtime virtual environment the server runs in and installs its
requirements, without ever blocking the caller (Blender's main thread): ``start()`` launches ONE
background child, a small driver script run by the base Python, which runs ``python -m venv DIR``
and then ``DIR/python -m pip install REQUIREMENTS`` and finally checks that the requirements import.
Everything the driver and its children print goes to the log file, line by line as it happens, so
the preferences can show it while pip works. The caller polls ``status()`` (cheap: it looks at the
child's exit status and reads the end of the log only when the install has ended):

- ``missing``: no venv, or a venv this installer never finished (``reason`` says which);
- ``installing``: the child is running (``reason``: the step it is on);
- ``ready``: the install finished (a marker file in the venv records the requirements), or
  ``check()`` found a venv whose Python imports every requirement;
- ``failed``: the child exited non-zero; ``reason`` is the last meaningful log line (pip's last
  ``ERROR:`` line, which names the requirement) and the exit code.

``cancel()`` terminates the child's whole process group (pip and anything pip started), then kills
it after a grace period; the status then reads ``missing`` with reason ``install cancelled``.
``check()`` runs ``<venv python> -c "import torch, numpy, scipy, safetensors"`` in a subprocess; it is
the only call that imports anything and runs only when asked.

The runtime's requirements are ``RUNTIME_REQUIREMENTS``, kept equal to pyproject.toml's
[project].dependencies by tests/test_runtime_install.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# The runtime's dependencies: the one list the add-on installs (tests check it against pyproject.toml).
RUNTIME_REQUIREMENTS = ("torch==2.13.0", "numpy>=1.24", "scipy>=1.10", "safetensors>=0.4")
# CPU-only torch wheels (a plain `pip install torch` on Linux pulls the multi-GB CUDA build).
TORCH_CPU_INDEX_URL = "https://download.pytorch.org/whl/cpu"

MISSING, INSTALLING, READY, FAILED = "missing", "installing", "ready", "failed"
MARKER = "mst_runtime.json"  # written into the venv by the driver when every step succeeded
TAG = "[mst-install]"
_IS_WINDOWS = os.name == "nt"

# The driver, run as `<base python> -u -c DRIVER '<json args>'` in its own process group.
_DRIVER = r"""
import json, os, subprocess, sys, time
a = json.loads(sys.argv[1])
def say(msg):
    print("[mst-install] " + msg, flush=True)
def run(step, cmd):
    say(step + ": " + subprocess.list2cmdline(cmd))
    rc = subprocess.call(cmd)
    if rc:
        say("FAILED: %s exited with code %d" % (step, rc))
        sys.exit(rc if rc > 0 else 1)
start = time.time()
say("base python %s (%s)" % (sys.executable, sys.version.split()[0]))
run("step 1/3 create venv", [sys.executable, "-m", "venv", a["venv"]])
run("step 2/3 pip install", [a["python"], "-m", "pip", "install"] + a["pip_args"] + a["requirements"])
run("step 3/3 check imports", [a["python"], "-c", "import " + ", ".join(a["imports"]) + "; print('imports ok')"])
with open(os.path.join(a["venv"], a["marker"]), "w") as f:
    json.dump({"requirements": a["requirements"], "installed_at": time.time()}, f)
say("done: runtime ready in %.1f s" % (time.time() - start))
"""


def default_venv_dir() -> Path:
    """A short per-user path (Windows path limits): %LOCALAPPDATA%\\motion_style_transfer\\runtime
    on Windows, ~/.motion_style_transfer/runtime elsewhere."""
    if _IS_WINDOWS:
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "motion_style_transfer" / "runtime"
    return Path.home() / ".motion_style_transfer" / "runtime"


def venv_python(venv_dir) -> Path:
    """The interpreter of a venv: Scripts\\python.exe on Windows, bin/python elsewhere."""
    venv_dir = Path(venv_dir)
    return venv_dir / "Scripts" / "python.exe" if _IS_WINDOWS else venv_dir / "bin" / "python"


def default_base_python() -> Path:
    """The running interpreter: inside Blender 4.x/5.x sys.executable is Blender's bundled Python.
    Should it ever be the Blender binary instead, look for the Python beside sys.prefix."""
    exe = Path(sys.executable)
    if not exe.name.lower().startswith("blender"):
        return exe
    prefix = Path(sys.prefix)
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [prefix / "bin" / f"python{version}", prefix / "bin" / "python3", prefix / "python.exe"]
    return next((c for c in candidates if c.is_file()), exe)


def import_name(requirement: str) -> str:
    """The module a requirement installs, by the usual rule: "scikit-learn>=1" -> "scikit_learn"."""
    name = re.split(r"[\s<>=!~;\[@(]", requirement.strip(), maxsplit=1)[0]
    return name.lower().replace("-", "_").replace(".", "_")


@dataclass(frozen=True)
class RuntimeStatus:
    state: str  # missing | installing | ready | failed
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.state}: {self.reason}" if self.reason else self.state


class RuntimeInstaller:
    """Creates and reports on the runtime venv at ``venv_dir``; see the module docstring.

    ``base_python``: the interpreter that creates the venv (default: the running one);
    ``requirements``: pip requirement strings (default RUNTIME_REQUIREMENTS); ``imports``: modules
    that must import afterwards (default: one per requirement); ``extra_index_url``: passed to pip
    as --extra-index-url (e.g. TORCH_CPU_INDEX_URL); ``log_path``: the install log (default
    ``<venv_dir>.install.log`` beside the venv); ``pip_args``: further pip arguments."""

    def __init__(
        self,
        venv_dir=None,
        base_python=None,
        requirements=RUNTIME_REQUIREMENTS,
        imports=None,
        extra_index_url: str | None = None,
        log_path=None,
        pip_args=(),
    ):
        self.venv_dir = Path(venv_dir) if venv_dir else default_venv_dir()
        self.base_python = Path(base_python) if base_python else default_base_python()
        self.requirements = [str(r) for r in requirements]
        if not self.requirements:
            raise ValueError("no requirements to install")
        self.imports = list(imports) if imports is not None else [import_name(r) for r in self.requirements]
        self.extra_index_url = extra_index_url
        self.log_path = Path(log_path) if log_path else self.venv_dir.with_name(self.venv_dir.name + ".install.log")
        self.pip_args = list(pip_args)
        self._proc: subprocess.Popen | None = None
        self._cancelled = False
        self._checked: RuntimeStatus | None = None  # result of the last check()
        self._final: RuntimeStatus | None = None  # status of the last install once it ended

    # --- paths ------------------------------------------------------------------------------

    @property
    def python(self) -> Path:
        """The venv's interpreter (the runtime Python the server is launched with)."""
        return venv_python(self.venv_dir)

    @property
    def marker_path(self) -> Path:
        return self.venv_dir / MARKER

    # --- state ------------------------------------------------------------------------------

    @property
    def installing(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self):
        """The driver's process id while one was started (its process group id too on POSIX)."""
        return self._proc.pid if self._proc else None

    def status(self) -> RuntimeStatus:
        """missing / installing / ready / failed with the reason; cheap enough for every UI redraw."""
        if self._proc is not None:
            code = self._proc.poll()
            if code is None:
                return RuntimeStatus(INSTALLING, self._current_step())
            if self._final is None:
                self._final = self._ended(code)
            return self._final
        if self._checked is not None:
            return self._checked
        return self._on_disk()

    def _on_disk(self) -> RuntimeStatus:
        if not self.python.exists():
            return RuntimeStatus(MISSING, f"no runtime at {self.venv_dir}")
        if self._marker_matches():
            return RuntimeStatus(READY, str(self.python))
        return RuntimeStatus(
            MISSING, f"{self.venv_dir} holds a venv this installer did not finish; check or install it"
        )

    def _marker_matches(self) -> bool:
        try:
            data = json.loads(self.marker_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and data.get("requirements") == self.requirements

    def _ended(self, code: int) -> RuntimeStatus:
        if self._cancelled:
            return RuntimeStatus(MISSING, "install cancelled")
        if code == 0 and self._marker_matches():
            return RuntimeStatus(READY, str(self.python))
        return RuntimeStatus(FAILED, f"{self._failure_line()} (exit code {_describe_code(code)})")

    def _current_step(self) -> str:
        lines = [ln for ln in self.log_tail(200).splitlines() if ln.startswith(TAG + " step")]
        return lines[-1][len(TAG) + 1 :] if lines else "starting"

    def _failure_line(self) -> str:
        """The last meaningful line of the log: pip's last ERROR line, else our FAILED line, else the
        last line that is not a pip notice."""
        lines = [ln.strip() for ln in self.log_tail(400).splitlines() if ln.strip()]
        for prefix in ("ERROR:", "error:", TAG + " FAILED"):
            for ln in reversed(lines):
                if ln.startswith(prefix):
                    return ln.removeprefix(TAG + " ")
        others = [ln for ln in lines if not ln.startswith("[notice]")]
        return others[-1] if others else f"the installer ended without output (log {self.log_path})"

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the install log ('' when there is none)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 65536))
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # --- actions ----------------------------------------------------------------------------

    def start(self) -> RuntimeStatus:
        """Launch the install in the background and return at once (status ``installing``).
        Raises RuntimeError when an install is already running or the base Python is missing."""
        if self.installing:
            raise RuntimeError(f"an install into {self.venv_dir} is already running (pid {self._proc.pid})")
        if not self.base_python.is_file():
            raise RuntimeError(f"base Python {self.base_python} not found")
        self.venv_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.marker_path.unlink()  # a reinstall is not ready until it has finished again
        except OSError:
            pass
        pip_args = ["--disable-pip-version-check", "--no-input", *self.pip_args]
        if self.extra_index_url:
            pip_args += ["--extra-index-url", self.extra_index_url]
        args = {
            "venv": str(self.venv_dir),
            "python": str(self.python),
            "requirements": self.requirements,
            "imports": self.imports,
            "pip_args": pip_args,
            "marker": MARKER,
        }
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONIOENCODING"] = "utf-8"
        kwargs = {}
        if _IS_WINDOWS:
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | getattr(subprocess, "CREATE_NO_WINDOW", 0)
        else:
            kwargs["start_new_session"] = True  # its own process group: cancel() reaches pip's children too
        cmd = [str(self.base_python), "-u", "-c", _DRIVER, json.dumps(args)]
        with open(self.log_path, "wb") as log:
            log.write(f"{TAG} installing {' '.join(self.requirements)} into {self.venv_dir}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(self.venv_dir.parent),
                env=env,
                **kwargs,
            )
        self._cancelled, self._final, self._checked = False, None, None
        return RuntimeStatus(INSTALLING, "starting")

    def wait(self, timeout: float | None = None) -> RuntimeStatus:
        """Block until the running install ends (for scripts and tests; the add-on polls status())."""
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        return self.status()

    def cancel(self, grace: float = 3.0) -> RuntimeStatus:
        """Stop a running install: terminate its process group (the driver, pip and pip's children),
        kill what is left after ``grace`` seconds, and return once all of it has exited."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return self.status()
        self._cancelled = True
        _signal_group(proc, kill=False)
        if not _wait_gone(proc, grace):
            _signal_group(proc, kill=True)
            _wait_gone(proc, grace)
        with open(self.log_path, "ab") as log:
            log.write(f"{TAG} install cancelled\n".encode())
        return self.status()

    def check(self, timeout: float = 120.0) -> RuntimeStatus:
        """Whether the venv's Python imports every requirement (a subprocess; only when asked).
        Ready when it does; otherwise missing with the import error."""
        if self.installing:
            return self.status()
        if not self.python.exists():
            result = RuntimeStatus(MISSING, f"no runtime at {self.venv_dir}")
        else:
            code = f"import {', '.join(self.imports)}"
            try:
                proc = subprocess.run(
                    [str(self.python), "-c", code],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                result = RuntimeStatus(MISSING, f"{self.python} took over {timeout:.0f} s to run {code!r}")
            except OSError as e:
                result = RuntimeStatus(MISSING, f"{self.python} does not run: {e}")
            else:
                if proc.returncode == 0:
                    result = RuntimeStatus(READY, str(self.python))
                else:
                    last = [ln for ln in proc.stderr.splitlines() if ln.strip()]
                    result = RuntimeStatus(MISSING, last[-1] if last else f"{code!r} exited with {proc.returncode}")
        self._checked = result
        self._proc, self._final = None, None
        return result


def _describe_code(code: int) -> str:
    if code < 0:
        try:
            return f"{code}, killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"{code}, killed by signal {-code}"
    return str(code)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_gone(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait until the driver has exited and (POSIX) no process of its group is left; True if so."""
    deadline = time.monotonic() + timeout
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return False
    if _IS_WINDOWS:
        return True
    while _group_alive(proc.pid):  # pip and its children exit a moment after the driver
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _signal_group(proc: subprocess.Popen, kill: bool) -> None:
    """Terminate (or kill) the driver and everything in its process group (POSIX) or process tree
    (Windows, where console processes can only be stopped forcefully: taskkill /F /T either way)."""
    if _IS_WINDOWS:
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)], capture_output=True, check=False)
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
