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
from .ops.cleanup import CLEANUP_CONTACT_SPEED_CM_PER_S, clean_foot_contacts, detect_contacts, in_place_ground
from .ops.contacts import CONTACT_HEIGHT_MARGIN_CM
from .ops.features import FEATURE_FPS
from .ops.resample import resample, sample_frames
from .ops.rotations import quat_conj, quat_mul
from .retarget.matching import check_sides
from .retarget.presets import canonical_rig
from .retarget.retarget import check_rig, detached_bones, place_detached, retarget
from .retarget.rig import Rig, RigError
from .stylize.loading import stylizer_by_name
from .stylize.request import GROUPS, StyleRequest

STAGES = ("prepare", "retarget in", "stylize", "cleanup", "retarget out", "resample out")
# Frames per piece of the per-frame stages (retargeting, applying the change): progress and cancel
# between pieces, temporaries bounded by the piece.
CHUNK_FRAMES = 8192


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
    is called before each stage (step of len(STAGES)) and within a stage that works in pieces
    (windows, sampler steps, frame chunks) after each piece; ``cancelled()`` is polled at the same
    points, so a cancel takes effect within one piece at any length."""

    progress: Callable[[int, int, str], None] | None = None
    cancelled: Callable[[], bool] | None = None
    step_delay: float = 0.0  # seconds slept at each step (tests of cancel use it)
    _step: int = field(default=0, init=False)
    _stage: str = field(default="", init=False)

    def step(self, stage: str) -> None:
        if self.cancelled is not None and self.cancelled():
            raise Cancelled(f"cancelled before {stage}")
        if self.progress is not None:
            self.progress(self._step, len(STAGES), stage)
        self._step += 1
        self._stage = stage
        if self.step_delay > 0:
            time.sleep(self.step_delay)
            if self.cancelled is not None and self.cancelled():
                raise Cancelled(f"cancelled during {stage}")

    def part(self, done: int, count: int) -> None:
        """``done`` of the current stage's ``count`` pieces are finished: cancel is polled, and
        for 0 < done < count progress is reported in 1/count steps of the stage (step and total
        multiplied by count, so they stay integers and step / total keeps rising)."""
        if self.cancelled is not None and self.cancelled():
            raise Cancelled(f"cancelled during {self._stage}")
        if self.progress is not None and 0 < done < count:
            self.progress((self._step - 1) * count + done, len(STAGES) * count, self._stage)


def in_chunks(job: Job, frames: int, piece: Callable[[int, int], Motion]) -> Motion:
    """The motion ``piece(start, stop)`` makes of each CHUNK_FRAMES frames of a take, written into
    one: a per-frame stage run in pieces, with progress and cancel between them; a take of one
    piece is that piece."""
    starts = range(0, frames, CHUNK_FRAMES)
    out = None
    for i, start in enumerate(starts):
        part = piece(start, min(start + CHUNK_FRAMES, frames))
        if len(starts) == 1:
            out = part
        else:
            if out is None:
                shape = (frames, part.skeleton.num_joints)
                out = part.with_arrays(np.empty((*shape, 4)), np.empty((*shape, 3)))
            out.rotations[start : start + CHUNK_FRAMES] = part.rotations
            out.positions[start : start + CHUNK_FRAMES] = part.positions
        job.part(i + 1, len(starts))
    return out


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
        for key, default in (
            ("contact_height", CONTACT_HEIGHT_MARGIN_CM),
            ("contact_speed", CLEANUP_CONTACT_SPEED_CM_PER_S),
        ):
            value = options.pop(key, default)
            try:
                values[key] = float(value)
            except (TypeError, ValueError):
                raise RequestError(f"option {key} must be a number, got {value!r}") from None
            if isinstance(value, bool) or not (np.isfinite(values[key]) and values[key] > 0):
                raise RequestError(f"option {key} must be a positive number, got {value!r}")
        return cls(bool(enabled), values["contact_height"], values["contact_speed"])


def clean_stylized(
    content: Motion, stylized: Motion, weights: dict[str, float], settings: CleanupSettings, progress=None
) -> Motion:
    """The "cleanup" stage: the stylized canonical motion with its feet pinned (core.ops.cleanup)
    wherever the canonical content's feet are in contact.

    Contacts come from the content, not the stylized output: the content's contact timing is what
    the user animated and wants kept (DESIGN §6, "contacts from the source"), while the stylizer's
    output is exactly what slides, so labels taken from it would miss the skating frames (a foot
    sliding faster than the speed threshold is "not in contact"). Legs whose group weight is 0
    are left alone (they get the content's rotations back after retargeting anyway), and a
    stylizer that changed the frame count gets contacts detected on its own output instead.
    ``progress(done, count)`` is called as the cleanup goes (Job.part).
    """
    feet = [foot for foot in ("left", "right") if float(weights.get(f"{foot}_leg", 1.0)) != 0.0]
    if not settings.enabled or not feet:
        return stylized
    if stylized.num_frames == content.num_frames:
        ground = in_place_ground(content)  # an in-place clip's feet are planted on moving ground
        contacts = detect_contacts(content, settings.height, settings.speed, ground)
    else:
        ground = contacts = None
    cleaned, _ = clean_foot_contacts(
        stylized,
        contacts,
        height_margin=settings.height,
        speed_threshold=settings.speed,
        feet=feet,
        progress=progress,
        ground=ground,
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
    roles = [("content", content), ("reference", reference)]
    roles += [(f"group reference {g}", m) for g, m in group_references.items()]
    for role, m in roles:  # sides first: a swapped rig's rest pose fails later checks in confusing ways
        try:
            check_sides(m.rig, m.motion)
        except RigError as e:
            raise RigError(f"{role}: {e}") from None
    for rig in {id(m.rig): m.rig for _, m in roles}.values():
        check_rig(rig)
    content30 = resample(content.motion, FEATURE_FPS)  # also the base the output is retargeted onto
    frames30 = content30.num_frames
    content_c = in_chunks(job, frames30, lambda a, b: retarget(content30.slice(a, b), content.rig, canonical_rig()))
    reference_c = to_canonical(reference)
    groups_c = {g: to_canonical(m) for g, m in group_references.items()}
    job.step("stylize")
    out_c = stylizer.stylize(StyleRequest(content_c, reference_c, groups_c, weights, options, progress=job.part))
    job.step("cleanup")
    out_c = clean_stylized(content_c, out_c, weights, cleanup, job.part)
    del content_c  # long takes: each stage's input is let go once the next has its output
    job.step("retarget out")
    out30 = in_chunks(
        job,
        frames30,
        lambda a, b: retarget(out_c.slice(a, b), canonical_rig(), content.rig, target_base=content30.slice(a, b)),
    )
    del out_c
    job.step("resample out")
    original = content.motion
    keep, keep_pelvis = kept_bones(content.rig, weights)
    translated = [b for b in detached_bones(content.rig) if b not in keep]  # placed by retargeting
    if not keep_pelvis:
        translated.append(content.rig.bone("Hips"))

    def finish(start: int, stop: int) -> Motion:
        piece = original.slice(start, stop)
        out = place_detached(content.rig, with_change(original, content30, out30, slice(start, stop)))
        rotations, positions = out.rotations, piece.positions.copy()
        rotations[:, keep] = piece.rotations[:, keep]
        positions[:, translated] = out.positions[:, translated]
        return out.with_arrays(rotations, positions)

    return in_chunks(job, original.num_frames, finish)


def with_change(original: Motion, before30: Motion, after30: Motion, frames: slice | None = None) -> Motion:
    """``original`` changed as ``before30`` (it at the feature rate) became ``after30``: per bone
    the local rotation delta after30 * conj(before30) and the translation delta after30 - before30,
    interpolated to the original's frame times (slerp, linear) and applied to the original's own
    arrays. Resampling the 30 fps result instead would flatten all detail between its frames.
    At the feature rate the change lands on the frames it was taken at: the result is after30.
    ``frames``: only these of the original's frames (default all), so a long take goes in pieces."""
    frames = slice(0, original.num_frames) if frames is None else frames
    if before30 is original:
        return after30.slice(frames.start, frames.stop).with_arrays(fps=original.fps)
    times = np.arange(frames.start, frames.stop) * (FEATURE_FPS / original.fps)
    low = int(np.floor(times[0]))
    high = min(int(np.floor(times[-1])) + 2, after30.num_frames)  # the feature-rate frames they fall between
    before, after = before30.slice(low, high), after30.slice(low, high)
    rotations = quat_mul(after.rotations, quat_conj(before.rotations))
    change = sample_frames(after.with_arrays(rotations, after.positions - before.positions), times - low)
    piece = original.slice(frames.start, frames.stop)
    return piece.with_arrays(quat_mul(change.rotations, piece.rotations), piece.positions + change.positions)


# Bounds on what a request may ask for, checked before anything is allocated (check_request).
MAX_WEIGHT = 10.0  # the add-on's slider stops at 4; far above, a stylizer's arithmetic overflows
MAX_COORDINATE = 1e7  # |translation| and |rest offset| in the rig's units (100 km in cm)
MAX_REQUEST_BYTES = 1 << 30  # the estimated working memory of one request (--max-request-mb)
# Frames at the feature rate every motion needs: the content encoder codes one step per
# content_stride frames.
MIN_FRAMES = 4
# Longest take stylized in one run (seconds): more is a whole capture session, or a frame time
# typed wrong; it would run for hours and hold gigabytes, so it is refused up front.
MAX_SECONDS = 3600.0
# Estimated bytes per frame and bone on the user's rig (its arrays at its own rate and at the
# feature rate, with the retargeting and resampling copies), plus each stylizer's own (fixed bytes,
# bytes per frame of canonical motion). Measured server peaks above idle (VmHWM, CPU, 22 bones at
# 30 fps): statistics, 30,000 frames, 247 MB (this estimate: 324 MB); diffusion (shipped config,
# windows of core.stylize.diffusion.SAMPLE_WINDOW frames), 3,000 / 30,000 / 100,000 frames:
# 102 / 319 / 751 MB (estimate: 129 / 380 / 1,031 MB).
RIG_VALUE_BYTES = 200
STYLIZER_BYTES = {"diffusion": (96 << 20, 500)}
DEFAULT_STYLIZER_BYTES = (0, 2_000)


def _gib(n: float) -> str:
    return f"{n / (1 << 30):.2f} GiB" if n >= 1 << 28 else f"{n / (1 << 20):.1f} MiB"


def _span(seconds: float) -> str:
    return (
        f"{seconds:.3g} s"
        if seconds < 120
        else f"{seconds / 60:.3g} min"
        if seconds < 7200
        else f"{seconds / 3600:.3g} h"
    )


def motion_footprint(frames: int, joints: int, fps: float, stylizer: str = "") -> tuple[float, float]:
    """(frames at the pipeline's feature rate, estimated working bytes) of one motion of a request,
    as floats: at an absurd rate they overflow to inf rather than raise."""
    frames30 = float(np.floor((frames - 1) / fps * FEATURE_FPS + 1e-6)) + 1
    per_frame = STYLIZER_BYTES.get(stylizer, DEFAULT_STYLIZER_BYTES)[1]
    return frames30, RIG_VALUE_BYTES * joints * (frames + frames30) + per_frame * frames30


def check_duration(role: str, frames: int, fps: float) -> None:
    """Refuse (RequestError) a motion longer than MAX_SECONDS or shorter than MIN_FRAMES at the
    feature rate; ``role`` names the input in the message."""
    seconds = (frames - 1) / fps
    if seconds > MAX_SECONDS:
        raise RequestError(
            f"{role}: {frames} frames at {fps:g} fps is {_span(seconds)}; stylize at most "
            f"{_span(MAX_SECONDS)} at once (cut the take, or check its frame rate)"
        )
    frames30 = int(np.floor(seconds * FEATURE_FPS + 1e-6)) + 1  # resample's count at the feature rate
    if frames30 < MIN_FRAMES:
        raise RequestError(
            f"{role}: {frames} frame(s) at {fps:g} fps is {frames30} at {FEATURE_FPS:g} fps; the stylizer "
            f"needs at least {MIN_FRAMES} ({MIN_FRAMES / FEATURE_FPS:.2f} s): use a longer take"
        )


def check_request(header: dict, arrays: dict, stylizer: str = "", max_bytes: int = MAX_REQUEST_BYTES) -> None:
    """Refuse (RequestError) what a validated stylize request (core.protocol) cannot be given
    sanely, before any work: group weights outside [0, MAX_WEIGHT], coordinates beyond
    MAX_COORDINATE, and a request whose estimated working memory (each motion resampled to the
    feature rate; motion_footprint) exceeds ``max_bytes``: a clip of a few frames at 0.001 fps
    spans days, and at 30 fps that is millions of frames. The message names each motion's figures."""
    weights = header.get("weights", {})
    bad = {g: w for g, w in weights.items() if not (isinstance(w, (int, float)) and 0 <= w <= MAX_WEIGHT)}
    if bad:
        raise RequestError(f"group weights must be numbers in [0, {MAX_WEIGHT:g}], got {bad}")
    figures, total = [], STYLIZER_BYTES.get(stylizer, DEFAULT_STYLIZER_BYTES)[0]
    for key, meta in header["motions"].items():
        translations = arrays[f"{key}.translations"]
        if translations.size and np.abs(translations).max() > MAX_COORDINATE:
            raise RequestError(
                f"motion {key!r}: translations reach {np.abs(translations).max():.3g}, beyond "
                f"{MAX_COORDINATE:g} in the rig's units; check the armature's scale"
            )
        frames, joints = translations.shape[:2]
        frames30, need = motion_footprint(frames, joints, meta["fps"], stylizer)
        check_duration(f"motion {key!r}", frames, meta["fps"])
        total += need
        figures.append(
            (
                need,
                f"motion {key!r}: {frames} frames of {joints} bones at {meta['fps']:g} fps "
                f"({_span((frames - 1) / meta['fps'])}), {frames30:.0f} frames at the pipeline's {FEATURE_FPS:g} fps, "
                f"about {_gib(need)}",
            )
        )
    if total > max_bytes:
        listed = "; ".join(text for _, text in sorted(figures, reverse=True))
        raise RequestError(
            f"request too large: it needs about {_gib(total)} of working memory (stylizer {stylizer or '?'}), "
            f"over the server's {_gib(max_bytes)}: {listed}. Check each motion's fps and length, or "
            "stylize a long take in parts"
        )


def rig_from_description(description) -> Rig:
    """A Rig from its description (the Rig.to_json text or the object it encodes), with finite rest
    offsets within MAX_COORDINATE and finite rest rotations, so nothing downstream overflows."""
    text = description if isinstance(description, str) else json.dumps(description)
    try:
        rig = Rig.from_json(text)
    except RigError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as e:
        raise RigError(f"bad rig description: {type(e).__name__}: {e}") from None
    offsets = rig.skeleton.offsets
    if not np.isfinite(offsets).all() or (offsets.size and np.abs(offsets).max() > MAX_COORDINATE):
        raise RigError(f"rig {rig.name!r}: rest offsets must be finite and within {MAX_COORDINATE:g}")
    rest = rig.rest_rotations
    if rest is not None and not (np.isfinite(rest).all() and (np.linalg.norm(rest, axis=-1) > 1e-6).all()):
        raise RigError(f"rig {rig.name!r}: rest_rotations must be finite, non-zero quaternions")
    return rig


def motions_from_message(header: dict, arrays: dict) -> tuple[RigMotion, RigMotion, dict[str, RigMotion]]:
    """(content, reference, group references) of a validated stylize request (core.protocol);
    check_request first, so that nothing is allocated for a request that would not fit."""
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
