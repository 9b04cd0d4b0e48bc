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
messages (step, total, stage) and then a ``result`` or an ``error``. ``cancel`` (by id, or the
running job when no id) stops the job between steps with an error of kind ``cancelled``.
``shutdown`` exits with status 0; so does the end of stdin. A malformed frame gets an error of kind
``protocol``; when the frame could not be consumed whole (the stream position is lost) the server
exits with status 2 after answering. Nothing raised while a request runs ends the server: input
the runtime refuses (core.errors.RequestError: a bad rig description or rig, arrays, groups or
options) is answered with an error of kind ``bad_request``; anything else is a bug (in the runtime
or the stylizer) and is answered with kind ``internal``, its traceback and the stylizer's name, and
logged; either way the server keeps serving.

Exit statuses: 0 shutdown or end of input, 1 bad command line (e.g. ``--device cuda`` without a GPU),
2 unrecoverable protocol error, 3 version mismatch, 4 the model config (or ``--stylizer``) could not
be loaded.
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


EXIT_OK, EXIT_USAGE, EXIT_PROTOCOL, EXIT_VERSION, EXIT_CONFIG = 0, 1, 2, 3, 4
EXIT_STATUSES = (EXIT_OK, EXIT_USAGE, EXIT_PROTOCOL, EXIT_VERSION, EXIT_CONFIG)


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
    every request with an error of kind ``config`` and ends with EXIT_CONFIG at the hello."""

    def __init__(
        self,
        instream,
        outstream,
        stylizer="statistics",
        device: str = "cpu",
        log=None,
        config=None,
        config_error: str | None = None,
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

    # --- output ---------------------------------------------------------------------------

    def send(self, header: dict, arrays=None) -> None:
        with self.write_lock:
            try:
                self.p.write_message(self.outstream, header, arrays)
            except (BrokenPipeError, OSError, ValueError) as e:  # the client is gone
                self.log.warning("cannot write a %s reply: %s", header.get("type"), e)

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
            if kind == "stylize":
                with self.cancel_lock:
                    self.seq += 1
                    header["_seq"] = self.seq
                    self.pending[self.seq] = header["id"]
            self.queue.put((kind, header, arrays))

    # --- main loop ------------------------------------------------------------------------

    def serve(self) -> int:
        thread = self._threading.Thread(target=self.reader, name="protocol-reader", daemon=True)
        self.reader_thread = thread
        thread.start()
        while True:
            kind, header, arrays = self.queue.get()
            if kind in ("closed", "shutdown"):
                self.log.info("%s: exiting", kind)
                return EXIT_CONFIG if self.config_error is not None else EXIT_OK
            if kind == "protocol_error":
                self.send_error("protocol", str(header))
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
                self.run_stylize(header, arrays)

    def run_stylize(self, header: dict, arrays: dict) -> None:
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
        try:
            job = Job(progress, cancelled, step_delay=_step_delay(options))
            result = self.stylize(header, arrays, options, job)
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
                {"type": "result", "id": rid, "fps": result.fps},
                {"rotations": result.rotations, "translations": result.positions},
            )
        finally:
            with self.cancel_lock:
                self.pending.pop(seq, None)
                self.cancelled_seqs.discard(seq)

    def stylize(self, header: dict, arrays: dict, options: dict, job):
        from .runtime import motions_from_message, stylize_rig_motion

        content, reference, groups = motions_from_message(header, arrays)
        return stylize_rig_motion(content, reference, groups, header.get("weights", {}), options, self.stylizer, job)


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
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse's own status 2 would read as a protocol error
        return EXIT_OK if e.code in (0, None) else EXIT_USAGE
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
        server = Server(sys.stdin.buffer, out, args.stylizer or "unknown", device, log, config, config_error=problem)
    else:
        server = Server(sys.stdin.buffer, out, stylizer, device, log, config)
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
    # os._exit: the reader thread may sit in a blocking read of stdin.
    code = main()
    sys.stderr.flush()
    os._exit(code)
