"""Shared test fixtures: where the real data lives and a few real clips."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.data.paths import REPO_ROOT, bandai_root, data_root

__all__ = ["BANDAI_ROOT", "DATA_ROOT", "REPO_ROOT", "bandai_clip", "canonical_clip", "tiny_diffusion_config"]

DATA_ROOT = data_root()
BANDAI_ROOT = bandai_root(DATA_ROOT)


def bandai_clip(name: str) -> Path:
    """Path of a real Bandai Namco clip by file name (dataset inferred from the prefix)."""
    dataset = name.split("_", 1)[0]
    return BANDAI_ROOT / dataset / "data" / name


def canonical_clip(name: str):
    """A real Bandai clip (canonical skeleton) as a 30 fps Motion: what stylizers take."""
    from core.io.bvh import read_bvh
    from core.ops.features import FEATURE_FPS
    from core.ops.resample import resample

    return resample(read_bvh(bandai_clip(name)), FEATURE_FPS)


def tiny_diffusion_config(folder: Path, **settings) -> str:
    """The path of a model config of the diffusion stylizer in ``folder``: a tiny random-init
    denoiser (seeded; untrained, so its values mean nothing) and the shipped encoders, named relative
    to the config's folder as the shipped config names them. ``settings``: its sampling settings."""
    import json
    import os

    import torch

    from core.models.denoiser import Denoiser, DenoiserConfig, save_denoiser
    from core.models.encoders import load_encoders

    encoders = REPO_ROOT / "weights" / "encoders" / "contrastive"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        denoiser = Denoiser(DenoiserConfig(hidden=16, blocks=2, condition_dim=32), 20)
    save_denoiser(folder / "denoiser", denoiser, stats=load_encoders(encoders).stats)
    config = {"stylizer": "diffusion", "denoiser": "denoiser", "encoders": os.path.relpath(encoders, folder)}
    path = folder / "stylizer.json"
    path.write_text(json.dumps({**config, **settings}))
    return str(path)


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not BANDAI_ROOT.is_dir():
        pytest.fail(f"real motion data not found at {BANDAI_ROOT}; set MST_DATA to the shared data folder")
    return DATA_ROOT


@pytest.fixture(scope="session")
def cache(data_root):
    """The feature cache of every clip (training.data.cache; built on first use, then reloaded)."""
    from training.data.cache import load_cache

    return load_cache(root=data_root, progress=False)


@pytest.fixture(scope="session")
def split():
    """The committed take-level split (training/splits/bandai_split.json)."""
    from training.data.split import load_split

    return load_split()


@pytest.fixture(scope="session")
def sealed(cache, split):
    """The cache with every test-split take's frames replaced by NaN: whatever fits on it and stays
    finite never read a test take (the sealed split of issue 15)."""
    import dataclasses

    import numpy as np

    test = set(split["test"])
    features = np.array(cache.features, copy=True)
    for row, clip in enumerate(cache.clips):
        if clip.id in test:
            features[cache.offsets[row] : cache.offsets[row + 1]] = np.nan
    return dataclasses.replace(cache, features=features)


@pytest.fixture(scope="session")
def walk_clip(data_root) -> Path:
    return bandai_clip("dataset-2_walk_normal_001.bvh.gz")


@pytest.fixture(scope="session")
def clips(data_root) -> dict:
    """Four real clips at 30 fps, canonical skeleton: a plain walk, the same walk tired, a one-armed
    wave (arms-only style) and an elderly run (a different content)."""
    return {
        "walk": canonical_clip("dataset-2_walk_normal_001.bvh.gz"),
        "tired_walk": canonical_clip("dataset-2_walk_exhausted_001.bvh.gz"),
        "wave": canonical_clip("dataset-2_wave-right-hand_active_020.bvh.gz"),
        "elderly_run": canonical_clip("dataset-2_run_elderly_001.bvh.gz"),
    }
