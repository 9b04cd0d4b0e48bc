"""Fixed-length training windows over the cached clips of one split, in numpy.

Models train on windows, the splits are by take: the sampler only ever cuts windows from the clips
it is given, so windows of one take never land in two splits. Orders are drawn from a generator
seeded by (seed, epoch), so a run is reproducible and an epoch can be replayed on its own. Optional
balancing draws windows so every style (or content, or content×style cell) is equally likely, since
walk takes and long clips would otherwise dominate. Torch code wraps ``get`` (torch.from_numpy).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from training.data.cache import FeatureCache

BALANCE_KEYS = {"style": ("style",), "content": ("content",), "cell": ("content", "style")}


class WindowSampler:
    """Windows of ``length`` frames every ``stride`` frames; clips shorter than ``length`` are
    skipped (their ids are in ``skipped``). Labels are indices into ``style_names`` and
    ``content_names`` (default: the sorted labels of the given clips)."""

    def __init__(
        self,
        cache: FeatureCache,
        clip_ids: Sequence[str],
        length: int,
        stride: int,
        seed: int = 0,
        balance: str | None = None,
        style_names: Sequence[str] | None = None,
        content_names: Sequence[str] | None = None,
    ):
        if length < 1 or stride < 1:
            raise ValueError(f"window length and stride must be positive; got {length}, {stride}")
        if balance is not None and balance not in BALANCE_KEYS:
            raise ValueError(f"balance must be None or one of {sorted(BALANCE_KEYS)}; got {balance!r}")
        position = {clip.id: i for i, clip in enumerate(cache.clips)}
        missing = [c for c in clip_ids if c not in position]
        if missing:
            raise KeyError(f"{len(missing)} clips are not in the cache, e.g. {missing[:3]}")
        self.cache, self.length, self.seed, self.balance = cache, length, seed, balance
        clips = [cache.clips[position[c]] for c in clip_ids]
        self.style_names = tuple(style_names or sorted({c.style for c in clips}))
        self.content_names = tuple(content_names or sorted({c.content for c in clips}))

        rows, self.skipped = [], []
        lengths = cache.lengths()
        for clip in clips:
            i = position[clip.id]
            starts = np.arange(0, lengths[i] - length + 1, stride)
            if len(starts) == 0:
                self.skipped.append(clip.id)
            labels = (i, self.style_names.index(clip.style), self.content_names.index(clip.content))
            rows.append(np.column_stack([np.broadcast_to(labels, (len(starts), 3)), starts]))
        # (windows, 4): cache clip index, style, content, start frame
        self._rows = np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 4), np.int64)

    def __len__(self) -> int:
        return len(self._rows)

    def order(self, epoch: int = 0) -> np.ndarray:
        """Window indices for one epoch: a permutation, or with balancing ``len(self)`` draws
        (with replacement) that give every group the same total probability."""
        rng = np.random.default_rng([self.seed, epoch])
        if self.balance is None:
            return rng.permutation(len(self))
        columns = [{"style": 1, "content": 2}[k] for k in BALANCE_KEYS[self.balance]]
        _, group, counts = np.unique(self._rows[:, columns], axis=0, return_inverse=True, return_counts=True)
        weights = 1.0 / counts[group.ravel()]
        return rng.choice(len(self), size=len(self), p=weights / weights.sum())

    def get(self, indices) -> dict[str, np.ndarray]:
        """features (B, length, D) float32 and per-window clip (cache index), start, style, content."""
        rows = self._rows[np.asarray(indices, dtype=np.int64)]
        frames = self.cache.offsets[rows[:, 0], None] + rows[:, 3, None] + np.arange(self.length)
        return {
            "features": self.cache.features[frames],
            "clip": rows[:, 0],
            "start": rows[:, 3],
            "style": rows[:, 1],
            "content": rows[:, 2],
        }

    def batches(self, batch_size: int, epoch: int = 0, drop_last: bool = False) -> Iterator[dict[str, np.ndarray]]:
        """One epoch of batches in ``order(epoch)``."""
        order = self.order(epoch)
        stop = len(order) - len(order) % batch_size if drop_last else len(order)
        for begin in range(0, stop, batch_size):
            yield self.get(order[begin : begin + batch_size])
