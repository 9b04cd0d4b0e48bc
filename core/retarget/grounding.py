"""Where a canonical motion's floor is, and the shift that puts it on the canonical rig's floor.

The pelvis height is a model feature, so a model must see it measured from the ground. Files do
not agree on where the ground is: most CMU Character Creator files write the root's translation
relative to its rest offset (the feet 92-102 cm below the file's origin), other captures stand on
y = 0, a game export on whatever its scene had. The floor is read from the motion itself: a low
percentile of its lowest foot joint's height, frame by frame (a climb or a jump leaves the ground
for less of the clip than that).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ..motion.canonical import CONTACT_JOINTS, PLACEMENT_ROOT
from ..motion.motion import Motion
from .presets import canonical_rig

FLOOR_PERCENTILE = 5.0


def lowest_foot_heights(motion: Motion) -> np.ndarray:
    """(F,) height of the lowest foot joint (heels and toes) of a canonical motion in each frame."""
    _, pos = motion.world_of([motion.skeleton.index(j) for j in CONTACT_JOINTS])
    return pos[..., 1].min(axis=-1)


@cache
def canonical_floor() -> float:
    """Height of the canonical rig's lowest foot joint standing in its rest pose."""
    rig = canonical_rig()
    _, rest = rig.rest_world()
    return float(rest[[rig.bone(j) for j in CONTACT_JOINTS], 1].min())


def floor_offset(motion: Motion) -> float:
    """The vertical shift (cm) that puts a canonical motion's floor on the canonical rig's."""
    return canonical_floor() - float(np.percentile(lowest_foot_heights(motion), FLOOR_PERCENTILE))


def grounded(motion: Motion) -> Motion:
    """The canonical motion moved up or down by ``floor_offset``."""
    positions = np.array(motion.positions, copy=True)
    positions[:, motion.skeleton.index(PLACEMENT_ROOT), 1] += floor_offset(motion)
    return motion.with_arrays(positions=positions)
