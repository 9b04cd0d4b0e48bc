"""core.protocol: round trips of every message type, every malformed case, and fuzzing."""

from __future__ import annotations

import io
import json
import struct
import time

import numpy as np
import pytest

from core import protocol as P
from core.retarget.presets import canonical_rig


def _frame(header: dict, payload: bytes = b"", raw_header: bytes | None = None) -> bytes:
    raw = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<I", len(raw)) + raw + payload


def _roundtrip(header, arrays=None, types=P.MESSAGE_TYPES):
    buf = io.BytesIO()
    P.write_message(buf, header, arrays)
    buf.seek(0)
    out = P.read_message(buf, types=types)
    assert buf.read() == b""  # consumed exactly one frame
    return out


def _stylize(frames=5, joints=22, groups=("left_arm",)):
    rng = np.random.default_rng(0)
    rig = canonical_rig().to_json()

    def motion():
        return rig, 30.0, rng.normal(size=(frames, joints, 4)), rng.normal(size=(frames, joints, 3))

    return P.stylize_request(
        "job-1", motion(), motion(), {g: motion() for g in groups}, {"root": 0.0, "left_arm": 1.5}, {"seed": 3}
    )


def test_roundtrip_every_message_type():
    rng = np.random.default_rng(1)
    rot, tr = rng.normal(size=(7, 3, 4)), rng.normal(size=(7, 3, 3))
    messages = [
        (P.hello_request(), None),
        ({"type": "hello", "version": P.PROTOCOL_VERSION, "device": "cpu", "stylizer": "statistics"}, None),
        (*_stylize(),),
        ({"type": "cancel", "id": "job-1"}, None),
        ({"type": "cancel"}, None),
        ({"type": "shutdown"}, None),
        ({"type": "progress", "id": 4, "step": 2, "total": 5, "stage": "stylize"}, None),
        ({"type": "result", "id": 4, "fps": 24.0}, {"rotations": rot, "translations": tr}),
        (P.error_reply("bad_request", "no", "Traceback ...", "job-1"), None),
    ]
    for header, arrays in messages:
        got, got_arrays = _roundtrip(header, arrays)
        for k, v in header.items():
            assert got[k] == v
        assert set(got_arrays) == set(arrays or {})
        for k, v in (arrays or {}).items():
            assert got_arrays[k].dtype == np.float32 and got_arrays[k].shape == np.shape(v)
            np.testing.assert_array_equal(got_arrays[k], np.asarray(v, dtype=np.float32))


def test_many_frames_in_one_stream_and_clean_close():
    buf = io.BytesIO()
    header, arrays = _stylize()
    for _ in range(3):
        P.write_message(buf, header, arrays)
        P.write_message(buf, {"type": "shutdown"})
    buf.seek(0)
    for _ in range(3):
        assert P.read_message(buf)[0]["type"] == "stylize"
        assert P.read_message(buf)[0]["type"] == "shutdown"
    with pytest.raises(P.Closed):
        P.read_message(buf)


def test_zero_size_arrays_and_scalars():
    header = {"type": "result", "id": 1, "fps": 30.0}
    _, arrays = _roundtrip(header, {"rotations": np.zeros((0, 2, 4)), "translations": np.zeros((0, 2, 3))})
    assert arrays["rotations"].shape == (0, 2, 4)


OK_HEADER = {"type": "shutdown", "arrays": [], "nbytes": 0}


@pytest.mark.parametrize(
    "data, match",
    [
        (b"\x05\x00", "truncated"),  # length prefix cut
        (struct.pack("<I", 100) + b"{}", "truncated"),  # header cut
        (struct.pack("<I", 0), "empty header"),
        (struct.pack("<I", (1 << 20) + 1) + b"x" * 10, "header too large"),
        (_frame({}, raw_header=b"{not json"), "not valid UTF-8 JSON"),
        (_frame({}, raw_header=b"\xff\xfe{}"), "not valid UTF-8 JSON"),
        (_frame({}, raw_header=b'{"type": "shutdown", "arrays": [], "nbytes": NaN}'), "not valid"),
        (_frame({}, raw_header=b"[1, 2]"), "JSON object"),
        (_frame({"type": "shutdown", "arrays": [], "nbytes": 0.5}), "nbytes"),
        (_frame({"type": "shutdown", "arrays": []}), "nbytes"),
        (_frame({"type": "shutdown", "arrays": {}, "nbytes": 0}), "must be a list"),
        (_frame({"type": "result", "arrays": [{"name": "a", "shape": [2]}], "nbytes": 12}, b"\0" * 12), "describe 8"),
        (_frame({"type": "result", "arrays": [{"name": "a", "shape": [2]}], "nbytes": 8}, b"\0" * 4), "truncated"),
        (_frame({"type": "result", "arrays": [{"name": "a", "shape": [1 << 28]}], "nbytes": 1 << 30}), "too large"),
        (_frame({"type": "result", "arrays": [{"name": "a", "shape": [-1]}], "nbytes": 0}), "non-negative"),
        (_frame({"type": "result", "arrays": [{"name": "a", "shape": [True]}], "nbytes": 4}), "non-negative"),
        (_frame({"type": "result", "arrays": [{"name": "", "shape": []}], "nbytes": 4}), "name"),
        (
            _frame({"type": "x", "arrays": [{"name": "a", "shape": []}, {"name": "a", "shape": []}], "nbytes": 8}),
            "twice",
        ),
        (_frame({"type": "launch", "arrays": [], "nbytes": 0}), "unknown message type"),
        (_frame({"arrays": [], "nbytes": 0}), "unknown message type"),
        (_frame({"type": "hello", "arrays": [], "nbytes": 0}), "version"),
        (_frame({"type": "hello", "version": "1", "arrays": [], "nbytes": 0}), "version"),
        (_frame({"type": "shutdown", "arrays": [{"name": "a", "shape": [1]}], "nbytes": 4}, b"\0" * 4), "no arrays"),
        (
            _frame(
                {"type": "result", "id": 1, "fps": 30, "arrays": [{"name": "a", "shape": [1]}], "nbytes": 4},
                struct.pack("<f", float("nan")),
            ),
            "NaN",
        ),
        (
            _frame(
                {"type": "result", "id": 1, "fps": 30, "arrays": [{"name": "a", "shape": [1]}], "nbytes": 4},
                struct.pack("<f", float("inf")),
            ),
            "NaN",
        ),
        (_frame({"type": "progress", "id": 1, "step": 6, "total": 5, "arrays": [], "nbytes": 0}), "step"),
        (_frame({"type": "error", "kind": "oops", "message": "m", "arrays": [], "nbytes": 0}), "kind"),
        (_frame({"type": "error", "kind": "internal", "message": 3, "arrays": [], "nbytes": 0}), "message"),
        (_frame({"type": "cancel", "id": [1], "arrays": [], "nbytes": 0}), "id"),
    ],
)
def test_malformed_frames_raise_protocol_error(data, match):
    with pytest.raises(P.ProtocolError, match=match) as info:
        P.read_message(io.BytesIO(data))
    assert not isinstance(info.value, P.Closed)


def _stylize_frame(mutate_header=None, mutate_arrays=None) -> bytes:
    header, arrays = _stylize(frames=3)
    arrays = {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}
    if mutate_arrays:
        mutate_arrays(arrays)
    header = dict(header, arrays=[{"name": k, "shape": list(v.shape)} for k, v in arrays.items()])
    header["nbytes"] = sum(v.nbytes for v in arrays.values())
    if mutate_header:
        mutate_header(header)
    return _frame(header, b"".join(v.tobytes() for v in arrays.values()))


def _drop(key):
    return lambda d: d.pop(key)


@pytest.mark.parametrize(
    "mutate_header, mutate_arrays, match",
    [
        (lambda h: h["motions"].pop("reference"), None, "needs the motions"),
        (lambda h: h["motions"].update({"style": h["motions"]["content"]}), None, "unknown motion"),
        (lambda h: h["motions"].update({"reference:tail": h["motions"]["content"]}), None, "unknown motion"),
        (lambda h: h["motions"]["content"].update(fps=-1), None, "fps"),
        (lambda h: h["motions"]["content"].update(fps="30"), None, "fps"),
        (lambda h: h["motions"]["content"].pop("rig"), None, "rig"),
        (lambda h: h.update(weights={"tail": 1}), None, "weights"),
        (lambda h: h.update(weights={"root": -1}), None, "weights"),
        (lambda h: h.update(weights={"root": True}), None, "weights"),
        (lambda h: h.update(options=[1]), None, "options"),
        (_drop("id"), None, "'id'"),
        (None, _drop("content.translations"), "needs the arrays"),
        (None, lambda a: a.update({"extra": np.zeros(2, np.float32)}), "unexpected arrays"),
        (None, lambda a: a.update({"content.rotations": np.zeros((3, 22, 3), np.float32)}), r"\(F, J, 4\)"),
        (None, lambda a: a.update({"content.translations": np.zeros((3, 21, 3), np.float32)}), "translations must"),
        (None, lambda a: a.update({"content.rotations": np.zeros((0, 22, 4), np.float32)}), "F, J >= 1"),
    ],
)
def test_malformed_stylize_requests(mutate_header, mutate_arrays, match):
    data = _stylize_frame(mutate_header, mutate_arrays)
    stream = io.BytesIO(data + _frame(OK_HEADER))
    with pytest.raises(P.ProtocolError, match=match) as info:
        P.read_message(stream)
    assert info.value.in_sync  # the frame was consumed whole: the next one reads fine
    assert P.read_message(stream)[0]["type"] == "shutdown"


def test_request_and_reply_types_are_kept_apart():
    buf = io.BytesIO()
    P.write_message(buf, {"type": "progress", "id": 1, "step": 0, "total": 1})
    buf.seek(0)
    with pytest.raises(P.ProtocolError, match="not expected"):
        P.read_message(buf, types=P.REQUEST_TYPES)


def test_writer_refuses_bad_messages():
    with pytest.raises(P.ProtocolError, match="NaN"):
        P.write_message(io.BytesIO(), {"type": "result", "id": 1, "fps": 30}, {"rotations": np.array([np.nan])})
    with pytest.raises(P.ProtocolError, match="unknown message type"):
        P.write_message(io.BytesIO(), {"type": "nope"})
    with pytest.raises(P.ProtocolError):
        P.write_message(io.BytesIO(), {"type": "hello", "version": 1, "x": float("inf")})


def test_configurable_limits():
    buf = io.BytesIO()
    P.write_message(
        buf,
        {"type": "result", "id": 1, "fps": 30.0},
        {"rotations": np.zeros((10, 2, 4)), "translations": np.zeros((10, 2, 3))},
    )
    data = buf.getvalue()
    with pytest.raises(P.ProtocolError, match="payload too large"):
        P.read_message(io.BytesIO(data), max_payload=200)
    with pytest.raises(P.ProtocolError, match="header too large"):
        P.read_message(io.BytesIO(data), max_header=20)
    assert P.read_message(io.BytesIO(data), max_payload=560)[0]["type"] == "result"


def _random_frame(rng: np.random.Generator, valid: list[bytes], extend_runnable: bool = True) -> bytes:
    """One fuzz frame: random bytes, a valid frame truncated / bit-flipped / extended, a random
    JSON header, or a frame whose length or nbytes claims far too much. ``extend_runnable``: False
    extends only the valid frames that are not a stylize request (valid[0]), so that a server fed
    these frames runs the stylize pipeline only for the bit-flipped requests that stay valid."""
    kind = rng.integers(0, 7)
    base = valid[rng.integers(len(valid))]
    if kind == 3 and not extend_runnable:
        base = valid[rng.integers(1, len(valid))]
    if kind == 0:
        return rng.bytes(int(rng.integers(0, 64)))
    if kind == 1:
        return base[: int(rng.integers(0, len(base)))]
    if kind == 2:
        data = bytearray(base)
        for _ in range(int(rng.integers(1, 6))):
            data[int(rng.integers(len(data)))] = int(rng.integers(256))
        return bytes(data)
    if kind == 3:
        return base + rng.bytes(int(rng.integers(1, 32)))
    if kind == 4:  # a huge declared header length
        return struct.pack("<I", int(rng.integers(1 << 20, 1 << 32))) + rng.bytes(16)
    if kind == 5:  # a huge declared payload that never comes
        n = int(rng.integers(1, 1 << 27))
        header = {"type": "result", "id": 1, "fps": 30, "arrays": [{"name": "a", "shape": [n]}], "nbytes": 4 * n}
        return _frame(header, rng.bytes(int(rng.integers(0, 64))))
    header = {"type": str(rng.choice(list(P.MESSAGE_TYPES) + ["zz"])), "arrays": [], "nbytes": 0}
    for key in rng.choice(["id", "version", "step", "total", "kind", "message", "fps"], size=int(rng.integers(0, 4))):
        header[str(key)] = [1, "x", None, 2.5, -1, [], {}][int(rng.integers(7))]
    return _frame(header)


def fuzz_frames(count: int, seed: int, extend_runnable: bool = True) -> list[bytes]:
    """``count`` fuzz frames (``_random_frame``), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    header, arrays = _stylize(frames=2)
    valid = []
    for h, a in [
        (header, arrays),
        ({"type": "shutdown"}, None),
        (P.hello_request(), None),
        ({"type": "cancel", "id": 3}, None),
    ]:
        buf = io.BytesIO()
        P.write_message(buf, h, a)
        valid.append(buf.getvalue())
    return [_random_frame(rng, valid, extend_runnable) for _ in range(count)]


def test_fuzz_read_message_never_hangs():
    start = time.perf_counter()
    outcomes = {"valid": 0, "error": 0, "closed": 0}
    for data in fuzz_frames(12_000, seed=1234):
        t0 = time.perf_counter()
        try:
            header, arrays = P.read_message(io.BytesIO(data))
        except P.Closed:
            outcomes["closed"] += 1
        except P.ProtocolError:
            outcomes["error"] += 1
        else:
            P.validate_message(header, arrays)
            outcomes["valid"] += 1
        assert time.perf_counter() - t0 < 2.0
    assert sum(outcomes.values()) == 12_000
    assert outcomes["error"] > 5_000 and outcomes["valid"] > 100, outcomes
    assert time.perf_counter() - start < 40


def test_protocol_imports_only_stdlib_and_numpy():
    import ast
    import sys
    from pathlib import Path

    tree = ast.parse(Path(P.__file__).read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add((node.module or "").split(".")[0])
    assert modules - {"__future__", "numpy"} <= set(sys.stdlib_module_names), modules
