"""Left/right mirroring across the character's sagittal plane (world X -> -X).

Each joint takes its twin's motion reflected: in local space R'_twin = T_parent R T_joint, with the
per-joint reflections T of the rig (core.motion.canonical.MIRROR_REFLECTIONS); translations become
T_parent t. A root joint's parent frame is the world, reflected by X -> -X. mirror(mirror(m)) == m.
"""

from __future__ import annotations

import numpy as np

from ..motion.canonical import MIRROR_REFLECTIONS, mirror_name
from ..motion.motion import Motion
from .rotations import matrix_to_quat, quat_to_matrix

WORLD_REFLECTION = (-1, 1, 1)


def mirror(motion: Motion, reflections: dict[str, tuple[int, int, int]] = MIRROR_REFLECTIONS) -> Motion:
    """The mirrored motion; ``reflections`` gives each non-root joint's local reflection diagonal."""
    skeleton = motion.skeleton
    missing = [n for j, n in enumerate(skeleton.names) if skeleton.parents[j] >= 0 and n not in reflections]
    if missing:
        raise ValueError(f"no mirror reflection known for joints {missing}")
    twin = [skeleton.index(mirror_name(n)) for n in skeleton.names]
    diag = np.array(
        [WORLD_REFLECTION if p < 0 else reflections[n] for n, p in zip(skeleton.names, skeleton.parents)], dtype=float
    )
    parent_diag = np.array([np.array(WORLD_REFLECTION, dtype=float) if p < 0 else diag[p] for p in skeleton.parents])

    matrices = quat_to_matrix(motion.rotations[:, twin])
    reflected = parent_diag[:, :, None] * matrices * diag[:, None, :]
    rotations = matrix_to_quat(reflected)
    positions = motion.positions[:, twin] * parent_diag
    return motion.with_arrays(rotations, positions)
