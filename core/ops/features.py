"""The canonical per-frame features of DESIGN §3 and their exact inverse.

Layout of one frame (FEATURE_DIM = 134), all in model space at 30 fps:
    [0]        pelvis height (cm)
    [1:3]      pelvis planar velocity (x, z), cm per frame, in the heading frame of that frame
    [3]        heading angular velocity, radians per frame
    [4:130]    6D rotation of the 21 body joints (Hips first, its heading removed; then each
               joint's local rotation), in canonical joint order
    [130:134]  foot contacts (heel L, toe L, heel R, toe R) as 0/1

The placement joint ``joint_Root`` is folded into the pelvis: decoding gives it the identity and
puts the whole trajectory on Hips, so world poses are reproduced exactly. Velocities are forward
differences; the last frame repeats the one before (the inverse never reads it). Integration needs
the start (x, z, heading) of the first frame, returned by the encoder; without it a decoded clip
starts at the origin facing +Z.

Decoding is written against the numpy/torch namespace, so losses can decode in torch.
"""

from __future__ import annotations

import numpy as np

from ..motion.canonical import CONTACT_JOINTS, HIP_JOINTS, JOINT_NAMES, PELVIS, PLACEMENT_ROOT, canonical_skeleton
from ..motion.motion import Motion
from ..motion.skeleton import Skeleton
from .backend import namespace
from .contacts import foot_contacts
from .rotations import (
    quat_mul,
    quat_rotate,
    quat_to_sixd,
    sixd_to_quat,
    yaw_quat,
)

FEATURE_VERSION = 1
FEATURE_FPS = 30.0
BODY_JOINTS: tuple[str, ...] = tuple(n for n in JOINT_NAMES if n != PLACEMENT_ROOT)
NUM_BODY_JOINTS = len(BODY_JOINTS)

HEIGHT = slice(0, 1)
PLANAR_VELOCITY = slice(1, 3)
HEADING_VELOCITY = slice(3, 4)
ROTATIONS = slice(4, 4 + 6 * NUM_BODY_JOINTS)
CONTACTS = slice(ROTATIONS.stop, ROTATIONS.stop + len(CONTACT_JOINTS))
FEATURE_DIM = CONTACTS.stop
# Frames whose rotations are converted at once: a long take's temporaries (3x3 matrices and their
# intermediates, several KB a frame) stay bounded; the conversion is per frame, so nothing changes.
ROTATION_CHUNK = 8192


def _check_canonical(motion: Motion) -> None:
    if motion.skeleton.names != JOINT_NAMES:
        raise ValueError(
            "features need motion on the canonical 22-joint skeleton; retarget the rig first "
            f"(got joints {motion.skeleton.names[:4]}...)"
        )
    if abs(motion.fps - FEATURE_FPS) > 1e-3:
        raise ValueError(f"features need {FEATURE_FPS:g} fps motion; resample first (got {motion.fps:g} fps)")


def pelvis_left_axis(skeleton: Skeleton) -> np.ndarray:
    """The pelvis-local direction from the right hip to the left hip: the body's lateral axis."""
    left, right = (skeleton.offsets[skeleton.index(n)] for n in HIP_JOINTS)
    axis = left - right
    return axis / np.linalg.norm(axis)


def heading_angles(pelvis_world_rotations: np.ndarray, left_axis: np.ndarray) -> np.ndarray:
    """Yaw (radians, about +Y, 0 = facing +Z) of the pelvis from its lateral axis.

    Taken from the pelvis rotation alone, so the arms' motion never turns the heading frame.
    """
    across = quat_rotate(pelvis_world_rotations, np.broadcast_to(left_axis, pelvis_world_rotations.shape[:-1] + (3,)))
    forward_x, forward_z = -across[..., 2], across[..., 0]
    return np.arctan2(forward_x, forward_z)


def wrap_angle(angle):
    """The same angle in (-pi, pi]."""
    return np.arctan2(np.sin(angle), np.cos(angle))


def _forward_difference(x: np.ndarray) -> np.ndarray:
    """x[t+1] - x[t], with the last frame repeating the one before (zeros for one frame)."""
    if x.shape[0] < 2:
        return np.zeros_like(x)
    d = np.diff(x, axis=0)
    return np.concatenate([d, d[-1:]], axis=0)


def motion_to_features(motion: Motion) -> tuple[np.ndarray, np.ndarray]:
    """(features (F, FEATURE_DIM) float64, start (x, z, heading)) for canonical 30 fps motion.
    Forward kinematics and the 6D rotations go ROTATION_CHUNK frames at a time, so a long take
    costs little more than its features."""
    _check_canonical(motion)
    skeleton = motion.skeleton
    pelvis = skeleton.index(PELVIS)
    world_rot, world_pos = motion.world_of([pelvis, *(skeleton.index(n) for n in CONTACT_JOINTS)], ROTATION_CHUNK)
    pelvis_rot, pelvis_pos = world_rot[:, 0], world_pos[:, 0]

    yaw = heading_angles(pelvis_rot, pelvis_left_axis(skeleton))
    unturn = yaw_quat(-yaw)
    step = _forward_difference(pelvis_pos) * np.array([1.0, 0.0, 1.0])
    local_step = quat_rotate(unturn, step)

    body = [skeleton.index(n) for n in BODY_JOINTS]

    def sixd(a: int, b: int) -> np.ndarray:
        rotations = motion.rotations[a:b, body]
        rotations[:, 0] = quat_mul(unturn[a:b], pelvis_rot[a:b])
        return quat_to_sixd(rotations).reshape(b - a, -1)

    features = np.empty((motion.num_frames, FEATURE_DIM))
    features[:, HEIGHT] = pelvis_pos[:, 1:2]
    features[:, PLANAR_VELOCITY] = local_step[:, [0, 2]]
    features[:, HEADING_VELOCITY] = wrap_angle(_forward_difference(yaw))[:, None]
    _in_chunks(sixd, features[:, ROTATIONS])
    features[:, CONTACTS] = foot_contacts(world_pos, range(1, world_pos.shape[1]), motion.fps)
    start = np.array([pelvis_pos[0, 0], pelvis_pos[0, 2], yaw[0]])
    return features, start


def _in_chunks(convert, out: np.ndarray) -> np.ndarray:
    """``out`` (frames first) filled with ``convert(start, stop)`` ROTATION_CHUNK frames at a time."""
    for a in range(0, out.shape[0], ROTATION_CHUNK):
        out[a : a + ROTATION_CHUNK] = convert(a, min(a + ROTATION_CHUNK, out.shape[0]))
    return out


def decode_pose(features, start=None):
    """Local body-joint rotations (..., F, 21, 4) and the pelvis world position (..., F, 3).

    Works on numpy arrays and torch tensors (differentiable) with any leading batch shape.
    """
    turn, pelvis_pos = decode_path(features, start)
    return decode_rotations(features, turn), pelvis_pos


def decode_path(features, start=None):
    """(heading rotation (..., F, 4), pelvis world position (..., F, 3)): the velocities integrated."""
    xp = namespace(features)
    if start is None:
        start = xp.zeros_like(features[..., 0, :3])
    dyaw = features[..., :-1, HEADING_VELOCITY.start]
    yaw = start[..., 2:3] + xp.cat([xp.zeros_like(dyaw[..., :1]), xp.cumsum(dyaw, -1)], -1)
    turn = yaw_quat(yaw)

    local_step = features[..., :-1, PLANAR_VELOCITY]
    zero = xp.zeros_like(local_step[..., :1])
    step = quat_rotate(turn[..., :-1, :], xp.cat([local_step[..., :1], zero, local_step[..., 1:]], -1))
    origin = xp.stack([start[..., 0], xp.zeros_like(start[..., 0]), start[..., 1]], -1)[..., None, :]
    planar = origin + xp.cat([xp.zeros_like(step[..., :1, :]), xp.cumsum(step, -2)], -2)
    pelvis_pos = xp.cat([planar[..., :1], features[..., HEIGHT], planar[..., 2:]], -1)
    return turn, pelvis_pos


def decode_rotations(features, turn):
    """Local body-joint rotations (..., F, 21, 4) of features whose heading rotation is ``turn``."""
    xp = namespace(features)
    shape = features.shape[:-1] + (NUM_BODY_JOINTS, 6)
    rotations = sixd_to_quat(features[..., ROTATIONS].reshape(shape))
    pelvis_rot = quat_mul(turn, rotations[..., 0, :])
    return xp.cat([pelvis_rot[..., None, :], rotations[..., 1:, :]], -2)


def features_to_motion(features: np.ndarray, start=None, skeleton: Skeleton | None = None) -> Motion:
    """The canonical Motion (30 fps) a feature array describes; ``skeleton`` supplies bone
    lengths (default: the canonical skeleton)."""
    skeleton = skeleton or canonical_skeleton()
    if skeleton.names != JOINT_NAMES:
        raise ValueError("features decode onto the canonical skeleton only")
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[1] != FEATURE_DIM:
        raise ValueError(f"features must be (frames, {FEATURE_DIM}); got {features.shape}")
    turn, pelvis_pos = decode_path(features, None if start is None else np.asarray(start, dtype=np.float64))
    motion = Motion.rest(skeleton, features.shape[0], FEATURE_FPS)
    rotations = motion.rotations
    positions = motion.positions
    body = [skeleton.index(n) for n in BODY_JOINTS]
    decoded = np.empty((len(features), len(body), 4))
    rotations[:, body] = _in_chunks(lambda a, b: decode_rotations(features[a:b], turn[a:b]), decoded)
    positions[:, skeleton.index(PLACEMENT_ROOT)] = 0.0
    positions[:, skeleton.index(PELVIS)] = pelvis_pos
    return motion
