"""The unlabelled training cache (issue 16, training.data.unlabelled) on the real CMU clips."""

from __future__ import annotations

import numpy as np
import pytest

from core.ops.features import BODY_JOINTS, FEATURE_DIM, features_to_motion, motion_to_features
from training.data import unlabelled
from training.data.unlabelled import (
    CMU_FOLDER,
    canonical_clip,
    clip_id,
    evaluation_files,
    load_unlabelled_cache,
    training_paths,
)


@pytest.fixture(scope="module")
def cached(data_root):
    return load_unlabelled_cache()


def test_the_cache_holds_exactly_the_training_clips(data_root, cached):
    ids, features = cached
    every = sorted(p.name for p in (data_root / CMU_FOLDER).glob("*.bvh.gz"))
    reserved = evaluation_files(data_root)
    assert len(every) == 61 and len(reserved) == 15 and reserved < set(every)
    assert ids == [clip_id(f"{CMU_FOLDER}/{name}") for name in every if name not in reserved]
    assert not {i.split("/")[1] for i in ids} & {name.split(".")[0] for name in reserved}
    assert len(features) == len(ids) == 46


def test_features_are_finite_canonical_features_on_the_floor(cached):
    _, features = cached
    for f in features:
        assert f.dtype == np.float32 and f.ndim == 2 and f.shape[1] == FEATURE_DIM and len(f) > 1
        assert np.isfinite(f).all()
    # Grounded: the pelvis stands about where Bandai's does (88-91 cm median on walks), not 92-102
    # cm lower as most files' root translations put it; 001_08 sits on the playground's top.
    walks = [np.median(f[:, 0]) for i, f in zip(*cached) if i.split("/")[1] in ("002_02", "007_01", "007_02", "007_04")]
    assert len(walks) == 4 and all(80.0 < h < 95.0 for h in walks)


def test_a_cached_clip_decodes_to_its_canonical_joint_positions(data_root, cached):
    ids, features = cached
    path = training_paths(data_root)[ids.index("cmu_iclone_ccbase/002_04")]  # "jump, balance"
    motion = canonical_clip(data_root / path)
    _, start = motion_to_features(motion)
    decoded = features_to_motion(features[ids.index(clip_id(path))], start)
    joints = [motion.skeleton.index(j) for j in BODY_JOINTS]
    error = np.linalg.norm(decoded.world_of(joints)[1] - motion.world_of(joints)[1], axis=-1)
    assert len(decoded.rotations) == motion.num_frames
    assert error.max() < 1e-3  # cm: float32 features; measured 1e-5


def test_a_stale_cache_is_rebuilt(data_root, tmp_path, monkeypatch):
    path = tmp_path / "unlabelled.safetensors"
    ids, _ = load_unlabelled_cache(root=data_root, path=path)
    built = path.stat().st_mtime_ns
    assert load_unlabelled_cache(root=data_root, path=path)[0] == ids and path.stat().st_mtime_ns == built
    monkeypatch.setattr(unlabelled, "CACHE_FORMAT", unlabelled.CACHE_FORMAT + 1)
    assert load_unlabelled_cache(root=data_root, path=path)[0] == ids and path.stat().st_mtime_ns != built
