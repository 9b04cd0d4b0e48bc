"""An animation on a skeleton: local joint rotations and translations per frame."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..ops.kinematics import forward_kinematics
from .skeleton import Skeleton


@dataclass(frozen=True)
class Motion:
    """rotations: (F, J, 4) local quaternions (w, x, y, z); positions: (F, J, 3) local
    translations (the rest offset for joints without position channels); fps: frames per second."""

    skeleton: Skeleton
    rotations: np.ndarray
    positions: np.ndarray
    fps: float

    def __post_init__(self):
        f, j = self.rotations.shape[:2]
        if self.rotations.shape != (f, j, 4) or self.positions.shape != (f, j, 3):
            raise ValueError(
                f"Motion arrays must be (F, J, 4) and (F, J, 3); got {self.rotations.shape} and {self.positions.shape}"
            )
        if j != self.skeleton.num_joints:
            raise ValueError(f"Motion has {j} joints but its skeleton has {self.skeleton.num_joints}")
        if self.fps <= 0:
            raise ValueError(f"Motion fps must be positive, got {self.fps}")

    @property
    def num_frames(self) -> int:
        return self.rotations.shape[0]

    def world(self) -> tuple[np.ndarray, np.ndarray]:
        """World rotations (F, J, 4) and positions (F, J, 3) by forward kinematics."""
        return forward_kinematics(self.skeleton.parents, self.rotations, self.positions)

    def world_of(self, joints, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
        """World rotations (F, len(joints), 4) and positions (F, len(joints), 3) of some joints,
        by forward kinematics ``chunk`` frames at a time: a long take's whole world arrays are
        never held for the few joints a caller reads."""
        joints = list(joints)
        rotations = np.empty((self.num_frames, len(joints), 4))
        positions = np.empty((self.num_frames, len(joints), 3))
        for a in range(0, self.num_frames, chunk):
            world_rot, world_pos = self.slice(a, a + chunk).world()
            rotations[a : a + chunk], positions[a : a + chunk] = world_rot[:, joints], world_pos[:, joints]
        return rotations, positions

    def with_arrays(self, rotations=None, positions=None, fps=None) -> Motion:
        return replace(
            self,
            rotations=self.rotations if rotations is None else rotations,
            positions=self.positions if positions is None else positions,
            fps=self.fps if fps is None else fps,
        )

    def slice(self, start: int, stop: int) -> Motion:
        return self.with_arrays(self.rotations[start:stop], self.positions[start:stop])

    @classmethod
    def rest(cls, skeleton: Skeleton, num_frames: int = 1, fps: float = 30.0) -> Motion:
        """The skeleton standing in its rest pose (zero rotations, rest offsets)."""
        rotations = np.zeros((num_frames, skeleton.num_joints, 4))
        rotations[..., 0] = 1.0
        positions = np.broadcast_to(skeleton.offsets, (num_frames, skeleton.num_joints, 3)).copy()
        return cls(skeleton, rotations, positions, fps)
