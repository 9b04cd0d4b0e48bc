"""Property tests of core.ops.rotations against scipy.spatial.transform (scipy quaternions are xyzw).

Every comparison of rotations goes through scipy (``_dist``), so a bug in our own geodesic angle
cannot hide a bug elsewhere. The torch path is checked for the same numbers as numpy (float64) and
for gradients (torch.autograd.gradcheck).
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.transform import Rotation, Slerp

from core.ops import rotations as rot
from core.ops.kinematics import forward_kinematics, world_to_local_rotations

TAIT_BRYAN = ["".join(p) for p in itertools.permutations("xyz")]
PROPER = ["xyx", "xzx", "yxy", "yzy", "zxz", "zyz"]
ORDERS = [o for base in TAIT_BRYAN + PROPER for o in (base, base.upper())]  # 24 = 12 x intrinsic/extrinsic
assert len(ORDERS) == 24

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GIMBAL_EPS = 2e-7  # quat_to_euler treats a middle angle within 1e-7 rad of a singularity as singular
FEW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- helpers and strategies


def to_scipy(q) -> Rotation:
    return Rotation.from_quat(np.roll(np.asarray(q, dtype=np.float64), -1, axis=-1))


def from_scipy(r: Rotation) -> np.ndarray:
    return np.roll(r.as_quat(), 1, axis=-1)


def _dist(q1, q2) -> np.ndarray:
    """Geodesic angle between two batches of wxyz quaternions, computed by scipy."""
    return (to_scipy(q1).inv() * to_scipy(q2)).magnitude()


def _wrap(a):
    return np.angle(np.exp(1j * np.asarray(a)))


batch = st.integers(1, 8)
finite = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False)


@st.composite
def unit_quats(draw, n=None):
    k = draw(batch) if n is None else n
    raw = draw(arrays(np.float64, (k, 4), elements=finite))
    norm = np.linalg.norm(raw, axis=-1, keepdims=True)
    raw = np.where(norm < 1e-3, np.array([1.0, 0.0, 0.0, 0.0]), raw)
    return raw / np.linalg.norm(raw, axis=-1, keepdims=True)


@st.composite
def unit_vectors(draw, n):
    raw = draw(arrays(np.float64, (n, 3), elements=finite))
    norm = np.linalg.norm(raw, axis=-1, keepdims=True)
    raw = np.where(norm < 1e-3, np.array([0.0, 0.0, 1.0]), raw)
    return raw / np.linalg.norm(raw, axis=-1, keepdims=True)


def euler_angles(k, lo=-math.pi, hi=math.pi):
    return arrays(np.float64, (k, 3), elements=st.floats(lo, hi, allow_nan=False))


def _singular_middle(order: str) -> list[float]:
    """Middle angles at which the order is in gimbal lock."""
    return [0.0, math.pi] if order[0].lower() == order[2].lower() else [math.pi / 2, -math.pi / 2]


# ---------------------------------------------------------------- quaternions and matrices


@PROPS
@given(unit_quats())
def test_quat_to_matrix_matches_scipy(q):
    np.testing.assert_allclose(rot.quat_to_matrix(q), to_scipy(q).as_matrix(), atol=1e-12)
    # q and -q are the same rotation
    np.testing.assert_allclose(rot.quat_to_matrix(-q), rot.quat_to_matrix(q), atol=1e-12)


@PROPS
@given(unit_quats())
def test_matrix_to_quat_matches_scipy(q):
    m = to_scipy(q).as_matrix()
    ours = rot.matrix_to_quat(m)
    assert np.all(ours[..., 0] >= 0), "matrix_to_quat must return the w >= 0 representative"
    np.testing.assert_allclose(np.linalg.norm(ours, axis=-1), 1.0, atol=1e-12)
    ref = from_scipy(Rotation.from_matrix(m))
    ref = np.where(ref[..., :1] < 0, -ref, ref)
    # Equal as numbers where w is clearly positive; equal as rotations everywhere.
    clear = ref[..., 0] > 1e-6
    np.testing.assert_allclose(ours[clear], ref[clear], atol=1e-12)
    assert _dist(ours, ref).max() < 1e-12
    np.testing.assert_allclose(rot.quat_to_matrix(ours), m, atol=1e-12)


@PROPS
@given(unit_vectors(8), st.sampled_from([0.0, 1e-14, 1e-12, 1e-9, 1e-7, 1e-5, 1e-3]))
def test_matrix_to_quat_near_180_degrees(axes, delta):
    angle = math.pi - delta
    r = Rotation.from_rotvec(axes * angle)
    m = r.as_matrix()
    q = rot.matrix_to_quat(m)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
    assert _dist(q, from_scipy(r)).max() < 1e-9
    np.testing.assert_allclose(rot.quat_to_matrix(q), m, atol=1e-12)


def test_matrix_to_quat_exact_half_turns_and_identity():
    mats = np.stack(
        [
            np.eye(3),
            np.diag([1.0, -1.0, -1.0]),  # 180 about x
            np.diag([-1.0, 1.0, -1.0]),  # 180 about y
            np.diag([-1.0, -1.0, 1.0]),  # 180 about z
            Rotation.from_rotvec([0.0, math.pi / math.sqrt(2), math.pi / math.sqrt(2)]).as_matrix(),
            Rotation.from_rotvec(np.array([1.0, 1.0, 1.0]) / math.sqrt(3) * math.pi).as_matrix(),
        ]
    )
    q = rot.matrix_to_quat(mats)
    np.testing.assert_allclose(rot.quat_to_matrix(q), mats, atol=1e-12)
    np.testing.assert_allclose(q[0], [1.0, 0.0, 0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(np.abs(q[1]), [0.0, 1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(np.abs(q[2]), [0.0, 0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(np.abs(q[3]), [0.0, 0.0, 0.0, 1.0], atol=1e-12)


@PROPS
@given(unit_quats(), unit_quats(n=1))
def test_quat_mul_rotate_conj_match_scipy(q, p):
    p = np.broadcast_to(p, q.shape)
    # quat_mul(a, b) applies b first, then a: the same as scipy's a * b.
    assert _dist(rot.quat_mul(q, p), from_scipy(to_scipy(q) * to_scipy(p))).max() < 1e-12
    v = q[..., 1:] * 3.0 - 1.0
    np.testing.assert_allclose(rot.quat_rotate(q, v), to_scipy(q).apply(v), atol=1e-12)
    assert _dist(rot.quat_conj(q), from_scipy(to_scipy(q).inv())).max() < 1e-12


@PROPS
@given(unit_quats(), unit_quats())
def test_quat_angle_matches_scipy(a, b):
    k = min(len(a), len(b))
    a, b = a[:k], b[:k]
    np.testing.assert_allclose(rot.quat_angle(a, b), _dist(a, b), atol=1e-12)
    np.testing.assert_allclose(rot.quat_angle(a, -a), 0.0, atol=1e-12)


def test_quat_angle_resolves_small_angles_in_float32_and_float64():
    """The angle of a rotation against itself is 0, and 1e-6 rad is told apart from 0 (float64)."""
    q = from_scipy(Rotation.random(200, random_state=3))
    assert rot.quat_angle(q, q).max() < 1e-14
    q32 = q.astype(np.float32)
    assert rot.quat_angle(q32, q32).max() < 1e-6
    small = rot.quat_mul(q, rot.axis_angle_to_quat(np.array([1e-6, 0.0, 0.0])))
    np.testing.assert_allclose(rot.quat_angle(q, small), 1e-6, rtol=1e-6)


# ---------------------------------------------------------------- 6D


@PROPS
@given(unit_quats())
def test_sixd_round_trip(q):
    m = to_scipy(q).as_matrix()
    d6 = rot.matrix_to_sixd(m)
    assert d6.shape == q.shape[:-1] + (6,)
    np.testing.assert_allclose(d6[..., :3], m[..., :, 0], atol=0)
    np.testing.assert_allclose(d6[..., 3:], m[..., :, 1], atol=0)
    np.testing.assert_allclose(rot.sixd_to_matrix(d6), m, atol=1e-12)
    assert _dist(rot.sixd_to_quat(rot.quat_to_sixd(q)), q).max() < 1e-12


@PROPS
@given(arrays(np.float64, (6, 6), elements=st.floats(-10, 10, allow_nan=False)))
def test_sixd_to_matrix_of_any_6d_is_a_rotation(d6):
    a1, a2 = d6[:, :3], d6[:, 3:]
    n1 = np.linalg.norm(a1, axis=-1)
    perp = np.linalg.norm(np.cross(a1, a2), axis=-1)
    keep = (n1 > 1e-2) & (perp > 1e-2 * n1 * np.linalg.norm(a2, axis=-1)) & (np.linalg.norm(a2, axis=-1) > 1e-2)
    if not keep.any():
        return
    m = rot.sixd_to_matrix(d6[keep])
    np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-12)
    np.testing.assert_allclose(m[..., :, 0], a1[keep] / n1[keep, None], atol=1e-12)
    # the second column stays in the plane of the two stored vectors, on a2's side
    assert np.all((m[..., :, 1] * a2[keep]).sum(-1) > 0)


# ---------------------------------------------------------------- Euler angles


@pytest.mark.parametrize("order", ORDERS)
@FEW
@given(euler_angles(8, -2 * math.pi, 2 * math.pi))
def test_euler_to_quat_matches_scipy(order, angles):
    q = rot.euler_to_quat(angles, order)
    ref = from_scipy(Rotation.from_euler(order, angles))
    assert _dist(q, ref).max() < 1e-12
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
    ref_m = Rotation.from_euler(order, angles).as_matrix()
    np.testing.assert_allclose(rot.euler_to_matrix(angles, order), ref_m, atol=1e-12)


@pytest.mark.parametrize("order", ORDERS)
@FEW
@given(unit_quats())
def test_quat_to_euler_matches_scipy_and_round_trips(order, q):
    angles = rot.quat_to_euler(q, order)
    assert np.all(np.abs(angles) <= math.pi + 1e-12)
    # Within 1e-7 rad of gimbal lock the third angle is set to 0 (as scipy does), which costs at
    # most about that much; everywhere else the round trip is exact to float error.
    assert _dist(rot.euler_to_quat(angles, order), q).max() < GIMBAL_EPS
    # Away from gimbal lock the angles themselves are scipy's.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scipy's gimbal-lock warning
        ref = to_scipy(q).as_euler(order)
    middle = ref[:, 1]
    clear = np.min([np.abs(middle - s) for s in _singular_middle(order)], axis=0) > 1e-3
    np.testing.assert_allclose(_wrap(angles[clear] - ref[clear]), 0.0, atol=1e-9)
    # via matrices too
    m = to_scipy(q).as_matrix()
    assert _dist(rot.euler_to_quat(rot.matrix_to_euler(m, order), order), q).max() < GIMBAL_EPS


@pytest.mark.parametrize("order", ORDERS)
@FEW
@given(
    euler_angles(6),
    st.sampled_from([0.0, 1e-12, -1e-12, 1e-9, -1e-9, 5e-8, -5e-8, 2e-7, -2e-7, 1e-5, -1e-5]),
)
def test_quat_to_euler_round_trip_at_gimbal_lock(order, angles, offset):
    """Middle angle exactly at (and just around) the singular values: the rotation must survive."""
    for middle in _singular_middle(order):
        a = angles.copy()
        a[:, 1] = middle + offset
        q = rot.euler_to_quat(a, order)
        back = rot.quat_to_euler(q, order)
        assert np.all(np.isfinite(back))
        err = _dist(rot.euler_to_quat(back, order), q).max()
        assert err < GIMBAL_EPS, f"{order} middle={middle}+{offset}: round trip off by {err} rad"


def test_euler_order_validation():
    for bad in ["xy", "xYz", "xxy", "abc", "xyzx"]:
        with pytest.raises(ValueError):
            rot.euler_to_quat(np.zeros(3), bad)
        with pytest.raises(ValueError):
            rot.quat_to_euler(np.array([1.0, 0, 0, 0]), bad)


# ---------------------------------------------------------------- axis-angle


@PROPS
@given(arrays(np.float64, (8, 3), elements=st.floats(-7.0, 7.0, allow_nan=False)))
def test_axis_angle_to_quat_matches_scipy(v):
    q = rot.axis_angle_to_quat(v)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
    assert _dist(q, from_scipy(Rotation.from_rotvec(v))).max() < 1e-12


@PROPS
@given(unit_quats())
def test_quat_to_axis_angle_matches_scipy(q):
    v = rot.quat_to_axis_angle(q)
    ref = to_scipy(q).as_rotvec()  # angle in [0, pi]
    angle = np.linalg.norm(ref, axis=-1)
    clear = angle < math.pi - 1e-6  # at exactly pi, v and -v are both right
    np.testing.assert_allclose(v[clear], ref[clear], atol=1e-12)
    assert _dist(rot.axis_angle_to_quat(v), q).max() < 1e-12


@pytest.mark.parametrize("scale", [0.0, 1e-300, 1e-20, 1e-12, 1e-9, 1e-8, 1.1e-8, 1e-6, 1.0, math.pi - 1e-9, math.pi])
def test_axis_angle_small_and_half_turn(scale):
    axis = np.array([[0.6, 0.0, 0.8], [0.0, 1.0, 0.0], [-1 / math.sqrt(3)] * 3])
    v = axis * scale
    q = rot.axis_angle_to_quat(v)
    assert _dist(q, from_scipy(Rotation.from_rotvec(v))).max() < 1e-14
    back = rot.quat_to_axis_angle(q)
    assert _dist(rot.axis_angle_to_quat(back), q).max() < 1e-14
    if scale < math.pi - 1e-6:
        np.testing.assert_allclose(back, v, atol=1e-15, rtol=1e-9)


# ---------------------------------------------------------------- slerp and quat_between


@PROPS
@given(unit_quats(n=6), unit_quats(n=6), st.floats(0.0, 1.0))
def test_slerp_matches_scipy(a, b, t):
    assert _dist(rot.quat_slerp(a, b, 0.0), a).max() < 1e-12
    assert _dist(rot.quat_slerp(a, b, 1.0), b).max() < 1e-12
    for tt in (0.5, t):
        ours = rot.quat_slerp(a, b, tt)
        np.testing.assert_allclose(np.linalg.norm(ours, axis=-1), 1.0, atol=1e-12)
        ref = np.stack(
            [from_scipy(Slerp([0.0, 1.0], to_scipy(np.stack([a[i], b[i]])))([tt]))[0] for i in range(len(a))]
        )
        # scipy's Slerp takes the shorter arc too, except for exact half-turn ties
        close = _dist(a, b) < math.pi - 1e-6
        assert _dist(ours[close], ref[close]).max(initial=0.0) < 1e-9
        # constant speed along the shorter arc
        np.testing.assert_allclose(_dist(a, ours)[close], tt * _dist(a, b)[close], atol=1e-9)
    # b and -b are the same rotation: same path (except for half-turn ties, where both arcs are shortest)
    clear = np.abs((a * b).sum(-1)) > 1e-6
    assert _dist(rot.quat_slerp(a, -b, t)[clear], rot.quat_slerp(a, b, t)[clear]).max(initial=0.0) < 1e-9


def test_slerp_nearly_equal_and_broadcast_t():
    a = from_scipy(Rotation.random(5, random_state=1))
    b = rot.quat_mul(a, rot.axis_angle_to_quat(np.array([1e-9, 0.0, 0.0])))
    out = rot.quat_slerp(a, b, 0.5)
    assert np.all(np.isfinite(out)) and _dist(out, a).max() < 1e-8
    t = np.linspace(0.0, 1.0, 5)
    c = from_scipy(Rotation.random(5, random_state=2))
    np.testing.assert_allclose(rot.quat_slerp(a, c, t)[-1], np.where((a[-1] @ c[-1]) < 0, -c[-1], c[-1]), atol=1e-12)


@PROPS
@given(
    arrays(np.float64, (8, 3), elements=st.floats(-5, 5, allow_nan=False)),
    arrays(np.float64, (8, 3), elements=st.floats(-5, 5, allow_nan=False)),
)
def test_quat_between(u, v):
    ok = (np.linalg.norm(u, axis=-1) > 1e-3) & (np.linalg.norm(v, axis=-1) > 1e-3)
    u, v = u[ok], v[ok]
    if not len(u):
        return
    un = u / np.linalg.norm(u, axis=-1, keepdims=True)
    vn = v / np.linalg.norm(v, axis=-1, keepdims=True)
    q = rot.quat_between(u, v)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(to_scipy(q).apply(un), vn, atol=1e-9)
    # the smallest such rotation: its angle is the angle between the vectors
    between = np.arccos(np.clip((un * vn).sum(-1), -1.0, 1.0))
    identity = np.tile([1.0, 0.0, 0.0, 0.0], (len(q), 1))
    np.testing.assert_allclose(_dist(q, identity), between, atol=1e-7)
    # scipy's align_vectors gives the same rotation where it is unique (not antiparallel)
    for i in np.flatnonzero(between < math.pi - 1e-3):
        ref, _ = Rotation.align_vectors(vn[i : i + 1], un[i : i + 1])
        assert _dist(q[i], from_scipy(ref)) < 1e-7


def test_quat_between_parallel_and_opposite():
    u = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0.3, -0.4, 0.5], [1e-3, 1.0, 0]])
    un = u / np.linalg.norm(u, axis=-1, keepdims=True)
    for scale, angle in ((3.0, 0.0), (-2.0, math.pi)):
        q = rot.quat_between(u, scale * u)
        assert np.all(np.isfinite(q))
        np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
        np.testing.assert_allclose(to_scipy(q).apply(un), np.sign(scale) * un, atol=1e-12)
        np.testing.assert_allclose(to_scipy(q).magnitude(), angle, atol=1e-7)


# ---------------------------------------------------------------- torch: same numbers, gradients


def _t(x):
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


_Q = from_scipy(Rotation.random(64, random_state=7))
_RNG = np.random.default_rng(11)
_V = _RNG.normal(size=(64, 3))
_E = _RNG.uniform(-math.pi, math.pi, size=(64, 3))
_D6 = _RNG.normal(size=(64, 6))
_Q2 = from_scipy(Rotation.random(64, random_state=8))

TORCH_CASES = {
    "quat_mul": lambda: (rot.quat_mul, (_Q, _Q2)),
    "quat_conj": lambda: (rot.quat_conj, (_Q,)),
    "quat_normalize": lambda: (rot.quat_normalize, (_Q * 3.0,)),
    "quat_canonical": lambda: (rot.quat_canonical, (-_Q,)),
    "quat_rotate": lambda: (rot.quat_rotate, (_Q, _V)),
    "quat_angle": lambda: (rot.quat_angle, (_Q, _Q2)),
    "quat_to_matrix": lambda: (rot.quat_to_matrix, (_Q,)),
    "matrix_to_quat": lambda: (rot.matrix_to_quat, (to_scipy(_Q).as_matrix(),)),
    "matrix_to_sixd": lambda: (rot.matrix_to_sixd, (to_scipy(_Q).as_matrix(),)),
    "sixd_to_matrix": lambda: (rot.sixd_to_matrix, (_D6,)),
    "quat_to_sixd": lambda: (rot.quat_to_sixd, (_Q,)),
    "sixd_to_quat": lambda: (rot.sixd_to_quat, (_D6,)),
    "axis_angle_to_quat": lambda: (rot.axis_angle_to_quat, (np.concatenate([_V, np.zeros((1, 3))]),)),
    "quat_to_axis_angle": lambda: (rot.quat_to_axis_angle, (np.concatenate([_Q, [[1.0, 0, 0, 0]]]),)),
    "slerp": lambda: (lambda a, b: rot.quat_slerp(a, b, 0.3), (_Q, _Q2)),
    "slerp_t_array": lambda: (rot.quat_slerp, (_Q, _Q2, np.linspace(0, 1, 64))),
    "quat_between": lambda: (rot.quat_between, (_V, np.concatenate([-_V[:8], _RNG.normal(size=(56, 3))]))),
    "yaw_quat": lambda: (rot.yaw_quat, (_E[:, 0],)),
    **{f"euler_to_quat_{o}": (lambda o=o: (lambda e: rot.euler_to_quat(e, o), (_E,))) for o in ORDERS},
    **{f"quat_to_euler_{o}": (lambda o=o: (lambda q: rot.quat_to_euler(q, o), (_Q,))) for o in ORDERS},
}


@pytest.mark.parametrize("name", sorted(TORCH_CASES))
def test_torch_gives_the_numpy_numbers(name):
    fn, args = TORCH_CASES[name]()
    expected = fn(*args)
    got = fn(*[_t(a) for a in args])
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12, rtol=0)


def test_torch_forward_kinematics_matches_numpy():
    parents = [-1, 0, 1, 2, 1, 4, 0]
    q = from_scipy(Rotation.random(5 * 7, random_state=4)).reshape(5, 7, 4)
    p = np.random.default_rng(4).normal(size=(5, 7, 3))
    wr, wp = forward_kinematics(parents, q, p)
    twr, twp = forward_kinematics(parents, _t(q), _t(p))
    np.testing.assert_allclose(twr.numpy(), wr, atol=1e-12)
    np.testing.assert_allclose(twp.numpy(), wp, atol=1e-12)
    local, tlocal = world_to_local_rotations(parents, wr), world_to_local_rotations(parents, twr)
    np.testing.assert_allclose(tlocal.numpy(), local, atol=1e-12)


def _leaf(x):
    return _t(x).clone().requires_grad_(True)


def test_gradcheck_sixd_to_matrix():
    assert torch.autograd.gradcheck(rot.sixd_to_matrix, (_leaf(_D6[:6]),))


def test_gradcheck_quat_to_matrix():
    assert torch.autograd.gradcheck(rot.quat_to_matrix, (_leaf(_RNG.normal(size=(6, 4))),))


def test_gradcheck_matrix_to_quat_away_from_singularities():
    # Keep only matrices whose largest Shepperd pivot wins by a clear margin, so the finite
    # differences of gradcheck never switch branches.
    m = to_scipy(from_scipy(Rotation.random(64, random_state=5))).as_matrix()
    tr = np.stack([1 + m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2], 1 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2],
                   1 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2], 1 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2]], -1)
    top = np.sort(tr, axis=-1)
    m = m[(top[:, -1] - top[:, -2] > 0.2)][:8]
    assert len(m) >= 4
    assert torch.autograd.gradcheck(rot.matrix_to_quat, (_leaf(m),))


def test_gradcheck_forward_kinematics():
    parents = [-1, 0, 1, 2, 1, 4]
    q = _leaf(_RNG.normal(size=(2, 6, 4)))
    p = _leaf(_RNG.normal(size=(2, 6, 3)))
    assert torch.autograd.gradcheck(lambda a, b: forward_kinematics(parents, rot.quat_normalize(a), b), (q, p))


@pytest.mark.parametrize(
    "name, fn, x",
    [
        ("euler_to_quat", lambda e: rot.euler_to_quat(e, "ZXY"), _E[:5]),
        ("quat_to_euler", lambda q: rot.quat_to_euler(rot.quat_normalize(q), "ZXY"), _Q[:5]),
        ("axis_angle_to_quat", rot.axis_angle_to_quat, _V[:5]),
        ("quat_to_axis_angle", lambda q: rot.quat_to_axis_angle(rot.quat_normalize(q)), _Q[:5]),
        ("slerp", lambda q: rot.quat_slerp(rot.quat_normalize(q), _t(_Q2[:5]), 0.3), _Q[:5]),
        ("quat_angle", lambda q: rot.quat_angle(q, _t(_Q2[:5])), _Q[:5]),
        ("sixd_to_quat", rot.sixd_to_quat, _D6[:5]),
    ],
)
def test_gradcheck_other_conversions(name, fn, x):
    assert torch.autograd.gradcheck(fn, (_leaf(x),))


def test_gradients_are_finite_at_the_identity():
    """Zero rotation vectors and identity quaternions are the most common inputs of all."""
    v = _leaf(np.zeros((2, 3)))
    rot.axis_angle_to_quat(v).sum().backward()
    assert torch.isfinite(v.grad).all()
    np.testing.assert_allclose(v.grad.numpy(), 0.5)  # d(sin(|v|/2) v/|v|)/dv = 1/2 at 0
    q = _leaf(np.array([[1.0, 0.0, 0.0, 0.0]]))
    rot.quat_to_axis_angle(q).sum().backward()
    assert torch.isfinite(q.grad).all()
    np.testing.assert_allclose(q.grad.numpy(), [[0.0, 2.0, 2.0, 2.0]])
    a = _leaf(_Q[:3])
    rot.quat_angle(a, _t(_Q[:3])).sum().backward()
    assert torch.isfinite(a.grad).all()
