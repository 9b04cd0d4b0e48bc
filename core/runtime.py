"""The stylize pipeline the server and the command line run, callable as a library.

    rig motion (any fps) -> 30 fps -> canonical rig -> stylizer -> foot-contact cleanup
        -> content's rig -> the change applied to the content at its own fps

Any rig goes in and comes out on its own skeleton with its own frame rate and frame count. Every
rig is checked first (core.retarget.retarget.check_rig). The stylizer works at 30 fps, but its
result is not resampled back: its change per bone (a local rotation delta, and a translation delta
where retargeting translates a bone) is interpolated to the content's frame times and applied to
the content's own arrays, so a 120 fps clip keeps its detail between the 30 fps frames; detached
bones (IK feet) are then put back at the end of their limbs. Bones the rig description leaves
unmapped keep the content's animation; so do the bones of every body group whose weight is 0
(copied from the original content, so the guarantee holds at any fps), and with every weight 0 the
output is the content exactly.

Input the runtime refuses raises core.errors.RequestError (RigError among them); anything else
raised while running is a bug.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .errors import RequestError
from .motion.canonical import BODY_GROUPS
from .motion.motion import Motion
from .ops.cleanup import CLEANUP_CONTACT_SPEED_CM_PER_S, clean_foot_contacts, detect_contacts
from .ops.contacts import CONTACT_HEIGHT_MARGIN_CM
from .ops.features import FEATURE_FPS
from .ops.resample import resample, sample_frames
from .ops.rotations import quat_conj, quat_mul
from .retarget.presets import canonical_rig
from .retarget.retarget import check_rig, detached_bones, place_detached, retarget
from .retarget.rig import Rig, RigError
from .stylize.loading import stylizer_by_name
from .stylize.request import GROUPS, StyleRequest

STAGES = ("prepare", "retarget in", "stylize", "cleanup", "retarget out", "resample out")


class Cancelled(Exception):
    """The job was cancelled between two steps."""


@dataclass(frozen=True)
class RigMotion:
    """A motion on a user's rig: the rig description and the motion on its skeleton."""

    rig: Rig
    motion: Motion

    @classmethod
    def from_arrays(cls, rig: Rig, rotations, translations, fps: float) -> RigMotion:
        rotations = np.asarray(rotations, dtype=np.float64)
        translations = np.asarray(translations, dtype=np.float64)
        j = rig.skeleton.num_joints
        if rotations.ndim != 3 or rotations.shape[1:] != (j, 4) or translations.shape != rotations.shape[:2] + (3,):
            raise RequestError(
                f"rig {rig.name!r} has {j} bones: rotations must be (F, {j}, 4) and translations (F, {j}, 3); "
                f"got {rotations.shape} and {translations.shape}"
            )
        if not np.isfinite(rotations).all() or not np.isfinite(translations).all():
            raise RequestError("motion arrays hold NaN or infinite values")
        norms = np.linalg.norm(rotations, axis=-1)
        if (norms < 1e-6).any():
            raise RequestError("rotations hold zero-length quaternions")
        if np.abs(norms - 1.0).max() > 1e-4:  # else kept as given, so weight 0 returns the input bit for bit
            rotations = rotations / norms[..., None]
        return cls(rig, Motion(rig.skeleton, rotations, translations, float(fps)))


@dataclass
class Job:
    """Progress reporting and cancellation for one pipeline run: ``progress(step, total, stage)``
    is called before each step; ``cancelled()`` is polled between steps."""

    progress: Callable[[int, int, str], None] | None = None
    cancelled: Callable[[], bool] | None = None
    step_delay: float = 0.0  # seconds slept at each step (tests of cancel use it)
    _step: int = field(default=0, init=False)

    def step(self, stage: str) -> None:
        if self.cancelled is not None and self.cancelled():
            raise Cancelled(f"cancelled before {stage}")
        if self.progress is not None:
            self.progress(self._step, len(STAGES), stage)
        self._step += 1
        if self.step_delay > 0:
            time.sleep(self.step_delay)
            if self.cancelled is not None and self.cancelled():
                raise Cancelled(f"cancelled during {stage}")


def to_canonical(source: RigMotion) -> Motion:
    """The motion at 30 fps on the canonical skeleton."""
    return retarget(resample(source.motion, FEATURE_FPS), source.rig, canonical_rig())


def kept_bones(rig: Rig, weights: dict[str, float]) -> tuple[list[int], bool]:
    """(bones whose local rotation is the content's, whether the pelvis translation is the
    content's) for these group weights: unmapped bones and those of weight-0 groups."""
    zero = {g for g in GROUPS if float(weights.get(g, 1.0)) == 0.0}
    driven = set()
    for joint in rig.mapping:
        group = next((g for g, names in BODY_GROUPS.items() if joint in names), None)
        if joint == "Hips":
            if not {"root", "torso"} <= zero:
                driven.add(rig.bone(joint))
        elif group not in zero:
            driven.add(rig.bone(joint))
    return [b for b in range(rig.skeleton.num_joints) if b not in driven], "root" in zero


@dataclass(frozen=True)
class CleanupSettings:
    """The foot-contact cleanup controls of a request: on/off, and the contact thresholds
    (height above each foot joint's floor, cm; speed, cm/s) that label the content's contacts."""

    enabled: bool = True
    height: float = CONTACT_HEIGHT_MARGIN_CM
    speed: float = CLEANUP_CONTACT_SPEED_CM_PER_S

    @classmethod
    def pop_from(cls, options: dict) -> CleanupSettings:
        """The settings in ``options`` (``foot_cleanup``, ``contact_height``, ``contact_speed``),
        removed from it; a bad value raises RequestError."""
        enabled = options.pop("foot_cleanup", True)
        if not isinstance(enabled, (bool, int, float, np.bool_)) or enabled not in (0, 1):
            raise RequestError(f"option foot_cleanup must be true or false, got {enabled!r}")
        values = {}
        for key, default in (("contact_height", CONTACT_HEIGHT_MARGIN_CM), ("contact_speed", CLEANUP_CONTACT_SPEED_CM_PER_S)):
            value = options.pop(key, default)
            try:
                values[key] = float(value)
            except (TypeError, ValueError):
                raise RequestError(f"option {key} must be a number, got {value!r}") from None
            if isinstance(value, bool) or not (np.isfinite(values[key]) and values[key] > 0):
                raise RequestError(f"option {key} must be a positive number, got {value!r}")
        return cls(bool(enabled), values["contact_height"], values["contact_speed"])


def clean_stylized(content: Motion, stylized: Motion, weights: dict[str, float], settings: CleanupSettings) -> Motion:
    """The "cleanup" stage: the stylized canonical motion with its feet pinned (core.ops.cleanup)
    wherever the canonical content's feet are in contact.

    Contacts come from the content, not the stylized output: the content's contact timing is what
    the user animated and wants kept (DESIGN §6, "contacts from the source"), while the stylizer's
    output is exactly what slides, so labels taken from it would miss the skating frames (a foot
    sliding faster than the speed threshold is "not in contact"). Legs whose group weight is 0
    are left alone (they get the content's rotations back after retargeting anyway), and a
    stylizer that changed the frame count gets contacts detected on its own output instead.
    """
    feet = [foot for foot in ("left", "right") if float(weights.get(f"{foot}_leg", 1.0)) != 0.0]
    if not settings.enabled or not feet:
        return stylized
    if stylized.num_frames == content.num_frames:
        contacts = detect_contacts(content, settings.height, settings.speed)
    else:
        contacts = None
    cleaned, _ = clean_foot_contacts(
        stylized, contacts, height_margin=settings.height, speed_threshold=settings.speed, feet=feet
    )
    return cleaned


def stylize_rig_motion(
    content: RigMotion,
    reference: RigMotion,
    group_references: dict[str, RigMotion] | None = None,
    weights: dict[str, float] | None = None,
    options: dict | None = None,
    stylizer="statistics",
    job: Job | None = None,
) -> Motion:
    """Stylize ``content`` (on its rig) with ``reference``; the result is on the content's
    skeleton, at its fps, with its frame count. ``stylizer``: a name in STYLIZERS or an object.
    ``options`` go to the stylizer, less the cleanup stage's (CleanupSettings: ``foot_cleanup``,
    default true; ``contact_height`` cm and ``contact_speed`` cm/s, the contact thresholds)."""
    job = job or Job()
    weights = {g: float(w) for g, w in (weights or {}).items()}
    group_references = dict(group_references or {})
    options = dict(options or {})
    job.step("prepare")
    cleanup = CleanupSettings.pop_from(options)
    if isinstance(stylizer, str):
        stylizer = stylizer_by_name(stylizer, "stylizer")
    unknown = sorted((set(weights) | set(group_references)) - set(GROUPS))
    if unknown:
        raise RequestError(f"unknown body groups {unknown}; groups are {list(GROUPS)}")
    job.step("retarget in")
    for rig in {id(m.rig): m.rig for m in (content, reference, *group_references.values())}.values():
        check_rig(rig)
    content30 = resample(content.motion, FEATURE_FPS)  # also the base the output is retargeted onto
    content_c = retarget(content30, content.rig, canonical_rig())
    reference_c = to_canonical(reference)
    groups_c = {g: to_canonical(m) for g, m in group_references.items()}
    job.step("stylize")
    out_c = stylizer.stylize(StyleRequest(content_c, reference_c, groups_c, weights, options))
    job.step("cleanup")
    out_c = clean_stylized(content_c, out_c, weights, cleanup)
    job.step("retarget out")
    out30 = retarget(out_c, canonical_rig(), content.rig, target_base=content30)
    job.step("resample out")
    original = content.motion
    out = place_detached(content.rig, with_change(original, content30, out30))
    keep, keep_pelvis = kept_bones(content.rig, weights)
    rotations, positions = out.rotations, original.positions.copy()
    rotations[:, keep] = original.rotations[:, keep]
    translated = [b for b in detached_bones(content.rig) if b not in keep]  # placed by retargeting
    if not keep_pelvis:
        translated.append(content.rig.bone("Hips"))
    positions[:, translated] = out.positions[:, translated]
    return out.with_arrays(rotations, positions)


def with_change(original: Motion, before30: Motion, after30: Motion) -> Motion:
    """``original`` changed as ``before30`` (it at the feature rate) became ``after30``: per bone
    the local rotation delta after30 * conj(before30) and the translation delta after30 - before30,
    interpolated to the original's frame times (slerp, linear) and applied to the original's own
    arrays. Resampling the 30 fps result instead would flatten all detail between its frames.
    At the feature rate the change lands on the frames it was taken at: the result is after30."""
    if before30 is original:
        return after30.with_arrays(fps=original.fps)
    rotations = quat_mul(after30.rotations, quat_conj(before30.rotations))
    change = after30.with_arrays(rotations, after30.positions - before30.positions)
    change = sample_frames(change, np.arange(original.num_frames) * (FEATURE_FPS / original.fps))
    return original.with_arrays(quat_mul(change.rotations, original.rotations), original.positions + change.positions)


def rig_from_description(description) -> Rig:
    """A Rig from its description (the Rig.to_json text or the object it encodes)."""
    text = description if isinstance(description, str) else json.dumps(description)
    try:
        return Rig.from_json(text)
    except RigError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise RigError(f"bad rig description: {type(e).__name__}: {e}") from None


def motions_from_message(header: dict, arrays: dict) -> tuple[RigMotion, RigMotion, dict[str, RigMotion]]:
    """(content, reference, group references) of a validated stylize request (core.protocol)."""
    motions = {}
    for key, meta in header["motions"].items():
        try:
            rig = rig_from_description(meta["rig"])
            motions[key] = RigMotion.from_arrays(
                rig, arrays[f"{key}.rotations"], arrays[f"{key}.translations"], meta["fps"]
            )
        except RequestError as e:
            raise type(e)(f"motion {key!r}: {e}") from None
    groups = {key.split(":", 1)[1]: m for key, m in motions.items() if key.startswith("reference:")}
    return motions["content"], motions["reference"], groups
