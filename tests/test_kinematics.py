"""Forward kinematics on real clips against a naive per-frame 4x4-matrix implementation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from core.io.bvh import read_bvh
from core.ops.kinematics import forward_kinematics, world_to_local_rotations
from core.ops.rotations import quat_angle, quat_normalize
from tests.conftest import bandai_clip

CLIPS = [
    "dataset-2_walk_normal_001.bvh.gz",
    "dataset-1_walk_normal_001.bvh",
    "dataset-2_wave-left-hand_elderly_003.bvh.gz",
]


@pytest.fixture(scope="module", params=CLIPS)
def motion(request, data_root):
    return read_bvh(bandai_clip(request.param))


def naive_fk(parents, rotations, positions):
    """World 4x4 transforms joint by joint, frame by frame, with scipy matrices: M_j = M_parent @ [R_j | t_j]."""
    num_frames, num_joints = rotations.shape[:2]
    matrices = Rotation.from_quat(np.roll(rotations.reshape(-1, 4), -1, -1)).as_matrix()
    matrices = matrices.reshape(num_frames, num_joints, 3, 3)
    world = np.zeros((num_frames, num_joints, 4, 4))
    for f in range(num_frames):
        for j in range(num_joints):
            local = np.eye(4)
            local[:3, :3] = matrices[f, j]
            local[:3, 3] = positions[f, j]
            world[f, j] = local if parents[j] < 0 else world[f, parents[j]] @ local
    return world


def test_forward_kinematics_matches_naive_matrices(motion):
    parents = motion.skeleton.parents
    world_rot, world_pos = forward_kinematics(parents, motion.rotations, motion.positions)
    assert world_rot.shape == motion.rotations.shape and world_pos.shape == motion.positions.shape
    ref = naive_fk(parents, motion.rotations, motion.positions)
    np.testing.assert_allclose(world_pos, ref[..., :3, 3], atol=1e-9)
    ours_m = Rotation.from_quat(np.roll(world_rot.reshape(-1, 4), -1, -1)).as_matrix().reshape(ref[..., :3, :3].shape)
    np.testing.assert_allclose(ours_m, ref[..., :3, :3], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(world_rot, axis=-1), 1.0, atol=1e-12)


def test_forward_kinematics_gives_a_plausible_standing_human(motion):
    """Guards the conventions (Y up, centimetres, rotation order) that a naive copy could share."""
    _, pos = motion.world()
    names = motion.skeleton.names
    y = {n: pos[:, names.index(n), 1] for n in ("Head", "Neck", "Hips", "LowerLeg_L", "LowerLeg_R", "Toes_L", "Toes_R")}
    assert np.all(y["Head"] > y["Hips"] + 30) and np.all(y["Neck"] > y["Hips"])
    assert np.all(y["Hips"] > y["LowerLeg_L"]) and np.all(y["Hips"] > y["LowerLeg_R"])
    assert 120 < np.median(y["Head"]) < 190, "head height in cm"
    assert min(y["Toes_L"].min(), y["Toes_R"].min()) < 10, "a foot touches the ground"
    # the hips are a body width apart, and the left one is on the character's left: the facing
    # direction (forward = left x up in right-handed Y-up space) agrees with the Hips' travel
    left = pos[:, names.index("UpperLeg_L")] - pos[:, names.index("UpperLeg_R")]
    assert np.all(np.linalg.norm(left, axis=-1) > 5)
    travel = pos[-1, names.index("Hips")] - pos[0, names.index("Hips")]
    if np.linalg.norm(travel[[0, 2]]) > 100:  # clips that walk somewhere
        forward = np.cross(left.mean(0), np.array([0.0, 1.0, 0.0]))
        assert forward @ travel > 0


def test_world_to_local_inverts_forward_kinematics(motion):
    parents = motion.skeleton.parents
    world_rot, _ = forward_kinematics(parents, motion.rotations, motion.positions)
    local = world_to_local_rotations(parents, world_rot)
    assert quat_angle(local, motion.rotations).max() < 1e-12
    # and FK of the recovered rotations gives the same world pose
    world_rot2, _world_pos2 = forward_kinematics(parents, local, motion.positions)
    assert quat_angle(world_rot2, world_rot).max() < 1e-12


def test_forward_kinematics_batch_dimensions(motion):
    """Leading batch axes are just batch axes: (2, F/2, J, ...) gives the (F, J, ...) numbers."""
    parents = motion.skeleton.parents
    n = motion.num_frames // 2 * 2
    rot, pos = motion.rotations[:n], motion.positions[:n]
    wr, wp = forward_kinematics(parents, rot, pos)
    wr2, wp2 = forward_kinematics(parents, rot.reshape(2, n // 2, -1, 4), pos.reshape(2, n // 2, -1, 3))
    np.testing.assert_array_equal(wr2.reshape(wr.shape), wr)
    np.testing.assert_array_equal(wp2.reshape(wp.shape), wp)
    wr1, wp1 = forward_kinematics(parents, rot[5], pos[5])  # a single frame, no batch axis
    np.testing.assert_array_equal(wr1, wr[5])
    np.testing.assert_array_equal(wp1, wp[5])


def test_numpy_and_torch_agree_on_a_real_clip(motion):
    parents = motion.skeleton.parents
    wr, wp = forward_kinematics(parents, motion.rotations, motion.positions)
    twr, twp = forward_kinematics(parents, torch.from_numpy(motion.rotations), torch.from_numpy(motion.positions))
    assert twr.dtype == torch.float64
    np.testing.assert_allclose(twr.numpy(), wr, atol=1e-12, rtol=0)
    np.testing.assert_allclose(twp.numpy(), wp, atol=1e-9, rtol=0)
    local, tlocal = world_to_local_rotations(parents, wr), world_to_local_rotations(parents, twr)
    np.testing.assert_allclose(tlocal.numpy(), local, atol=1e-12)
    # float32 stays within what a loss needs (sub-millimetre)
    rot32, pos32 = torch.from_numpy(motion.rotations).float(), torch.from_numpy(motion.positions).float()
    _, fwp = forward_kinematics(parents, rot32, pos32)
    assert fwp.dtype == torch.float32
    assert np.abs(fwp.numpy() - wp).max() < 1e-2


def test_torch_forward_kinematics_gradients_on_a_real_pose(walk_clip):
    motion = read_bvh(walk_clip)
    parents = motion.skeleton.parents
    rot = torch.from_numpy(motion.rotations[40:41].copy()).requires_grad_(True)
    pos = torch.from_numpy(motion.positions[40:41].copy()).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda r, p: forward_kinematics(parents, quat_normalize(r), p)[1], (rot, pos))
    # the gradient of a hand position reaches every joint on the chain to the root and no other
    r = torch.from_numpy(motion.rotations[:1].copy()).requires_grad_(True)
    _, wp = forward_kinematics(parents, r, torch.from_numpy(motion.positions[:1]))
    hand = motion.skeleton.index("Hand_L")
    wp[0, hand].sum().backward()
    touched = {motion.skeleton.names[j] for j in range(len(parents)) if r.grad[0, j].abs().sum() > 0}
    chain, j = set(), parents[hand]  # the hand's own rotation does not move the hand joint
    while j >= 0:
        chain.add(motion.skeleton.names[j])
        j = parents[j]
    assert touched <= chain and "LowerArm_L" in touched and "Chest" in touched
