"""BVH reading and writing (.bvh and .bvh.gz), any channel order, End Sites, any frame time.

Every problem with a file raises BVHError naming the file, the line and the problem, so a user
who feeds the add-on a broken export learns exactly what to fix. Frame times implying a rate
outside MIN_FPS..MAX_FPS (fps typed into the frame-time field) are refused the same way.

Encoding: a file is read as UTF-8 (a byte-order mark skipped, CRLF or CR line ends accepted) with
any other bytes, such as a Latin-1 export's bone names, kept as surrogate escapes; writing encodes
them back the same way, so bone names round-trip byte for byte whatever the exporter's encoding.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from dataclasses import dataclass

import numpy as np

from ..motion.motion import Motion
from ..motion.skeleton import POSITION_CHANNELS, ROTATION_CHANNELS, Skeleton
from ..ops.rotations import axis_quat, quat_mul, quat_to_euler
from . import atomic

_VALID_CHANNELS = {c.lower(): c for c in POSITION_CHANNELS + ROTATION_CHANNELS}
# Frame rates a take can have: below 1 fps the frame time was almost surely typed as a rate.
MIN_FPS, MAX_FPS = 1.0, 1000.0
ENCODING, ERRORS = "utf-8", "surrogateescape"
# The most text a file may hold (decompressed): parsing takes several times this in memory, and
# endless inputs (/dev/zero, a gzip bomb) stop here.
MAX_BYTES = 256 << 20


class BVHError(ValueError):
    """A BVH file could not be read: ``path``, ``line`` (1-based, or None) and ``problem``."""

    def __init__(self, path, line, problem):
        self.path, self.line, self.problem = str(path), line, problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


@dataclass
class _Lines:
    """The file's lines with a cursor, skipping blank lines, for the hierarchy parser."""

    path: str
    lines: list[str]
    pos: int = 0

    def next(self, expect: str) -> tuple[int, list[str]]:
        while self.pos < len(self.lines):
            self.pos += 1
            tokens = self.lines[self.pos - 1].split()
            if tokens:
                return self.pos, tokens
        raise BVHError(self.path, len(self.lines), f"file ends early: expected {expect}")


def read_bvh(path) -> Motion:
    """Read a .bvh or .bvh.gz file into a Motion (quaternions; positions in file units)."""
    path = os.fspath(path)
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as e:  # a gzip cut short or corrupted
        raise BVHError(path, None, f"cannot read file: {e}") from e
    if len(data) > MAX_BYTES:
        raise BVHError(path, None, f"file holds more than {MAX_BYTES >> 20} MiB of text; cut the take into parts")
    return parse_bvh(data.decode(ENCODING, ERRORS), path)


def parse_bvh(text: str, path: str = "<string>") -> Motion:
    """Parse BVH text; ``path`` is only used in error messages."""
    lines = _Lines(path, text.removeprefix("\ufeff").splitlines())
    lineno, tokens = lines.next("HIERARCHY")
    if tokens[0].upper() != "HIERARCHY":
        raise BVHError(path, lineno, f"expected HIERARCHY, found {tokens[0]!r}")
    skeleton = _parse_hierarchy(lines)
    return _parse_motion(lines, skeleton)


def _parse_hierarchy(lines: _Lines) -> Skeleton:
    path = lines.path
    names, parents, offsets, channels, end_sites = [], [], [], [], {}
    lineno, tokens = lines.next("ROOT")
    if tokens[0].upper() != "ROOT" or len(tokens) < 2:
        raise BVHError(path, lineno, "expected 'ROOT <name>'")
    stack = []  # joint index per open brace; None for an End Site
    pending = ("ROOT", " ".join(tokens[1:]), -1, lineno)
    while True:
        if pending is not None:
            kind, name, parent, decl_line = pending
            pending = None
            lineno, tokens = lines.next("'{'")
            if tokens != ["{"]:
                raise BVHError(path, lineno, f"expected '{{' after {kind} {name}, found {' '.join(tokens)!r}")
            lineno, tokens = lines.next("OFFSET")
            offset = _parse_offset(path, lineno, tokens)
            if kind == "End Site":
                end_sites[parent] = offset
                stack.append(None)
                continue
            if name in names:
                raise BVHError(path, decl_line, f"duplicate joint name {name!r}")
            lineno, tokens = lines.next("CHANNELS")
            names.append(name)
            parents.append(parent)
            offsets.append(offset)
            channels.append(_parse_channels(path, lineno, tokens))
            stack.append(len(names) - 1)
            continue
        lineno, tokens = lines.next("'}' or JOINT")
        head = tokens[0].upper()
        if head == "}":
            stack.pop()
            if not stack:
                break
        elif head == "JOINT" and len(tokens) >= 2:
            if stack[-1] is None:
                raise BVHError(path, lineno, "an End Site cannot have child joints")
            pending = ("JOINT", " ".join(tokens[1:]), stack[-1], lineno)
        elif head == "END" and len(tokens) >= 2 and tokens[1].upper() == "SITE":
            if stack[-1] is None:
                raise BVHError(path, lineno, "an End Site cannot have children")
            pending = ("End Site", "", stack[-1], lineno)
        else:
            raise BVHError(path, lineno, f"unexpected {' '.join(tokens)!r} in HIERARCHY")
    return Skeleton(tuple(names), tuple(parents), np.array(offsets), tuple(channels), end_sites)


def _parse_offset(path, lineno, tokens) -> np.ndarray:
    if tokens[0].upper() != "OFFSET" or len(tokens) != 4:
        raise BVHError(path, lineno, f"expected 'OFFSET x y z', found {' '.join(tokens)!r}")
    return _numbers(path, lineno, tokens[1:])


def _parse_channels(path, lineno, tokens) -> tuple[str, ...]:
    if tokens[0].upper() != "CHANNELS" or len(tokens) < 2:
        raise BVHError(path, lineno, f"expected 'CHANNELS n ...', found {' '.join(tokens)!r}")
    try:
        count = int(tokens[1])
    except ValueError:
        raise BVHError(path, lineno, f"channel count {tokens[1]!r} is not an integer") from None
    listed = tokens[2:]
    if count != len(listed):
        raise BVHError(path, lineno, f"CHANNELS says {count} channels but lists {len(listed)}")
    unknown = [c for c in listed if c.lower() not in _VALID_CHANNELS]
    if unknown:
        raise BVHError(path, lineno, f"unknown channel name {unknown[0]!r}")
    names = tuple(_VALID_CHANNELS[c.lower()] for c in listed)
    if len(set(names)) != len(names):
        raise BVHError(path, lineno, "a channel is listed twice")
    return names


def _numbers(path, lineno, tokens) -> np.ndarray:
    try:
        values = np.array([float(t) for t in tokens])
    except ValueError:
        bad = next(t for t in tokens if not _is_float(t))
        raise BVHError(path, lineno, f"non-numeric value {bad!r}") from None
    if not np.all(np.isfinite(values)):
        raise BVHError(path, lineno, "value is NaN or infinite")
    return values


def _is_float(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


def _parse_header_value(lines: _Lines, key: str) -> tuple[int, str]:
    lineno, tokens = lines.next(key)
    text = " ".join(tokens)
    if not text.lower().startswith(key.lower()):
        raise BVHError(lines.path, lineno, f"expected '{key} ...', found {text!r}")
    return lineno, text[len(key) :].strip()


def _parse_motion(lines: _Lines, skeleton: Skeleton) -> Motion:
    path = lines.path
    lineno, tokens = lines.next("MOTION")
    if tokens[0].upper() != "MOTION":
        raise BVHError(path, lineno, f"expected MOTION after the hierarchy, found {tokens[0]!r}")
    lineno, value = _parse_header_value(lines, "Frames:")
    try:
        num_frames = int(value)
    except ValueError:
        raise BVHError(path, lineno, f"frame count {value!r} is not an integer") from None
    if num_frames <= 0:
        raise BVHError(path, lineno, f"the file has {num_frames} frames; at least one is needed")
    lineno, value = _parse_header_value(lines, "Frame Time:")
    frame_time = _numbers(path, lineno, [value])[0] if value else 0.0
    if frame_time <= 0:
        raise BVHError(path, lineno, f"frame time must be positive, got {value!r}")
    if not 1.0 / MAX_FPS <= frame_time <= 1.0 / MIN_FPS:  # compared as times: 1 / 1e-320 overflows
        raise BVHError(
            path,
            lineno,
            f"Frame Time {value} is seconds per frame, a rate outside {MIN_FPS:g}-{MAX_FPS:g} fps "
            "(30 fps is Frame Time: 0.0333333)",
        )

    width = sum(len(c) for c in skeleton.channels)
    first = lines.pos
    rows = [i for i in range(first, len(lines.lines)) if lines.lines[i].strip()]
    if len(rows) != num_frames:
        # A frame line split or cut short also changes the count: name that line, not the file's end.
        _check_frame_lines(path, lines.lines, rows, width)
    if len(rows) < num_frames:
        raise BVHError(path, len(lines.lines), f"file declares {num_frames} frames but holds only {len(rows)}")
    if len(rows) > num_frames:
        raise BVHError(path, rows[num_frames] + 1, f"data beyond the {num_frames} declared frames")
    block = " ".join(lines.lines[i] for i in rows)
    try:
        values = np.array(block.split(), dtype=np.float64)
    except ValueError:
        values = None
    if values is None or values.size != num_frames * width or not np.all(np.isfinite(values)):
        _raise_bad_frame(path, lines.lines, rows, width)
    data = values.reshape(num_frames, width)
    return _channels_to_motion(skeleton, data, frame_rate(frame_time))


def frame_rate(frame_time: float) -> float:
    """Frames per second for a BVH frame time, snapped to the nearest whole rate when the file
    merely rounded it (0.0333333 s is 30 fps, not 30.00003), so resampling stays frame-exact."""
    fps = 1.0 / frame_time
    whole = round(fps)
    return float(whole) if whole > 0 and abs(fps - whole) <= 1e-4 * whole else fps


def _raise_bad_frame(path, all_lines, rows, width):
    """Slow path, only for broken files: find the first bad frame line and say what is wrong."""
    _check_frame_lines(path, all_lines, rows, width)
    raise BVHError(path, None, "frame data could not be read")


def _check_frame_lines(path, all_lines, rows, width):
    """Raise for the first frame line with the wrong number of values or a bad value."""
    for i in rows:
        tokens = all_lines[i].split()
        if len(tokens) != width:
            raise BVHError(path, i + 1, f"frame line has {len(tokens)} values, expected {width}")
        _numbers(path, i + 1, tokens)


def _channels_to_motion(skeleton: Skeleton, data: np.ndarray, fps: float) -> Motion:
    num_frames = data.shape[0]
    rotations = np.empty((num_frames, skeleton.num_joints, 4))
    positions = np.broadcast_to(skeleton.offsets, (num_frames, skeleton.num_joints, 3)).copy()
    column = 0
    for j, chans in enumerate(skeleton.channels):
        q = np.zeros((num_frames, 4))
        q[:, 0] = 1.0
        for c in chans:
            axis = "xyz".index(c[0].lower())
            if c in POSITION_CHANNELS:
                positions[:, j, axis] = data[:, column]
            else:
                q = quat_mul(q, axis_quat(c[0], np.radians(data[:, column])))
            column += 1
        rotations[:, j] = q
    return Motion(skeleton, rotations, positions, fps)


def file_order(skeleton: Skeleton) -> list[int]:
    """The joints depth-first from the root, the order a BVH file lists them and their channels in
    (a skeleton's own order need only put parents first)."""
    roots = [j for j, p in enumerate(skeleton.parents) if p < 0]
    if len(roots) != 1:
        raise ValueError(f"BVH needs exactly one root joint; this skeleton has {len(roots)}")
    children: list[list[int]] = [[] for _ in skeleton.parents]
    for j, p in enumerate(skeleton.parents):
        if p >= 0:
            children[p].append(j)
    order, stack = [], roots
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children[j]))
    return order


def motion_to_channels(motion: Motion) -> np.ndarray:
    """The (F, channels) table a BVH file stores: joints in file_order, rotations in degrees in each
    joint's order."""
    skeleton = motion.skeleton
    columns = []
    for j in file_order(skeleton):
        chans = skeleton.channels[j]
        order = skeleton.rotation_order(j)
        euler = np.degrees(quat_to_euler(motion.rotations[:, j], order))
        for c in chans:
            axis = "xyz".index(c[0].lower())
            if c in POSITION_CHANNELS:
                columns.append(motion.positions[:, j, axis])
            else:
                columns.append(euler[:, order.index(c[0].upper())])
    return np.stack(columns, -1) if columns else np.zeros((motion.num_frames, 0))


def format_bvh(motion: Motion) -> str:
    """BVH text for the motion, with enough digits that reading it back loses < 1e-6."""
    skeleton = motion.skeleton
    out = io.StringIO()
    out.write("HIERARCHY\n")
    open_joints: list[int] = []  # the joints whose braces are open, root first

    def close() -> None:
        j = open_joints.pop()
        pad = "\t" * len(open_joints)
        if j in skeleton.end_sites:
            out.write(f"{pad}\tEnd Site\n{pad}\t{{\n{pad}\t\tOFFSET {_fmt(skeleton.end_sites[j])}\n{pad}\t}}\n")
        out.write(f"{pad}}}\n")

    for j in file_order(skeleton):
        while open_joints and open_joints[-1] != skeleton.parents[j]:
            close()
        pad = "\t" * len(open_joints)
        keyword = "ROOT" if skeleton.parents[j] < 0 else "JOINT"
        out.write(f"{pad}{keyword} {skeleton.names[j]}\n{pad}{{\n")
        out.write(f"{pad}\tOFFSET {_fmt(skeleton.offsets[j])}\n")
        chans = skeleton.channels[j]
        out.write(f"{pad}\tCHANNELS {len(chans)}{''.join(' ' + c for c in chans)}\n")
        open_joints.append(j)
    while open_joints:
        close()
    out.write(f"MOTION\nFrames: {motion.num_frames}\nFrame Time: {1.0 / motion.fps:.10g}\n")
    np.savetxt(out, motion_to_channels(motion), fmt="%.10g", delimiter=" ")
    return out.getvalue()


def _fmt(values) -> str:
    return " ".join(f"{v:.10g}" for v in values)


def write_bvh(motion: Motion, path) -> None:
    """Write the motion as .bvh, or gzip-compressed when the path ends in .gz, atomically (a failed
    write leaves any file at ``path`` as it was)."""
    path = os.fspath(path)
    data = format_bvh(motion).encode(ENCODING, ERRORS)
    atomic.write_bytes(path, gzip.compress(data, mtime=0) if path.endswith(".gz") else data)
