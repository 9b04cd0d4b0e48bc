"""The denoiser's own training augmentations (training/diffusion/augment.py) and its training
selection (training.diffusion.train.training_selection), on real clips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.ops.features import CONTACTS, HEADING_VELOCITY, PLANAR_VELOCITY
from training.diffusion.augment import POSE_CHANNELS, STD_FLOOR, hold_in_place, swap_style_statistics
from training.diffusion.train import DEFAULT_CONFIG, training_selection
from training.runs import load_config


@pytest.fixture(scope="module")
def windows(cache):
    """Two normalised 60-frame windows of different dataset-2 clips (a walk and another style's run)."""
    long = cache.lengths() >= 60
    walk = next(i for i, c in enumerate(cache.clips) if c.dataset == "dataset-2" and c.content == "walk" and long[i])
    run = next(
        i
        for i, c in enumerate(cache.clips)
        if c.dataset == "dataset-2" and c.content == "run" and c.style != cache.clips[walk].style and long[i]
    )
    raw = np.stack([cache.clip_features(walk)[:60], cache.clip_features(run)[:60]])
    mean, std = raw.reshape(-1, raw.shape[-1]).mean(0), raw.reshape(-1, raw.shape[-1]).std(0) + 1e-3
    return torch.from_numpy(((raw - mean) / std).astype(np.float32))


def test_no_swap_returns_the_window(windows):
    out = swap_style_statistics(windows[:1], windows[1:], torch.zeros(1))
    torch.testing.assert_close(out, windows[:1], atol=1e-5, rtol=0)


def test_a_full_swap_takes_the_references_statistics_and_keeps_the_timing(windows):
    x, reference = windows[:1], windows[1:]
    out = swap_style_statistics(x, reference, torch.ones(1))
    motion = POSE_CHANNELS
    moving = (x[0, :, motion].std(0) > STD_FLOOR) & (reference[0, :, motion].std(0) > STD_FLOOR)
    assert moving.sum() > 50
    torch.testing.assert_close(out[0, :, motion].mean(0), reference[0, :, motion].mean(0), atol=1e-4, rtol=0)
    torch.testing.assert_close(
        out[0, :, motion].std(0)[moving], reference[0, :, motion].std(0)[moving], atol=1e-4, rtol=1e-4
    )
    # an affine map per channel: the window's own timing (its correlation with itself) is kept
    a, b = out[0, :, motion][:, moving], x[0, :, motion][:, moving]
    corr = ((a - a.mean(0)) * (b - b.mean(0))).mean(0) / (a.std(0, unbiased=False) * b.std(0, unbiased=False))
    assert corr.min() > 0.999
    # the path and the contacts are the source's
    for channels in (PLANAR_VELOCITY, HEADING_VELOCITY, CONTACTS):
        assert torch.equal(out[..., channels], x[..., channels])


def test_hold_in_place_stops_only_the_travel(cache):
    window = cache.clip_features(0)[:60]
    held = hold_in_place(window)
    assert not held[:, PLANAR_VELOCITY].any()
    keep = np.ones(window.shape[1], bool)
    keep[PLANAR_VELOCITY] = False
    np.testing.assert_array_equal(held[:, keep], window[:, keep])
    assert window[:, PLANAR_VELOCITY].any()  # the input itself is untouched


def test_training_selection_holds_no_held_out_clip(cache, split, data_root):
    """Every source the config names is read, and nothing held out: no dataset-2 val or test take,
    no dataset-1 take of an unseen style or content, no CMU clip EVALUATION.txt reserves."""
    from training.data.split import DATASET1_STYLES_FILE
    from training.data.unlabelled import evaluation_files

    ids, features, styles, contents = training_selection(cache, load_config(DEFAULT_CONFIG))
    assert len(ids) == len(features) == len(styles) == len(contents)
    originals = [i for i in ids if not i.endswith("#mirrored")]
    assert len(originals) * 2 == len(ids)
    partition = json.loads(DATASET1_STYLES_FILE.read_text())["clips"]
    held_out = (
        set(split["val"]) | set(split["test"]) | set(partition["unseen_style"]) | set(partition["unseen_content"])
    )
    held_out |= {f"cmu_iclone_ccbase/{name.split('.')[0]}" for name in evaluation_files(data_root)}
    assert not held_out & set(originals)
    sources = {i.split("/")[0].split("_")[0] for i in originals}
    assert sources == {"dataset-1", "dataset-2", "cmu"}
    assert all(np.isfinite(f).all() for f in features)
    # dataset-1's labels are kept apart from dataset-2's; an unlabelled clip is a style of its own
    assert all(s.startswith("dataset-1:") for i, s in zip(ids, styles) if i.startswith("dataset-1"))
    assert len({s for s in styles if s.startswith("unlabelled:")}) == sum(i.startswith("cmu") for i in originals)
