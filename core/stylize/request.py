"""The one stylizer interface: what every method (baseline or learned) receives and returns.

The server, the command line and the evaluation harness all build a StyleRequest and call
``stylizer.stylize(request)``; swapping methods never changes a caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import RequestError
from ..motion.canonical import BODY_GROUPS, JOINT_NAMES
from ..motion.motion import Motion
from ..ops.features import FEATURE_FPS

GROUPS: tuple[str, ...] = tuple(BODY_GROUPS)


@dataclass(frozen=True)
class StyleRequest:
    """content: the motion to restyle; reference: the style reference for every group without one
    of its own in group_references; weights: style strength per body group (0 = the content's own
    motion exactly, 1 = full style, above 1 exaggerates; a group left out has weight 1); options:
    method-specific settings (seed, sampler steps, cleanup...); progress: called as
    ``progress(done, count)`` by a stylizer that works in pieces (windows, sampler steps) before
    each one, so a caller can report progress and cancel (it raises) within a long take. All
    motions are canonical, 30 fps."""

    content: Motion
    reference: Motion
    group_references: dict[str, Motion] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    progress: Callable[[int, int], None] | None = field(default=None, compare=False)

    def __post_init__(self):
        for name, motion in (("content", self.content), ("reference", self.reference), *self.group_references.items()):
            if motion.skeleton.names != JOINT_NAMES:
                raise ValueError(f"{name}: stylizers take canonical motion; retarget the rig first")
            if abs(motion.fps - FEATURE_FPS) > 1e-3:
                raise ValueError(f"{name}: stylizers take {FEATURE_FPS:g} fps motion; resample first")
        unknown = sorted((set(self.group_references) | set(self.weights)) - set(GROUPS))
        if unknown:
            raise RequestError(f"unknown body groups {unknown}; groups are {list(GROUPS)}")
        negative = {g: w for g, w in self.weights.items() if not w >= 0}
        if negative:
            raise RequestError(f"group weights must be >= 0, got {negative}")

    def weight(self, group: str) -> float:
        return float(self.weights.get(group, 1.0))

    def reference_for(self, group: str) -> Motion:
        return self.group_references.get(group, self.reference)


class Stylizer(Protocol):
    """A stylization method. The result is canonical, 30 fps, with the content's frame count."""

    name: str

    def stylize(self, request: StyleRequest) -> Motion: ...
