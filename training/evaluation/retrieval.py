"""The retrieval baseline (DESIGN §7): the nearest training clip with the source's content and the
reference's style, time-stretched to the source's length.

Labels. The source's content label and each reference's style label come from ``request.options``:
``content_label`` (the source's content), ``style_label`` (the main reference's style) and
``group_style_labels`` ({group: style} for references given per group). Any label not given is
looked up by recognising the motion as a dataset clip: same frame count and the same mean feature
vector within 1e-3 (``identify``); a motion that is no dataset clip then raises ValueError.
``training.evaluation.pairs.Pair.request`` fills the options, so the evaluation never looks up.

Distance. Every clip is summarised by the mean over its frames of its canonical features (all 134:
pelvis height, heading-frame planar velocity, heading velocity, 6D joint rotations, contacts),
z-scored with the mean and standard deviation of those summaries over the training split (a
dimension with std < 1e-6 is left unscaled). The candidate nearest to the *source* in Euclidean
distance wins (ties: the first in clip-id order). Only training-split clips are candidates, so a test
take is never retrieved.

Output. The retrieved clip replaces each styled group as ``ReferenceCopyStylizer`` does (weight 0
keeps the content's group exactly; per-group references get their own retrieval by their style).
"""

from __future__ import annotations

import numpy as np

from core.motion.motion import Motion
from core.ops.features import features_to_motion, motion_to_features
from core.stylize.baselines import ReferenceCopyStylizer
from core.stylize.request import GROUPS, StyleRequest
from training.data.cache import FeatureCache, load_cache
from training.data.index import Clip
from training.data.split import load_split

IDENTIFY_TOLERANCE = 1e-3


class RetrievalStylizer:
    """See the module doc. ``cache`` and ``split`` default to the project's (loaded on first use)."""

    name = "retrieval"

    def __init__(self, cache: FeatureCache | None = None, split: dict[str, list[str]] | None = None):
        self._cache = cache
        self._split = split
        self._ready = False

    def _prepare(self) -> None:
        if self._ready:
            return
        cache = self._cache = self._cache or load_cache(progress=False)
        split = self._split = self._split or load_split()
        self._means = np.stack([cache.clip_features(i).astype(np.float64).mean(0) for i in range(len(cache))])
        self._lengths = cache.lengths()
        self._rows = {clip.id: i for i, clip in enumerate(cache.clips)}
        training = set(split["train"])
        self._train_rows = np.array([i for i, c in enumerate(cache.clips) if c.id in training], dtype=int)
        if not len(self._train_rows):
            raise ValueError("the split has no training clips in the cache")
        train_means = self._means[self._train_rows]
        self._center = train_means.mean(0)
        std = train_means.std(0)
        self._scale = np.where(std < 1e-6, 1.0, std)
        self._ready = True

    def _summary(self, motion: Motion) -> np.ndarray:
        features, _ = motion_to_features(motion)
        return features.mean(0)

    def identify(self, motion: Motion) -> Clip | None:
        """The dataset clip this motion is (same frame count and mean features), or None."""
        self._prepare()
        summary = self._summary(motion)
        rows = np.flatnonzero(self._lengths == motion.num_frames)
        if not len(rows):
            return None
        errors = np.abs(self._means[rows] - summary).max(1)
        best = int(np.argmin(errors))
        return self._cache.clips[rows[best]] if errors[best] < IDENTIFY_TOLERANCE else None

    def _label(self, motion: Motion, given: str | None, kind: str, what: str) -> str:
        if given:
            return given
        clip = self.identify(motion)
        if clip is None:
            raise ValueError(f"retrieval needs the {what}'s {kind} label: pass it in options or use a dataset clip")
        return getattr(clip, kind)

    def retrieve(self, source: Motion, content: str, style: str) -> Clip:
        """The training clip of (content, style) nearest to ``source`` (see the module doc)."""
        self._prepare()
        clips = self._cache.clips
        rows = [i for i in self._train_rows if clips[i].content == content and clips[i].style == style]
        if not rows:
            raise ValueError(f"no training clip with content {content!r} and style {style!r}")
        query = (self._summary(source) - self._center) / self._scale
        candidates = (self._means[rows] - self._center) / self._scale
        distances = np.linalg.norm(candidates - query, axis=1)
        return clips[rows[int(np.argmin(distances))]]

    def clip_motion(self, clip: Clip) -> Motion:
        self._prepare()
        row = self._rows[clip.id]
        return features_to_motion(self._cache.clip_features(row), self._cache.starts[row])

    def retrieved(self, request: StyleRequest) -> dict[str, Clip]:
        """Group -> the training clip that group is copied from (groups with weight 0 left out)."""
        options = request.options
        content = self._label(request.content, options.get("content_label"), "content", "content motion")
        group_labels = options.get("group_style_labels") or {}
        styles: dict[int, str] = {}
        out: dict[str, Clip] = {}
        for group in GROUPS:
            if request.weight(group) == 0:
                continue
            reference = request.reference_for(group)
            if group in request.group_references:
                given = group_labels.get(group)
            else:
                given = options.get("style_label")
            if id(reference) not in styles:
                styles[id(reference)] = self._label(reference, given, "style", f"{group} reference")
            out[group] = self.retrieve(request.content, content, styles[id(reference)])
        return out

    def stylize(self, request: StyleRequest) -> Motion:
        picks = self.retrieved(request)
        if not picks:
            return request.content
        motions = {clip.id: self.clip_motion(clip) for clip in picks.values()}
        main = picks.get("torso") or next(iter(picks.values()))
        copy_request = StyleRequest(
            content=request.content,
            reference=motions[main.id],
            group_references={g: motions[c.id] for g, c in picks.items()},
            weights=dict(request.weights),
            options=request.options,
        )
        return ReferenceCopyStylizer().stylize(copy_request)
