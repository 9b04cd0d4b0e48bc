"""The runtime server: ``python -m core.server [--device auto|cpu|cuda] [--stylizer NAME | --config PATH]``.

Speaks core.protocol on stdin (requests) and stdout (replies); logs go to stderr. Before anything
heavy is imported, file descriptor 1 is pointed at stderr and ``sys.stdout`` at ``sys.stderr``, so
a stray print (ours, a library's, or C code writing to fd 1) can never corrupt the protocol; the
protocol writes to a private duplicate of the original stdout.

The stylizer: ``--config PATH``, a model config (JSON naming the stylizer, its weights and
settings; core.stylize.loading), or ``--stylizer NAME`` (a stylizer that needs no weights, e.g.
``statistics``). With neither, the shipped model config (core.stylize.loading.SHIPPED_CONFIG:
weights/stylizer.json beside the core package, the CLI's default too) is loaded, as if given with
``--config``: the hello reports its path. A config that cannot be loaded (missing file, not JSON,
unknown stylizer, missing weights...) or an unknown ``--stylizer`` does not end the process
silently: the problem is logged to stderr, the client's ``hello`` is answered with an ``error`` of
kind ``config`` carrying the message, and the server exits with status 4 (any request before the
hello gets the same error; the end of input or a shutdown also exit with 4).

Session: the client's first message is ``hello`` with its protocol version; the server answers
``hello`` (version, device, stylizer name, config path or null, pid) or, on a version mismatch, an
``error`` of kind ``version`` naming both versions, and exits with status 3. A ``stylize`` request gets ``progress``
messages (step, total, stage) and then a ``result`` or an ``error``; while it runs, a thread sends a
``heartbeat`` whenever nothing was written for ``--heartbeat`` seconds (default 2), so a client's
silence timeout tells a hung server from one busy with a long take. ``cancel`` (by id, or the
running job when no id) stops the job between steps with an error of kind ``cancelled``.
``shutdown`` exits with status 0; so does the end of stdin. A malformed frame gets an error of kind
``protocol``; when the frame could not be consumed whole (the stream position is lost) the server
exits with status 2 after answering (an in-sync error about a stylize frame carries its id).
Nothing raised while a request runs ends the server: input the runtime refuses
(core.errors.RequestError: a bad rig description or rig, arrays, weights outside [0, 10], groups or
options, or a request whose estimated working memory exceeds ``--max-request-mb``, default 1024:
core.runtime.check_request, before anything is allocated) is answered with an error of kind
``bad_request``; anything else is a bug (in the runtime or the stylizer) and is answered with kind
``internal``, its traceback and the stylizer's name, and logged; so is a result holding NaN or
infinite values, which is never sent. Either way the server keeps serving.

Exit statuses: 0 shutdown or end of input, 1 bad command line (e.g. ``--device cuda`` without a GPU),
2 unrecoverable protocol error, 3 version mismatch, 4 the model config (or ``--stylizer``) could not
be loaded, 5 a bug escaped the main loop (logged; the process still exits, never aborts).
"""

from __future__ import annotations

import os
import sys


def _protect_stdout():
    """A binary stream on the original stdout for the protocol; fd 1 and sys.stdout go to stderr."""
    out = os.fdopen(os.dup(1), "wb", buffering=1 << 16)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


EXIT_OK, EXIT_USAGE, EXIT_PROTOCOL, EXIT_VERSION, EXIT_CONFIG, EXIT_CRASH = 0, 1, 2, 3, 4, 5
EXIT_STATUSES = (EXIT_OK, EXIT_USAGE, EXIT_PROTOCOL, EXIT_VERSION, EXIT_CONFIG, EXIT_CRASH)
HEARTBEAT_S = 2.0


def choose_device(requested: str = "auto") -> str:
    """'cuda' when asked for or when torch sees a GPU (auto), else 'cpu'."""
    if requested == "cpu":
        return "cpu"
    try:
        import torch

        available = torch.cuda.is_available()
    except Exception:  # noqa: BLE001  torch missing or broken: the numpy stylizers still run
        available = False
    if requested == "cuda" and not available:
        raise RuntimeError("--device cuda was asked for but torch sees no CUDA device")
    return "cuda" if available else "cpu"


class Server:
    """One session on a pair of binary streams (``serve()`` returns the exit status).

    ``stylizer``: a name in STYLIZERS or a ready stylizer object (core.stylize.loading);
    ``config``: the model config path it came from (reported in the hello reply);
    ``config_error``: the message of a config that could not be loaded: the session then answers
    every request with an error of kind ``config`` and ends with EXIT_CONFIG at the hello;
    ``heartbeat``: seconds of silence during a job before a heartbeat is sent;
    ``max_request_bytes``: the estimated working memory a request may need (check_request)."""

    def __init__(
        self,
        instream,
        outstream,
        stylizer="statistics",
        device: str = "cpu",
        log=None,
        config=None,
        config_error: str | None = None,
        heartbeat: float = HEARTBEAT_S,
        max_request_bytes: int | None = None,
    ):
        import logging
        import queue
        import threading

        from . import protocol

        self.p = protocol
        self.instream, self.outstream = instream, outstream
        self.stylizer, self.device = stylizer, device
        self.stylizer_name = (
            stylizer if isinstance(stylizer, str) else getattr(stylizer, "name", type(stylizer).__name__)
        )
        self.config = None if config is None else str(config)
        self.config_error = config_error
        self.reader_thread = None
        self.log = log or logging.getLogger("core.server")
        self.queue: queue.Queue = queue.Queue()
        self.write_lock = threading.Lock()
        self.cancel_lock = threading.Lock()
        # Requests are numbered as they are read; a cancel marks the ones read before it.
        self.seq = 0
        self.pending: dict[int, object] = {}  # seq -> id of stylize requests read, not finished
        self.cancelled_seqs: set[int] = set()
        self.cancel_upto = 0  # every request numbered up to here is cancelled (cancel without id)
        self.greeted = False
        self._threading = threading
        self.heartbeat = float(heartbeat)
        self.max_request_bytes = max_request_bytes
        self.waiting_bytes = 0  # array bytes of the stylize requests read and not yet started
        self.last_write = 0.0  # time.monotonic() of the last frame written

    # --- output ---------------------------------------------------------------------------

    def send(self, header: dict, arrays=None) -> None:
        """Write one reply. A reply the protocol refuses (our bug) is replaced by an ``internal``
        error naming its request, so the client is never left waiting and nothing malformed goes out."""
        import time

        with self.write_lock:
            try:
                try:
                    self.p.write_message(self.outstream, header, arrays)
                except self.p.ProtocolError as e:  # raised before a byte is written
                    self.log.error("refusing to send a malformed %s reply: %s", header.get("type"), e)
                    if header.get("type") != "error":
                        message = f"internal error: the server built a malformed {header.get('type')} reply: {e}"
                        reply = self.p.error_reply("internal", message, "", _reply_id(header))
                        self.p.write_message(self.outstream, reply)
            except (BrokenPipeError, OSError, ValueError) as e:  # the client is gone
                self.log.warning("cannot write a %s reply: %s", header.get("type"), e)
            self.last_write = time.monotonic()

    def send_error(self, kind: str, message: str, tb: str = "", request_id=None) -> None:
        self.log.info("error reply (%s): %s", kind, message)
        self.send(self.p.error_reply(kind, message, tb, request_id))

    # --- input ----------------------------------------------------------------------------

    def reader(self) -> None:
        """Reads frames; cancels act at once, everything else is queued for the main thread."""
        p = self.p
        while True:
            try:
                header, arrays = p.read_message(self.instream, types=p.REQUEST_TYPES)
            except p.Closed:
                self.queue.put(("closed", None, None))
                return
            except p.ProtocolError as e:
                self.queue.put(("protocol_error", e, None))
                if not e.in_sync:
                    return
                continue
            except Exception as e:  # noqa: BLE001  an I/O error on stdin: treat as closed
                self.log.warning("reading stdin failed: %r", e)
                self.queue.put(("closed", None, None))
                return
            kind = header["type"]
            if kind == "cancel":
                with self.cancel_lock:
                    rid = header.get("id")
                    if rid is None:
                        self.cancel_upto = self.seq
                    else:
                        self.cancelled_seqs |= {n for n, i in self.pending.items() if i == rid}
                self.log.info("cancel %r", header.get("id"))
                continue
            if kind == "shutdown":
                with self.cancel_lock:
                    self.cancel_upto = self.seq
                self.queue.put(("shutdown", header, None))
                return
            if kind == "stylize" and not self.admit(header, arrays):
                continue
            self.queue.put((kind, header, arrays))

    def admit(self, header: dict, arrays: dict) -> bool:
        """Number a stylize request and count its bytes as waiting; or, when the requests already
        waiting would pass the request budget with it, refuse it at once: a client that sends
        faster than the server works must not grow the server's memory without bound."""
        from .runtime import MAX_REQUEST_BYTES

        size = sum(a.nbytes for a in arrays.values())
        limit = self.max_request_bytes or MAX_REQUEST_BYTES
        with self.cancel_lock:
            waiting = self.waiting_bytes
            if waiting + size <= limit:
                self.waiting_bytes += size
                self.seq += 1
                header["_seq"], header["_bytes"] = self.seq, size
                self.pending[self.seq] = header["id"]
                return True
        self.send_error(
            "bad_request",
            f"the server already holds {waiting / (1 << 20):.1f} MiB of waiting requests; this one "
            f"({size / (1 << 20):.1f} MiB) would pass its {limit / (1 << 20):.0f} MiB: send it when a result arrives",
            request_id=header.get("id"),
        )
        return False

    # --- main loop ------------------------------------------------------------------------

    def serve(self) -> int:
        thread = self._threading.Thread(target=self.reader, name="protocol-reader", daemon=True)
        self.reader_thread = thread
        thread.start()
        while True:
            kind, header, arrays = self.queue.get()
            if kind == "stylize":
                with self.cancel_lock:
                    self.waiting_bytes -= header.pop("_bytes")
            if kind in ("closed", "shutdown"):
                self.log.info("%s: exiting", kind)
                return EXIT_CONFIG if self.config_error is not None else EXIT_OK
            if kind == "protocol_error":
                self.send_error("protocol", str(header), request_id=header.request_id)
                if not header.in_sync:
                    return EXIT_PROTOCOL
                continue
            if kind == "hello":
                version = header["version"]
                if version != self.p.PROTOCOL_VERSION:
                    self.send_error(
                        "version",
                        f"protocol version mismatch: the client speaks version {version}, this server "
                        f"speaks version {self.p.PROTOCOL_VERSION}; update the add-on or the runtime",
                    )
                    return EXIT_VERSION
                if self.config_error is not None:
                    self.send_error("config", self.config_error, request_id=_reply_id(header))
                    return EXIT_CONFIG
                self.greeted = True
                self.send(
                    {
                        "type": "hello",
                        "version": self.p.PROTOCOL_VERSION,
                        "device": self.device,
                        "stylizer": self.stylizer_name,
                        "config": self.config,
                        "pid": os.getpid(),
                        **({"id": header["id"]} if _reply_id(header) is not None else {}),
                    }
                )
                continue
            if not self.greeted:
                with self.cancel_lock:
                    self.pending.pop(header.pop("_seq", None), None)
                if self.config_error is not None:
                    self.send_error("config", self.config_error, request_id=_reply_id(header))
                else:
                    self.send_error("handshake", f"send hello before {kind}", request_id=_reply_id(header))
                continue
            if kind == "stylize":
                try:
                    self.run_stylize(header, arrays)
                except Exception as e:
                    self.log.exception("handling stylize %r failed", header.get("id"))
                    self.send_error(
                        "internal", f"internal error: {type(e).__name__}: {e}", request_id=_reply_id(header)
                    )

    def heartbeats(self, rid, stop) -> None:
        """Until ``stop`` is set: a heartbeat for job ``rid`` whenever nothing was written for
        ``self.heartbeat`` seconds (runs on its own thread, so a long step cannot hold it up)."""
        import time

        start = time.monotonic()
        while not stop.wait(max(self.last_write + self.heartbeat - time.monotonic(), 0.05)):
            if time.monotonic() - self.last_write >= self.heartbeat:
                self.send({"type": "heartbeat", "id": rid, "elapsed": round(time.monotonic() - start, 3)})

    def run_stylize(self, header: dict, arrays: dict) -> None:
        import time
        import traceback

        from .errors import RequestError
        from .runtime import Cancelled, Job

        rid, seq = header["id"], header.pop("_seq")

        def cancelled() -> bool:
            with self.cancel_lock:
                return seq <= self.cancel_upto or seq in self.cancelled_seqs

        def progress(step: int, total: int, stage: str) -> None:
            self.send({"type": "progress", "id": rid, "step": step, "total": total, "stage": stage})

        options = dict(header.get("options", {}))
        stop = self._threading.Event()
        self.last_write = time.monotonic()  # silence counts from the job's start
        beat = self._threading.Thread(target=self.heartbeats, args=(rid, stop), name="heartbeat", daemon=True)
        beat.start()
        try:
            job = Job(progress, cancelled, step_delay=_step_delay(options))
            result = self.stylize(header, arrays, options, job)
            rotations, translations = _finite_result(result)
        except Cancelled as e:
            self.send_error("cancelled", f"request {rid!r} was cancelled ({e})", request_id=rid)
        except RequestError as e:
            self.send_error("bad_request", f"{type(e).__name__}: {e}", traceback.format_exc(), rid)
        except Exception as e:  # a bug: report it with its traceback and keep serving
            self.log.exception("stylize %r failed (stylizer %s)", rid, self.stylizer_name)
            message = f"internal error (stylizer {self.stylizer_name!r}): {type(e).__name__}: {e}"
            self.send_error("internal", message, traceback.format_exc(), rid)
        else:
            self.send(
                {"type": "result", "id": rid, "fps": result.fps}, {"rotations": rotations, "translations": translations}
            )
        finally:
            stop.set()
            beat.join()
            with self.cancel_lock:
                self.pending.pop(seq, None)
                self.cancelled_seqs.discard(seq)

    def stylize(self, header: dict, arrays: dict, options: dict, job):
        from .runtime import MAX_REQUEST_BYTES, check_request, motions_from_message, stylize_rig_motion

        check_request(header, arrays, self.stylizer_name, self.max_request_bytes or MAX_REQUEST_BYTES)
        content, reference, groups = motions_from_message(header, arrays)
        arrays.clear()  # the wire's float32 buffers: the motions hold float64 copies (a long take's MBs)
        return stylize_rig_motion(content, reference, groups, header.get("weights", {}), options, self.stylizer, job)


def _finite_result(result):
    """The result's arrays as the wire's float32; NaN or infinite values (also float32 overflow)
    are a bug of the stylizer or the runtime, raised here so that they are never sent."""
    import numpy as np

    with np.errstate(over="ignore"):  # an overflow is found just below
        arrays = [np.asarray(a, dtype=np.float32) for a in (result.rotations, result.positions)]
    if not np.isfinite(result.fps) or result.fps <= 0:
        raise FloatingPointError(f"the result's fps is {result.fps!r}")
    for name, a in zip(("rotations", "translations"), arrays):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        if bad:
            raise FloatingPointError(f"the result's {name} hold {bad} NaN or infinite values (float32)")
    return arrays


def _step_delay(options: dict) -> float:
    """The ``step_delay`` option (seconds slept at each step, for tests of cancel), removed from
    ``options`` and clamped to [0, 10]."""
    from .errors import RequestError

    value = options.pop("step_delay", 0.0)
    try:
        delay = float(value)
    except (TypeError, ValueError):
        raise RequestError(f"option step_delay must be a number of seconds, got {value!r}") from None
    return min(max(delay, 0.0), 10.0)


def _reply_id(header: dict):
    """The request's id when a reply may carry it (a string or an integer), else None."""
    rid = header.get("id")
    return rid if isinstance(rid, (str, int)) and not isinstance(rid, bool) else None


def load_configured_stylizer(stylizer_name: str, config, device: str = "cpu"):
    """(stylizer object, None) or (None, the problem) for ``--stylizer`` / ``--config``."""
    from .stylize.loading import ModelConfigError, load_stylizer, stylizer_by_name

    try:
        if config is not None:
            return load_stylizer(config, device), None
        return stylizer_by_name(stylizer_name), None
    except ModelConfigError as e:
        return None, str(e)


def main(argv=None) -> int:
    out = _protect_stdout()
    import argparse
    import logging
    import time

    start = time.perf_counter()
    parser = argparse.ArgumentParser(prog="python -m core.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--stylizer", default=None, help="a stylizer by name, one that needs no weights")
    which.add_argument(
        "--config",
        default=None,
        help="a model config JSON (stylizer name, weights, settings); default: the shipped weights/stylizer.json",
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--heartbeat", type=float, default=HEARTBEAT_S, help="seconds of silence during a job before a heartbeat"
    )
    parser.add_argument(
        "--max-request-mb", type=float, default=None, help="estimated working memory one request may use (default 1024)"
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse's own status 2 would read as a protocol error
        return EXIT_OK if e.code in (0, None) else EXIT_USAGE
    if not 0.05 <= args.heartbeat <= 60 or (args.max_request_mb is not None and not args.max_request_mb > 0):
        print("--heartbeat must be in [0.05, 60] seconds and --max-request-mb positive", file=sys.stderr)
        return EXIT_USAGE
    limits = {"heartbeat": args.heartbeat, "max_request_bytes": None}
    if args.max_request_mb is not None:
        limits["max_request_bytes"] = int(args.max_request_mb * (1 << 20))
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log = logging.getLogger("core.server")
    from . import runtime  # noqa: F401  (the heavy imports, before the handshake)

    try:
        device = choose_device(args.device)
    except RuntimeError as e:
        log.error("%s", e)
        return EXIT_USAGE
    if args.stylizer is None and args.config is None:
        from .stylize.loading import SHIPPED_CONFIG

        args.config = str(SHIPPED_CONFIG)
    config = None if args.config is None else os.path.abspath(args.config)
    stylizer, problem = load_configured_stylizer(args.stylizer, config, device)
    if problem is not None:
        log.error("cannot load the stylizer: %s (answering the hello with this error, then exiting)", problem)
        server = Server(
            sys.stdin.buffer, out, args.stylizer or "unknown", device, log, config, config_error=problem, **limits
        )
    else:
        server = Server(sys.stdin.buffer, out, stylizer, device, log, config, **limits)
        log.info(
            "ready in %.2f s: device %s, stylizer %s, config %s, pid %d",
            time.perf_counter() - start,
            device,
            server.stylizer_name,
            config,
            os.getpid(),
        )
    code = server.serve()
    try:
        out.flush()
    except OSError:
        pass
    return code


if __name__ == "__main__":
    # os._exit, whatever happens: the reader thread may sit in a blocking read of stdin, and a normal
    # interpreter exit would then abort (SIGABRT) on the stdin lock instead of exiting.
    code = EXIT_CRASH
    try:
        code = main()
    except BaseException:  # noqa: BLE001  logged; the exit status says a bug escaped
        import traceback

        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)
