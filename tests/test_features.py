"""Canonical features: exact inverse on real clips, layout, torch decoding, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.io.bvh import format_bvh, parse_bvh, read_bvh
from core.motion.canonical import PLACEMENT_ROOT
from core.motion.motion import Motion
from core.ops import features as F
from core.ops.rotations import quat_angle
from tests.conftest import BANDAI_ROOT, bandai_clip

ROTATION_TOLERANCE_RAD = 1e-4
POSITION_TOLERANCE_CM = 0.01


def round_trip_errors(original: Motion) -> tuple[float, float]:
    """Max rotation (rad, local and world) and body-joint position (cm) error of a clip read from
    BVH -> features -> BVH text -> read again. The placement joint is left out: features fold it
    into the pelvis, so its own position is not kept (the body's is, exactly)."""
    features, start = F.motion_to_features(original)
    decoded = F.features_to_motion(features, start, skeleton=original.skeleton)
    reread = parse_bvh(format_bvh(decoded))
    rot_a, pos_a = original.world()
    rot_b, pos_b = reread.world()
    body = [j for j, n in enumerate(original.skeleton.names) if n != PLACEMENT_ROOT]
    local = quat_angle(original.rotations[:, body[1:]], reread.rotations[:, body[1:]]).max()
    world = quat_angle(rot_a[:, body], rot_b[:, body]).max()
    return max(local, world), float(np.abs(pos_a[:, body] - pos_b[:, body]).max())


@pytest.mark.parametrize(
    "name",
    [
        "dataset-2_walk_normal_001.bvh.gz",
        "dataset-2_walk-turn-left_elderly_003.bvh.gz",
        "dataset-1_run_normal_001.bvh",  # its placement joint is offset by 200 cm
        "dataset-1_dash_giant_001.bvh",
    ],
)
def test_round_trip_is_exact_on_real_clips(data_root, name):
    rot_err, pos_err = round_trip_errors(read_bvh(bandai_clip(name)))
    assert rot_err < ROTATION_TOLERANCE_RAD
    assert pos_err < POSITION_TOLERANCE_CM


def test_layout_and_heading_frame(walk_clip):
    motion = read_bvh(walk_clip)
    features, _start = F.motion_to_features(motion)
    assert features.shape == (motion.num_frames, F.FEATURE_DIM) == (motion.num_frames, 134)
    assert set(np.unique(features[:, F.CONTACTS])) <= {0.0, 1.0}
    # A forward walk moves along the heading: forward (z) velocity dominates, about 1.2-1.6 m/s.
    forward_speed = np.median(features[:, F.PLANAR_VELOCITY][:, 1]) * F.FEATURE_FPS
    assert 80 < forward_speed < 200
    assert np.abs(np.median(features[:, F.PLANAR_VELOCITY][:, 0])) < 0.2 * np.median(features[:, F.PLANAR_VELOCITY][:, 1])
    assert 80 < np.median(features[:, F.HEIGHT]) < 100  # pelvis height in cm
    # Both feet touch the ground for a good part of a walk, and not all the time.
    share = features[:, F.CONTACTS].mean(0)
    assert np.all((share > 0.25) & (share < 0.75)), share


def test_features_do_not_depend_on_where_the_clip_starts(walk_clip):
    """Turning and moving the whole clip changes only the start, not the features."""
    from core.ops.rotations import quat_mul, quat_rotate, yaw_quat

    motion = read_bvh(walk_clip)
    turn = yaw_quat(np.array(1.1))
    rotations = motion.rotations.copy()
    positions = motion.positions.copy()
    rotations[:, 0] = quat_mul(turn, rotations[:, 0])
    positions[:, 0] = quat_rotate(turn, positions[:, 0]) + np.array([300.0, 0.0, -50.0])
    moved = motion.with_arrays(rotations, positions)
    a, start_a = F.motion_to_features(motion)
    b, start_b = F.motion_to_features(moved)
    np.testing.assert_allclose(a, b, atol=1e-9)
    assert not np.allclose(start_a, start_b)


def test_torch_decoding_matches_numpy_and_is_differentiable(walk_clip):
    features, start = F.motion_to_features(read_bvh(walk_clip))
    rot_np, pos_np = F.decode_pose(features, start)
    x = torch.tensor(features[None], requires_grad=True)
    rot_t, pos_t = F.decode_pose(x, torch.tensor(start[None]))
    np.testing.assert_allclose(rot_t[0].detach().numpy(), rot_np, atol=1e-10)
    np.testing.assert_allclose(pos_t[0].detach().numpy(), pos_np, atol=1e-8)
    (pos_t.square().sum() + rot_t[..., 1:].square().sum()).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_bad_input_is_named(walk_clip):
    from core.io.bvh import read_bvh as read
    from core.ops.resample import resample

    motion = read(walk_clip)
    with pytest.raises(ValueError, match="resample"):
        F.motion_to_features(resample(motion, 60))
    cmu = read(BANDAI_ROOT.parent / "cmu-skeleton" / "rest.bvh")
    with pytest.raises(ValueError, match="retarget"):
        F.motion_to_features(cmu)
    with pytest.raises(ValueError, match="134"):
        F.features_to_motion(np.zeros((10, 50)))
