"""Every clip of the Bandai Namco dataset parses, writer -> reader is the identity on every one, and
BVH -> features -> BVH reproduces every one (one pass over the data for all three).

Slow (about a minute on one core): run with `-m slow`, or by name.
"""

from __future__ import annotations

import gzip
import time

import numpy as np
import pytest

from core.io.bvh import format_bvh, parse_bvh, read_bvh
from core.ops.rotations import quat_angle
from tests.conftest import BANDAI_ROOT
from tests.test_features import POSITION_TOLERANCE_CM, ROTATION_TOLERANCE_RAD, round_trip_errors

# The shared data README says 173 + 2,672 = 2,845, but dataset-1/data holds 174 clips (each with its
# .json): the official dataset-1 has 175, and only dance-long is absent. So 2,846 in all.
EXPECTED_CLIPS = {"dataset-1": 174, "dataset-2": 2672}
EXPECTED_TOTAL = 2846
BANDAI_JOINTS = ["joint_Root", "Hips", "Spine", "Chest", "Neck", "Head", "Shoulder_L", "UpperArm_L", "LowerArm_L", "Hand_L", "Shoulder_R", "UpperArm_R", "LowerArm_R", "Hand_R", "UpperLeg_L", "LowerLeg_L", "Foot_L", "Toes_L", "UpperLeg_R", "LowerLeg_R", "Foot_R", "Toes_R"]
BANDAI_CHANNELS = ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")


def _header_and_rows(path) -> tuple[int, int]:
    """The header's frame count and the number of non-empty frame lines, without our parser."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as f:
        lines = f.read().splitlines()
    m = lines.index("MOTION")
    assert lines[m + 1].startswith("Frames:") and lines[m + 2].startswith("Frame Time:")
    return int(lines[m + 1].split(":")[1]), sum(1 for line in lines[m + 3 :] if line.strip())


@pytest.mark.slow
def test_every_clip_parses_and_round_trips(data_root):
    clips = {name: sorted((BANDAI_ROOT / name / "data").glob("*.bvh*")) for name in EXPECTED_CLIPS}
    for name, expected in EXPECTED_CLIPS.items():
        suffixes = {p.name[p.name.index(".") :] for p in clips[name]}
        assert len(clips[name]) == expected, f"{name}: {len(clips[name])} clips, expected {expected}"
        assert suffixes == ({".bvh"} if name == "dataset-1" else {".bvh.gz"}), suffixes
    paths = clips["dataset-1"] + clips["dataset-2"]
    assert len(paths) == EXPECTED_TOTAL
    for path in paths:  # every clip has its label file
        assert path.with_name(path.name.split(".")[0] + ".json").is_file(), path

    failures, frames = [], 0
    worst_rot = worst_pos = worst_feature_rot = worst_feature_pos = 0.0
    t_read = t_write = t_reread = 0.0
    start = time.perf_counter()
    for path in paths:
        try:
            t0 = time.perf_counter()
            motion = read_bvh(path)
            t1 = time.perf_counter()
            text = format_bvh(motion)
            t2 = time.perf_counter()
            back = parse_bvh(text, f"{path.name} (rewritten)")
            t3 = time.perf_counter()
            t_read, t_write, t_reread = t_read + t1 - t0, t_write + t2 - t1, t_reread + t3 - t2

            declared, rows = _header_and_rows(path)
            sk = motion.skeleton
            problems = []
            if list(sk.names) != BANDAI_JOINTS or any(c != BANDAI_CHANNELS for c in sk.channels):
                problems.append(f"skeleton {sk.num_joints} joints: {sk.names}")
            if not (motion.num_frames == declared == rows > 0):
                problems.append(f"frames: parsed {motion.num_frames}, header {declared}, lines {rows}")
            if motion.fps != 30.0:
                problems.append(f"fps {motion.fps}")
            if not np.all(np.isfinite(motion.rotations)) or not np.all(np.isfinite(motion.positions)):
                problems.append("non-finite values")
            rot_err = float(quat_angle(motion.rotations, back.rotations).max())
            pos_err = float(np.abs(motion.positions - back.positions).max())
            worst_rot, worst_pos = max(worst_rot, rot_err), max(worst_pos, pos_err)
            if rot_err > 1e-6 or pos_err > 1e-6:
                problems.append(f"round trip off by {rot_err:.3g} rad / {pos_err:.3g} cm")
            feature_rot, feature_pos = round_trip_errors(motion)
            worst_feature_rot = max(worst_feature_rot, feature_rot)
            worst_feature_pos = max(worst_feature_pos, feature_pos)
            if feature_rot >= ROTATION_TOLERANCE_RAD or feature_pos >= POSITION_TOLERANCE_CM:
                problems.append(f"features round trip off by {feature_rot:.3g} rad / {feature_pos:.3g} cm")
            if (
                back.skeleton.names != sk.names
                or back.skeleton.parents != sk.parents
                or back.skeleton.channels != sk.channels
                or sorted(back.skeleton.end_sites) != sorted(sk.end_sites)
                or np.abs(back.skeleton.offsets - sk.offsets).max() > 1e-6
                or back.num_frames != motion.num_frames
                or back.fps != motion.fps
            ):
                problems.append("rewritten skeleton or timing differs")
            frames += motion.num_frames
            if problems:
                failures.append(f"{path.name}: {'; '.join(problems)}")
        except Exception as e:  # noqa: BLE001  report every broken clip, not just the first
            failures.append(f"{path.name}: {type(e).__name__}: {e}")
    elapsed = time.perf_counter() - start
    n = len(paths)
    print(
        f"\n{n} clips, {frames} frames in {elapsed:.1f} s: read {t_read / n * 1e3:.2f} ms/clip, "
        f"write {t_write / n * 1e3:.2f} ms/clip, re-read {t_reread / n * 1e3:.2f} ms/clip; "
        f"worst round trip {worst_rot:.3g} rad, {worst_pos:.3g} cm; "
        f"worst features round trip {worst_feature_rot:.3g} rad, {worst_feature_pos:.3g} cm"
    )
    assert not failures, f"{len(failures)} of {n} clips failed:\n" + "\n".join(failures[:30])
