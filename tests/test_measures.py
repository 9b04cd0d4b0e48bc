"""The evaluation measures (DESIGN §7) on constructed cases with known answers, plus identity
checks on real clips."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from core.io.bvh import read_bvh
from core.motion.canonical import PELVIS, PLACEMENT_ROOT, canonical_skeleton
from core.motion.motion import Motion
from core.ops.rotations import axis_angle_to_quat, quat_conj, quat_mul, quat_rotate, yaw_quat
from tests.conftest import bandai_clip
from training.evaluation.measures import (
    confusion_matrix,
    contact_foot_skate,
    contact_timing_f1,
    contact_timing_scores,
    foot_floor,
    foot_skate_pair,
    foot_skate_ratio,
    frechet_distance,
    jitter,
    jitter_ratio,
    motion_contacts,
    motion_foot_skate,
    per_class_accuracy,
    recognition_accuracy,
    root_path_shape_error,
    zero_weight_deviation,
)
from training.evaluation.probes import chance_accuracy, leakage_report, linear_probe_accuracy

SKELETON = canonical_skeleton()
HIPS = SKELETON.index(PELVIS)


def translated_rest(offsets: np.ndarray) -> Motion:
    """The rest pose carried rigidly along per-frame pelvis displacements (F, 3)."""
    motion = Motion.rest(SKELETON, len(offsets))
    motion.positions[:, HIPS] += offsets
    return motion


def with_pelvis_path(xz: np.ndarray) -> Motion:
    return translated_rest(np.stack([xz[:, 0], np.zeros(len(xz)), xz[:, 1]], axis=1))


def rotate_xz(xz: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return xz @ np.array([[c, -s], [s, c]]).T


# --------------------------------------------------------------------------- recognition


def test_recognition_accuracy_and_breakdown():
    predicted = ["angry", "tired", "tired", "happy", "angry"]
    target = ["angry", "tired", "angry", "happy", "angry"]
    assert recognition_accuracy(predicted, target) == pytest.approx(0.8)
    per_class = per_class_accuracy(predicted, target)
    assert per_class == {
        "angry": {"accuracy": pytest.approx(2 / 3), "count": 3},
        "happy": {"accuracy": 1.0, "count": 1},
        "tired": {"accuracy": 1.0, "count": 1},
    }
    counts, order = confusion_matrix(predicted, target)
    assert order == ["angry", "happy", "tired"]
    np.testing.assert_array_equal(counts, [[2, 0, 1], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(ValueError):
        recognition_accuracy(["a"], ["a", "b"])


# --------------------------------------------------------------------------- FMD


def test_frechet_distance_of_identical_sets_is_zero():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 16))
    assert frechet_distance(a, a) == 0.0
    few = rng.normal(size=(10, 64))  # fewer samples than dimensions: singular covariance
    assert frechet_distance(few, few) == 0.0


def test_frechet_distance_of_a_shifted_set_is_the_squared_shift():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(500, 8))
    shift = np.array([3.0, 0.0, -1.0, 0, 0, 0, 0, 2.0])
    assert frechet_distance(a, a + shift) == pytest.approx(np.sum(shift**2), rel=1e-8)
    # Independent samples of two unit Gaussians a shift apart: FMD -> |shift|^2 as N grows.
    b = rng.normal(size=(20000, 8)) + shift
    c = rng.normal(size=(20000, 8))
    assert frechet_distance(c, b) == pytest.approx(np.sum(shift**2), abs=0.1)
    assert frechet_distance(b, c) == pytest.approx(frechet_distance(c, b), rel=1e-9)


def test_frechet_distance_matches_the_sqrtm_formula():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6)) + 0.5
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca + cb - 2 * scipy.linalg.sqrtm(ca @ cb).real)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)


# --------------------------------------------------------------------------- root path


def s_curve(frames: int = 120) -> np.ndarray:
    t = np.linspace(0.0, 1.0, frames)
    return np.stack([600.0 * t, 120.0 * np.sin(2 * np.pi * t)], axis=1)


def test_path_scaled_turned_and_moved_has_zero_shape_error():
    path = s_curve()
    source = with_pelvis_path(path)
    assert root_path_shape_error(source, source) == pytest.approx(0.0, abs=1e-12)
    moved = rotate_xz(2.0 * path, 0.7) + np.array([-300.0, 45.0])
    assert root_path_shape_error(source, with_pelvis_path(moved)) == pytest.approx(0.0, abs=1e-12)
    assert root_path_shape_error(source, with_pelvis_path(0.5 * path)) == pytest.approx(0.0, abs=1e-12)


def test_a_different_path_has_a_large_shape_error():
    path = s_curve()
    source = with_pelvis_path(path)
    straight = np.stack([np.linspace(0, 600, 120), np.zeros(120)], axis=1)
    mirrored = path * np.array([1.0, -1.0])  # a right turn for a left one: no rotation maps it
    assert root_path_shape_error(source, with_pelvis_path(straight)) > 0.05
    assert root_path_shape_error(source, with_pelvis_path(mirrored)) > 0.1
    # A source walking a straight line against an output that stays put: the worst a scale fit
    # can do, the mean distance from the centroid over the length, a quarter.
    line = with_pelvis_path(straight)
    assert root_path_shape_error(line, with_pelvis_path(np.zeros((120, 2)))) == pytest.approx(0.25, rel=0.02)


def test_shape_error_resamples_an_output_of_another_length():
    straight = np.stack([np.linspace(0, 600, 120), np.zeros(120)], axis=1)
    longer = np.stack([np.zeros(240), np.linspace(0, 1200, 240)], axis=1)
    assert root_path_shape_error(with_pelvis_path(straight), with_pelvis_path(longer)) == pytest.approx(0.0, abs=1e-9)


def test_a_source_that_does_not_travel_is_fitted_rigidly_against_body_size():
    rng = np.random.default_rng(3)
    sway = np.cumsum(rng.normal(scale=0.3, size=(150, 2)), axis=0)
    sway -= sway.mean(0)
    source = with_pelvis_path(sway)
    turned = rotate_xz(sway, 1.2) + np.array([100.0, -20.0])
    assert root_path_shape_error(source, with_pelvis_path(turned)) == pytest.approx(0.0, abs=1e-12)
    # Walking 5 m away from an in-place take is not scaled away.
    away = np.stack([np.linspace(0, 500, 150), np.zeros(150)], axis=1)
    assert root_path_shape_error(source, with_pelvis_path(away)) > 1.0


# --------------------------------------------------------------------------- contacts


def gait(frames: int = 120, period: int = 30, down: int = 12, phase: int = 0) -> np.ndarray:
    t = np.arange(frames)
    left = (t - phase) % period < down
    right = (t - phase - period // 2) % period < down
    return np.stack([left, right], axis=1)


def shifted(labels: np.ndarray, frames: int) -> np.ndarray:
    out = np.zeros_like(labels)
    out[frames:] = labels[: len(labels) - frames]
    return out


def test_contact_f1_on_identical_and_shifted_sequences():
    source = gait()
    assert contact_timing_f1(source, source) == 1.0
    assert contact_timing_f1(source, shifted(source, 1)) == 1.0
    assert contact_timing_f1(source, shifted(source, 2)) == 1.0
    assert contact_timing_f1(source, shifted(source, 5)) < 0.2  # every step lands 5 frames late
    assert contact_timing_f1(source, ~source) < 0.2  # touch-downs where the source lifts off
    assert contact_timing_f1(np.zeros((50, 2), bool), np.zeros((50, 2), bool)) == 1.0
    assert contact_timing_f1(source, np.zeros_like(source)) == 0.0


def test_contact_f1_known_value_flicker_and_heel_toe_input():
    source = np.zeros(40, bool)
    source[10:20] = True  # one touch-down (10) and one lift-off (20)
    late_lift = source.copy()
    late_lift[20:23] = True  # lift-off at 23: 3 frames late, touch-down on time
    scores = contact_timing_scores(source, late_lift)
    assert scores == {"precision": pytest.approx(0.5), "recall": pytest.approx(0.5), "f1": pytest.approx(0.5)}
    flicker = source.copy()
    flicker[14] = False  # a one-frame lift inside a contact is label noise, not two steps
    assert contact_timing_f1(source, flicker) == 1.0
    # (F, 4) heel/toe labels reduce to feet: a heel-only contact matches a toe-only one.
    heel = np.zeros((40, 4), bool)
    heel[10:20, 0] = True
    toe = np.zeros((40, 4), bool)
    toe[10:20, 1] = True
    assert contact_timing_f1(heel, toe) == 1.0
    other_foot = np.zeros((40, 4), bool)
    other_foot[10:20, 3] = True
    assert contact_timing_f1(heel, other_foot) == 0.0


# --------------------------------------------------------------------------- foot skate


def test_a_foot_sliding_one_cm_per_frame_on_the_ground_skates_one():
    frames = 60
    step = np.array([0.6, 0.0, 0.8])  # 1 cm per frame, not along an axis
    sliding = translated_rest(np.arange(frames)[:, None] * step)
    assert motion_foot_skate(sliding) == pytest.approx(1.0)
    assert foot_skate_ratio(sliding) == 0.0  # under the 2.5 cm per frame of SMooDi/GMD
    fast = translated_rest(np.arange(frames)[:, None] * 3.0 * step)
    assert foot_skate_ratio(fast) == 1.0


def test_a_planted_or_lifted_foot_does_not_skate():
    planted = Motion.rest(SKELETON, 60)
    assert motion_foot_skate(planted) == 0.0
    # Sliding 10 cm above the source's floor is flight, not skate.
    sliding = translated_rest(np.arange(60)[:, None] * np.array([1.0, 0.0, 0.0]))
    lifted = translated_rest(np.arange(60)[:, None] * np.array([1.0, 0.0, 0.0]) + np.array([0.0, 10.0, 0.0]))
    assert motion_foot_skate(lifted, floor=foot_floor(sliding)) == 0.0
    assert foot_skate_pair(planted, sliding) == {"output": pytest.approx(1.0), "source": 0.0}
    down = np.ones((60, 4), bool)
    down[30:] = False
    assert contact_foot_skate(sliding, down) == pytest.approx(1.0)
    assert contact_foot_skate(planted, down) == 0.0


# --------------------------------------------------------------------------- jitter


def test_jitter_is_zero_for_constant_velocity_and_known_for_a_cubic():
    frames, fps = 40, 30.0
    t = np.arange(frames) / fps
    steady = translated_rest(np.stack([50.0 * t, np.zeros(frames), -20.0 * t], axis=1))
    assert jitter(steady) == pytest.approx(0.0, abs=1e-6)
    accelerating = translated_rest(np.stack([30.0 * t**2, np.zeros(frames), np.zeros(frames)], axis=1))
    assert jitter(accelerating) == pytest.approx(0.0, abs=1e-6)
    a = 7.0  # x = a t^3 (cm, s): jerk 6a cm/s^3 on every body joint
    cubic = translated_rest(np.stack([a * t**3, np.zeros(frames), np.zeros(frames)], axis=1))
    assert jitter(cubic) == pytest.approx(6 * a, rel=1e-6)
    assert jitter(cubic, per_second=False) == pytest.approx(6 * a / fps**3, rel=1e-6)
    assert jitter_ratio(cubic, [21.0, 63.0]) == pytest.approx(1.0, rel=1e-6)
    assert jitter_ratio(steady, [cubic]) == pytest.approx(0.0, abs=1e-6)


# --------------------------------------------------------------------------- zero weights


def test_zero_weight_deviation_measures_the_right_groups(walk_clip):
    source = read_bvh(walk_clip).slice(0, 90)
    same = zero_weight_deviation(source, source, {g: 0.0 for g in ("root", "torso", "left_arm", "right_leg")})
    assert sorted(same["groups"]) == ["left_arm", "right_leg", "torso"]
    # Identical rotations give 0 up to round-off in the geodesic angle (~1e-16 rad).
    assert max(same["groups"].values()) < 1e-12 and same["rotation_rad"] < 1e-12
    assert same["root_position_cm"] == 0.0 and same["root_heading_rad"] == 0.0
    # Bend the left elbow by 0.3 rad on one frame.
    rotations = source.rotations.copy()
    elbow = SKELETON.index("LowerArm_L")
    rotations[40, elbow] = quat_mul(rotations[40, elbow], axis_angle_to_quat(np.array([0.0, 0.3, 0.0])))
    bent = source.with_arrays(rotations=rotations)
    result = zero_weight_deviation(source, bent, {"left_arm": 0.0, "right_arm": 0.0, "torso": 1.0})
    assert result["groups"]["left_arm"] == pytest.approx(0.3, abs=1e-9)
    assert result["groups"]["right_arm"] < 1e-12 and "torso" not in result["groups"]
    assert result["rotation_rad"] == pytest.approx(0.3, abs=1e-9)
    # Nothing has weight 0: nothing is measured.
    assert zero_weight_deviation(source, bent, {"left_arm": 1.0})["rotation_rad"] == 0.0
    with pytest.raises(ValueError):
        zero_weight_deviation(source, bent, {"tail": 0.0})


def test_a_heading_change_belongs_to_the_root_not_the_torso(walk_clip):
    source = read_bvh(walk_clip).slice(0, 60)
    world_rot, world_pos = source.world()
    placement = SKELETON.index(PLACEMENT_ROOT)
    turn = yaw_quat(np.array(0.5))
    # Turn the whole body 0.5 rad about the vertical through the origin, through the pelvis's local
    # rotation and position (the placement joint keeps its own).
    parent_rot = world_rot[:, placement]
    new_world = quat_mul(np.broadcast_to(turn, parent_rot.shape), world_rot[:, HIPS])
    rotations = source.rotations.copy()
    positions = source.positions.copy()
    rotations[:, HIPS] = quat_mul(quat_conj(parent_rot), new_world)
    new_pos = quat_rotate(np.broadcast_to(turn, parent_rot.shape), world_pos[:, HIPS])
    positions[:, HIPS] = quat_rotate(quat_conj(parent_rot), new_pos - world_pos[:, placement])
    turned = source.with_arrays(rotations=rotations, positions=positions)
    np.testing.assert_allclose(turned.world()[1][:, HIPS], new_pos, atol=1e-9)

    result = zero_weight_deviation(source, turned, {"torso": 0.0, "left_leg": 0.0, "root": 0.0})
    assert result["groups"]["torso"] < 1e-9 and result["groups"]["left_leg"] < 1e-12
    assert result["root_heading_rad"] == pytest.approx(0.5, abs=1e-9)
    expected_cm = np.linalg.norm(new_pos - world_pos[:, HIPS], axis=-1).max()
    assert result["root_position_cm"] == pytest.approx(expected_cm) and expected_cm > 10


# --------------------------------------------------------------------------- probes


def test_a_linear_probe_reads_separable_codes_and_not_random_ones():
    rng = np.random.default_rng(4)
    centres = rng.normal(scale=4.0, size=(3, 16))
    labels = np.repeat(["a", "b", "c"], 80)
    codes = centres[np.searchsorted(["a", "b", "c"], labels)] + rng.normal(size=(240, 16))
    train = np.arange(240) % 2 == 0
    assert linear_probe_accuracy(codes[train], labels[train], codes[~train], labels[~train]) >= 0.98

    random_codes = rng.normal(size=(800, 32))
    random_labels = rng.integers(0, 4, size=800)
    acc = linear_probe_accuracy(random_codes[:400], random_labels[:400], random_codes[400:], random_labels[400:])
    assert abs(acc - 0.25) < 0.08
    again = linear_probe_accuracy(random_codes[:400], random_labels[:400], random_codes[400:], random_labels[400:])
    assert acc == again  # deterministic
    assert chance_accuracy([0, 0, 1], [0, 1, 1, 1]) == 0.25


def test_leakage_report_flags_a_code_that_carries_the_other_label():
    rng = np.random.default_rng(5)
    n = 420
    content = rng.integers(0, 3, size=n)
    style = rng.integers(0, 7, size=n)
    content_dirs, style_dirs = rng.normal(scale=3.0, size=(3, 12)), rng.normal(scale=3.0, size=(7, 12))
    content_codes = content_dirs[content][:, None, :] + rng.normal(size=(n, 5, 12))  # (N, T, D): pooled
    style_codes = style_dirs[style] + rng.normal(size=(n, 12))
    train = rng.random(n) < 0.6
    clean = leakage_report(content_codes, style_codes, content, style, train)
    for probe in clean.values():
        assert probe["accuracy"] < probe["chance"] + 0.12
    assert clean["style_from_content"]["num_classes"] == 7 and clean["content_from_style"]["num_classes"] == 3

    leaky = leakage_report(
        np.concatenate([content_codes.mean(1), style_codes], axis=1), style_codes, content, style, train
    )
    assert leaky["style_from_content"]["accuracy"] > 0.9


# --------------------------------------------------------------------------- real clips


def test_identity_output_on_real_clips_is_perfectly_faithful(walk_clip):
    for path in (walk_clip, bandai_clip("dataset-2_wave-left-hand_normal_001.bvh.gz")):
        source = read_bvh(path)
        copy = source.with_arrays(rotations=source.rotations.copy(), positions=source.positions.copy())
        assert root_path_shape_error(source, copy) == pytest.approx(0.0, abs=1e-12)
        assert contact_timing_f1(motion_contacts(source), motion_contacts(copy)) == 1.0
        deviation = zero_weight_deviation(
            source, copy, {g: 0.0 for g in ("root", "torso", "left_arm", "right_arm", "left_leg", "right_leg")}
        )
        assert deviation["rotation_rad"] < 1e-12 and deviation["root_position_cm"] == 0.0
        skate = foot_skate_pair(source, copy)
        assert skate["output"] == skate["source"]
        # Planted mocap feet barely slide; the 5 cm rule also counts a walk's heel strike and
        # toe-off (about 2 cm/frame), an in-place take's feet never move.
        assert contact_foot_skate(source, motion_contacts(source)) < 0.5
        assert skate["source"] < (3.0 if path == walk_clip else 0.1)
        assert 0 < jitter(source) and jitter_ratio(copy, [source]) == pytest.approx(1.0)


def test_real_clips_of_another_route_score_poor_fidelity(walk_clip):
    walk = read_bvh(walk_clip)
    turn = read_bvh(bandai_clip("dataset-2_walk-turn-left_normal_001.bvh.gz"))
    wave = read_bvh(bandai_clip("dataset-2_wave-left-hand_normal_001.bvh.gz"))
    other_walk = read_bvh(bandai_clip("dataset-2_walk_exhausted_001.bvh.gz"))
    assert root_path_shape_error(walk, other_walk) < 0.02  # straight lines at another pace
    assert root_path_shape_error(walk, turn) > 0.05
    assert root_path_shape_error(walk, wave) > 0.2
    assert root_path_shape_error(wave, walk) > 1.0
