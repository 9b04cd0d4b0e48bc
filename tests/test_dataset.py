"""The dataset layer on the real data: index, split, feature cache, window sampler, mirror labels."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter

import numpy as np
import pytest

from core.io.bvh import read_bvh
from core.ops.features import FEATURE_DIM, motion_to_features
from tests.conftest import bandai_clip
from training.data import cache as cache_module
from training.data.cache import load_cache, read_cache
from training.data.index import label_names, load_index
from training.data.labels import mirror_content_label
from training.data.split import SPLIT_FILE, load_split, make_split, to_json
from training.data.windows import WindowSampler

SMALL = (
    "dataset-1_walk_old_002",
    "dataset-1_dash_giant_001",
    "dataset-2_run_active_005",
    "dataset-2_walk_normal_001",
    "dataset-2_wave-left-hand_elderly_003",
    "dataset-2_raise-up-both-hands_active_001",
)


@pytest.fixture(scope="module")
def index(data_root):
    return load_index(data_root)


@pytest.fixture(scope="module")
def small_clips(index):
    return [c for c in index if c.id in SMALL]


@pytest.fixture(scope="module")
def small_cache_path(small_clips, data_root, tmp_path_factory):
    path = tmp_path_factory.mktemp("cache") / "small.safetensors"
    load_cache(small_clips, root=data_root, path=path, workers=2, progress=False)
    return path


@pytest.fixture(scope="module")
def small_cache(small_cache_path):
    return read_cache(small_cache_path)


def _count_builds(monkeypatch) -> list:
    calls = []
    build = cache_module.build_cache

    def counting(*args, **kwargs):
        calls.append(1)
        return build(*args, **kwargs)

    monkeypatch.setattr(cache_module, "build_cache", counting)
    return calls


# index


def test_index_counts_and_labels(index):
    datasets = Counter(c.dataset for c in index)
    # dataset-1 holds 174 clips (two walk takes per style), not the 173 its README states
    assert len(index) == 2846 and datasets == {"dataset-1": 174, "dataset-2": 2672}
    assert len({c.id for c in index}) == len(index)
    for dataset, styles, contents in (("dataset-1", 15, 16), ("dataset-2", 7, 10)):
        clips = [c for c in index if c.dataset == dataset]
        assert len({c.style for c in clips}) == styles
        assert len({c.content for c in clips}) == contents
        assert {c.content for c in clips} <= set(label_names(dataset)[0])
    for clip in index:
        assert clip.id == f"{clip.dataset}_{clip.content}_{clip.style}_{clip.take:03d}"
        assert clip.path.startswith(f"bandai-namco/{clip.dataset}/data/{clip.id}.bvh")
    extras = {"call", "punch", "slash", "kick", "respond", "dance-short"}
    assert {c.style for c in index if c.content in extras} == {"normal"}
    cells = Counter((c.content, c.style) for c in index if c.dataset == "dataset-2")
    assert len(cells) == 70 and min(cells.values()) >= 15


def test_index_rejects_json_labels_that_disagree_with_the_file_name(data_root, tmp_path):
    for dataset, clip in (("dataset-1", "dataset-1_bow_sad_001"), ("dataset-2", "dataset-2_run_normal_002")):
        shutil.copytree(data_root / "bandai-namco" / dataset / "cfg", tmp_path / "bandai-namco" / dataset / "cfg")
        folder = tmp_path / "bandai-namco" / dataset / "data"
        folder.mkdir()
        source = next((data_root / "bandai-namco" / dataset / "data").glob(f"{clip}.bvh*"))
        shutil.copy(source, folder / source.name)
        shutil.copy(source.with_name(f"{clip}.json"), folder / f"{clip}.json")
    assert len(load_index(tmp_path)) == 2
    (folder / "dataset-2_run_normal_002.json").write_text(json.dumps({"content": 0, "style": 0}))
    with pytest.raises(ValueError, match="disagree with the file name"):
        load_index(tmp_path)


# split


def test_committed_split_is_the_regenerated_split(index):
    assert SPLIT_FILE.read_text() == to_json(make_split(index))


def test_split_is_by_take_and_covers_every_cell(index):
    split = load_split()
    by_id = {c.id: c for c in index}
    seen = [i for ids in split.values() for i in ids]
    assert len(seen) == len(set(seen)) == len(index)  # every take in exactly one split
    assert {by_id[i].dataset for i in split["unseen_style"]} == {"dataset-1"}
    assert len(split["unseen_style"]) == 174
    cells = {(c.content, c.style) for c in index if c.dataset == "dataset-2"}
    for name in ("train", "val", "test"):
        assert {(by_id[i].content, by_id[i].style) for i in split[name]} == cells
        assert all(by_id[i].dataset == "dataset-2" for i in split[name])
    shares = np.array([len(split[n]) for n in ("train", "val", "test")]) / 2672
    np.testing.assert_allclose(shares, [0.8, 0.1, 0.1], atol=0.02)


# cache


def test_cache_holds_each_clips_features_and_reloads_equal(small_cache, small_clips, small_cache_path, data_root):
    assert [c.id for c in small_cache.clips] == sorted(SMALL)
    assert small_cache.features.dtype == np.float32 and small_cache.features.shape[1] == FEATURE_DIM
    for i, clip in enumerate(small_cache.clips):
        features, start = motion_to_features(read_bvh(data_root / clip.path))
        np.testing.assert_array_equal(small_cache.clip_features(i), features.astype(np.float32))
        np.testing.assert_array_equal(small_cache.starts[i], start)
    assert small_cache.offsets[-1] == len(small_cache.features)

    again = load_cache(small_clips, root=data_root, path=small_cache_path, progress=False)
    assert again.clips == small_cache.clips and again.stamp == small_cache.stamp
    for name in ("features", "offsets", "starts"):
        np.testing.assert_array_equal(getattr(again, name), getattr(small_cache, name))


def test_cache_is_reused_while_fresh_and_rebuilt_when_stale(small_clips, data_root, tmp_path, monkeypatch):
    path = tmp_path / "cache.safetensors"
    builds = _count_builds(monkeypatch)
    clips = small_clips[:2]
    load_cache(clips, root=data_root, path=path, workers=1, progress=False)
    load_cache(clips, root=data_root, path=path, workers=1, progress=False)
    assert len(builds) == 1

    monkeypatch.setattr(cache_module, "FEATURE_VERSION", cache_module.FEATURE_VERSION + 1)
    load_cache(clips, root=data_root, path=path, workers=1, progress=False)
    monkeypatch.setattr(cache_module, "CACHE_FORMAT", cache_module.CACHE_FORMAT + 1)
    load_cache(clips, root=data_root, path=path, workers=1, progress=False)
    load_cache(small_clips[:3], root=data_root, path=path, workers=1, progress=False)  # another file list
    assert len(builds) == 4

    path.write_bytes(path.read_bytes()[:100])  # a truncated file is stale, not an error
    assert len(load_cache(small_clips[:3], root=data_root, path=path, workers=1, progress=False)) == 3
    assert len(builds) == 5


def test_cache_rebuilds_when_a_clip_file_changes(index, data_root, tmp_path):
    clip = next(c for c in index if c.id == "dataset-1_bow_sad_001")
    shutil.copytree(data_root / "bandai-namco" / "dataset-1" / "cfg", tmp_path / "bandai-namco" / "dataset-1" / "cfg")
    target = tmp_path / clip.path
    target.parent.mkdir(parents=True)
    shutil.copy(data_root / clip.path, target)
    path = tmp_path / "cache.safetensors"
    before = load_cache([clip], root=tmp_path, path=path, workers=1, progress=False)

    shutil.copy(bandai_clip("dataset-1_bow_happy_001.bvh"), target)  # same name, other take, other size
    after = load_cache([clip], root=tmp_path, path=path, workers=1, progress=False)
    assert after.stamp != before.stamp
    expected, _ = motion_to_features(read_bvh(target))
    np.testing.assert_array_equal(after.features, expected.astype(np.float32))


# windows


def test_windows_have_the_right_frames_and_labels(small_cache):
    ids = [c.id for c in small_cache.clips]
    sampler = WindowSampler(small_cache, ids, length=40, stride=15)
    lengths = small_cache.lengths()
    assert sampler.skipped == [c.id for c, n in zip(small_cache.clips, lengths) if n < 40]
    assert len(sampler) == sum(max(0, (n - 40) // 15 + 1) for n in lengths)

    batch = sampler.get(np.arange(len(sampler)))
    assert batch["features"].shape == (len(sampler), 40, FEATURE_DIM)
    assert batch["features"].dtype == np.float32
    for k in range(len(sampler)):
        clip, start = batch["clip"][k], batch["start"][k]
        assert start % 15 == 0 and start + 40 <= lengths[clip]
        np.testing.assert_array_equal(batch["features"][k], small_cache.clip_features(clip)[start : start + 40])
        assert sampler.style_names[batch["style"][k]] == small_cache.clips[clip].style
        assert sampler.content_names[batch["content"][k]] == small_cache.clips[clip].content


def test_window_order_is_seeded(small_cache):
    ids = [c.id for c in small_cache.clips]
    sampler = WindowSampler(small_cache, ids, length=30, stride=10, seed=3)
    again = WindowSampler(small_cache, ids, length=30, stride=10, seed=3)
    np.testing.assert_array_equal(sampler.order(0), again.order(0))
    assert sorted(sampler.order(0)) == list(range(len(sampler)))
    assert not np.array_equal(sampler.order(0), sampler.order(1))
    assert not np.array_equal(sampler.order(0), WindowSampler(small_cache, ids, 30, 10, seed=4).order(0))
    batches = list(sampler.batches(8, epoch=2, drop_last=True))
    assert len(batches) == len(sampler) // 8 and all(len(b["clip"]) == 8 for b in batches)
    expected = sampler.get(sampler.order(2)[: len(batches) * 8])["features"]
    np.testing.assert_array_equal(np.concatenate([b["features"] for b in batches]), expected)


def test_balanced_windows_give_every_style_an_equal_share(small_cache):
    ids = [c.id for c in small_cache.clips if c.dataset == "dataset-2"]
    sampler = WindowSampler(small_cache, ids, length=20, stride=1, seed=0, balance="style")
    shares = np.bincount(sampler.get(sampler.order(0))["style"], minlength=len(sampler.style_names)) / len(sampler)
    natural = np.bincount(sampler.get(np.arange(len(sampler)))["style"]) / len(sampler)
    assert natural.max() - natural.min() > 0.3  # the walk and wave takes are much longer
    np.testing.assert_allclose(shares, 1 / len(sampler.style_names), atol=0.05)
    with pytest.raises(ValueError):
        WindowSampler(small_cache, ids, 20, 1, balance="take")
    with pytest.raises(KeyError):
        WindowSampler(small_cache, ["dataset-2_walk_normal_999"], 20, 1)


# mirror labels


def test_mirror_content_label_swaps_sides_only(index):
    assert mirror_content_label("wave-left-hand") == "wave-right-hand"
    assert mirror_content_label("raise-up-right-hand") == "raise-up-left-hand"
    assert mirror_content_label("walk-turn-left") == "walk-turn-right"
    assert mirror_content_label("walk-right") == "walk-left"
    for content in {c.content for c in index}:
        mirrored = mirror_content_label(content)
        assert mirror_content_label(mirrored) == content
        assert mirrored == re.sub(r"left|right", lambda m: {"left": "right", "right": "left"}[m[0]], content)

