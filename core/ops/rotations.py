"""Batched rotation conversions for numpy arrays and torch tensors (differentiable).

Conventions, fixed for the whole project:
- quaternions are (w, x, y, z), unit length, with any leading batch shape;
- matrices act on column vectors (``v' = R @ v``);
- 6D is the first two matrix columns concatenated (Zhou et al. 2019), shape (..., 6);
- Euler orders follow scipy: uppercase ("ZXY") is intrinsic, as in BVH channel lists
  (R = Rz @ Rx @ Ry), lowercase ("zxy") is extrinsic. Angles are radians.
"""

from __future__ import annotations

import math

import numpy as np

from .backend import namespace

_AXIS_INDEX = {"x": 0, "y": 1, "z": 2}


def quat_mul(a, b):
    """Hamilton product a * b (apply b first, then a)."""
    xp = namespace(a)
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return xp.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        -1,
    )


def quat_conj(q):
    """Conjugate, which is the inverse of a unit quaternion."""
    xp = namespace(q)
    return xp.stack([q[..., 0], -q[..., 1], -q[..., 2], -q[..., 3]], -1)


def quat_normalize(q, eps: float = 1e-12):
    xp = namespace(q)
    return q / xp.sqrt(xp.clip((q * q).sum(-1), eps, None))[..., None]


def quat_canonical(q):
    """The representative with w >= 0 (q and -q are the same rotation)."""
    xp = namespace(q)
    return xp.where(q[..., :1] < 0, -q, q)


def quat_rotate(q, v):
    """Rotate vectors v (..., 3) by quaternions q (..., 4)."""
    xp = namespace(q)
    u = q[..., 1:]
    w = q[..., :1]
    t = 2.0 * _cross(u, v, xp)
    return v + w * t + _cross(u, t, xp)


def _cross(a, b, xp):
    return xp.stack(
        [
            a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
            a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
            a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0],
        ],
        -1,
    )


def cross(a, b):
    """Cross product over the last axis, for numpy and torch alike."""
    return _cross(a, b, namespace(a))


def quat_angle(a, b):
    """Geodesic angle (radians) between rotations a and b, in [0, pi]."""
    xp = namespace(a)
    # From the relative rotation rather than acos-like 1 - dot**2, which cancels catastrophically
    # near 0 (a floor of ~6e-8 rad in float64 and ~1e-3 rad in float32 for identical inputs).
    r = quat_mul(quat_conj(a), b)
    s = _safe_sqrt((r[..., 1:] * r[..., 1:]).sum(-1), xp)
    return 2.0 * xp.atan2(s, xp.abs(r[..., 0]))


def _safe_sqrt(x, xp):
    """sqrt with a zero (not NaN) gradient at x == 0."""
    positive = x > 0
    return xp.where(positive, xp.sqrt(xp.where(positive, x, xp.ones_like(x))), xp.zeros_like(x))


def quat_to_matrix(q):
    xp = namespace(q)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return xp.stack([xp.stack(r, -1) for r in rows], -2)


def matrix_to_quat(m):
    """Rotation matrix to unit quaternion (w >= 0), numerically stable in every quadrant.

    Computes the four candidate quaternions of Shepperd's method and keeps, per element, the one
    whose pivot is largest; this stays differentiable in torch.
    """
    xp = namespace(m)
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    pivots = xp.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1
    )
    q_abs = xp.sqrt(xp.clip(pivots, 1e-12, None))
    candidates = xp.stack(
        [
            xp.stack([q_abs[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], -1),
            xp.stack([m21 - m12, q_abs[..., 1] ** 2, m10 + m01, m02 + m20], -1),
            xp.stack([m02 - m20, m10 + m01, q_abs[..., 2] ** 2, m12 + m21], -1),
            xp.stack([m10 - m01, m20 + m02, m21 + m12, q_abs[..., 3] ** 2], -1),
        ],
        -2,
    ) / (2.0 * q_abs[..., None])
    pick = xp.one_hot_argmax(pivots)
    q = (candidates * pick[..., None]).sum(-2)
    return quat_canonical(quat_normalize(q))


def matrix_to_sixd(m):
    """First two columns of the matrix, concatenated: (..., 6)."""
    xp = namespace(m)
    return xp.cat([m[..., :, 0], m[..., :, 1]], -1)


def sixd_to_matrix(d6):
    """Gram-Schmidt on the two stored columns; exact for a 6D taken from a rotation matrix."""
    xp = namespace(d6)
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = a1 / xp.sqrt(xp.clip((a1 * a1).sum(-1), 1e-12, None))[..., None]
    a2 = a2 - (b1 * a2).sum(-1)[..., None] * b1
    b2 = a2 / xp.sqrt(xp.clip((a2 * a2).sum(-1), 1e-12, None))[..., None]
    b3 = _cross(b1, b2, xp)
    return xp.stack([b1, b2, b3], -1)


def quat_to_sixd(q):
    return matrix_to_sixd(quat_to_matrix(q))


def sixd_to_quat(d6):
    return matrix_to_quat(sixd_to_matrix(d6))


def axis_angle_to_quat(v):
    """Rotation vector (axis * angle, (..., 3)) to quaternion."""
    xp = namespace(v)
    angle2 = (v * v).sum(-1)
    # sin(half)/angle and cos(half) by their series near zero; the sqrt only sees safe values so
    # gradients stay finite at the zero rotation.
    small = angle2 < 1e-16
    angle = xp.sqrt(xp.where(small, xp.ones_like(angle2), angle2))
    scale = xp.where(small, 0.5 - angle2 / 48.0, xp.sin(0.5 * angle) / angle)
    w = xp.where(small, 1.0 - angle2 / 8.0, xp.cos(0.5 * angle))
    return xp.cat([w[..., None], v * scale[..., None]], -1)


def quat_to_axis_angle(q):
    xp = namespace(q)
    q = quat_canonical(q)
    s2 = (q[..., 1:] * q[..., 1:]).sum(-1)
    small = s2 < 1e-16
    s = xp.sqrt(xp.where(small, xp.ones_like(s2), s2))  # safe: finite gradients at the identity
    angle = 2.0 * xp.atan2(s, q[..., 0])
    scale = xp.where(small, 2.0 + xp.zeros_like(s), angle / s)
    return q[..., 1:] * scale[..., None]


def axis_quat(axis: str, angle):
    """Quaternion of a rotation by ``angle`` about the named coordinate axis."""
    xp = namespace(angle)
    half = 0.5 * angle
    zero = xp.zeros_like(angle)
    parts = [xp.cos(half), zero, zero, zero]
    parts[1 + _AXIS_INDEX[axis.lower()]] = xp.sin(half)
    return xp.stack(parts, -1)


def _check_order(order: str) -> None:
    if len(order) != 3 or not (order.isupper() or order.islower()) or set(order.lower()) - set("xyz"):
        raise ValueError(f"Euler order must be three of x/y/z, all upper or all lower case; got {order!r}")
    if order[0].lower() == order[1].lower() or order[1].lower() == order[2].lower():
        raise ValueError(f"Euler order {order!r} repeats an axis back to back")


def euler_to_quat(angles, order: str):
    """Euler angles (..., 3) in radians to quaternions. See the module doc for ``order``."""
    _check_order(order)
    q = [axis_quat(a, angles[..., i]) for i, a in enumerate(order)]
    if order.isupper():  # intrinsic: R = R0 @ R1 @ R2
        return quat_mul(quat_mul(q[0], q[1]), q[2])
    return quat_mul(quat_mul(q[2], q[1]), q[0])  # extrinsic: R = R2 @ R1 @ R0


def quat_to_euler(q, order: str):
    """Quaternions to Euler angles (..., 3), any of the 12 orders, intrinsic or extrinsic.

    The quaternion method of Bernardes & Viollet (2022), as scipy uses; at gimbal lock the third
    angle is set to 0.
    """
    _check_order(order)
    xp = namespace(q)
    intrinsic = order.isupper()
    seq = order.lower()[::-1] if intrinsic else order.lower()
    i, j, k = (_AXIS_INDEX[c] + 1 for c in seq)
    proper = i == k
    if proper:
        k = 6 - i - j
    sign = float((i - j) * (j - k) * (k - i) // 2)
    w, v = q[..., 0], [None, q[..., 1], q[..., 2], q[..., 3]]
    if proper:
        a, b, c, d = w, v[i], v[j], v[k] * sign
    else:
        a, b, c, d = w - v[j], v[i] + v[k] * sign, v[j] + w, v[k] * sign - v[i]
    theta2 = 2.0 * xp.atan2(xp.sqrt(c * c + d * d), xp.sqrt(a * a + b * b))
    half_sum = xp.atan2(b, a)
    half_diff = xp.atan2(d, c)
    eps = 1e-7
    at_zero = xp.abs(theta2) < eps
    at_pi = xp.abs(theta2 - math.pi) < eps
    theta1 = xp.where(at_zero, 2.0 * half_sum, xp.where(at_pi, -2.0 * half_diff, half_sum - half_diff))
    theta3 = xp.where(at_zero | at_pi, xp.zeros_like(theta1), half_sum + half_diff)
    if not proper:
        theta3 = theta3 * sign
        theta2 = theta2 - math.pi / 2
    angles = [theta1, theta2, theta3]
    angles = [_wrap(t, xp) for t in angles]
    if intrinsic:
        angles = angles[::-1]
    return xp.stack(angles, -1)


def _wrap(angle, xp):
    return xp.atan2(xp.sin(angle), xp.cos(angle))


def euler_to_matrix(angles, order: str):
    return quat_to_matrix(euler_to_quat(angles, order))


def matrix_to_euler(m, order: str):
    return quat_to_euler(matrix_to_quat(m), order)


def quat_slerp(a, b, t):
    """Spherical interpolation from a (t=0) to b (t=1) along the shorter arc; t broadcasts."""
    xp = namespace(a)
    dot = (a * b).sum(-1)
    b = xp.where((dot < 0)[..., None], -b, b)
    dot = xp.abs(dot)
    t = xp.asarray(t, like=a) if not hasattr(t, "shape") else t
    theta = xp.atan2(xp.sqrt(xp.clip(1.0 - dot * dot, 0.0, None)), dot)
    sin_theta = xp.sin(theta)
    near = sin_theta < 1e-6
    safe = xp.where(near, xp.ones_like(sin_theta), sin_theta)
    wa = xp.where(near, 1.0 - t, xp.sin((1.0 - t) * theta) / safe)
    wb = xp.where(near, t + xp.zeros_like(theta), xp.sin(t * theta) / safe)
    return quat_normalize(wa[..., None] * a + wb[..., None] * b)


def quat_between(u, v):
    """The smallest rotation taking direction u to direction v (both (..., 3), any length)."""
    xp = namespace(u)
    u = u / xp.sqrt((u * u).sum(-1))[..., None]
    v = v / xp.sqrt((v * v).sum(-1))[..., None]
    d = (u * v).sum(-1)
    axis = _cross(u, v, xp)
    # The axis is perpendicular to u in exact arithmetic; near-opposite vectors leave it so short
    # that rounding tilts it, and a half turn about a tilted axis misses -u. Remove the tilt.
    axis = axis - (axis * u).sum(-1)[..., None] * u
    # 1 + cos is sin^2 / (1 - cos): the second form keeps full precision for near-opposite vectors.
    negative = d < 0
    w = xp.where(negative, (axis * axis).sum(-1) / (1.0 - xp.where(negative, d, xp.zeros_like(d))), 1.0 + d)
    # Opposite vectors: any axis perpendicular to u.
    fallback = _cross(u, xp.asarray(np.array([1.0, 0.0, 0.0]), like=u) + xp.zeros_like(u), xp)
    weak = (fallback * fallback).sum(-1) < 1e-12
    fallback = xp.where(
        weak[..., None], _cross(u, xp.asarray(np.array([0.0, 1.0, 0.0]), like=u) + xp.zeros_like(u), xp), fallback
    )
    # Only exactly opposite directions leave no axis; near-opposite ones keep their own (accurate) axis.
    opposite = w * w + (axis * axis).sum(-1) < 1e-30
    q = xp.cat([xp.where(opposite, xp.zeros_like(w), w)[..., None], xp.where(opposite[..., None], fallback, axis)], -1)
    # Divide by the true norm: it can be far below quat_normalize's floor (1e-7 for vectors 1e-7 off opposite).
    return q / xp.sqrt((q * q).sum(-1))[..., None]


def yaw_quat(yaw):
    """Rotation about +Y (the up axis) by ``yaw`` radians."""
    return axis_quat("y", yaw)


def identity_quat(shape=(), like=None):
    q = np.zeros(tuple(shape) + (4,))
    q[..., 0] = 1.0
    return q if like is None else namespace(like).asarray(q, like=like)
