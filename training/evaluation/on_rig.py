"""The harness on another rig (``training.evaluate --rig NAME``): does the product hold its figures
for a user whose character is not the Bandai skeleton?

Each pair's clips are retargeted onto the rig and resampled to the rig's frame rate, then stylized
through the product's own path (core.runtime.stylize_rig_motion: retarget in, stylize, cleanup,
retarget out, resample). The judges and measures work on the canonical skeleton at 30 fps, so the
result is brought back there; the source takes the same way back, so output and source are compared
as the rig's user sees them and the round trip's own loss does not count against the stylizer.
Zero-weight groups are checked on the rig itself, where the product promises them: its kept bones
against the rig's source (in canonical space, resampling a styled pelvis twice would blur the check).
"""

from __future__ import annotations

import numpy as np

from core.io.bvh import read_bvh
from core.motion.motion import Motion
from core.ops.features import FEATURE_FPS
from core.ops.resample import resample
from core.ops.rotations import quat_angle
from core.retarget.presets import bundled_rig, canonical_rig, preset_rig
from core.retarget.retarget import leg_length, retarget
from core.retarget.rig import Rig
from core.runtime import RigMotion, kept_bones, stylize_rig_motion
from core.stylize.request import StyleRequest
from training.data.paths import data_root

EVALUATION_RIGS = ("mixamo", "rigify_def", "metarig", "cmu")


def evaluation_rig(name: str) -> Rig:
    """A bundled preset rig by name, or ``cmu``: the CMU rest skeleton in the shared data."""
    if name == "cmu":
        return preset_rig("cmu", read_bvh(data_root() / "cmu-skeleton" / "rest.bvh").skeleton)
    if name not in EVALUATION_RIGS:
        raise ValueError(f"unknown rig {name!r}; choose from {', '.join(EVALUATION_RIGS)}")
    return bundled_rig(name)


def onto_rig(motion: Motion, rig: Rig, fps: float) -> RigMotion:
    return RigMotion(rig, resample(retarget(motion, canonical_rig(), rig), fps))


def back_to_canonical(motion: Motion, rig: Rig) -> Motion:
    return retarget(resample(motion, FEATURE_FPS), rig, canonical_rig())


def kept_bone_deviation(rig: Rig, weights: dict, source: Motion, output: Motion) -> dict:
    """How far the bones the product keeps (weight-0 groups, unmapped bones) moved on the rig:
    max local rotation angle (rad) and, with the root group at weight 0, max pelvis offset (in
    canonical cm)."""
    keep, keep_pelvis = kept_bones(rig, weights)
    rotation = float(np.max(quat_angle(source.rotations[:, keep], output.rotations[:, keep]))) if keep else 0.0
    root = 0.0
    if keep_pelvis:
        pelvis = rig.bone("Hips")
        offset = np.linalg.norm(source.positions[:, pelvis] - output.positions[:, pelvis], axis=-1).max()
        root = float(offset * leg_length(canonical_rig()) / leg_length(rig))
    return {"rotation_rad": rotation, "root_position_cm": root}


def stylize_on_rig(stylizer, request: StyleRequest, rig: Rig, fps: float, cleanup: bool) -> tuple[Motion, Motion, dict]:
    """(source, output, kept-bone deviation) of ``request`` performed on ``rig`` at ``fps`` through
    the product's pipeline (``cleanup``: its foot-contact stage); source and output are back on the
    canonical skeleton at 30 fps."""
    content = onto_rig(request.content, rig, fps)
    output = stylize_rig_motion(
        content,
        onto_rig(request.reference, rig, fps),
        {group: onto_rig(m, rig, fps) for group, m in request.group_references.items()},
        request.weights,
        {**request.options, "foot_cleanup": cleanup},
        stylizer,
    )
    deviation = kept_bone_deviation(rig, request.weights, content.motion, output)
    return back_to_canonical(content.motion, rig), back_to_canonical(output, rig), deviation
