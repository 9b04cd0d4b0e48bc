"""Foot contact labels and the foot-skate measure (DESIGN §3 and §7)."""

from __future__ import annotations

import numpy as np

# A joint is in contact when it is within this height of its own floor level in the clip and
# moves slower than the speed threshold. Per-joint floors (a low percentile of the joint's height)
# make the rule work for ankles and toes alike and for rigs whose joints sit at different heights.
CONTACT_HEIGHT_MARGIN_CM = 4.0
CONTACT_SPEED_CM_PER_S = 30.0
FLOOR_PERCENTILE = 5.0

# DESIGN §7: a foot "on the ground" is within 5 cm of it; skate is its horizontal speed there.
SKATE_HEIGHT_CM = 5.0


def joint_speeds(positions: np.ndarray, fps: float) -> np.ndarray:
    """Speed (units per second) of each joint, (F, J); the first frame repeats the second."""
    if positions.shape[0] < 2:
        return np.zeros(positions.shape[:2])
    step = np.linalg.norm(np.diff(positions, axis=0), axis=-1) * fps
    return np.concatenate([step[:1], step], axis=0)


def foot_contacts(
    world_positions: np.ndarray,
    joint_indices,
    fps: float,
    height_margin: float = CONTACT_HEIGHT_MARGIN_CM,
    speed_threshold: float = CONTACT_SPEED_CM_PER_S,
    up_axis: int = 1,
) -> np.ndarray:
    """Contact labels (F, len(joint_indices)) as booleans, for Y-up world positions in cm."""
    feet = world_positions[:, list(joint_indices)]
    height = feet[..., up_axis]
    floor = np.percentile(height, FLOOR_PERCENTILE, axis=0)
    low = height - floor < height_margin
    slow = joint_speeds(feet, fps) < speed_threshold
    return low & slow


def foot_skate(
    world_positions: np.ndarray,
    joint_indices,
    ground_height: float = 0.0,
    height_threshold: float = SKATE_HEIGHT_CM,
    up_axis: int = 1,
) -> float:
    """Mean horizontal displacement per frame (cm/frame) of the given foot joints over the frames
    where they are within ``height_threshold`` of the ground; 0 when they never are."""
    feet = world_positions[:, list(joint_indices)]
    if feet.shape[0] < 2:
        return 0.0
    planar_axes = [a for a in range(3) if a != up_axis]
    step = np.linalg.norm(np.diff(feet[..., planar_axes], axis=0), axis=-1)
    near = feet[:-1, :, up_axis] - ground_height < height_threshold
    return float(step[near].mean()) if near.any() else 0.0


def ground_drift(feet: np.ndarray, up_axis: int = 1) -> np.ndarray:
    """(F, 3): where still ground under a clip has moved to by each frame, from foot joint
    positions (F, K, 3): each frame it moves by the planar step of the joint lowest on that frame.
    A clip exported in place (root motion removed, as game tools do) slides its planted foot back
    under the body like a treadmill; seen from this ground, that foot stands still and a swinging
    one moves at its speed over the ground. On a travelling clip the lowest joint is a planted one,
    so the drift stays near zero, except over a run's flight phases: callers use it on clips that
    stay in place."""
    if len(feet) < 2:
        return np.zeros((len(feet), 3))
    lowest = feet[:-1, :, up_axis].argmin(axis=1)
    frames = np.arange(len(feet) - 1)
    step = feet[frames + 1, lowest] - feet[frames, lowest]
    step[:, up_axis] = 0.0
    return np.concatenate([np.zeros((1, 3)), np.cumsum(step, axis=0)])
