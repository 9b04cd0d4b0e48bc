"""BVH reading and writing on real clips, on a hand-built file with other channel orders, and on
malformed files (each must raise BVHError naming the file, the line and the problem)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.io.bvh import BVHError, format_bvh, parse_bvh, read_bvh, write_bvh
from core.motion.motion import Motion
from tests.conftest import bandai_clip

# The 22 joints of ../shared/data/README.md, in file order, and their parents.
BANDAI_JOINTS = ["joint_Root", "Hips", "Spine", "Chest", "Neck", "Head", "Shoulder_L", "UpperArm_L", "LowerArm_L", "Hand_L", "Shoulder_R", "UpperArm_R", "LowerArm_R", "Hand_R", "UpperLeg_L", "LowerLeg_L", "Foot_L", "Toes_L", "UpperLeg_R", "LowerLeg_R", "Foot_R", "Toes_R"]
BANDAI_PARENTS = (-1, 0, 1, 2, 3, 4, 3, 6, 7, 8, 3, 10, 11, 12, 1, 14, 15, 16, 1, 18, 19, 20)
BANDAI_CHANNELS = ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")

D1_CLIP = "dataset-1_walk_normal_001.bvh"
ROUND_TRIP_CLIPS = [
    "dataset-1_walk_normal_001.bvh",
    "dataset-1_bow_angry_001.bvh",
    "dataset-1_dash_old_001.bvh",
    "dataset-2_walk_normal_001.bvh.gz",
    "dataset-2_run_youthful_010.bvh.gz",
    "dataset-2_raise-up-both-hands_exhausted_005.bvh.gz",
]


def _read_text(path) -> str:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as f:
        return f.read()


def _raw_frames(text: str) -> tuple[int, float, np.ndarray]:
    """Frame count, frame time and the frame table, read without our parser."""
    lines = text.splitlines()
    m = next(i for i, line in enumerate(lines) if line.strip() == "MOTION")
    count = int(lines[m + 1].split(":")[1])
    frame_time = float(lines[m + 2].split(":")[1])
    table = np.array([[float(v) for v in line.split()] for line in lines[m + 3 :] if line.strip()])
    return count, frame_time, table


def _scipy_quat(angles_deg, order):
    return np.roll(Rotation.from_euler(order, angles_deg, degrees=True).as_quat(), 1, -1)


def _dist(q1, q2):
    r1 = Rotation.from_quat(np.roll(q1.reshape(-1, 4), -1, -1))
    r2 = Rotation.from_quat(np.roll(q2.reshape(-1, 4), -1, -1))
    return (r1.inv() * r2).magnitude()


def assert_same_motion(a: Motion, b: Motion, tol: float = 1e-6) -> None:
    assert a.skeleton.names == b.skeleton.names
    assert a.skeleton.parents == b.skeleton.parents
    assert a.skeleton.channels == b.skeleton.channels
    np.testing.assert_allclose(a.skeleton.offsets, b.skeleton.offsets, atol=tol, rtol=0)
    assert sorted(a.skeleton.end_sites) == sorted(b.skeleton.end_sites)
    for j, offset in a.skeleton.end_sites.items():
        np.testing.assert_allclose(b.skeleton.end_sites[j], offset, atol=tol, rtol=0)
    assert a.num_frames == b.num_frames
    assert abs(a.fps - b.fps) < 1e-6 * a.fps
    assert _dist(a.rotations, b.rotations).max() <= tol
    np.testing.assert_allclose(a.positions, b.positions, atol=tol, rtol=0)


# ---------------------------------------------------------------- real clips


@pytest.mark.parametrize("name", ["dataset-2_walk_normal_001.bvh.gz", D1_CLIP])
def test_read_real_clip(name, data_root):
    path = bandai_clip(name)
    motion = read_bvh(path)
    skeleton = motion.skeleton
    assert skeleton.num_joints == 22
    assert list(skeleton.names) == BANDAI_JOINTS
    assert skeleton.parents == BANDAI_PARENTS
    assert all(c == BANDAI_CHANNELS for c in skeleton.channels)
    assert all(skeleton.rotation_order(j) == "ZXY" for j in range(22))
    assert sorted(skeleton.names[j] for j in skeleton.end_sites) == ["Hand_L", "Hand_R", "Head", "Toes_L", "Toes_R"]
    assert motion.fps == pytest.approx(30.0, abs=1e-3)

    count, frame_time, table = _raw_frames(_read_text(path))
    assert motion.num_frames == count == len(table) > 30
    assert frame_time == 0.0333333 and motion.fps == 30.0  # the file's rounded frame time snaps to 30
    assert motion.rotations.shape == (count, 22, 4) and motion.positions.shape == (count, 22, 3)
    np.testing.assert_allclose(np.linalg.norm(motion.rotations, axis=-1), 1.0, atol=1e-12)
    # Every joint of every frame against the raw numbers: translation = the position channels,
    # rotation = intrinsic Z, X, Y Euler angles in degrees (scipy's "ZXY").
    table = table.reshape(count, 22, 6)
    np.testing.assert_allclose(motion.positions, table[..., :3], atol=0)
    assert _dist(motion.rotations, _scipy_quat(table[..., 3:].reshape(-1, 3), "ZXY")).max() < 1e-12


@pytest.mark.parametrize("name", ROUND_TRIP_CLIPS)
def test_writer_then_reader_is_identity_on_real_clips(name, data_root):
    motion = read_bvh(bandai_clip(name))
    back = parse_bvh(format_bvh(motion))
    assert_same_motion(motion, back)
    # the writer keeps the file's layout: our output of a Bandai clip reads as a Bandai clip
    assert back.skeleton.channels == motion.skeleton.channels
    # and a second generation is as good as the first
    assert_same_motion(motion, parse_bvh(format_bvh(back)))


@pytest.mark.parametrize("suffix", [".bvh.gz", ".bvh"])
def test_write_bvh_files(suffix, walk_clip, tmp_path):
    motion = read_bvh(walk_clip)
    path = tmp_path / f"out{suffix}"
    write_bvh(motion, path)
    raw = path.read_bytes()
    if suffix.endswith(".gz"):
        assert raw[:2] == b"\x1f\x8b", "a .gz path must be gzip-compressed"
        assert gzip.decompress(raw).decode("utf-8") == format_bvh(motion)
    else:
        assert raw.decode("utf-8") == format_bvh(motion)
    assert_same_motion(motion, read_bvh(path))
    assert_same_motion(motion, read_bvh(str(path)))  # str and Path both work


# ---------------------------------------------------------------- other channel orders

CUSTOM_FRAME_TIME = 0.008333333  # 120 fps
CUSTOM_JOINTS = [
    # name, parent, offset, channels
    ("pelvis", -1, (1.0, 2.0, 3.0), ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")),
    ("spine", 0, (0.0, 10.0, 0.5), ("Yrotation", "Xrotation", "Zrotation")),
    ("head", 1, (0.0, 8.0, 1.0), ("Zrotation", "Yrotation", "Xrotation")),
    ("leg", 0, (3.0, -2.0, 0.0), ("Xposition", "Yposition", "Zposition", "Yrotation", "Zrotation", "Xrotation")),
    ("foot", 3, (0.0, -20.0, 1.5), ("Xrotation", "Zrotation", "Yrotation")),
]
CUSTOM_END_SITES = {2: (0.0, 5.0, 0.0), 4: (0.0, -1.0, 4.0)}


def custom_bvh(values: np.ndarray, frame_time: float = CUSTOM_FRAME_TIME) -> str:
    """A BVH text for CUSTOM_JOINTS with the given (F, 21) channel values."""
    out = ["HIERARCHY"]

    def joint(j, depth):
        name, parent, offset, chans = CUSTOM_JOINTS[j]
        pad = "  " * depth
        out.append(f"{pad}{'ROOT' if parent < 0 else 'JOINT'} {name}")
        out.append(f"{pad}{{")
        out.append(f"{pad}  OFFSET {offset[0]} {offset[1]} {offset[2]}")
        out.append(f"{pad}  CHANNELS {len(chans)} {' '.join(chans)}")
        for child in [k for k, spec in enumerate(CUSTOM_JOINTS) if spec[1] == j]:
            joint(child, depth + 1)
        if j in CUSTOM_END_SITES:
            e = CUSTOM_END_SITES[j]
            out.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {e[0]} {e[1]} {e[2]}", f"{pad}  }}"])
        out.append(f"{pad}}}")

    joint(0, 0)
    out += ["MOTION", f"Frames: {len(values)}", f"Frame Time: {frame_time}"]
    out += [" ".join(f"{v:.6f}" for v in row) for row in values]
    return "\n".join(out) + "\n"


def custom_values(num_frames: int = 9, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    width = sum(len(spec[3]) for spec in CUSTOM_JOINTS)
    values = rng.uniform(-180.0, 180.0, size=(num_frames, width))
    values[:, :3] = rng.normal(scale=50.0, size=(num_frames, 3))  # root translation
    values[:, 12:15] = rng.normal(scale=5.0, size=(num_frames, 3))  # leg translation
    return np.round(values, 6)


def scipy_world_positions(values: np.ndarray) -> np.ndarray:
    """World joint positions of the custom file, computed straight from the channel table with scipy."""
    num_frames = len(values)
    world_r = [None] * len(CUSTOM_JOINTS)
    world_p = np.zeros((num_frames, len(CUSTOM_JOINTS), 3))
    column = 0
    for j, (_, parent, offset, chans) in enumerate(CUSTOM_JOINTS):
        local_t = np.tile(np.array(offset, dtype=float), (num_frames, 1))
        rot_axes, rot_cols = "", []
        for c in chans:
            if c.endswith("position"):
                local_t[:, "XYZ".index(c[0])] = values[:, column]
            else:
                rot_axes += c[0]
                rot_cols.append(column)
            column += 1
        local_r = Rotation.from_euler(rot_axes, values[:, rot_cols], degrees=True)  # uppercase: intrinsic
        if parent < 0:
            world_r[j], world_p[:, j] = local_r, local_t
        else:
            world_r[j] = world_r[parent] * local_r
            world_p[:, j] = world_p[:, parent] + world_r[parent].apply(local_t)
    return world_p


@pytest.mark.parametrize("frame_time, fps", [(CUSTOM_FRAME_TIME, 120.0), (0.011, 1.0 / 0.011), (0.04, 25.0)])
def test_read_other_channel_orders_against_scipy(frame_time, fps):
    values = custom_values()
    motion = parse_bvh(custom_bvh(values, frame_time), "custom.bvh")
    skeleton = motion.skeleton
    assert skeleton.names == tuple(spec[0] for spec in CUSTOM_JOINTS)
    assert skeleton.parents == tuple(spec[1] for spec in CUSTOM_JOINTS)
    assert skeleton.channels == tuple(spec[3] for spec in CUSTOM_JOINTS)
    assert [skeleton.rotation_order(j) for j in range(5)] == ["XYZ", "YXZ", "ZYX", "YZX", "XZY"]
    assert sorted(skeleton.end_sites) == [2, 4]
    np.testing.assert_allclose(skeleton.end_sites[4], CUSTOM_END_SITES[4])
    np.testing.assert_allclose(skeleton.offsets, [spec[2] for spec in CUSTOM_JOINTS])
    assert motion.fps == pytest.approx(fps, rel=1e-12)
    assert motion.num_frames == len(values)
    # joints without position channels keep their rest offset as translation
    np.testing.assert_allclose(motion.positions[:, 1], np.tile(CUSTOM_JOINTS[1][2], (len(values), 1)))
    _, world = motion.world()
    np.testing.assert_allclose(world, scipy_world_positions(values), atol=1e-9)


@pytest.mark.parametrize("frame_time", [CUSTOM_FRAME_TIME, 0.011])
def test_write_other_channel_orders_round_trip(frame_time, tmp_path):
    values = custom_values(seed=1)
    motion = parse_bvh(custom_bvh(values, frame_time), "custom.bvh")
    path = tmp_path / "custom_out.bvh"
    write_bvh(motion, path)
    back = read_bvh(path)
    assert_same_motion(motion, back)
    assert back.skeleton.channels == motion.skeleton.channels  # channel order kept per joint
    _, world = back.world()
    np.testing.assert_allclose(world, scipy_world_positions(values), atol=1e-6)


def test_write_round_trip_at_gimbal_lock():
    """Middle Euler angle at exactly +-90 degrees in every joint's own order (a pose mocap can reach)."""
    values = custom_values(num_frames=8, seed=2)
    middle_columns = [4, 7, 10, 17, 20]  # the second rotation channel of each joint
    values[:4, middle_columns] = 90.0
    values[4:, middle_columns] = -90.0
    motion = parse_bvh(custom_bvh(values))
    back = parse_bvh(format_bvh(motion))
    assert _dist(motion.rotations, back.rotations).max() < 1e-6
    np.testing.assert_allclose(back.world()[1], scipy_world_positions(values), atol=1e-6)


def test_crlf_tabs_and_blank_lines_read_the_same():
    values = custom_values(seed=3)
    text = custom_bvh(values)
    messy = text.replace("  ", "\t").replace("\n", "\r\n").replace("MOTION\r\n", "MOTION\r\n\r\n")
    assert_same_motion(parse_bvh(text), parse_bvh(messy), tol=0.0)


# ---------------------------------------------------------------- malformed input


@pytest.fixture(scope="module")
def clip_lines(data_root) -> list[str]:
    return bandai_clip(D1_CLIP).read_text().splitlines()


def _motion_index(lines) -> int:
    return next(i for i, line in enumerate(lines) if line.strip() == "MOTION")


def _frame_index(lines, k: int) -> int:
    """0-based index in ``lines`` of frame k."""
    return _motion_index(lines) + 3 + k


def _write(tmp_path, lines, name="broken.bvh"):
    path = tmp_path / name
    text = "\n".join(lines) + "\n"
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def _replace_value(lines, index: int, position: int, token: str) -> list[str]:
    out = list(lines)
    values = out[index].split()
    values[position] = token
    out[index] = " ".join(values)
    return out


def assert_bvh_error(path, line, phrase):
    with pytest.raises(BVHError) as info:
        read_bvh(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.path == str(path)
    assert err.line == line, f"reported line {err.line}, expected {line}: {err}"
    assert phrase in err.problem, f"{phrase!r} not in {err.problem!r}"
    assert str(err).startswith(f"{path}:{line}: " if line is not None else f"{path}: ")
    return err


def test_the_base_clip_is_valid(clip_lines, tmp_path):
    assert read_bvh(_write(tmp_path, clip_lines)).num_frames == 195


def test_truncated_hierarchy(clip_lines, tmp_path):
    cut = 60  # inside the HIERARCHY block
    assert _motion_index(clip_lines) > cut
    assert_bvh_error(_write(tmp_path, clip_lines[:cut]), cut, "file ends early")


def test_hierarchy_missing_closing_braces(clip_lines, tmp_path):
    m = _motion_index(clip_lines)
    lines = clip_lines[: m - 2] + clip_lines[m:]  # drop the last two '}'
    assert_bvh_error(_write(tmp_path, lines), m - 1, "unexpected 'MOTION' in HIERARCHY")


def test_frame_line_with_too_few_values(clip_lines, tmp_path):
    i = _frame_index(clip_lines, 10)
    lines = list(clip_lines)
    lines[i] = " ".join(lines[i].split()[:-1])
    assert_bvh_error(_write(tmp_path, lines), i + 1, "frame line has 131 values, expected 132")


def test_frame_line_with_too_many_values(clip_lines, tmp_path):
    i = _frame_index(clip_lines, 0)
    lines = list(clip_lines)
    lines[i] += " 1.0"
    assert_bvh_error(_write(tmp_path, lines), i + 1, "frame line has 133 values, expected 132")


def test_frame_line_split_in_two(clip_lines, tmp_path):
    """The split also changes the line count; the error must still name the broken line."""
    i = _frame_index(clip_lines, 3)
    values = clip_lines[i].split()
    lines = clip_lines[:i] + [" ".join(values[:60]), " ".join(values[60:])] + clip_lines[i + 1 :]
    assert_bvh_error(_write(tmp_path, lines), i + 1, "frame line has 60 values, expected 132")


@pytest.mark.parametrize("token", ["nan", "NaN", "-nan"])
def test_nan_in_a_frame(token, clip_lines, tmp_path):
    i = _frame_index(clip_lines, 100)
    assert_bvh_error(_write(tmp_path, _replace_value(clip_lines, i, 40, token)), i + 1, "NaN or infinite")


@pytest.mark.parametrize("token", ["inf", "-inf", "Infinity", "1e999"])
def test_inf_in_a_frame(token, clip_lines, tmp_path):
    i = _frame_index(clip_lines, 194)
    assert_bvh_error(_write(tmp_path, _replace_value(clip_lines, i, 5, token)), i + 1, "NaN or infinite")


def test_nan_in_a_gzipped_clip_names_the_line(data_root, tmp_path):
    lines = _read_text(bandai_clip("dataset-2_walk_normal_001.bvh.gz")).splitlines()
    i = _frame_index(lines, 7)
    path = _write(tmp_path, _replace_value(lines, i, 0, "nan"), name="broken.bvh.gz")
    assert_bvh_error(path, i + 1, "NaN or infinite")


def test_inf_in_an_offset(clip_lines, tmp_path):
    i = next(k for k, line in enumerate(clip_lines) if line.split()[:1] == ["OFFSET"] and k > 5)
    assert_bvh_error(_write(tmp_path, _replace_value(clip_lines, i, 2, "inf")), i + 1, "NaN or infinite")


def test_zero_frames(clip_lines, tmp_path):
    m = _motion_index(clip_lines)
    lines = clip_lines[: m + 3]
    lines[m + 1] = "Frames: 0"
    assert_bvh_error(_write(tmp_path, lines), m + 2, "0 frames")


def test_unknown_channel_name(clip_lines, tmp_path):
    i = next(k for k, line in enumerate(clip_lines) if "CHANNELS" in line and k > 20)
    lines = list(clip_lines)
    lines[i] = lines[i].replace("Xrotation", "Wrotation")
    assert_bvh_error(_write(tmp_path, lines), i + 1, "unknown channel name 'Wrotation'")


def test_duplicate_joint_names(clip_lines, tmp_path):
    i = next(k for k, line in enumerate(clip_lines) if line.split() == ["JOINT", "UpperArm_R"])
    lines = list(clip_lines)
    lines[i] = lines[i].replace("UpperArm_R", "UpperArm_L")
    assert_bvh_error(_write(tmp_path, lines), i + 1, "duplicate joint name 'UpperArm_L'")


def test_non_numeric_value_in_a_frame(clip_lines, tmp_path):
    i = _frame_index(clip_lines, 50)
    assert_bvh_error(_write(tmp_path, _replace_value(clip_lines, i, 17, "12.3.4")), i + 1, "non-numeric value '12.3.4'")


def test_non_numeric_value_in_an_offset(clip_lines, tmp_path):
    i = next(k for k, line in enumerate(clip_lines) if line.split()[:1] == ["OFFSET"] and k > 30)
    assert_bvh_error(_write(tmp_path, _replace_value(clip_lines, i, 1, "1,5")), i + 1, "non-numeric value '1,5'")


def test_fewer_frame_lines_than_declared(clip_lines, tmp_path):
    lines = clip_lines[:-10]
    assert_bvh_error(_write(tmp_path, lines), len(lines), "declares 195 frames but holds only 185")


def test_more_frame_lines_than_declared(clip_lines, tmp_path):
    m = _motion_index(clip_lines)
    lines = list(clip_lines)
    lines[m + 1] = "Frames: 190"
    assert_bvh_error(_write(tmp_path, lines), _frame_index(lines, 190) + 1, "data beyond the 190 declared frames")


def test_frame_time_not_positive(clip_lines, tmp_path):
    m = _motion_index(clip_lines)
    lines = list(clip_lines)
    lines[m + 2] = "Frame Time: 0"
    assert_bvh_error(_write(tmp_path, lines), m + 3, "frame time must be positive")


def test_missing_file(tmp_path):
    assert_bvh_error(tmp_path / "no-such-clip.bvh", None, "cannot read file")
    assert_bvh_error(tmp_path / "no-such-clip.bvh.gz", None, "cannot read file")


def test_gz_path_that_is_not_gzip(clip_lines, tmp_path):
    path = tmp_path / "plain.bvh.gz"
    path.write_text("\n".join(clip_lines))
    assert_bvh_error(path, None, "cannot read file")
