"""BVH files as users bring them (byte-order marks, CRLF, non-ASCII bone names in any encoding,
absurd frame times, broken bytes) and atomic writes: whatever the input, read_bvh returns a motion
or raises BVHError, and a failed write_bvh leaves the file at its path as it was."""

from __future__ import annotations

import errno
import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

from core.io import atomic
from core.io.bvh import BVHError, format_bvh, parse_bvh, read_bvh, write_bvh
from core.motion.motion import Motion
from core.motion.skeleton import Skeleton
from tests.conftest import REPO_ROOT, bandai_clip
from tests.test_bvh_io import assert_same_motion

CLIP = "dataset-1_walk_normal_001.bvh"


@pytest.fixture(scope="module")
def clip_bytes(data_root) -> bytes:
    return bandai_clip(CLIP).read_bytes()


def _renamed(data: bytes, names: dict[str, bytes]) -> bytes:
    """The file's bytes with whole bone names replaced (``JOINT Hips`` -> ``JOINT <bytes>``)."""
    for old, new in names.items():
        data = data.replace(f"JOINT {old}\n".encode(), b"JOINT " + new + b"\n")
        data = data.replace(f"JOINT {old}\r\n".encode(), b"JOINT " + new + b"\r\n")
    return data


def _files(tmp_path) -> list[str]:
    return sorted(os.listdir(tmp_path))


# ---------------------------------------------------------------- encodings and line ends


def test_byte_order_mark_and_crlf_are_accepted(tmp_path, clip_bytes):
    plain = read_bvh(bandai_clip(CLIP))
    lf = clip_bytes.replace(b"\r\n", b"\n")
    for name, data in (
        ("bom.bvh", b"\xef\xbb\xbf" + lf),
        ("crlf.bvh", lf.replace(b"\n", b"\r\n")),
        ("bom_crlf.bvh.gz", gzip.compress(b"\xef\xbb\xbf" + lf.replace(b"\n", b"\r\n"))),
        ("cr.bvh", lf.replace(b"\n", b"\r")),
    ):
        (tmp_path / name).write_bytes(data)
        assert_same_motion(read_bvh(tmp_path / name), plain, tol=0)


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
@pytest.mark.parametrize("suffix", [".bvh", ".bvh.gz"])
def test_non_ascii_bone_names_round_trip_byte_exact(tmp_path, clip_bytes, encoding, suffix):
    """Bone names keep their bytes through read_bvh -> write_bvh in UTF-8 and Latin-1 files alike
    (and a Latin-1 byte that is not UTF-8 does not turn into U+FFFD)."""
    names = {"Spine": "Wirbelsäule", "Head": "Kopf_é", "Toes_L": "Zehen_L_ß", "Hand_R": "Hånd_R"}
    encoded = {old: new.encode(encoding) for old, new in names.items()}
    source = tmp_path / f"source{suffix}"
    data = _renamed(clip_bytes, encoded)
    source.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    motion = read_bvh(source)
    out = tmp_path / f"out{suffix}"
    write_bvh(motion, out)
    written = gzip.decompress(out.read_bytes()) if suffix.endswith(".gz") else out.read_bytes()
    for new in encoded.values():
        assert b"JOINT " + new + b"\n" in written
    assert b"\xef\xbf\xbd" not in written  # no replacement character
    again = read_bvh(out)
    assert again.skeleton.names == motion.skeleton.names
    assert_same_motion(again, motion)
    write_bvh(again, tmp_path / f"again{suffix}")
    assert (tmp_path / f"again{suffix}").read_bytes() == out.read_bytes()  # and stable from then on


# ---------------------------------------------------------------- joint order


def _permuted(motion: Motion, rng: np.random.Generator) -> Motion:
    """The motion on the same skeleton with its joints in a random parents-first order (a
    topological order picked at random from the joints whose parent is already placed)."""
    sk = motion.skeleton
    order, ready = [], [j for j, p in enumerate(sk.parents) if p < 0]
    while ready:
        j = ready.pop(int(rng.integers(len(ready))))
        order.append(j)
        ready += sk.children(j)
    new = {old: i for i, old in enumerate(order)}
    skeleton = Skeleton(
        tuple(sk.names[j] for j in order),
        tuple(new[sk.parents[j]] if sk.parents[j] >= 0 else -1 for j in order),
        sk.offsets[order],
        tuple(sk.channels[j] for j in order),
        {new[j]: o for j, o in sk.end_sites.items()},
    )
    return Motion(skeleton, motion.rotations[:, order], motion.positions[:, order], motion.fps)


def _by_name(motion: Motion) -> dict:
    sk = motion.skeleton
    return {
        name: (
            sk.names[sk.parents[j]] if sk.parents[j] >= 0 else None,
            sk.channels[j],
            sk.offsets[j],
            sk.end_sites.get(j),
            motion.rotations[:, j] * np.sign(motion.rotations[:, j, :1] + 1e-12),  # q and -q alike
            motion.positions[:, j],
        )
        for j, name in enumerate(sk.names)
    }


@pytest.mark.parametrize("clip", [CLIP, "dataset-2_run_youthful_010.bvh.gz"])
def test_any_parents_first_joint_order_writes_each_joints_channels(tmp_path, data_root, clip):
    """Property: for random parents-first orders of a real skeleton, write -> read gives every joint
    (by name) its own parent, channels, offsets, End Site, rotations and positions."""
    motion = read_bvh(bandai_clip(clip))
    expected = _by_name(motion)
    rng = np.random.default_rng(14)
    depth_first = 0
    for trial in range(12):
        permuted = _permuted(motion, rng)
        depth_first += permuted.skeleton.names == motion.skeleton.names
        write_bvh(permuted, tmp_path / f"p{trial}.bvh")
        back = _by_name(read_bvh(tmp_path / f"p{trial}.bvh"))
        assert back.keys() == expected.keys()
        for name, (parent, chans, offset, end, rot, pos) in expected.items():
            b_parent, b_chans, b_offset, b_end, b_rot, b_pos = back[name]
            assert (b_parent, b_chans) == (parent, chans), name
            np.testing.assert_allclose(b_offset, offset, atol=1e-6)
            assert (b_end is None) == (end is None), name
            if end is not None:
                np.testing.assert_allclose(b_end, end, atol=1e-6)
            np.testing.assert_allclose(b_rot, rot, atol=1e-6, err_msg=name)
            np.testing.assert_allclose(b_pos, pos, atol=1e-6, err_msg=name)
    assert depth_first < 12  # the trials did leave depth-first order


def test_deep_chain_writes_without_recursion_limit(tmp_path):
    """A 5000-joint chain (a rope, a tail) reads and writes: nothing recurses per joint."""
    count = 5000
    names, parents = tuple(f"b{j}" for j in range(count)), tuple(range(-1, count - 1))
    skeleton = Skeleton(names, parents, np.tile([0.0, 1.0, 0.0], (count, 1)))
    motion = Motion.rest(skeleton, num_frames=2)
    write_bvh(motion, tmp_path / "chain.bvh")
    assert read_bvh(tmp_path / "chain.bvh").skeleton.parents == skeleton.parents


# ---------------------------------------------------------------- absurd takes


def _with_frame_time(data: bytes, value: str) -> bytes:
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    i = next(k for k, line in enumerate(lines) if line.startswith(b"Frame Time:"))
    lines[i] = f"Frame Time: {value}".encode()
    return b"\n".join(lines)


@pytest.mark.parametrize("value", ["30", "120", "1.5", "0.0001", "1e-300", "5e-324"])
def test_absurd_frame_time_is_refused_naming_file_and_line(tmp_path, clip_bytes, value):
    """fps typed into the frame-time field (30 -> 0.033 fps), or a rate above 1000 fps."""
    path = tmp_path / "take.bvh"
    path.write_bytes(_with_frame_time(clip_bytes, value))
    with pytest.raises(BVHError) as e:
        read_bvh(path)
    assert e.value.path == str(path) and e.value.line is not None
    assert "seconds per frame" in str(e.value) and "1-1000 fps" in str(e.value)


@pytest.mark.parametrize("value", ["1", "0.001", "0.0083333"])
def test_sane_frame_times_at_the_range_ends_are_read(tmp_path, clip_bytes, value):
    path = tmp_path / "take.bvh"
    path.write_bytes(_with_frame_time(clip_bytes, value))
    assert read_bvh(path).num_frames > 0


# ---------------------------------------------------------------- fuzzing


def _small_clip(clip_bytes: bytes, frames: int = 6) -> bytes:
    text = clip_bytes.decode().replace("\r\n", "\n")
    head, _, rest = text.partition("MOTION\n")
    rows = [r for r in rest.split("\n")[2:] if r.strip()][:frames]
    return f"{head}MOTION\nFrames: {frames}\nFrame Time: 0.0333333\n{chr(10).join(rows)}\n".encode()


def _read_or_bvherror(data: bytes, path) -> None:
    path.write_bytes(data)
    try:
        motion = read_bvh(path)
    except BVHError as e:
        assert e.path == str(path)
        return
    assert np.all(np.isfinite(motion.rotations)) and np.all(np.isfinite(motion.positions))
    assert 1 <= motion.fps <= 1000


def test_fuzzed_files_give_a_motion_or_bvherror(tmp_path, clip_bytes):
    """Truncations, flipped bytes, inserted garbage: never an exception other than BVHError."""
    base = _small_clip(clip_bytes)
    rng = np.random.default_rng(1414)
    special = [0, 0x0D, 0x20, 0x7B, 0x7D, 0x2D, 0x2E, 0x65, 0xFF, 0xC3]  # NUL, CR, space, braces, -.e, non-UTF-8
    path = tmp_path / "fuzz.bvh"
    for cut in rng.integers(0, len(base), 60):
        _read_or_bvherror(base[:cut], path)
    for _ in range(150):
        data = bytearray(base)
        for at in rng.integers(0, len(data), int(rng.integers(1, 4))):
            data[at] = int(rng.choice([*special, int(rng.integers(256))]))
        _read_or_bvherror(bytes(data), path)
    for data in (
        b"",
        b"\xef\xbb\xbf",
        b"\x00" * 64,
        b"\xff\xfe" + base,  # UTF-16 BOM
        base.replace(b"Frames: 6", b"Frames: 99999999999999999999"),
        base.replace(b"Frames: 6", b"Frames: -3"),
        base.replace(b"CHANNELS 6", b"CHANNELS 99999999"),
        base.replace(b"Frame Time: 0.0333333", b"Frame Time: nan"),
        base.replace(b"Frame Time: 0.0333333", b"Frame Time: inf"),
        base.replace(b"OFFSET", b"OFFSET 1e999", 1),
        base.replace(b"{", b"{{", 1),
        base.replace(b"}", b"", 3),
    ):
        _read_or_bvherror(data, path)
    packed = gzip.compress(base)
    _read_or_bvherror(packed[:40], tmp_path / "cut.bvh.gz")
    for at in rng.integers(10, len(packed) - 8, 20):  # corrupted deflate data
        _read_or_bvherror(packed[:at] + bytes([packed[at] ^ 0x5A]) + packed[at + 1 :], tmp_path / "bad.bvh.gz")
    _read_or_bvherror(b"not gzip at all", tmp_path / "fake.bvh.gz")


def test_endless_or_huge_input_stops_at_the_size_limit(monkeypatch, tmp_path):
    """/dev/zero or a gzip bomb is refused once MAX_BYTES are read, not read until memory runs out."""
    from core.io import bvh

    monkeypatch.setattr(bvh, "MAX_BYTES", 1 << 20)
    bomb = tmp_path / "bomb.bvh.gz"
    bomb.write_bytes(gzip.compress(b"HIERARCHY\n" + b" " * (8 << 20)))
    for path in ("/dev/zero", bomb):
        with pytest.raises(BVHError, match="more than 1 MiB"):
            read_bvh(path)


# ---------------------------------------------------------------- atomic writes


def test_atomic_write_on_full_disk_keeps_the_old_file(tmp_path, monkeypatch, data_root):
    """A simulated ENOSPC halfway through the write: the old file is byte-identical, no temporary
    file is left and the OSError names the path."""
    motion = read_bvh(bandai_clip(CLIP))
    path = tmp_path / "out.bvh"
    path.write_bytes(b"the user's previous result\n")
    real_open = open

    class Full:
        def __init__(self, file):
            self.file = file

        def write(self, data):
            self.file.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    monkeypatch.setattr(atomic, "open", lambda *a, **k: Full(real_open(*a, **k)), raising=False)
    for target in (path, tmp_path / "new.bvh"):
        with pytest.raises(OSError) as e:
            write_bvh(motion, target)
        assert e.value.errno == errno.ENOSPC and str(target) in str(e.value)
    assert path.read_bytes() == b"the user's previous result\n"
    assert _files(tmp_path) == ["out.bvh"]


def test_atomic_write_over_the_file_size_limit_keeps_the_old_file(tmp_path, data_root):
    """RLIMIT_FSIZE in a child process: the write fails with EFBIG, the old file stays."""
    path = tmp_path / "out.bvh"
    path.write_bytes(b"old\n")
    script = f"""
import resource, sys
from core.io.bvh import read_bvh, write_bvh
motion = read_bvh({str(bandai_clip(CLIP))!r})
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    write_bvh(motion, {str(path)!r})
except OSError as e:
    print(e.errno, e)
    sys.exit(3)
"""
    r = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 3, r.stderr
    assert r.stdout.startswith(f"{errno.EFBIG} ") and str(path) in r.stdout
    assert path.read_bytes() == b"old\n"
    assert _files(tmp_path) == ["out.bvh"]


def test_atomic_write_replaces_whole_and_keeps_permissions(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("old")
    os.chmod(path, 0o640)
    atomic.write_text(path, "new ü")
    assert path.read_text(encoding="utf-8") == "new ü" and (os.stat(path).st_mode & 0o777) == 0o640
    atomic.write_bytes(tmp_path / "fresh.bin", b"\x00\x01")
    assert (tmp_path / "fresh.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(OSError) as e:
        atomic.write_text(tmp_path / "missing" / "x.json", "{}")
    assert str(tmp_path / "missing" / "x.json") in str(e.value)
    with pytest.raises(RuntimeError), atomic.replacing(tmp_path / "plot.png") as temp:
        assert temp.endswith(".png")  # writers that pick the format by extension still do
        with open(temp, "w") as f:
            f.write("half")
        raise RuntimeError("the plotting failed")
    assert _files(tmp_path) == ["config.json", "fresh.bin"]
    os.symlink(path, tmp_path / "link.json")
    atomic.write_text(tmp_path / "link.json", "through the link")
    assert os.path.islink(tmp_path / "link.json") and path.read_text() == "through the link"
    (tmp_path / "folder").mkdir()
    with pytest.raises(OSError, match="not a regular file"):
        atomic.write_text(tmp_path / "folder", "x")
    assert (tmp_path / "folder").is_dir()


def test_atomic_append_adds_whole_lines_or_nothing(tmp_path, monkeypatch):
    """Logs and metrics grow by atomic appends: a full disk leaves the old lines, never a cut one."""
    path = tmp_path / "metrics.csv"
    atomic.append_text(path, "step,loss\n")
    atomic.append_text(path, "1,0.5\n")
    assert path.read_text() == "step,loss\n1,0.5\n"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic, "write_bytes", full)
    with pytest.raises(OSError):
        atomic.append_text(path, "2,0.4\n")
    assert path.read_text() == "step,loss\n1,0.5\n" and _files(tmp_path) == ["metrics.csv"]


def test_format_bvh_is_still_the_reference_text(data_root):
    """Depth-first skeletons (every file read) are written exactly as before: reading the text back
    gives the same motion."""
    motion = read_bvh(bandai_clip(CLIP))
    assert_same_motion(parse_bvh(format_bvh(motion)), motion)
