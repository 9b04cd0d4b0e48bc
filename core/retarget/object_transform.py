"""An armature object's world transform applied to (and taken off) motion in the runtime convention.

Imported characters rarely have an identity object transform: FBX and glTF imports of Mixamo-style
rigs come with the armature object turned 90 degrees about X (armature space Y-up) and scaled 0.01,
glTF armatures sit under rotated nodes, and artists parent rigs to empties. Retargeting in armature
space would lay those characters on the floor, so the add-on reads and keys motion in the object's
world frame: what the artist sees in the viewport is what gets stylized.

For an object transform x -> s R x + t (uniform scale s, rotation R, translation t; parents
included) every local rotation of the runtime convention (core/retarget/rig.py) is conjugated by R,
every local translation is turned by R and scaled by s, and root translations are also moved by t.
Forward kinematics then gives world rotations R W R^-1 and world positions s R p + t, exactly.
"""

from __future__ import annotations

import numpy as np

from ..ops.rotations import matrix_to_quat, quat_conj, quat_mul, quat_rotate

SCALE_TOLERANCE = 1e-4  # relative difference between axis scales still taken as uniform


class ObjectTransformError(ValueError):
    """A transform that cannot be carried by a skeleton (non-uniform, mirrored or zero scale)."""


def split_transform(matrix, what: str = "the armature object") -> tuple[np.ndarray, float, np.ndarray]:
    """(rotation quaternion (4,), uniform scale, translation (3,)) of a 4x4 affine matrix."""
    m = np.asarray(matrix, dtype=np.float64)
    linear = m[:3, :3]
    scales = np.linalg.norm(linear, axis=0)
    if scales.min() <= 1e-12 or np.linalg.det(linear) <= 0:
        raise ObjectTransformError(f"{what} has a zero or mirrored (negative) scale; apply its transform first")
    if np.ptp(scales) > SCALE_TOLERANCE * scales.max():
        axes = ", ".join(f"{s:.4g}" for s in scales)
        raise ObjectTransformError(
            f"{what} has a non-uniform scale ({axes}); apply its scale (Object > Apply > Scale) first"
        )
    scale = float(scales.mean())
    rotation = linear / scales
    if np.abs(rotation.T @ rotation - np.eye(3)).max() > 1e-4:
        raise ObjectTransformError(f"{what} has a sheared transform (scaled under a rotated parent); apply it first")
    return matrix_to_quat(rotation), scale, m[:3, 3].copy()


def _turn(q: np.ndarray, shape) -> np.ndarray:
    return np.broadcast_to(q, tuple(shape[:-1]) + (4,))


def to_world(parents, rotations, translations, matrix, what: str = "the armature object") -> tuple[np.ndarray, np.ndarray]:
    """Local rotations (..., J, 4) and translations (..., J, 3) in armature space -> world frame;
    ``what`` names the object in an ObjectTransformError."""
    q, s, t = split_transform(matrix, what)
    rotations = np.asarray(rotations, dtype=np.float64)
    translations = np.asarray(translations, dtype=np.float64)
    rot = quat_mul(quat_mul(_turn(q, rotations.shape), rotations), _turn(quat_conj(q), rotations.shape))
    trans = s * quat_rotate(_turn(q, translations.shape), translations)
    trans[..., np.asarray(parents) < 0, :] += t
    return rot, trans


def from_world(parents, rotations, translations, matrix) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of to_world: world-frame local arrays back to armature space."""
    q, s, t = split_transform(matrix)
    rotations = np.asarray(rotations, dtype=np.float64)
    translations = np.array(translations, dtype=np.float64)
    translations[..., np.asarray(parents) < 0, :] -= t
    qc = quat_conj(q)
    rot = quat_mul(quat_mul(_turn(qc, rotations.shape), rotations), _turn(q, rotations.shape))
    return rot, quat_rotate(_turn(qc, translations.shape), translations) / s


def points_to_world(points, matrix) -> np.ndarray:
    """Armature-space points (..., 3) in the world frame."""
    m = np.asarray(matrix, dtype=np.float64)
    return np.asarray(points, dtype=np.float64) @ m[:3, :3].T + m[:3, 3]
