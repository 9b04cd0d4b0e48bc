"""Resampling, mirroring and foot contacts on real clips, and the foot-skate measure."""

from __future__ import annotations

import numpy as np
import pytest

from core.io.bvh import read_bvh
from core.motion.canonical import CONTACT_JOINTS, mirror_name
from core.ops.contacts import foot_contacts, foot_skate
from core.ops.features import CONTACTS, motion_to_features
from core.ops.mirror import mirror
from core.ops.resample import resample
from core.ops.rotations import quat_angle
from tests.conftest import bandai_clip
from training.data.labels import mirror_content_label


def test_resampling_30_to_120_to_30_returns_the_original(walk_clip):
    motion = read_bvh(walk_clip)
    up = resample(motion, 120)
    assert up.fps == 120 and up.num_frames == 4 * (motion.num_frames - 1) + 1
    down = resample(up, 30)
    assert down.num_frames == motion.num_frames
    assert quat_angle(motion.rotations, down.rotations).max() < 1e-3
    np.testing.assert_allclose(down.positions, motion.positions, atol=1e-9)


def test_resampling_interpolates_between_frames(walk_clip):
    motion = read_bvh(walk_clip).slice(0, 31)
    half = resample(motion, 45)  # every other output frame falls between two input frames
    assert half.num_frames == 46
    mid = quat_angle(half.rotations[1], motion.rotations[0]) + quat_angle(half.rotations[1], motion.rotations[1])
    assert np.allclose(mid, quat_angle(motion.rotations[0], motion.rotations[1]), atol=1e-6)
    assert resample(motion, 24).fps == 24


def test_mirror_twice_is_identity(walk_clip):
    motion = read_bvh(walk_clip)
    back = mirror(mirror(motion))
    assert quat_angle(motion.rotations, back.rotations).max() < 1e-9
    np.testing.assert_allclose(back.positions, motion.positions, atol=1e-9)


def test_mirrored_left_hand_wave_is_a_right_hand_wave(data_root):
    motion = read_bvh(bandai_clip("dataset-2_wave-left-hand_normal_001.bvh.gz"))
    names = motion.skeleton.names
    twin = [names.index(mirror_name(n)) for n in names]
    _, pos = motion.world()
    _, mirrored_pos = mirror(motion).world()
    np.testing.assert_allclose(mirrored_pos, pos[:, twin] * np.array([-1.0, 1.0, 1.0]), atol=1e-9)

    def travel(p, joint):
        return np.linalg.norm(np.diff(p[:, names.index(joint)], axis=0), axis=-1).sum()

    # A left-hand wave: the left hand travels far more than the right; mirrored, the reverse,
    # which is what the wave-right-hand label the mirror swaps in describes.
    assert travel(pos, "Hand_L") > 5 * travel(pos, "Hand_R")
    assert travel(mirrored_pos, "Hand_R") > 5 * travel(mirrored_pos, "Hand_L")
    assert mirror_content_label("wave-left-hand") == "wave-right-hand"


def test_mirrored_walk_swaps_contact_columns(walk_clip):
    motion = read_bvh(walk_clip)
    contacts = motion_to_features(motion)[0][:, CONTACTS]
    mirrored = motion_to_features(mirror(motion))[0][:, CONTACTS]
    swapped = mirrored[:, [CONTACT_JOINTS.index(mirror_name(n)) for n in CONTACT_JOINTS]]
    assert (swapped == contacts).mean() > 0.99


def _line_motion(step_per_frame: float, height: float, frames: int = 30) -> np.ndarray:
    positions = np.zeros((frames, 1, 3))
    positions[:, 0, 0] = np.arange(frames) * step_per_frame
    positions[:, 0, 1] = height
    return positions


def test_foot_skate_known_answers():
    assert foot_skate(_line_motion(1.0, 0.0), [0]) == pytest.approx(1.0)
    assert foot_skate(_line_motion(0.0, 0.0), [0]) == 0.0
    assert foot_skate(_line_motion(3.0, 20.0), [0]) == 0.0  # in the air: not skating


def test_contacts_need_low_and_slow():
    planted = _line_motion(0.0, 0.0)
    sliding = _line_motion(5.0, 0.0)  # 150 cm/s
    lifted = _line_motion(0.0, 30.0)
    lifted[:15, 0, 1] = 0.0
    assert foot_contacts(planted, [0], fps=30).all()
    assert not foot_contacts(sliding, [0], fps=30).any()
    labels = foot_contacts(lifted, [0], fps=30)[:, 0]
    assert labels[:14].all() and not labels[16:].any()
