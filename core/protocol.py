"""The wire protocol between the Blender add-on and the runtime server (DESIGN §2).

This one file is imported by both sides, so it uses only the standard library and numpy.

Frame (one message)::

    uint32 little-endian  N        length of the header in bytes (1 <= N <= max_header)
    N bytes               header   UTF-8 JSON object
    nbytes bytes          payload  the float32 little-endian buffers the header lists, concatenated

The header always holds ``type`` (a message type below), ``arrays`` (a list of
``{"name": str, "shape": [int, ...]}``, in payload order) and ``nbytes`` (the payload length, which
must equal 4 * the sum of the shapes' element counts and be <= max_payload). Array values must be
finite. JSON must not contain NaN/Infinity literals.

Requests (add-on -> server): ``hello`` {version}, ``stylize`` {id, motions, weights, options},
``cancel`` {id?}, ``shutdown``. Replies (server -> add-on): ``hello`` {version, device, stylizer,
config, pid}, ``progress`` {id, step, total, stage}, ``heartbeat`` {id, elapsed} (a running job
that has sent nothing for a while: it says the server is alive, and nothing else), ``result`` {id,
fps} + arrays ``rotations`` (F, J, 4) and ``translations`` (F, J, 3), ``error`` {kind, message,
traceback, id?}. Version 2 added ``heartbeat``: a version-1 client would refuse it, hence the bump.

Error kinds (``ERROR_KINDS``): ``protocol`` (a malformed frame), ``version`` (protocol version
mismatch at the hello), ``handshake`` (a request before the hello), ``config`` (the server's model
config or stylizer could not be loaded: the answer to the hello, after which the server exits),
``bad_request`` (a well-formed request the pipeline refuses), ``cancelled``, ``internal`` (a bug).

A stylize request's ``motions`` maps a motion key (``content``, ``reference``, or
``reference:<group>`` for a per-group reference) to ``{"rig": <Rig.to_json object>, "fps": float}``
with fps in [MIN_FPS, MAX_FPS] = [0.01, 1000] (the add-on sends the scene's rate over the key
spacing, so sparse linear keys legitimately give less than 1 fps: every 48 frames at 24 fps is
0.5 fps; keys 100 s apart are no animation, and a slower rate only multiplies the frames the
pipeline resamples to, which the server bounds anyway);
the arrays ``<key>.rotations`` (F, J, 4, local quaternions w x y z) and ``<key>.translations``
(F, J, 3, local translations) carry its animation.

Errors: every malformed frame raises ``ProtocolError``; ``error.in_sync`` tells whether the whole
frame was consumed (the stream can go on) or the stream position is lost (the reader must close);
``error.request_id`` is the id of a ``stylize`` frame that was consumed and had a usable one, so
the answer can name the request it refuses (the client is waiting on that id).
End of stream before the first byte of a frame raises ``Closed`` (a ProtocolError subclass, so a
plain ``except ProtocolError`` still catches it; catch ``Closed`` first to tell a clean close).
"""

from __future__ import annotations

import json
import math
import struct

import numpy as np

PROTOCOL_VERSION = 2
MAX_HEADER_BYTES = 1 << 20  # 1 MiB
MAX_PAYLOAD_BYTES = 512 << 20  # 512 MiB
MAX_ARRAYS = 64
MAX_NDIM = 8
DTYPE = np.dtype("<f4")
MIN_FPS, MAX_FPS = 0.01, 1000.0

REQUEST_TYPES = ("hello", "stylize", "cancel", "shutdown")
REPLY_TYPES = ("hello", "progress", "heartbeat", "result", "error")
MESSAGE_TYPES = tuple(dict.fromkeys(REQUEST_TYPES + REPLY_TYPES))
ERROR_KINDS = ("protocol", "version", "handshake", "config", "bad_request", "cancelled", "internal")
GROUPS = ("root", "torso", "left_arm", "right_arm", "left_leg", "right_leg")

_LENGTH = struct.Struct("<I")
_CHUNK = 16 << 20


class ProtocolError(Exception):
    """A malformed frame or message. ``in_sync``: the frame was consumed whole, so the next
    read starts at the next frame; otherwise the stream position is lost and must be closed."""

    def __init__(self, message: str, in_sync: bool = False):
        super().__init__(message)
        self.in_sync = in_sync
        self.request_id = None


class Closed(ProtocolError):
    """The stream ended cleanly, before the first byte of a frame."""

    def __init__(self, message: str = "stream closed"):
        super().__init__(message, in_sync=False)


# --- framing ----------------------------------------------------------------------------------


def _read_exact(stream, n: int, what: str) -> bytearray:
    """Exactly n bytes, read in chunks of at most 16 MiB so that a frame claiming a large
    payload and then ending early fails without allocating what it claimed."""
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(min(n - len(buf), _CHUNK))
        if not chunk:
            raise ProtocolError(f"truncated frame: {what} ended after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _array_specs(header: dict, max_payload: int) -> list[tuple[str, tuple[int, ...]]]:
    """The (name, shape) list of a parsed header, with its byte count checked (framing level)."""
    specs = header.get("arrays", [])
    if not isinstance(specs, list):
        raise ProtocolError("header field 'arrays' must be a list")
    if len(specs) > MAX_ARRAYS:
        raise ProtocolError(f"too many arrays: {len(specs)} > {MAX_ARRAYS}")
    out, names, total = [], set(), 0
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or set(spec) != {"name", "shape"}:
            raise ProtocolError(f"arrays[{i}] must be an object with exactly 'name' and 'shape'")
        name, shape = spec["name"], spec["shape"]
        if not isinstance(name, str) or not name or len(name) > 256:
            raise ProtocolError(f"arrays[{i}].name must be a non-empty string of at most 256 characters")
        if name in names:
            raise ProtocolError(f"array name {name!r} appears twice")
        names.add(name)
        if not isinstance(shape, list) or len(shape) > MAX_NDIM or not all(_is_int(d) and d >= 0 for d in shape):
            raise ProtocolError(f"arrays[{i}].shape must be a list of at most {MAX_NDIM} non-negative integers")
        count = 1
        for d in shape:
            count *= d
        total += count * DTYPE.itemsize
        if total > max_payload:
            raise ProtocolError(f"payload too large: more than {max_payload} bytes")
        out.append((name, tuple(shape)))
    nbytes = header.get("nbytes")
    if not _is_int(nbytes) or nbytes < 0:
        raise ProtocolError("header field 'nbytes' must be a non-negative integer")
    if nbytes != total:
        raise ProtocolError(f"shapes describe {total} bytes but the header says nbytes={nbytes}")
    return out


def read_message(
    stream, max_header: int = MAX_HEADER_BYTES, max_payload: int = MAX_PAYLOAD_BYTES, types=MESSAGE_TYPES
) -> tuple[dict, dict[str, np.ndarray]]:
    """Read one frame: (header, arrays). ``types``: the message types accepted here (a server
    passes REQUEST_TYPES, a client REPLY_TYPES). Raises Closed at a clean end of stream and
    ProtocolError for anything malformed."""
    first = stream.read(_LENGTH.size)
    if not first:
        raise Closed()
    if len(first) < _LENGTH.size:
        first = bytes(first) + bytes(_read_exact(stream, _LENGTH.size - len(first), "the length prefix"))
    (n,) = _LENGTH.unpack(first)
    if n == 0:
        raise ProtocolError("empty header")
    if n > max_header:
        raise ProtocolError(f"header too large: {n} bytes > {max_header}")
    raw = _read_exact(stream, n, "the header")
    try:
        header = json.loads(bytes(raw).decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ProtocolError(f"header is not valid UTF-8 JSON: {e}") from None
    if not isinstance(header, dict):
        raise ProtocolError("header must be a JSON object")
    specs = _array_specs(header, max_payload)
    payload = _read_exact(stream, header["nbytes"], "the payload") if header["nbytes"] else bytearray()
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for name, shape in specs:
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        arr = np.frombuffer(payload, dtype=DTYPE, count=count, offset=offset).reshape(shape)
        offset += count * DTYPE.itemsize
        arrays[name] = arr
    # The whole frame is consumed from here on: errors below leave the stream in sync.
    try:
        for name, arr in arrays.items():
            if arr.size and not np.isfinite(arr).all():
                raise ProtocolError(f"array {name!r} holds NaN or infinite values")
        validate_message(header, arrays, types)
    except ProtocolError as e:
        e.in_sync = True
        if header.get("type") == "stylize" and _id_ok(header.get("id")):
            e.request_id = header["id"]
        raise
    return header, arrays


def write_message(stream, header: dict, arrays: dict[str, np.ndarray] | None = None, validate: bool = True) -> None:
    """Write one frame. ``header`` holds the message fields (``arrays``/``nbytes`` are filled in);
    arrays are sent as little-endian float32 in the dict's order."""
    arrays = arrays or {}
    buffers, specs = [], []
    for name, value in arrays.items():
        arr = np.ascontiguousarray(value, dtype=DTYPE)
        if arr.size and not np.isfinite(arr).all():
            raise ProtocolError(f"array {name!r} holds NaN or infinite values")
        buffers.append(arr)
        specs.append({"name": name, "shape": list(arr.shape)})
    full = {k: v for k, v in header.items() if k not in ("arrays", "nbytes")}
    full["arrays"] = specs
    full["nbytes"] = sum(b.nbytes for b in buffers)
    if validate:
        validate_message(full, {s["name"]: b for s, b in zip(specs, buffers)}, MESSAGE_TYPES)
    try:
        raw = json.dumps(full, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise ProtocolError(f"header cannot be encoded as JSON: {e}") from None
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError(f"header too large: {len(raw)} bytes > {MAX_HEADER_BYTES}")
    stream.write(_LENGTH.pack(len(raw)) + raw)
    for b in buffers:
        if b.nbytes:
            stream.write(memoryview(b.reshape(-1)).cast("B"))
    stream.flush()


# --- message validation -----------------------------------------------------------------------


def _need(header: dict, key: str, check, what: str):
    if key not in header:
        raise ProtocolError(f"{header.get('type')} message needs field {key!r}")
    if not check(header[key]):
        raise ProtocolError(f"{header.get('type')} field {key!r} must be {what}")
    return header[key]


def _id_ok(v) -> bool:
    return (isinstance(v, str) and len(v) <= 256) or _is_int(v)


def _validate_stylize(header: dict, arrays: dict) -> None:
    _need(header, "id", _id_ok, "a string or an integer")
    motions = _need(header, "motions", lambda v: isinstance(v, dict), "an object")
    if "content" not in motions or "reference" not in motions:
        raise ProtocolError("stylize needs the motions 'content' and 'reference'")
    expected = set()
    for key, meta in motions.items():
        if key not in ("content", "reference") and not (key.startswith("reference:") and key[10:] in GROUPS):
            raise ProtocolError(f"unknown motion {key!r}: use content, reference or reference:<group> ({GROUPS})")
        if not isinstance(meta, dict) or not isinstance(meta.get("rig"), (dict, str)):
            raise ProtocolError(f"motion {key!r} needs a 'rig' (a rig description object)")
        fps = meta.get("fps")
        if not _is_number(fps) or not MIN_FPS <= fps <= MAX_FPS:
            raise ProtocolError(f"motion {key!r} needs 'fps', a number in [{MIN_FPS:g}, {MAX_FPS:g}]")
        rot, tr = arrays.get(f"{key}.rotations"), arrays.get(f"{key}.translations")
        if rot is None or tr is None:
            raise ProtocolError(f"motion {key!r} needs the arrays {key}.rotations and {key}.translations")
        if rot.ndim != 3 or rot.shape[2] != 4 or rot.shape[0] < 1 or rot.shape[1] < 1:
            raise ProtocolError(f"{key}.rotations must be (F, J, 4) with F, J >= 1, got {rot.shape}")
        if tr.shape != rot.shape[:2] + (3,):
            raise ProtocolError(f"{key}.translations must be {rot.shape[:2] + (3,)}, got {tr.shape}")
        expected |= {f"{key}.rotations", f"{key}.translations"}
    extra = sorted(set(arrays) - expected)
    if extra:
        raise ProtocolError(f"stylize: unexpected arrays {extra}")
    weights = header.get("weights", {})
    if not isinstance(weights, dict) or not all(g in GROUPS and _is_number(w) and w >= 0 for g, w in weights.items()):
        raise ProtocolError(f"stylize field 'weights' must map body groups {GROUPS} to numbers >= 0")
    if not isinstance(header.get("options", {}), dict):
        raise ProtocolError("stylize field 'options' must be an object")


def validate_message(header: dict, arrays: dict, types=MESSAGE_TYPES) -> None:
    """Check a message's type and fields; raises ProtocolError."""
    kind = header.get("type")
    if not isinstance(kind, str) or kind not in MESSAGE_TYPES:
        raise ProtocolError(f"unknown message type {kind!r}; known types are {MESSAGE_TYPES}")
    if kind not in types:
        raise ProtocolError(f"message type {kind!r} is not expected here (expected one of {tuple(types)})")
    if kind != "stylize" and kind != "result" and arrays:
        raise ProtocolError(f"{kind} messages carry no arrays")
    if kind == "hello":
        _need(header, "version", _is_int, "an integer")
    elif kind == "stylize":
        _validate_stylize(header, arrays)
    elif kind == "cancel":
        if "id" in header and header["id"] is not None and not _id_ok(header["id"]):
            raise ProtocolError("cancel field 'id' must be a string or an integer")
    elif kind == "progress":
        _need(header, "id", _id_ok, "a string or an integer")
        total = _need(header, "total", lambda v: _is_int(v) and v >= 1, "an integer >= 1")
        _need(header, "step", lambda v: _is_int(v) and 0 <= v <= total, f"an integer in [0, {total}]")
    elif kind == "heartbeat":
        _need(header, "id", _id_ok, "a string or an integer")
        _need(header, "elapsed", lambda v: _is_number(v) and v >= 0, "a number of seconds >= 0")
    elif kind == "result":
        _need(header, "id", _id_ok, "a string or an integer")
        _need(header, "fps", lambda v: _is_number(v) and v > 0, "a positive number")
        rot, tr = arrays.get("rotations"), arrays.get("translations")
        if rot is None or tr is None or rot.ndim != 3 or rot.shape[2] != 4 or tr.shape != rot.shape[:2] + (3,):
            raise ProtocolError("result needs arrays rotations (F, J, 4) and translations (F, J, 3)")
    elif kind == "error":
        _need(header, "kind", lambda v: v in ERROR_KINDS, f"one of {ERROR_KINDS}")
        _need(header, "message", lambda v: isinstance(v, str), "a string")
        if not isinstance(header.get("traceback", ""), str):
            raise ProtocolError("error field 'traceback' must be a string")


# --- message builders -------------------------------------------------------------------------


def hello_request(version: int = PROTOCOL_VERSION, **extra) -> dict:
    return {"type": "hello", "version": version, **extra}


def motion_entry(key: str, rig, fps: float, rotations, translations) -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata, arrays) of one motion of a stylize request. ``rig``: a Rig.to_json string or
    the object it encodes."""
    rig_obj = json.loads(rig) if isinstance(rig, str) else rig
    return {"rig": rig_obj, "fps": float(fps)}, {f"{key}.rotations": rotations, f"{key}.translations": translations}


def stylize_request(
    request_id, content: tuple, reference: tuple, group_references: dict | None = None, weights=None, options=None
) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, arrays) of a stylize request. ``content``, ``reference`` and the values of
    ``group_references`` are (rig, fps, rotations (F, J, 4), translations (F, J, 3))."""
    motions, arrays = {}, {}
    items = [("content", content), ("reference", reference)]
    items += [(f"reference:{g}", m) for g, m in (group_references or {}).items()]
    for key, (rig, fps, rot, tr) in items:
        motions[key], a = motion_entry(key, rig, fps, rot, tr)
        arrays.update(a)
    header = {"type": "stylize", "id": request_id, "motions": motions, "weights": dict(weights or {})}
    header["options"] = dict(options or {})
    return header, arrays


def error_reply(kind: str, message: str, traceback: str = "", request_id=None) -> dict:
    header = {"type": "error", "kind": kind, "message": message, "traceback": traceback}
    if request_id is not None:
        header["id"] = request_id
    return header
