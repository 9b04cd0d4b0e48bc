"""Augmentations of raw feature windows (training.contrastive.augment), on real clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.io.bvh import read_bvh
from core.ops.features import (
    CONTACTS,
    FEATURE_DIM,
    FEATURE_FPS,
    HEADING_VELOCITY,
    NUM_BODY_JOINTS,
    PLANAR_VELOCITY,
    ROTATIONS,
    motion_to_features,
)
from core.ops.mirror import mirror
from core.ops.resample import resample
from core.ops.rotations import sixd_to_matrix
from training.contrastive.augment import (
    DEFAULTS,
    Augmenter,
    crop_resize,
    mask_joints,
    mirror_content_indices,
    mirror_features,
    mirror_label_map,
    speed_change,
)

WINDOW = 60
ALL_OFF = {k: False for k in ("speed_change", "crop", "heading_rotation", "mirror", "joint_mask", "noise")}


@pytest.fixture(scope="module")
def windows(cache) -> torch.Tensor:
    """(32, 80, 134) raw real windows (80 frames: room for speed-ups to 60 output frames)."""
    rng = np.random.default_rng(3)
    lengths = cache.lengths()
    picks = rng.choice(np.flatnonzero(lengths >= 80), 32, replace=False)
    out = []
    for i in picks:
        start = rng.integers(0, lengths[i] - 80 + 1)
        out.append(cache.clip_features(i)[start : start + 80])
    return torch.from_numpy(np.stack(out))


MIRROR_CLIPS = (
    "dataset-2_walk_normal_001",
    "dataset-2_wave-left-hand_masculine_009",
    "dataset-2_walk-turn-right_masculine_014",
    "dataset-2_run_normal_044",
    "dataset-1_bow_active_001",
    "dataset-1_walk-left_normal_001",
)


def test_feature_mirror_equals_motion_mirror(cache, data_root):
    by_id = {c.id: c for c in cache.clips}
    clips = [by_id[c] for c in MIRROR_CLIPS if c in by_id]
    assert len(clips) >= 5
    for clip in clips:
        motion = resample(read_bvh(data_root / clip.path), FEATURE_FPS)
        features, _ = motion_to_features(motion)
        mirrored, _ = motion_to_features(mirror(motion))
        ours = mirror_features(features)
        np.testing.assert_allclose(ours, mirrored, atol=1e-5, rtol=0, err_msg=clip.id)
        assert np.array_equal(mirror_features(ours), features)  # an involution, exactly
        # the torch path is the same map
        t = torch.from_numpy(features)
        assert torch.equal(mirror_features(t), torch.from_numpy(ours))
        # the mirror really changes the clip (left/right differ in every real take)
        assert np.abs(ours - features).max() > 0.1


def test_mirror_labels():
    names = ["walk", "wave-left-hand", "wave-right-hand", "walk-turn-left", "walk-turn-right", "run"]
    table = mirror_label_map(names)
    assert table.tolist() == [0, 2, 1, 4, 3, 5]
    assert np.array_equal(table[table], np.arange(len(names)))
    assert mirror_label_map(["wave-left-hand", "walk"]).tolist() == [0, 1]  # twin absent: unchanged
    labels = np.array([1, 1, 3, 0])
    assert mirror_content_indices(labels, [True, False, True, True], names).tolist() == [2, 1, 4, 0]
    t = mirror_content_indices(torch.tensor(labels), torch.tensor([True, False, True, True]), names)
    assert t.tolist() == [2, 1, 4, 0]


def test_speed_one_and_full_crop_are_identities(windows):
    x = windows[:, :WINDOW]
    assert torch.equal(speed_change(x, 1.0), x)
    assert torch.equal(crop_resize(x, 1.0), x)
    assert torch.equal(speed_change(windows, 1.0, start=7, length=WINDOW), windows[:, 7 : 7 + WINDOW])
    g = torch.Generator().manual_seed(0)
    assert torch.equal(Augmenter(ALL_OFF)(x, g), x)
    out, info = Augmenter(ALL_OFF | {"length": WINDOW})(windows, g, return_info=True)
    starts = info["start"].long()
    for b in range(len(x)):
        assert torch.equal(out[b], windows[b, starts[b] : starts[b] + WINDOW])


def test_speed_change_reads_the_clip_faster(windows):
    out = speed_change(windows, 2.0, length=40)
    # integer times: frame k is source frame 2k, exactly, with the velocities doubled
    expected = windows[:, ::2].clone()
    vel = np.r_[np.arange(FEATURE_DIM)[PLANAR_VELOCITY], np.arange(FEATURE_DIM)[HEADING_VELOCITY]]
    expected[..., vel] *= 2
    assert torch.allclose(out, expected, atol=1e-6)
    # fractional times: valid rotations, 0/1 contacts, velocities scaled
    slow = speed_change(windows, 0.83, length=WINDOW)
    m = sixd_to_matrix(slow[..., ROTATIONS].reshape(32, WINDOW, NUM_BODY_JOINTS, 6).double())
    eye = torch.eye(3, dtype=torch.float64)
    assert torch.allclose(m.transpose(-1, -2) @ m, eye.expand_as(m), atol=1e-5)
    assert set(slow[..., CONTACTS].unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(slow[:, 0, vel], windows[:, 0, vel] * 0.83, atol=1e-5)


def test_masking_touches_only_the_chosen_joints(windows):
    x = windows[:4, :WINDOW]
    chosen = torch.zeros(4, NUM_BODY_JOINTS, dtype=torch.bool)
    chosen[0, 3] = chosen[2, [0, 7, 20]] = True
    for value, fill in (("zero", [0.0] * 6), ("identity", [1.0, 0, 0, 0, 1.0, 0])):
        out = mask_joints(x, chosen, value)
        rot_in = x[..., ROTATIONS].reshape(4, WINDOW, NUM_BODY_JOINTS, 6)
        rot_out = out[..., ROTATIONS].reshape(4, WINDOW, NUM_BODY_JOINTS, 6)
        for b in range(4):
            for j in range(NUM_BODY_JOINTS):
                if chosen[b, j]:
                    assert torch.equal(rot_out[b, :, j], torch.tensor(fill).expand(WINDOW, 6))
                else:
                    assert torch.equal(rot_out[b, :, j], rot_in[b, :, j])
        rest = np.ones(FEATURE_DIM, bool)
        rest[ROTATIONS] = False
        assert torch.equal(out[..., rest], x[..., rest])
    # the augmenter's own masks: only masked joints differ when masking is the only augmentation
    g = torch.Generator().manual_seed(5)
    out, info = Augmenter(ALL_OFF | {"joint_mask": True, "joint_mask_prob": 0.3})(x, g, return_info=True)
    changed = (out[..., ROTATIONS] != x[..., ROTATIONS]).reshape(4, WINDOW, NUM_BODY_JOINTS, 6).any(-1).any(1)
    assert info["masked"].any() and torch.equal(changed, info["masked"])


def test_heading_turn_changes_only_heading_velocity(windows):
    x = windows[:8, :WINDOW]
    g = torch.Generator().manual_seed(1)
    out, info = Augmenter(ALL_OFF | {"heading_rotation": True})(x, g, return_info=True)
    other = np.ones(FEATURE_DIM, bool)
    other[HEADING_VELOCITY] = False
    assert torch.equal(out[..., other], x[..., other])
    added = out[..., HEADING_VELOCITY.start] - x[..., HEADING_VELOCITY.start]
    turn = info["turn"].float()
    assert torch.allclose(added[:, 0], turn[:, 0], atol=1e-6) and torch.allclose(added[:, -1], turn[:, 1], atol=1e-6)
    assert added.abs().max() <= DEFAULTS["heading_max_rate"] + 1e-6 and added.abs().max() > 0


def test_augmenter_mirror_info_and_reproducibility(windows):
    x = windows[:, :WINDOW]
    out, info = Augmenter(ALL_OFF | {"mirror": True})(x, torch.Generator().manual_seed(2), return_info=True)
    m = info["mirrored"]
    assert 0 < m.sum() < len(m)
    assert torch.equal(out[m], mirror_features(x[m])) and torch.equal(out[~m], x[~m])

    augment = Augmenter({"length": WINDOW})
    a, info_a = augment(windows, torch.Generator().manual_seed(7), return_info=True)
    b = augment(windows, torch.Generator().manual_seed(7))
    c = augment(windows, torch.Generator().manual_seed(8))
    assert a.shape == (32, WINDOW, FEATURE_DIM) and a.dtype == windows.dtype
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.isfinite(a).all()
    # with a longer source the whole speed range is used, within its bounds
    lo, hi = DEFAULTS["speed_range"]
    assert info_a["speed"].min() >= lo - 1e-9 and info_a["speed"].max() <= hi + 1e-9
    assert info_a["speed"].max() > 1.0
    # turning one augmentation off leaves the other draws unchanged
    _, info_d = Augmenter({"length": WINDOW, "noise": False})(
        windows, torch.Generator().manual_seed(7), return_info=True
    )
    assert torch.equal(info_d["mirrored"], info_a["mirrored"]) and torch.equal(info_d["masked"], info_a["masked"])
    # same-length source: speed-ups are clipped to 1
    _, info_e = augment(windows[:, :WINDOW], torch.Generator().manual_seed(7), return_info=True)
    assert info_e["speed"].max() <= 1.0


def test_config_validation():
    with pytest.raises(ValueError, match="unknown"):
        Augmenter({"speed": 1.0})
    with pytest.raises(ValueError):
        Augmenter({"crop_range": [0.5, 1.5]})
    with pytest.raises(ValueError):
        Augmenter({"mask_value": "mean"})
    with pytest.raises(ValueError, match="length"):
        Augmenter({"length": 90})(torch.zeros(2, 60, FEATURE_DIM), torch.Generator())
