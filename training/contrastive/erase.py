"""Fit the linear leakage erasers of trained encoders and export them with the weights.

    python -m training.contrastive erase --encoders out/contrastive/shipped/encoders --out weights/encoders/contrastive

E_c's codes get an eraser of the style labels and E_s's style codes one of the content labels
(core.models.erasure, LEACE, each keeping its own label's directions), both fitted on the TRAINING
split's windows only, so the test-split probes measure what generalises. This uses labels: reports
state it ("erasers" in the JSON).
"""

from __future__ import annotations

import numpy as np

from core.models.encoders import Encoders, load_encoders, save_encoders
from core.models.erasure import fit_leace
from training.data.cache import load_cache
from training.data.split import load_split
from training.data.windows import WindowSampler
from training.runs import WEIGHTS_LICENSE


def train_windows(window: int, stride: int, cache=None, split=None):
    """(features (N, window, 134), style labels, content labels, style names, content names) of the
    dataset-2 training split's windows. ``cache`` and ``split`` default to the project's (tests pass
    a cache whose held-out takes are poisoned, to prove none is read)."""
    cache = cache or load_cache(progress=False)
    dataset2 = {c.id for c in cache.clips if c.dataset == "dataset-2"}
    ids = [c for c in (split or load_split())["train"] if c in dataset2]
    sampler = WindowSampler(cache, ids, window, stride)
    batch = sampler.get(np.arange(len(sampler)))
    return batch["features"], batch["style"], batch["content"], sampler.style_names, sampler.content_names


def fit_erasers(encoders: Encoders, window: int = 60, stride: int = 30, cache=None) -> tuple[dict, dict]:
    """(erasers, description): style erased from E_c codes, content from E_s codes (global and
    per body group)."""
    features, styles, contents, style_names, content_names = train_windows(window, stride, cache)
    plain = Encoders(encoders.content, encoders.style, encoders.config, encoders.stats, encoders.meta)
    codes = plain.encode(features)
    # each eraser keeps the directions of the label its code is for (chosen on the val split: a
    # plain erasure of content from E_s also took 5 points of style accuracy with it)
    erasers = {
        "content": fit_leace(codes["content"].mean(axis=1), styles, keep=contents),
        "style": fit_leace(codes["style"], contents, keep=styles),
        # issue 16: the per-group codes condition the denoiser too, and carried content (0.45-0.63)
        "groups": fit_leace(codes["groups"].reshape(len(features), -1), contents, keep=styles),
    }
    description = {
        "method": "LEACE (core.models.erasure), fitted on dataset-2 training-split windows",
        "windows": len(features),
        "window": window,
        "stride": stride,
        "content": {"erases": "style labels", "keeps": "content labels", "classes": list(style_names)},
        "style": {"erases": "content labels", "keeps": "style labels", "classes": list(content_names)},
        "groups": {
            "erases": "content labels",
            "keeps": "style labels",
            "classes": list(content_names),
            "codes": "the 6 group codes of a window as one vector",
        },
    }
    return erasers, description


def run(encoders_stem, out_stem, window: int = 60, stride: int = 30, command: str = "") -> None:
    encoders = load_encoders(encoders_stem)
    erasers, description = fit_erasers(encoders, window, stride)
    meta = dict(encoders.meta)
    meta["erasers"] = {**description, "command": command}
    meta["license"] = WEIGHTS_LICENSE
    save_encoders(out_stem, encoders.content, encoders.style, meta, encoders.stats, erasers)
    print(f"wrote {out_stem}.safetensors/.json: erasers fitted on {description['windows']} training windows")
