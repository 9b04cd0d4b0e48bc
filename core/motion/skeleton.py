"""A joint tree: names, parents, rest offsets and the BVH channel layout of each joint."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ROTATION_CHANNELS = ("Xrotation", "Yrotation", "Zrotation")
POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
DEFAULT_CHANNELS = ("Zrotation", "Xrotation", "Yrotation")
ROOT_CHANNELS = POSITION_CHANNELS + DEFAULT_CHANNELS


def ancestors(parents, joint: int) -> list[int]:
    """The joint and its ancestors up to the root, nearest first, in a parent-index list."""
    chain = [joint]
    while parents[chain[-1]] >= 0:
        chain.append(parents[chain[-1]])
    return chain


@dataclass(frozen=True)
class Skeleton:
    """Joints in depth-first order (every parent before its children).

    offsets are the rest translations from the parent joint (the root's from the origin);
    channels keep the order a BVH file listed them in, so a written file matches the one read;
    end_sites maps a joint index to the offset of its BVH End Site, where it had one.
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    channels: tuple[tuple[str, ...], ...] = ()
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        offsets = np.asarray(self.offsets, dtype=np.float64).reshape(len(self.names), 3)
        object.__setattr__(self, "offsets", offsets)
        if not self.channels:
            channels = tuple(ROOT_CHANNELS if p < 0 else DEFAULT_CHANNELS for p in self.parents)
            object.__setattr__(self, "channels", channels)
        if len(self.parents) != len(self.names) or len(self.channels) != len(self.names):
            raise ValueError("Skeleton needs one parent and one channel list per joint name")
        if len(set(self.names)) != len(self.names):
            raise ValueError("Skeleton joint names must be unique")
        for j, p in enumerate(self.parents):
            if not -1 <= p < j:
                raise ValueError(f"Joint {self.names[j]!r} has parent index {p}; parents must come first")

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"Skeleton has no joint named {name!r}") from None

    def children(self, joint: int) -> list[int]:
        return [j for j, p in enumerate(self.parents) if p == joint]

    def ancestors(self, joint: int) -> list[int]:
        """The joint and its ancestors up to the root, nearest first."""
        return ancestors(self.parents, joint)

    def rotation_order(self, joint: int) -> str:
        """The intrinsic Euler order of the joint's rotation channels, e.g. "ZXY"."""
        axes = "".join(c[0].upper() for c in self.channels[joint] if c in ROTATION_CHANNELS)
        return axes + "".join(a for a in "XYZ" if a not in axes)

    def has_position_channels(self, joint: int) -> bool:
        return any(c in POSITION_CHANNELS for c in self.channels[joint])

    def subset(self, keep: list[int]) -> Skeleton:
        """The skeleton restricted to ``keep`` (a parent-closed list of indices, in order)."""
        remap = {old: new for new, old in enumerate(keep)}
        return Skeleton(
            names=tuple(self.names[j] for j in keep),
            parents=tuple(remap[self.parents[j]] if self.parents[j] >= 0 else -1 for j in keep),
            offsets=self.offsets[keep],
            channels=tuple(self.channels[j] for j in keep),
            end_sites={remap[j]: o for j, o in self.end_sites.items() if j in remap},
        )
