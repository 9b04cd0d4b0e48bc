"""Random stylize requests against a real ``python -m core.server``: every one must be answered
(a result of the content's shape, or an error of a documented kind), the server must never exit,
and its peak memory (VmHWM) must stay bounded. tests/test_server_fuzz.py runs a few hundred; this
prints the figures of a long run for the README:

    .venv/bin/python -m tools.fuzz_server --count 10000 [--seed 0] [--stylizer statistics | --config PATH]

Each request is a valid one (a synthetic take on the canonical rig) with zero to three faults:
fields of the wrong type or missing, fps anywhere in and around the protocol's range, NaN, inf and
huge values in the arrays, the weights or the rig description, wrong shapes, arrays cut short or
missing, unknown groups and options. Frames are always whole (the header's shapes match the
payload): frames that lose the stream's position end a session by design and are fuzzed in
tests/test_server.py.
"""

from __future__ import annotations

import argparse
import copy
import json
import queue
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

from core import protocol as P
from core.ops.rotations import quat_mul

REPO_ROOT = Path(__file__).resolve().parent.parent
ANSWER_KINDS = ("result", "bad_request", "protocol")  # what a fuzzed request may get; "internal" is a bug
MAX_RSS_BYTES = int(1.5e9)
GROUPS = P.GROUPS
ODD_VALUES = [None, True, "x", "", [], {}, [1, 2], {"a": 1}, -1, 0, 1e300, -1e300, 1e-320, 2**70, 0.5]


def _frame(header: dict, arrays: dict) -> bytes:
    """The bytes of one whole frame, written by hand so that the header may hold any JSON value
    and the arrays any float32 (NaN included), while the shapes always match the payload. (A NaN
    literal in the header would make it unreadable, which ends a session by design.)"""
    buffers = [np.ascontiguousarray(a, dtype="<f4") for a in arrays.values()]
    header = dict(header, arrays=[{"name": k, "shape": list(b.shape)} for k, b in zip(arrays, buffers)])
    header["nbytes"] = sum(b.nbytes for b in buffers)
    raw = json.dumps(header, allow_nan=False, separators=(",", ":")).encode()
    return struct.pack("<I", len(raw)) + raw + b"".join(b.tobytes() for b in buffers)


class Generator:
    """Seeded requests: ``next()`` is (frame bytes, the content's (F, J) or None, a label). A fault
    may leave the request acceptable (an unknown option, weight 10, rotations negated)."""

    def __init__(self, seed: int = 0):
        from core.retarget.presets import canonical_rig

        self.rng = np.random.default_rng(seed)
        rig = canonical_rig()
        self.rig = json.loads(rig.to_json())
        self.joints = rig.skeleton.num_joints
        self.offsets = rig.skeleton.offsets
        self.rest = rig.rest_rotations  # the Bandai zero pose is not a pose: sway about the rest pose
        self.count = 0
        self.faults = [getattr(self, name) for name in sorted(dir(self)) if name.startswith("fault_")]

    # --- a valid request ------------------------------------------------------------------

    def motion(self, frames: int, fps: float):
        """A synthetic take: a walk-like sway of every joint about its rest pose and a pelvis moving forward."""
        r = self.rng
        t = np.arange(frames)[:, None] / fps
        axis = r.normal(size=(1, self.joints, 3))
        axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
        angle = 0.3 * np.sin(2 * np.pi * r.uniform(0.5, 2.0) * t + r.uniform(0, 6.3, size=(1, self.joints)))
        sway = np.concatenate([np.cos(angle / 2)[..., None], np.sin(angle / 2)[..., None] * axis], axis=-1)
        rotations = quat_mul(self.rest, sway)
        translations = np.broadcast_to(self.offsets, (frames, self.joints, 3)).copy()
        translations[:, 0, 2] += 100.0 * t[:, 0]
        return rotations, translations

    def frames(self) -> int:
        return (
            int(np.exp(self.rng.uniform(0, np.log(600))))
            if self.rng.random() < 0.9
            else int(self.rng.integers(600, 4000))
        )

    def fps(self) -> float:
        r = self.rng.random()
        if r < 0.5:
            return float(self.rng.choice([24.0, 25.0, 29.97, 30.0, 60.0, 120.0]))
        if r < 0.8:
            return float(np.exp(self.rng.uniform(np.log(P.MIN_FPS), np.log(P.MAX_FPS))))  # the protocol's range
        return float(self.rng.choice([1e-300, 1e-3, 0.00999, 0.01, 0.1, 1.0, 999.999, 1000.0]))

    def request(self):
        motions, arrays = {}, {}
        keys = ["content", "reference"] + [f"reference:{g}" for g in GROUPS if self.rng.random() < 0.1]
        for key in keys:
            fps = self.fps() if self.rng.random() < 0.5 else 30.0
            rotations, translations = self.motion(self.frames(), fps)
            motions[key] = {"rig": copy.deepcopy(self.rig), "fps": fps}
            arrays[f"{key}.rotations"], arrays[f"{key}.translations"] = rotations, translations
        weights = {g: float(self.rng.choice([0.0, 0.5, 1.0, 2.0])) for g in GROUPS if self.rng.random() < 0.3}
        options = {}
        if self.rng.random() < 0.3:
            options["foot_cleanup"] = bool(self.rng.random() < 0.5)
        self.count += 1
        header = {"type": "stylize", "id": f"fuzz-{self.count}", "motions": motions, "weights": weights}
        return header | {"options": options}, arrays

    # --- faults (each changes the request in place and returns a label) -----------------------

    def _key(self, header):
        return str(self.rng.choice(sorted(header["motions"])))

    def _pick(self, values: list):
        return values[int(self.rng.integers(len(values)))]

    def _odd(self):
        return self._pick(ODD_VALUES)

    def fault_fps(self, header, arrays):
        key = self._key(header)
        header["motions"][key]["fps"] = self._pick([0, -30, 1000.001, 1e308, 1e-320, "30", None, 2**70])
        return "fps"

    def fault_field(self, header, arrays):
        field = str(self.rng.choice(["id", "motions", "weights", "options", "type"]))
        header[field] = self._odd()
        return f"field {field}"

    def fault_missing(self, header, arrays):
        where = self.rng.choice(["header", "motion", "array"])
        if where == "header":
            header.pop(str(self.rng.choice(["id", "motions", "weights", "options"])), None)
        elif where == "motion":
            header["motions"].pop(self._key(header))
        else:
            arrays.pop(str(self.rng.choice(sorted(arrays))))
        return f"missing {where}"

    def fault_values(self, header, arrays):
        name = str(self.rng.choice(sorted(arrays)))
        a = np.array(arrays[name], dtype=np.float64)
        if a.size:
            value = self.rng.choice([np.nan, np.inf, -np.inf, 1e30, 3e38, -3e38, 1e-40, 0.0, 1e7, 1e8])
            count = int(self.rng.integers(1, a.size + 1)) if self.rng.random() < 0.3 else 1
            a.reshape(-1)[self.rng.choice(a.size, count, replace=False)] = value
        arrays[name] = a
        return "values"

    def fault_scale(self, header, arrays):
        name = str(self.rng.choice(sorted(arrays)))
        arrays[name] = np.asarray(arrays[name]) * float(self.rng.choice([1e-30, 1e10, 1e30, -1.0, 0.0]))
        return "scale"

    def fault_shape(self, header, arrays):
        name = str(self.rng.choice(sorted(arrays)))
        a = np.asarray(arrays[name])
        r = int(self.rng.integers(5))
        arrays[name] = [a[:-1] if len(a) > 1 else a[:0], a[:, :-1], a[..., :-1], a.reshape(-1, a.shape[-1]), a[None]][r]
        return "shape"

    def fault_joints(self, header, arrays):
        key = self._key(header)
        extra = int(self.rng.choice([1, 50]))
        for name in (f"{key}.rotations", f"{key}.translations"):
            if name in arrays:
                a = np.asarray(arrays[name])
                arrays[name] = np.concatenate([a, np.repeat(a[:, :1], extra, axis=1)], axis=1)
        return "joints"

    def fault_weights(self, header, arrays):
        group = str(self.rng.choice(list(GROUPS) + ["tail", "", "root "]))
        header["weights"] = {group: self._pick([-1.0, 1e300, -1e300, 10.0, 10.001, 1e-300, 2**70, "1", None])}
        return "weights"

    def fault_options(self, header, arrays):
        key = str(
            self.rng.choice(["foot_cleanup", "contact_height", "contact_speed", "steps", "seed", "zz", "step_delay"])
        )
        header["options"] = {key: self._odd() if key != "step_delay" else float(self.rng.choice([-1.0, 0.0, 0.01]))}
        return "options"

    def fault_groups(self, header, arrays):
        key = str(self.rng.choice(["reference:tail", "reference:", "style", "reference:left_arm"]))
        source = self._key(header)
        header["motions"][key] = copy.deepcopy(header["motions"][source])
        for part in ("rotations", "translations"):
            if f"{source}.{part}" in arrays:
                arrays[f"{key}.{part}"] = arrays[f"{source}.{part}"]
        return "groups"

    def fault_rig(self, header, arrays):
        rig = header["motions"][self._key(header)]["rig"]
        r = int(self.rng.integers(9))
        if r == 0:
            rig.pop(str(self.rng.choice(sorted(rig))))
        elif r == 1:
            rig["skeleton"]["offsets"][int(self.rng.integers(self.joints))][1] = self.rng.choice([1e300, -1e300, 1e8])
        elif r == 2:
            rig["skeleton"]["parents"][int(self.rng.integers(1, self.joints))] = int(self.rng.choice([-2, 99, 5000]))
        elif r == 3:
            rig["mapping"][str(self.rng.choice(sorted(rig["mapping"])))] = "NoSuchBone"
        elif r == 4:
            rig["up_axis"] = self._odd()
        elif r == 5:
            rig["rest_rotations"] = self._pick(
                [[[0, 0, 0, 0]] * self.joints, [[1, 0, 0, 0]], [[1e300, 0, 0, 0]] * self.joints]
            )
        elif r == 6:
            rig["floor"] = self._odd()
        elif r == 7:
            rig["skeleton"]["names"][1] = rig["skeleton"]["names"][0]
        else:
            header["motions"][self._key(header)]["rig"] = self._pick(["{not json", "[]", '{"a": 1}', "x" * 1000])
        return f"rig {r}"

    def fault_type(self, header, arrays):
        header["type"] = str(self.rng.choice(["result", "progress", "zz", "STYLIZE"]))
        return "type"

    def next(self):
        header, arrays = self.request()
        labels = []
        for _ in range(int(self.rng.choice([0, 1, 1, 2, 3]))):
            try:
                labels.append(self._pick(self.faults)(header, arrays))
            except (AttributeError, IndexError, KeyError, TypeError, ValueError):
                pass  # an earlier fault took away what this one changes
        content = arrays.get("content.rotations")
        shape = None if content is None else tuple(np.shape(content)[:2])
        return _frame(header, arrays), shape, ",".join(labels) or "valid"


class Session:
    """One server process with a reader thread; ``ask(frame)`` is its final reply (header, arrays).
    Its log (errors only) goes to a temporary file, whose tail ``log_tail()`` returns."""

    def __init__(self, *args):
        args = args or ("--stylizer", "statistics")
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (the server's stderr for the session's life; close() closes it)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "core.server", "--device", "cpu", "--log-level", "ERROR", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            cwd=REPO_ROOT,
        )
        self.replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        P.write_message(self.proc.stdin, P.hello_request())
        hello, _ = self.final(120.0)
        assert hello["type"] == "hello", hello

    def _read(self):
        while True:
            try:
                self.replies.put(P.read_message(self.proc.stdout, types=P.REPLY_TYPES))
            except Exception as e:  # noqa: BLE001  end of stream or a corrupt reply: the caller fails on it
                self.replies.put((None, e))
                return

    def final(self, silence: float):
        """The next reply that is not progress or a heartbeat; queue.Empty when the server sends
        nothing at all for ``silence`` seconds (as the add-on's timeout: a long take that keeps
        reporting is working, not hung)."""
        while True:
            header, arrays = self.replies.get(timeout=silence)
            if header is None:
                raise AssertionError(f"the server's output ended or broke: {arrays!r} (exit {self.proc.poll()})")
            if header["type"] not in ("progress", "heartbeat"):
                return header, arrays

    def ask(self, frame: bytes, silence: float = 30.0):
        self.proc.stdin.write(frame)
        self.proc.stdin.flush()
        return self.final(silence)

    def log_tail(self, chars: int = 4000) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")[-chars:]

    def peak_rss(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))

    def close(self) -> int:
        P.write_message(self.proc.stdin, {"type": "shutdown"})
        self.proc.stdin.close()
        code = self.proc.wait(30)
        self.log.close()
        return code


def check_answer(header: dict, arrays: dict, shape) -> str:
    """The answer's kind ("result" or the error kind); raises AssertionError for a wrong answer:
    a result must have the content's frames and bones (the reader already refused NaN and inf)."""
    if header["type"] == "result":
        assert arrays["rotations"].shape[:2] == shape, f"result {arrays['rotations'].shape} for content {shape}"
        return "result"
    assert header["type"] == "error", header
    return header["kind"]


def run(count: int, seed: int = 0, server_args=(), progress=None) -> dict:
    """Send ``count`` fuzzed requests to one server; the figures (answered, kinds, peak RSS, wall time,
    the slowest request) or an AssertionError naming the request that broke a rule."""
    gen, session = Generator(seed), Session(*server_args)
    kinds, labels, slowest = Counter(), Counter(), (0.0, "")
    start = time.perf_counter()
    try:
        for i in range(count):
            frame, shape, label = gen.next()
            t = time.perf_counter()
            try:
                header, arrays = session.ask(frame)
            except (OSError, AssertionError, queue.Empty) as e:
                raise AssertionError(f"request {i} ({label}) was not answered: {e!r}\n{session.log_tail()}") from None
            try:
                kind = check_answer(header, arrays, shape)
            except AssertionError as e:
                raise AssertionError(f"request {i} ({label}): {e}") from None
            assert kind in ANSWER_KINDS, f"request {i} ({label}) got {kind}: {header.get('message')}"
            assert session.proc.poll() is None, f"the server exited after request {i} ({label})"
            kinds[kind] += 1
            labels[label.split(",")[0].split(" ")[0]] += 1
            slowest = max(slowest, (time.perf_counter() - t, label))
            if progress and (i + 1) % progress == 0:
                print(f"{i + 1} answered, {dict(kinds)}, peak RSS {session.peak_rss() / 1e6:.0f} MB", flush=True)
        peak = session.peak_rss()
    finally:
        try:
            code = session.close()
        except OSError:
            code = session.proc.wait(30)
    return {
        "requests": count,
        "answered": sum(kinds.values()),
        "kinds": dict(kinds),
        "faults": dict(labels),
        "peak_rss_mb": round(peak / 1e6, 1),
        "wall_s": round(time.perf_counter() - start, 1),
        "slowest_s": round(slowest[0], 2),
        "slowest": slowest[1],
        "exit": code,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--stylizer", default=None)
    which.add_argument("--config", default=None)
    args = parser.parse_args(argv)
    server_args = ("--config", args.config) if args.config else ("--stylizer", args.stylizer or "statistics")
    figures = run(args.count, args.seed, server_args, progress=max(args.count // 20, 1))
    print(json.dumps(figures, indent=1))
    return 0 if figures["peak_rss_mb"] * 1e6 <= MAX_RSS_BYTES and figures["exit"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
