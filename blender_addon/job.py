"""One stylize request as a plain object (DESIGN §2): the blocking ``execute`` drives it with
``wait()`` and the modal operator with ``update()`` from its timer events. No bpy here.

States: pending (not started) -> running -> done | failed | cancelled. ``progress`` runs 0..1,
``stage`` names the server's current step; ``result`` holds the arrays of a finished request
(rotations (F, J, 4), translations (F, J, 3), fps) and ``error`` a failed one's
{kind, message, traceback, log_tail, exit_code}.
"""

from __future__ import annotations

import time

try:
    from .client import ServerError, signal_name
except ImportError:  # loaded as a top-level module
    from client import ServerError, signal_name

PENDING, RUNNING, DONE, FAILED, CANCELLED = "pending", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


class StylizeJob:
    def __init__(self):
        self.state = PENDING
        self.progress = 0.0
        self.stage = ""
        self.result: dict | None = None
        self.error: dict | None = None
        self.request_id = None
        self.client = None
        self.cancel_requested = False
        self.started_at = self.finished_at = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def seconds(self):
        if self.started_at is None:
            return None
        return (self.finished_at or time.perf_counter()) - self.started_at

    def _fail_from(self, e: ServerError) -> str:
        self.error = {
            "kind": e.kind,
            "message": e.message,
            "traceback": "",
            "log_tail": e.log_tail,
            "exit_code": e.exit_code,
        }
        return self._finish(CANCELLED if self.cancel_requested else FAILED)

    def _finish(self, state: str) -> str:
        self.state = state
        self.finished_at = time.perf_counter()
        return state

    def start(self, client, request) -> str:
        """Send ``request`` ((header, arrays), core.protocol.stylize_request) through ``client``
        (a ServerClient; launched or restarted as needed)."""
        if self.state != PENDING:
            raise RuntimeError(f"this job was already started (state {self.state})")
        self.client = client
        self.started_at = time.perf_counter()
        self.state = RUNNING
        try:
            self.request_id = client.submit(request)
        except ServerError as e:
            return self._fail_from(e)
        return self.state

    def update(self) -> str:
        """Consume the replies that arrived (never blocks) and return the state."""
        if self.state != RUNNING:
            return self.state
        try:
            replies = self.client.poll(self.request_id)
        except ServerError as e:
            return self._fail_from(e)
        for header, arrays in replies:
            kind = header["type"]
            if kind == "progress":
                self.progress = max(self.progress, min(1.0, header["step"] / header["total"]))
                self.stage = header.get("stage", "")
            elif kind == "result":
                self.result = {
                    "rotations": arrays["rotations"],
                    "translations": arrays["translations"],
                    "fps": header["fps"],
                }
                self.progress, self.stage = 1.0, "done"
                return self._finish(DONE)
            elif kind == "error":
                self.error = {
                    "kind": header.get("kind", "internal"),
                    "message": header.get("message", ""),
                    "traceback": header.get("traceback", ""),
                    "log_tail": self.client.log_tail() if header.get("kind") == "internal" else "",
                    "exit_code": None,
                }
                return self._finish(CANCELLED if header.get("kind") == "cancelled" else FAILED)
        return self.state

    def cancel(self) -> str:
        """Ask the server to stop this request; the state turns cancelled when it confirms (a
        later update) or at once when the server is already gone."""
        if self.state == PENDING:
            return self._finish(CANCELLED)
        if self.state != RUNNING:
            return self.state
        self.cancel_requested = True
        try:
            self.client.cancel(self.request_id)
        except ServerError as e:
            return self._fail_from(e)
        return self.state

    def wait(self, poll_interval: float = 0.02, timeout: float | None = None) -> str:
        """Block until the job finishes (update in a loop); for execute and headless runs.
        ``timeout``: give up waiting (the job keeps running) after that many seconds."""
        end = None if timeout is None else time.monotonic() + timeout
        while self.update() == RUNNING:
            if end is not None and time.monotonic() > end:
                break
            time.sleep(poll_interval)
        return self.state

    def describe_error(self) -> str:
        """One message for ``self.report``: kind, message and the server log tail."""
        if not self.error:
            return ""
        e = self.error
        text = f"{e['kind']}: {e['message']}"
        if e.get("exit_code") is not None:
            text += f" (exit code {e['exit_code']}{signal_name(e['exit_code'])})"
        if e.get("log_tail"):
            text += "\nserver log:\n" + e["log_tail"]
        return text


class ModalDriver:
    """What the modal operator does on each timer event, without bpy, so it can be tested as is.

    The job is submitted from a thread, because submitting may launch the server (a cold start
    imports torch and loads weights) and the UI must not freeze meanwhile; the caller leaves the
    job alone until that thread is done. ``cancel()`` (Esc) is remembered and sent as soon as the
    request is out. ``tick()`` returns "starting" while the thread runs, else the job's state."""

    STARTING = "starting"

    def __init__(self, job: StylizeJob, client, request):
        import threading

        self.job = job
        self.cancel_wanted = False
        self._thread = threading.Thread(target=job.start, args=(client, request), name="mst-submit", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self.cancel_wanted = True

    def tick(self) -> str:
        if self._thread.is_alive():
            return self.STARTING
        job = self.job
        if self.cancel_wanted and job.state == RUNNING and not job.cancel_requested:
            job.cancel()
        return job.update()
