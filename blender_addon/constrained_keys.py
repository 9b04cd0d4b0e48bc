"""Keys that land where the runtime meant, on rigs whose bones hang from constrained helper bones.

The runtime returns each bone's pose relative to its parent. Keyed down the hierarchy, that pose
holds only where the parent stands where the hierarchy puts it. A generated Rigify rig hangs its FK
controls from helper bones that constraints move (a thigh control's parent follows the root or the
torso by a switch, a hand control's follows the forearm through a scale-isolating helper), and
there a control keyed down the hierarchy lands elsewhere (measured: 37% of body height off). So
after keying, the result is played, and each bone that misses its target is keyed again against its
parent's evaluated pose (or the parent's target, when the parent is keyed to one too). One pass
settles one more level of helpers; passes repeat until every bone is within tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import action_io
from .core.ops.rotations import quat_angle, quat_conj, quat_mul, quat_rotate

POSITION_TOLERANCE = 1e-5  # of the rig's rest height
ANGLE_TOLERANCE = 1e-5  # radians
MAX_PASSES = 8  # Rigify's deepest chain of helpers between two keyed controls is 5


@dataclass
class SolveReport:
    """How keying to targets went: evaluation passes, the worst bone's error after the last one
    (position as a fraction of the rig's height, angle in radians) and the bones still off."""

    passes: int = 0
    position_error: float = 0.0
    angle_error: float = 0.0
    unresolved: list[str] = field(default_factory=list)


def _active(constraint) -> bool:
    return not constraint.mute and constraint.influence > 0


def ik_solved_bones(obj) -> set[str]:
    """Bones an active IK constraint poses (its owner and chain): keys there only seed the solver."""
    out = set()
    for pose_bone in obj.pose.bones:
        for c in pose_bone.constraints:
            if c.type != "IK" or not _active(c):
                continue
            bone, length = pose_bone.bone, 1
            while bone is not None and (c.chain_count == 0 or length <= c.chain_count):
                out.add(bone.name)
                bone, length = bone.parent, length + 1
    return out


def keyable_bones(obj, rest: dict, bones) -> list[int]:
    """Indices (rest order) of ``bones`` to key to a target through constraints: bones with no
    active constraint of their own, not posed by IK, below some constrained bone (elsewhere the
    hierarchy puts a bone where the runtime meant already)."""
    names, parents = rest["bone_names"], rest["parents"]
    constrained = np.array([any(_active(c) for c in obj.pose.bones[n].constraints) for n in names])
    below = np.zeros(len(names), dtype=bool)
    for j, p in enumerate(parents):  # parents come first
        below[j] = p >= 0 and (constrained[p] or below[p])
    ik = ik_solved_bones(obj)
    index = {n: i for i, n in enumerate(names)}
    return sorted(j for j in (index[b] for b in bones) if below[j] and not constrained[j] and names[j] not in ik)


def key_to_targets(obj, action, rest: dict, frames, targets, bones: list[int]) -> SolveReport:
    """Rekey ``bones`` (rest-order indices, from keyable_bones) of ``action`` until their evaluated
    world poses match ``targets``: (world rotations W = P b^-1 (F, J, 4), heads (F, J, 3)) in
    armature space for every bone in rest order. The action is played (temporarily assigned when
    it is not), never any other."""
    target_rot, target_heads = targets
    bones = np.asarray(bones, dtype=np.int64)
    report = SolveReport()
    if len(bones) == 0:
        return report
    names, parents = rest["bone_names"], rest["parents"]
    height = float(np.ptp(np.concatenate([rest["heads"], rest["tails"]])[:, 2])) or 1.0
    keyed_to_target = np.zeros(len(names), dtype=bool)
    keyed_to_target[bones] = True
    p = parents[bones]  # every such bone has a parent: it sits below a constrained bone
    from_target = keyed_to_target[p][None, :, None]
    while True:
        mats = action_io.evaluate_pose(obj, action, frames, rest)
        world, heads = action_io.world_from_pose_matrices(rest, mats)
        position = np.linalg.norm(heads[:, bones] - target_heads[:, bones], axis=-1).max(0) / height
        angle = quat_angle(world[:, bones], target_rot[:, bones]).max(0)
        off = (position > POSITION_TOLERANCE) | (angle > ANGLE_TOLERANCE)
        report.position_error, report.angle_error = float(position.max()), float(angle.max())
        if not off.any() or report.passes == MAX_PASSES:
            report.unresolved = [names[b] for b in bones[off]]
            return report
        parent_rot = np.where(from_target, target_rot[:, p], world[:, p])
        parent_head = np.where(from_target, target_heads[:, p], heads[:, p])
        inverse = quat_conj(parent_rot[:, off])
        rotations = quat_mul(inverse, target_rot[:, bones[off]])
        translations = quat_rotate(inverse, target_heads[:, bones[off]] - parent_head[:, off])
        action_io.rekey(obj, action, [names[b] for b in bones[off]], rotations, translations)
        report.passes += 1
