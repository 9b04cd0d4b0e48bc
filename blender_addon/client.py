"""The add-on's client to the runtime server (DESIGN §2), without bpy so it runs in plain Python.

``ServerClient`` launches ``<runtime python> -m core.server`` as a child on stdin/stdout pipes
(stderr goes to a log file), does the version handshake, sends stylize/cancel requests and hands
back replies without blocking: a reader thread puts every frame on a queue and only the caller's
thread (Blender's main thread) consumes it. Faults, all turned into ``ServerError`` carrying the
exit code and the last lines of the server log:

- the runtime Python is missing (kind ``missing_python``),
- end of stdout, a broken pipe / OSError on write, a non-zero exit (kind ``died``),
- no reply within ``timeout`` seconds while a request is pending (kind ``timeout``; the child is killed):
  a busy server sends a ``heartbeat`` every few seconds of a long step, which counts as a reply
  here and is otherwise dropped, so only a hung server times out,
- bytes on stdout that are not the protocol (kind ``protocol``; the child is killed),
- a protocol version mismatch (kind ``version``, naming both versions),
- a model config (or stylizer) the server could not load (kind ``config``, with the server's
  message naming the file and the problem; the server exits with status 4).

After a fault the child is reaped and forgotten; the next ``start``/``submit`` launches a fresh one.
Imports only the standard library, numpy (through core.protocol) and ``core.protocol``: as
``.core.protocol`` inside the installed add-on (core bundled as a subpackage), else as
``core.protocol`` (the repository layout, with the repo on sys.path).
"""

from __future__ import annotations

import itertools
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

try:
    from .core import protocol as P  # inside the installed add-on (core bundled in the package)
except ImportError:
    from core import protocol as P  # repository layout (tests put blender_addon/ on sys.path)

LOG_TAIL_LINES = 20
_EOF, _BAD, _IOERR = "eof", "protocol", "ioerror"


class ServerError(Exception):
    """A failure of the runtime server process. ``kind``: missing_python, start, died, timeout,
    protocol, version, config or handshake; ``exit_code``: the child's status when known (negative: killed
    by that signal); ``log_tail``: the last lines of its stderr log."""

    def __init__(self, message: str, kind: str = "died", exit_code=None, log_tail: str = ""):
        full = message
        if exit_code is not None and f"code {exit_code}" not in message:
            full += f" (exit code {exit_code}{signal_name(exit_code)})"
        if log_tail:
            full += "\n--- server log (last lines) ---\n" + log_tail
        super().__init__(full)
        self.message, self.kind, self.exit_code, self.log_tail = message, kind, exit_code, log_tail


def signal_name(code) -> str:
    if isinstance(code, int) and code < 0:
        try:
            return f", killed by {signal.Signals(-code).name}"
        except ValueError:
            return f", killed by signal {-code}"
    return ""


def default_core_dir() -> Path:
    """The folder holding the ``core`` package: beside this file (zip layout) or its parent (repo)."""
    here = Path(__file__).resolve().parent
    for d in (here, here.parent):
        if (d / "core" / "protocol.py").is_file():
            return d
    return here.parent


class _Child:
    """One launched server process with its reader thread and reply queue."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.pid = proc.pid
        self.replies: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._read, name=f"mst-server-reader-{proc.pid}", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        stream = self.proc.stdout
        while True:
            try:
                self.replies.put(P.read_message(stream, types=P.REPLY_TYPES))
            except P.Closed:
                self.replies.put((_EOF, None))
                return
            except P.ProtocolError as e:
                self.replies.put((_BAD, e))
                if not e.in_sync:
                    return
            except Exception as e:  # noqa: BLE001  closed pipe while stopping, or an I/O error
                self.replies.put((_IOERR, e))
                return


class ServerClient:
    """Client of ``python -m core.server`` running under ``python`` (the runtime interpreter).

    ``args``: extra server arguments (``--device cpu``...); ``log_path``: the server's stderr log
    (a temporary file when None); ``timeout``: seconds without any reply while a request is
    pending before the server is declared hung; ``start_timeout``: seconds for the handshake
    (a cold start imports torch); ``core_dir``: the folder holding ``core`` (used as cwd and put on
    PYTHONPATH); ``pythonpath``: further folders for PYTHONPATH; ``module``: the server module;
    ``config``: a model config JSON (core.stylize.loading) the server runs, passed to it as
    ``--config PATH`` (a relative path is taken from the caller's working directory, not
    ``core_dir``); None runs the server's default stylizer (or whatever ``args`` say)."""

    def __init__(
        self,
        python,
        args=(),
        log_path=None,
        timeout: float = 120.0,
        env=None,
        core_dir=None,
        pythonpath=(),
        module: str = "core.server",
        start_timeout: float = 120.0,
        grace: float = 3.0,
        config=None,
    ):
        self.python = str(python) if python else ""
        self.args = list(args)
        self.config = os.path.abspath(config) if config else None
        self.timeout, self.start_timeout, self.grace = float(timeout), float(start_timeout), float(grace)
        self.core_dir = Path(core_dir) if core_dir else default_core_dir()
        self.pythonpath = [str(self.core_dir)] + [str(p) for p in pythonpath]
        self.env = dict(env) if env is not None else None
        self.module = module
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix="mst-server-", suffix=".log")
            os.close(fd)
        self.log_path = Path(log_path)
        self.child: _Child | None = None
        self.server_info: dict = {}
        self.pending: set = set()  # ids of requests sent and not finished
        self._inbox: list = []  # replies read but not handed out yet
        self._last_activity = time.monotonic()
        self._ids = itertools.count(1)
        self.launches = 0
        self._log_start = 0
        self.last_start_seconds = None

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.child is not None and self.child.proc.poll() is None

    @property
    def pid(self):
        return self.child.pid if self.child else None

    def _check_python(self) -> None:
        where = "set it in the add-on preferences (Runtime Python) or use Install runtime"
        if not self.python:
            raise ServerError(f"no runtime Python is set: {where}", "missing_python")
        p = Path(self.python)
        if not p.is_file():
            raise ServerError(f"the runtime Python {self.python} does not exist: {where}", "missing_python")
        if not os.access(p, os.X_OK):
            raise ServerError(f"the runtime Python {self.python} is not executable: {where}", "missing_python")

    def start(self) -> dict:
        """Launch the server when none is running and do the handshake; returns its hello reply."""
        if self.running:
            return self.server_info
        self._discard()  # a dead child left over: reap it
        self._check_python()
        env = dict(os.environ if self.env is None else self.env)
        old = env.get("PYTHONPATH")
        env["PYTHONPATH"] = os.pathsep.join(self.pythonpath + ([old] if old else []))
        env["PYTHONUNBUFFERED"] = "1"
        t0 = time.perf_counter()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._log_start = log.tell()
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} launching {self.module}\n".encode())
            log.flush()
            try:
                proc = subprocess.Popen(
                    [self.python, "-m", self.module, *self.args, *(["--config", self.config] if self.config else [])],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    cwd=str(self.core_dir),
                    env=env,
                    close_fds=True,
                )
            except OSError as e:
                raise ServerError(
                    f"cannot start the runtime Python {self.python}: {e}; set it in the add-on preferences "
                    "(Runtime Python) or use Install runtime",
                    "missing_python" if isinstance(e, (FileNotFoundError, PermissionError)) else "start",
                ) from None
        self.launches += 1
        self.child = _Child(proc)
        self.pending.clear()
        self._inbox.clear()
        self._write(P.hello_request(), None)
        header = self._next_reply(self.start_timeout, "the handshake")
        if header[0]["type"] == "error":
            h = header[0]
            code = self._discard()
            if h.get("kind") == "version":
                raise ServerError(
                    f"{h['message']} (add-on protocol version {P.PROTOCOL_VERSION})", "version", code, self.log_tail()
                )
            if h.get("kind") == "config":
                raise ServerError(h["message"], "config", code, self.log_tail())
            raise ServerError(f"handshake refused: {h.get('message')}", "handshake", code, self.log_tail())
        if header[0]["type"] != "hello":
            self._fail("handshake", f"the server answered {header[0]['type']!r} to hello")
        version = header[0].get("version")
        if version != P.PROTOCOL_VERSION:
            self._fail(
                "version",
                f"protocol version mismatch: the add-on speaks version {P.PROTOCOL_VERSION}, the runtime "
                f"server speaks version {version}; update the add-on or the runtime",
            )
        self.server_info = {k: v for k, v in header[0].items() if k not in ("arrays", "nbytes")}
        self.last_start_seconds = time.perf_counter() - t0
        return self.server_info

    def stop(self) -> int | None:
        """Ask the server to shut down, then terminate, then kill after the grace period; always
        reaps the child. Returns its exit status (None when none was running)."""
        child = self.child
        if child is None:
            return None
        proc = child.proc
        if proc.poll() is None:
            try:
                P.write_message(proc.stdin, {"type": "shutdown"})
            except (OSError, ValueError, P.ProtocolError):
                pass
            try:
                proc.stdin.close()
            except (OSError, ValueError):
                pass
        code = self._reap(self.grace)
        return code

    def _reap(self, grace: float) -> int | None:
        """Wait up to ``grace`` s, then terminate, then kill; close the pipes; forget the child."""
        child, self.child = self.child, None
        self.pending.clear()
        if child is None:
            return None
        proc = child.proc
        for action in (None, proc.terminate, proc.kill):
            if action is not None and proc.poll() is None:
                try:
                    action()
                except OSError:
                    pass
            try:
                proc.wait(grace if action is not proc.kill else None)
                break
            except subprocess.TimeoutExpired:
                continue
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream:
                    stream.close()
            except (OSError, ValueError):
                pass
        child.thread.join(1.0)
        return proc.returncode

    def _discard(self) -> int | None:
        """Kill the child at once (it has failed) and reap it; returns its exit status."""
        if self.child is None:
            return None
        proc = self.child.proc
        if proc.poll() is None:
            try:  # a child that is exiting on its own (EOF seen) gets a moment to report its status
                proc.wait(0.5)
            except subprocess.TimeoutExpired:
                try:
                    proc.kill()
                except OSError:
                    pass
        return self._reap(self.grace)

    def _fail(self, kind: str, message: str):
        code = self._discard()
        raise ServerError(message, kind, code, self.log_tail())

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines the server wrote to its log (of the latest launch)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(self._log_start, size - 16384))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __del__(self):
        try:
            if self.child is not None:
                self.stop()
        except Exception:  # noqa: BLE001, S110  (interpreter shutdown: nothing to report to)
            pass

    # --- I/O --------------------------------------------------------------------------------

    def _write(self, header: dict, arrays) -> None:
        child = self.child
        try:
            P.write_message(child.proc.stdin, header, arrays)
        except P.ProtocolError:
            raise  # our own bad message: the server is fine
        except (BrokenPipeError, OSError, ValueError) as e:
            self._fail("died", f"the runtime server is gone (writing a {header.get('type')} request failed: {e})")
        self._last_activity = time.monotonic()

    def _fault(self, tag: str, err) -> None:
        if tag == _EOF:
            self._fail("died", "the runtime server closed its output (it exited or crashed)")
        if tag == _BAD:
            self._fail(
                "protocol",
                f"the runtime server wrote something that is not the protocol on its stdout ({err}); "
                "the runtime may be the wrong program or a library prints to stdout",
            )
        self._fail("died", f"reading from the runtime server failed: {err!r}")

    def _next_reply(self, timeout: float, what: str):
        """The next frame of the current child within ``timeout`` s (blocking; used by start)."""
        try:
            header, arrays = self.child.replies.get(timeout=timeout)
        except queue.Empty:
            self._fail("timeout", f"no reply from the runtime server within {timeout:g} s during {what}")
        if isinstance(header, str):
            self._fault(header, arrays)
        self._last_activity = time.monotonic()
        return header, arrays

    def submit(self, request) -> object:
        """Send a stylize request ``(header, arrays)`` (core.protocol.stylize_request), launching or
        restarting the server when needed; returns the request id."""
        header, arrays = request
        header = dict(header)
        if header.get("id") is None:
            header["id"] = f"req-{next(self._ids)}"
        for attempt in (0, 1):
            if not self.running:
                self.start()
            try:
                self._write(header, arrays)
                break
            except ServerError as e:
                # the server died before the request reached it (e.g. between two requests):
                # nothing was lost, so start a fresh one and send it once more
                if attempt or e.kind != "died" or self.pending:
                    raise
        if not self.pending:
            self._last_activity = time.monotonic()
        self.pending.add(header["id"])
        return header["id"]

    def cancel(self, request_id=None) -> None:
        """Ask the server to stop request ``request_id`` (all when None) between steps."""
        if not self.running:
            return
        msg = {"type": "cancel"}
        if request_id is not None:
            msg["id"] = request_id
        self._write(msg, None)

    def poll(self, request_id=None) -> list:
        """The replies (header, arrays) that arrived, without blocking (heartbeats only keep the
        server from timing out and are not handed out); only those of ``request_id`` when given
        (the others stay for later calls). Raises ServerError when the
        server died, hung past the timeout or broke the protocol (replies read before the fault
        are handed out first)."""
        child = self.child
        fault = None
        if child is not None:
            while True:
                try:
                    header, arrays = child.replies.get_nowait()
                except queue.Empty:
                    break
                if isinstance(header, str):
                    fault = (header, arrays)
                    break
                self._last_activity = time.monotonic()
                if header["type"] == "heartbeat":  # liveness only: nothing for the caller
                    continue
                if header["type"] in ("result", "error"):
                    self.pending.discard(header.get("id"))
                self._inbox.append((header, arrays))
        if request_id is None:
            out, self._inbox = self._inbox, []
        else:
            out = [r for r in self._inbox if r[0].get("id") == request_id]
            self._inbox = [r for r in self._inbox if r[0].get("id") != request_id]
        if fault is not None:
            if out:  # hand out what came before the fault; the fault is raised on the next poll
                child.replies.queue.appendleft(fault)
                return out
            if fault[0] == _EOF and not self.pending:  # died while idle: the next request restarts it
                self._discard()
                return out
            self._fault(*fault)
        if child is not None and self.pending and time.monotonic() - self._last_activity > self.timeout:
            self._fail(
                "timeout",
                f"the runtime server sent nothing for {self.timeout:g} s while working on "
                f"{sorted(map(str, self.pending))}; it was stopped and restarts on the next request",
            )
        if child is not None and not out and child.proc.poll() is not None and child.replies.empty():
            # exited without the reader having seen EOF yet: give the reader a moment
            child.thread.join(0.5)
            if child.replies.empty():
                if not self.pending:
                    self._discard()
                    return out
                self._fail("died", "the runtime server exited")
            return self.poll(request_id)
        return out


def runtime_python_default() -> str:
    """The interpreter running this code (a fallback for tests and for a runtime that is Blender's)."""
    return sys.executable
