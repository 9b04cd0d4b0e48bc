"""The label-free measures of issue 15 (training.evaluation.label_free) on real clips with known
answers: a clip against itself, the clip sunk, floated, moved, with a knee turned off its hinge, cut
into loops, given a jump, slowed down and resampled."""

from __future__ import annotations

import numpy as np
import pytest

from core.io.bvh import read_bvh
from core.motion.canonical import CONTACT_JOINTS, PELVIS, PLACEMENT_ROOT
from core.ops.resample import resample, time_stretch
from core.ops.rotations import axis_angle_to_quat, quat_conj, quat_mul, quat_rotate, yaw_quat
from core.retarget.matching import rig_for_skeleton
from core.runtime import RigMotion, to_canonical
from tests.conftest import DATA_ROOT, canonical_clip
from training.evaluation import label_free as lf
from training.evaluation.generalization_clips import hold_pelvis_in_place
from training.evaluation.measures import contact_events, contact_timing_f1, foot_floor, motion_contacts, pelvis_path


@pytest.fixture(scope="module")
def real(data_root) -> dict:
    """Real dataset-2 clips at 30 fps on the canonical skeleton."""
    names = {
        "walk": "dataset-2_walk_normal_001",
        "elderly": "dataset-2_walk_elderly_001",
        "tired": "dataset-2_walk_exhausted_001",
        "run": "dataset-2_run_normal_001",
        "raise": "dataset-2_raise-up-right-hand_normal_001",
        "wave": "dataset-2_wave-both-hands_normal_001",
    }
    return {key: canonical_clip(f"{name}.bvh.gz") for key, name in names.items()}


@pytest.fixture(scope="module")
def walk(real):
    return real["walk"]


def moved(motion, offset):
    """The body (everything under the placement root) moved by a world offset, (3,) or (F, 3)."""
    hips, root = motion.skeleton.index(PELVIS), motion.skeleton.index(PLACEMENT_ROOT)
    offset = np.broadcast_to(np.asarray(offset, dtype=np.float64), (motion.num_frames, 3))
    positions = motion.positions.copy()
    positions[:, hips] += quat_rotate(quat_conj(motion.rotations[:, root]), offset)
    return motion.with_arrays(positions=positions)


def turned(motion, yaw: float):
    """The body turned by ``yaw`` about the vertical through the origin."""
    hips, root = motion.skeleton.index(PELVIS), motion.skeleton.index(PLACEMENT_ROOT)
    world_rot, world_pos = motion.world()
    parent = world_rot[:, root]
    turn = np.broadcast_to(yaw_quat(np.array(yaw)), parent.shape)
    rotations, positions = motion.rotations.copy(), motion.positions.copy()
    rotations[:, hips] = quat_mul(quat_conj(parent), quat_mul(turn, world_rot[:, hips]))
    positions[:, hips] = quat_rotate(quat_conj(parent), quat_rotate(turn, world_pos[:, hips]) - world_pos[:, root])
    return motion.with_arrays(rotations=rotations, positions=positions)


def composed(motion, joint: str, rotation_vector):
    """The joint's local rotation followed (in its own frame) by a fixed rotation, on every frame."""
    j = motion.skeleton.index(joint)
    rotations = motion.rotations.copy()
    extra = axis_angle_to_quat(np.asarray(rotation_vector, dtype=np.float64))
    rotations[:, j] = quat_mul(rotations[:, j], np.broadcast_to(extra, rotations[:, j].shape))
    return motion.with_arrays(rotations=rotations)


def on_last(motion, frames: int, offset) -> np.ndarray:
    """(F, 3) offsets: ``offset`` on the last ``frames`` frames, 0 elsewhere."""
    last = np.arange(motion.num_frames)[:, None] >= motion.num_frames - frames
    return np.where(last, np.asarray(offset, dtype=np.float64), 0.0)


# --------------------------------------------------------------------------- body height and self-reference


def test_body_height_sums_the_standing_chain(walk):
    chain = 11.7543 + 40.9854 + 39.0811 + 2.1925 + 15.7357 + np.hypot(8.9846, 0.4062) + 16.3773 + 6.4567
    assert lf.body_height(walk) == pytest.approx(chain, abs=0.01)
    assert 140 < lf.body_height(walk) < 143
    # The Head joint of the real walk rides a few cm under it (knees and hips never fully straight).
    head = walk.world()[1][:, walk.skeleton.index("Head"), 1]
    assert 0 < lf.body_height(walk) - np.percentile(head, 95) < 5


def test_a_clip_against_itself_is_perfectly_faithful(real):
    walk = real["walk"]
    assert lf.self_reference(walk, walk) == {"joint_error_pct": 0.0, "distance_ratio": 1.0, "contact_f1": 1.0}
    assert lf.stance_height_change(walk, walk) == 0.0
    assert lf.floor_penetration(walk, walk) == 0.0
    assert lf.event_retention(walk, walk) == {"pelvis_rise": 1.0, "foot_height": 1.0, "hand_rise": 1.0}
    feet = lf.feet(walk, walk)
    assert feet["stance_height_change_cm"] == 0.0 and feet["contact_f1"] == 1.0
    assert feet["skate_output"] == feet["skate_source"] > 0
    assert feet["planted_skate_output"] == feet["planted_skate_source"]
    pace = lf.pace(walk, walk, walk)
    assert pace == {
        key: 1.0 for key in ("distance_vs_source", "cadence_vs_source", "distance_vs_reference", "cadence_vs_reference")
    }
    scale = lf.descriptor_scale([lf.style_descriptor(m) for m in real.values()])
    assert lf.style_shift(walk, walk, walk, scale) == {"fraction": 0.0, "toward": False}
    # A take that stays in place compares as 1.0 too.
    assert lf.self_reference(real["wave"], real["wave"])["distance_ratio"] == 1.0


def test_joint_error_of_a_body_moved_3_cm_is_3_cm_in_body_heights(walk):
    shifted = moved(walk, [3.0, 0.0, 0.0])
    assert lf.mean_joint_error_pct(walk, shifted) == pytest.approx(300.0 / lf.body_height(walk))
    with pytest.raises(ValueError):
        lf.mean_joint_error_pct(walk, walk.slice(0, 100))


def test_travel_is_the_path_length_without_sway(walk):
    # A path stretched by 1.5 from its start travels 1.5 times as far.
    path = walk.world()[1][:, walk.skeleton.index(PELVIS)]
    planar = (path - path[0]) * np.array([1.0, 0.0, 1.0])
    assert lf.distance_ratio(walk, moved(walk, 0.5 * planar)) == pytest.approx(1.5, rel=1e-9)
    assert 800 < lf.travelled_distance(walk) < 1200  # 9 s at 1.1 m/s
    # A straight path at constant speed keeps its length through the smoothing, ends included.
    still = walk.with_arrays(rotations=np.broadcast_to(walk.rotations[:1], walk.rotations.shape).copy())
    still = still.with_arrays(positions=np.broadcast_to(walk.positions[:1], walk.positions.shape).copy())
    frames = np.arange(walk.num_frames)[:, None]
    straight = moved(still, frames * np.array([2.0, 0.0, 1.0]))
    assert lf.travelled_distance(straight) == pytest.approx(np.hypot(2.0, 1.0) * (walk.num_frames - 1))
    # Sway of 3 cm at two steps a second is not travel (its raw path is 24 cm/s long).
    sway = moved(still, np.sin(2 * np.pi * 2.0 * frames / walk.fps) * np.array([3.0, 0.0, 0.0]))
    raw = np.linalg.norm(np.diff(pelvis_path(sway), axis=0), axis=1).sum()
    assert lf.travelled_distance(sway) < 0.2 * raw
    # A source standing still that the output walks away from: large, finite.
    standing = still.slice(0, 150)
    away = moved(standing, np.arange(150)[:, None] * np.array([3.0, 0.0, 0.0]))  # 90 cm/s
    assert lf.distance_ratio(standing, away) == pytest.approx(90.0 / lf.STATIONARY_SPEED_CM_S, rel=0.05)


# --------------------------------------------------------------------------- feet


def test_a_clip_sunk_5_cm_sinks_and_penetrates_5_cm(walk):
    sunk = moved(walk, [0.0, -5.0, 0.0])
    assert lf.stance_height_change(walk, sunk) == pytest.approx(-5.0, abs=0.1)
    assert lf.floor_penetration(walk, sunk) == pytest.approx(5.0, abs=0.1)
    assert lf.feet(walk, sunk)["stance_height_change_cm"] == pytest.approx(-5.0, abs=0.1)


def test_a_clip_floated_3_cm_floats_3_cm(walk):
    floated = moved(walk, [0.0, 3.0, 0.0])
    assert lf.stance_height_change(walk, floated) == pytest.approx(3.0, abs=0.1)
    assert lf.floor_penetration(walk, floated) == 0.0
    # Contacts are labelled on each clip's own floor, so contact F1 does not see it; the 5 cm rule
    # on the source's floor counts fewer, better planted frames as on the ground.
    feet = lf.feet(walk, floated)
    assert feet["contact_f1"] == 1.0 and feet["stance_height_change_cm"] == pytest.approx(3.0, abs=0.1)
    assert feet["skate_output"] < feet["skate_source"]


def test_only_the_stance_frames_count(walk):
    # Lifting the feet while they are in the air changes nothing for the stance measure.
    contacts = motion_contacts(walk)
    airborne = ~contacts.any(axis=1)
    lifted = moved(walk, np.where(airborne[:, None], [0.0, 10.0, 0.0], 0.0))
    assert lf.stance_height_change(walk, lifted) == 0.0


# --------------------------------------------------------------------------- plausibility


def test_a_knee_turned_5_degrees_off_its_hinge(walk):
    real = lf.off_hinge_deg(walk)
    assert real["knee"] < 2.5 and real["elbow"] < 0.2
    for axis in ([0.0, 0.0, 1.0], [1.0, 0.0, 0.0]):  # about the third axis, and about the shin itself
        off = composed(walk, "LowerLeg_L", np.radians(5.0) * np.array(axis))
        assert lf.off_hinge_deg(off)["knee"] == pytest.approx(5.0, abs=0.5)
    # A turn about the hinge axis itself stays on the hinge.
    flexed = composed(walk, "LowerLeg_R", [0.0, np.radians(10.0), 0.0])
    assert lf.off_hinge_deg(flexed)["knee"] == pytest.approx(real["knee"], abs=0.01)


def test_an_elbow_may_roll_but_not_swing_out_of_its_plane(walk):
    rolled = composed(walk, "LowerArm_R", [np.radians(40.0), 0.0, 0.0])  # pronation, about the forearm
    assert lf.off_hinge_deg(rolled)["elbow"] < 0.2
    # Swing the forearm 5 degrees out of its plane on every frame, toward the hinge axis.
    j, hand = walk.skeleton.index("LowerArm_R"), walk.skeleton.index("Hand_R")
    axis = np.array(lf.HINGES["elbow"].axis)
    bone = walk.skeleton.offsets[hand] / np.linalg.norm(walk.skeleton.offsets[hand])
    direction = quat_rotate(walk.rotations[:, j], np.broadcast_to(bone, (walk.num_frames, 3)))
    across = np.cross(direction, axis)
    swing = axis_angle_to_quat(np.radians(5.0) * across / np.linalg.norm(across, axis=1, keepdims=True))
    rotations = walk.rotations.copy()
    rotations[:, j] = quat_mul(swing, rotations[:, j])
    tilted = walk.with_arrays(rotations=rotations)
    assert lf.off_hinge_deg(tilted)["elbow"] == pytest.approx(5.0, abs=0.05)
    assert np.abs(lf.hinge_angles(tilted, "elbow")[1][:, 1] - 5.0).max() < 0.05


def test_joint_limits_flag_a_knee_bent_backwards(walk):
    flexion = lf.hinge_angles(walk, "knee")[0]
    assert flexion.min() > -lf.HYPEREXTENSION_TOLERANCE_DEG and 40 < flexion.max() < lf.MAX_FLEXION_DEG
    assert lf.hinge_angles(walk, "elbow")[0].min() > -lf.HYPEREXTENSION_TOLERANCE_DEG
    assert lf.joint_limit_violations(walk) == {"knee": 0.0, "elbow": 0.0}
    # Bend the left knee 20 degrees backwards, beyond its flexion, on the first 30 frames.
    j = walk.skeleton.index("LowerLeg_L")
    rotations = walk.rotations.copy()
    rotations[:30, j] = axis_angle_to_quat(np.array([0.0, np.radians(-20.0), 0.0]))
    rotations[30:45, walk.skeleton.index("LowerArm_L")] = axis_angle_to_quat(np.array([0.0, np.radians(-170.0), 0.0]))
    bent = walk.with_arrays(rotations=rotations)
    assert lf.joint_limit_violations(bent) == pytest.approx(
        {"knee": 30 / walk.num_frames, "elbow": 15 / walk.num_frames}
    )


def test_a_cut_loop_closes_at_one_cycle_and_not_at_half(walk):
    events = contact_events(motion_contacts(walk))
    left, right = events[(0, "down")], events[(1, "down")]
    a, b = left[1], left[2]
    r = right[(right > a) & (right < b)][0]
    cycle = walk.slice(a, b + 1)
    assert lf.loop_seam(cycle) < 6.0 and lf.is_cyclic(cycle)
    half = walk.slice(a, r + 1)
    assert lf.loop_seam(half) > 10.0 and not lf.is_cyclic(half)
    # A loop that closes exactly (its last pose is its first, carried 150 cm along) has no seam; a
    # constant lift of its last frames is the seam, a planar shift of them is not.
    rotations, positions = cycle.rotations.copy(), cycle.positions.copy()
    rotations[-1], positions[-1] = rotations[0], positions[0]
    closed = moved(cycle.with_arrays(rotations, positions), on_last(cycle, 1, [150.0, 0.0, 20.0]))
    assert lf.loop_seam(closed) == pytest.approx(0.0, abs=1e-9)
    assert lf.loop_seam(moved(closed, on_last(cycle, 3, [0.0, 4.0, 0.0]))) == pytest.approx(4.0)
    assert lf.loop_seam(moved(closed, on_last(cycle, 3, [30.0, 0.0, -12.0]))) == pytest.approx(0.0, abs=1e-9)


# --------------------------------------------------------------------------- events


def test_walks_have_no_events_and_a_raise_raises_a_hand(real):
    for key in ("walk", "elderly", "tired", "run", "wave"):
        events = lf.events_in(real[key])
        assert not events["jump"] and not events["kick"], key
    for key in ("walk", "elderly", "tired", "run"):
        assert not lf.events_in(real[key])["raised_hand"], key
    assert lf.events_in(real["raise"]) == {"jump": False, "kick": False, "raised_hand": True}
    # The run lifts its heel high behind it, but on a folded knee: no kick.
    run = real["run"]
    heights = run.world()[1][:, [run.skeleton.index(n) for n in CONTACT_JOINTS], 1] - foot_floor(run)
    assert heights.max() > lf.KICK_FOOT_HEIGHT_CM > lf.event_peaks(run)["foot_height"]


def test_a_synthetic_jump_is_seen_and_its_removal_is_not_retained(walk):
    pelvis = walk.world()[1][:, walk.skeleton.index(PELVIS), 1]
    top = int(np.clip(np.argmax(pelvis), 5, walk.num_frames - 6))
    bump = np.zeros(walk.num_frames)
    bump[top - 5 : top + 6] = 10.0 * (1.0 - np.cos(2 * np.pi * np.arange(11) / 10))  # 20 cm at its top
    jumped = moved(walk, bump[:, None] * np.array([0.0, 1.0, 0.0]))
    before, after = lf.event_peaks(walk)["pelvis_rise"], lf.event_peaks(jumped)["pelvis_rise"]
    assert after - before == pytest.approx(20.0, abs=1.0)
    assert lf.events_in(jumped)["jump"] and not lf.events_in(walk)["jump"]
    assert lf.event_retention(jumped, walk)["pelvis_rise"] < 0.3
    assert lf.event_retention(jumped, jumped)["pelvis_rise"] == 1.0


def cmu_clip(name: str):
    motion = read_bvh(DATA_ROOT / "motion" / "cmu_iclone_ccbase" / f"{name}.bvh.gz")
    return to_canonical(RigMotion(rig_for_skeleton(motion.skeleton, motion=motion), motion))


def test_foreign_jumps_and_leg_raises_are_events(data_root):
    jump = cmu_clip("002_04")  # "jump, balance"
    assert lf.events_in(jump)["jump"]
    raised_leg = cmu_clip("005_05")  # "dance - raised leg above hip-height"
    assert lf.events_in(raised_leg)["kick"]
    walk = cmu_clip("007_02")
    assert lf.events_in(walk) == {"jump": False, "kick": False, "raised_hand": False}


# --------------------------------------------------------------------------- pace


def test_cadence_halves_at_half_speed_and_holds_across_frame_rates(walk):
    steps = lf.cadence(walk)
    assert 90 < steps < 130
    slow = time_stretch(walk, 2 * walk.num_frames)
    assert lf.cadence(slow) == pytest.approx(steps / 2, rel=0.05)
    assert lf.cadence(resample(walk, 120.0)) == pytest.approx(steps, rel=0.05)
    pace = lf.pace(walk, slow, walk)
    assert pace["distance_vs_source"] == pytest.approx(0.5, rel=0.05)
    assert pace["cadence_vs_source"] == pytest.approx(0.5, rel=0.05)
    assert pace["distance_vs_reference"] == pace["distance_vs_source"]


@pytest.mark.parametrize("name", ["walk", "run"])
def test_a_clip_exported_in_place_keeps_its_contacts_and_cadence(real, name):
    """Root motion removed (a treadmill: the planted foot slides back under the body): the speed
    rule would see no contact; the clip's contacts and cadence are those of the same clip travelling."""
    clip = real[name]
    in_place = hold_pelvis_in_place(clip)
    assert lf.travelled_distance(in_place) < 1.0
    assert contact_timing_f1(motion_contacts(clip), motion_contacts(in_place), 2) == 0.0  # the speed rule alone
    assert lf.contact_f1(clip, in_place) == 1.0
    assert lf.cadence(in_place) == pytest.approx(lf.cadence(clip), rel=0.05)


def test_a_clip_that_does_not_step_has_no_cadence(real):
    assert lf.cadence(real["raise"]) == 0.0
    # A walking output over a standing source is measured against the floors, not divided by 0.
    pace = lf.pace(real["raise"], real["walk"], real["raise"])
    assert pace["cadence_vs_source"] == pytest.approx(lf.cadence(real["walk"]) / lf.STEPPING_CADENCE_SPM)


# --------------------------------------------------------------------------- style shift


def test_style_shift_arithmetic_on_descriptors():
    source, reference = np.array([0.0, 1.0, 2.0, 5.0]), np.array([2.0, 1.0, 6.0, 5.0])
    scale = lf.descriptor_scale([source, reference])
    assert np.isinf(scale[[1, 3]]).all()  # dimensions that never vary are left out
    assert lf.style_shift(source, reference, reference, scale) == {"fraction": 1.0, "toward": True}
    middle = lf.style_shift(source, reference, (source + reference) / 2, scale)
    assert middle["fraction"] == pytest.approx(0.5) and middle["toward"]
    away = lf.style_shift(source, reference, 2 * source - reference, scale)
    assert away == {"fraction": pytest.approx(-1.0), "toward": False}


def test_style_shift_on_real_walks(real):
    descriptors = {key: lf.style_descriptor(m) for key, m in real.items()}
    scale = lf.descriptor_scale(list(descriptors.values()))
    source, reference = real["walk"], real["elderly"]
    assert lf.style_shift(source, reference, source, scale) == {"fraction": 0.0, "toward": False}
    assert lf.style_shift(source, reference, reference, scale) == {"fraction": pytest.approx(1.0), "toward": True}
    # A tired walk moves part of the way toward the elderly one, less than all of it.
    tired = lf.style_shift(source, reference, real["tired"], scale)["fraction"]
    assert -1.0 < tired < 1.0
    # Heading does not enter the descriptor; the frame rate barely does.
    np.testing.assert_allclose(lf.style_descriptor(turned(source, 1.2)), descriptors["walk"], atol=1e-9)
    at_120 = lf.style_descriptor(resample(source, 120.0))
    assert np.linalg.norm((at_120 - descriptors["walk"]) / scale) < 0.1 * np.linalg.norm(
        (descriptors["elderly"] - descriptors["walk"]) / scale
    )


# --------------------------------------------------------------------------- any rate, any length


@pytest.mark.parametrize("fps", [24.0, 120.0])
def test_every_measure_runs_on_four_frames_at_any_rate(walk, fps):
    clip = resample(walk, fps).slice(40, 44)
    assert clip.num_frames == 4
    other = moved(clip, [0.0, 1.0, 0.0])
    scale = lf.descriptor_scale([lf.style_descriptor(clip), lf.style_descriptor(walk)])
    values = [
        lf.body_height(clip),
        *lf.self_reference(clip, other).values(),
        lf.travelled_distance(clip),
        *lf.event_peaks(clip).values(),
        *lf.event_retention(clip, other).values(),
        lf.cadence(clip),
        *lf.pace(clip, other, walk).values(),
        *lf.feet(clip, other).values(),
        *lf.off_hinge_deg(clip).values(),
        *lf.joint_limit_violations(clip).values(),
        lf.floor_penetration(clip, other),
        lf.loop_seam(clip),
        lf.style_shift(clip, walk, other, scale)["fraction"],
    ]
    assert np.isfinite(values).all()
    assert isinstance(lf.is_cyclic(clip), bool) and isinstance(lf.events_in(clip)["jump"], bool)


def test_foot_excursion_ignores_the_root_and_sees_a_shuffle(real):
    """The stride's swing about the pelvis: the same with the root held in place, larger for a run
    than a walk, and a fraction when the legs keep their first pose (a shuffle at its limit)."""
    walk, run = real["walk"], real["run"]
    assert lf.foot_excursion(hold_pelvis_in_place(walk)) == pytest.approx(lf.foot_excursion(walk), rel=1e-9)
    assert 30.0 < lf.foot_excursion(walk) < lf.foot_excursion(run)
    legs = [i for i, n in enumerate(walk.skeleton.names) if n.endswith(("_L", "_R")) and "Leg" in n or "Foot" in n]
    frozen = walk.rotations.copy()
    frozen[:, legs] = walk.rotations[:1, legs]
    assert lf.foot_excursion(walk.with_arrays(rotations=frozen)) < 0.25 * lf.foot_excursion(walk)  # hips still turn
