"""The armature object's world transform on runtime-convention motion (core.retarget.object_transform):
world forward kinematics equals the object transform applied to armature-space kinematics, the
inverse is exact, and transforms a skeleton cannot carry are refused with a message saying so."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import canonical_clip

from core.ops.rotations import axis_quat, quat_to_matrix
from core.retarget.object_transform import ObjectTransformError, from_world, points_to_world, to_world


def _matrix(quat, scale, translation) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = quat_to_matrix(np.asarray(quat)) * scale
    m[:3, 3] = translation
    return m


@pytest.fixture(scope="module")
def walk(data_root):
    return canonical_clip("dataset-2_walk_normal_001.bvh.gz")


def test_world_kinematics_is_the_object_transform_of_armature_kinematics(walk):
    turn = axis_quat("x", np.radians(90.0)) * 1.0
    m = _matrix(turn, 0.01, [1.0, -2.0, 0.5])
    rot, trans = to_world(walk.skeleton.parents, walk.rotations, walk.positions, m)
    world = walk.with_arrays(rot, trans)
    _, expected = walk.world()
    _, got = world.world()
    assert np.abs(got - points_to_world(expected, m)).max() < 1e-9


def test_from_world_inverts_to_world(walk):
    m = _matrix(axis_quat("z", 0.7), 2.5, [3.0, 0.0, -1.0])
    rot, trans = to_world(walk.skeleton.parents, walk.rotations, walk.positions, m)
    back_rot, back_trans = from_world(walk.skeleton.parents, rot, trans, m)
    assert np.abs(np.abs((back_rot * walk.rotations).sum(-1)) - 1).max() < 1e-12
    assert np.abs(back_trans - walk.positions).max() < 1e-9


@pytest.mark.parametrize(
    "linear, words",
    [(np.diag([1.0, 2.0, 1.0]), "non-uniform scale"), (np.diag([1.0, 1.0, -1.0]), "mirrored"), (np.zeros((3, 3)), "zero")],
)
def test_transforms_a_skeleton_cannot_carry_are_refused(walk, linear, words):
    m = np.eye(4)
    m[:3, :3] = linear
    with pytest.raises(ObjectTransformError, match=words):
        to_world(walk.skeleton.parents, walk.rotations, walk.positions, m)
