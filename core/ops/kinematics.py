"""Forward kinematics over any joint tree, batched, for numpy and torch (differentiable)."""

from __future__ import annotations

from .backend import namespace
from .rotations import quat_conj, quat_mul, quat_rotate


def forward_kinematics(parents, local_rotations, local_positions):
    """World rotations and positions of every joint.

    parents: sequence of parent indices, -1 for the root; parents come before their children.
    local_rotations: (..., J, 4) quaternions; local_positions: (..., J, 3) translations from the
    parent joint (the offset, or the animated translation where a joint has position channels).
    Returns (world_rotations (..., J, 4), world_positions (..., J, 3)).
    """
    xp = namespace(local_rotations)
    world_rot, world_pos = [], []
    for j, p in enumerate(parents):
        if p < 0:
            world_rot.append(local_rotations[..., j, :])
            world_pos.append(local_positions[..., j, :])
        else:
            world_rot.append(quat_mul(world_rot[p], local_rotations[..., j, :]))
            world_pos.append(world_pos[p] + quat_rotate(world_rot[p], local_positions[..., j, :]))
    return xp.stack(world_rot, -2), xp.stack(world_pos, -2)


def world_to_local_rotations(parents, world_rotations):
    """Inverse of the rotation half of forward kinematics."""
    xp = namespace(world_rotations)
    local = []
    for j, p in enumerate(parents):
        w = world_rotations[..., j, :]
        local.append(w if p < 0 else quat_mul(quat_conj(world_rotations[..., p, :]), w))
    return xp.stack(local, -2)
