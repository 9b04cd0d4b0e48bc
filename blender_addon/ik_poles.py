"""IK pole targets follow the legs (and arms) they aim.

Game rigs drive their legs with IK constraints whose pole targets are separate bones, usually
children of the root (Quaternius rigs, Rigify's IK controls). The runtime keys the FK chain and
places the IK target (the foot) at its end, but knows nothing of the pole: left where the source had
it, a pole the character walks away from twists the knees toward it. So each pole bone is moved with
the change of its chain's first bone (the thigh): the pole's world transform relative to that bone
stays as it was in the source, so the knee plane the IK solves for turns with the stylized thigh,
and a chain whose thigh keeps the source's pose (weight 0) keeps the source's pole exactly.
"""

from __future__ import annotations

import numpy as np

from .core.ops.kinematics import forward_kinematics
from .core.ops.rotations import quat_conj, quat_mul, quat_rotate


def pole_anchors(obj) -> dict[str, str]:
    """Pole bone -> the first bone of the chain its IK constraint solves, for every active IK
    constraint of armature ``obj`` whose pole target is one of its own bones."""
    anchors = {}
    for pose_bone in obj.pose.bones:
        for c in pose_bone.constraints:
            if c.type != "IK" or c.mute or c.influence <= 0 or c.pole_target != obj or not c.pole_subtarget:
                continue
            top, length = pose_bone.bone, 1
            while top.parent is not None and (c.chain_count == 0 or length < c.chain_count):
                top, length = top.parent, length + 1
            anchors[c.pole_subtarget] = top.name
    return anchors


def follow_anchors(parents, names, anchors, source, result):
    """``result`` (rotations (F, J, 4), translations (F, J, 3), local, runtime convention) with each
    anchored bone given its source pose relative to its anchor bone, the anchor taken in the result.
    ``source``: the source's arrays on the same bones and frames. Returns new arrays."""
    rotations, translations = (np.array(a, dtype=np.float64) for a in result)
    index = {n: i for i, n in enumerate(names)}
    pairs = sorted((index[p], index[a]) for p, a in anchors.items() if p in index and a in index)
    if not pairs:
        return rotations, translations
    src_rot, src_pos = forward_kinematics(parents, *source)
    for bone, anchor in pairs:  # parents first: a moved pole is the parent frame of later ones
        out_rot, out_pos = forward_kinematics(parents, rotations, translations)
        change = quat_mul(out_rot[:, anchor], quat_conj(src_rot[:, anchor]))
        world_rot = quat_mul(change, src_rot[:, bone])
        world_pos = out_pos[:, anchor] + quat_rotate(change, src_pos[:, bone] - src_pos[:, anchor])
        parent = parents[bone]
        if parent < 0:
            rotations[:, bone], translations[:, bone] = world_rot, world_pos
        else:
            inverse = quat_conj(out_rot[:, parent])
            rotations[:, bone] = quat_mul(inverse, world_rot)
            translations[:, bone] = quat_rotate(inverse, world_pos - out_pos[:, parent])
    return rotations, translations
