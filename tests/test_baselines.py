"""Baseline stylizers on real clips: identity, reference copy, statistics transfer, retrieval."""

from __future__ import annotations

import numpy as np
import pytest

from core.motion.canonical import JOINT_NAMES
from core.ops.features import FEATURE_FPS
from core.ops.resample import time_stretch
from core.ops.rotations import quat_angle
from core.stylize.baselines import (
    GROUP_LOCAL_JOINTS,
    IdentityStylizer,
    ReferenceCopyStylizer,
    RotationStats,
    StatisticsStylizer,
    _Parts,
)
from core.stylize.request import GROUPS, StyleRequest

EXACT_RAD = 1e-5
PELVIS = JOINT_NAMES.index("Hips")
BODY = [j for j, n in enumerate(JOINT_NAMES) if n != "joint_Root"]


def all_weights(w: float) -> dict[str, float]:
    return {g: w for g in GROUPS}


def group_deviation(a, b, group: str) -> float:
    """Max angle (rad) between two motions' arrays of ``group`` as the stylizers define them; for
    the root, the max of the heading difference (rad) and the pelvis position difference (cm)."""
    pa, pb = _Parts.of(a), _Parts.of(b)
    errors = [0.0]
    joints = list(GROUP_LOCAL_JOINTS[group])
    if joints:
        errors.append(quat_angle(pa.local[:, joints], pb.local[:, joints]).max())
    if group == "torso":
        errors.append(quat_angle(pa.upright, pb.upright).max())
    if group == "root":
        errors.append(np.abs(np.angle(np.exp(1j * (pa.heading - pb.heading)))).max())
        errors.append(np.abs(pa.pelvis - pb.pelvis).max())
    return float(max(errors))


def mean_distance(motion, reference) -> float:
    """Mean over the body joints of the angle between the clips' mean local rotations (the pelvis
    by its upright rotation)."""

    def tracks(m):
        parts = _Parts.of(m)
        local = parts.local[:, BODY].copy()
        local[:, 0] = parts.upright
        return local

    return float(quat_angle(RotationStats.of(tracks(motion)).mean, RotationStats.of(tracks(reference)).mean).mean())


def test_identity_returns_the_content(clips):
    request = StyleRequest(clips["walk"], clips["wave"])
    out = IdentityStylizer().stylize(request)
    assert np.array_equal(out.rotations, clips["walk"].rotations)
    assert np.array_equal(out.positions, clips["walk"].positions)


def test_time_stretch_keeps_frames_on_the_grid(clips):
    reference = clips["tired_walk"].slice(0, 100)
    stretched = time_stretch(reference, 199)  # every second output frame is an original frame
    assert stretched.num_frames == 199
    assert quat_angle(stretched.rotations[::2], reference.rotations).max() < 1e-7
    assert np.abs(stretched.positions[::2] - reference.positions).max() < 1e-9
    assert time_stretch(reference, 1).num_frames == 1


def test_copy_has_the_contents_length_and_the_references_poses(clips):
    content = clips["walk"].slice(0, 199)
    reference = clips["wave"].slice(0, 100)
    out = ReferenceCopyStylizer().stylize(StyleRequest(content, reference))
    assert out.num_frames == content.num_frames and out.fps == FEATURE_FPS
    _, out_pos = out.world()
    ref_rot, ref_pos = reference.world()
    out_rot, _ = out.world()
    # The reference's poses, in its own place: world rotations and positions of every body joint.
    assert quat_angle(out_rot[::2][:, BODY], ref_rot[:, BODY]).max() < 1e-6
    assert np.abs(out_pos[::2][:, BODY] - ref_pos[:, BODY]).max() < 1e-6
    # Not the content: the source is thrown away.
    assert quat_angle(out.rotations[:, BODY], content.rotations[:, BODY]).max() > 0.5


def test_copy_keeps_weight_zero_groups(clips):
    content, reference = clips["walk"], clips["wave"]
    out = ReferenceCopyStylizer().stylize(StyleRequest(content, reference, weights={"root": 0, "left_leg": 0}))
    assert group_deviation(out, content, "root") < EXACT_RAD
    assert group_deviation(out, content, "left_leg") < EXACT_RAD
    assert group_deviation(out, time_stretch(reference, content.num_frames), "right_arm") < 1e-6


@pytest.mark.parametrize("reference", ["tired_walk", "wave"])
@pytest.mark.parametrize("group", GROUPS)
def test_statistics_weight_zero_keeps_that_group_exactly(clips, reference, group):
    content = clips["walk"]
    weights = {**all_weights(1.0), group: 0.0}
    out = StatisticsStylizer().stylize(StyleRequest(content, clips[reference], weights=weights))
    assert group_deviation(out, content, group) < EXACT_RAD
    others = [g for g in GROUPS if g != group]
    assert max(group_deviation(out, content, g) for g in others) > 1e-3  # the rest did change


def test_statistics_all_zero_is_the_content(clips):
    content = clips["walk"]
    out = StatisticsStylizer().stylize(StyleRequest(content, clips["wave"], weights=all_weights(0.0)))
    assert quat_angle(out.rotations, content.rotations).max() < EXACT_RAD
    assert np.abs(out.positions - content.positions).max() < 1e-9


@pytest.mark.parametrize(
    "content_name, reference_name", [("walk", "tired_walk"), ("walk", "wave"), ("wave", "elderly_run")]
)
def test_statistics_weight_moves_the_means_toward_the_reference(clips, content_name, reference_name):
    content, reference = clips[content_name], clips[reference_name]
    stylizer = StatisticsStylizer()
    distance = {}
    for w in (0.0, 0.5, 1.0):
        out = stylizer.stylize(StyleRequest(content, reference, weights=all_weights(w)))
        assert out.num_frames == content.num_frames and out.fps == FEATURE_FPS
        assert np.isfinite(out.rotations).all() and np.isfinite(out.positions).all()
        distance[w] = mean_distance(out, reference)
    assert distance[0.0] > 0.05
    assert distance[1.0] < 0.1 * distance[0.0]  # measurably closer: the means nearly match
    assert distance[1.0] < distance[0.5] < distance[0.0]
    assert 0.3 < distance[0.5] / distance[0.0] < 0.7


def test_statistics_root_and_spread_follow_the_reference(clips):
    content, reference = clips["walk"], clips["tired_walk"]
    out = StatisticsStylizer().stylize(StyleRequest(content, reference))

    def speed(m):
        pelvis = _Parts.of(m).pelvis
        return np.linalg.norm(np.diff(pelvis[:, [0, 2]], axis=0), axis=-1).mean()

    def spread(m):
        return RotationStats.of(m.rotations[:, BODY[1:]]).spread.mean()

    for measure in (speed, spread):
        assert abs(measure(out) - measure(reference)) < 0.5 * abs(measure(content) - measure(reference))
    height = _Parts.of(out).pelvis[:, 1].mean()
    assert abs(height - _Parts.of(reference).pelvis[:, 1].mean()) < 1e-6


def test_statistics_per_group_references(clips):
    content, arms, legs = clips["walk"], clips["wave"], clips["elderly_run"]
    request = StyleRequest(content, arms, group_references={"left_leg": legs, "right_leg": legs}, weights={"root": 0.0})
    out = StatisticsStylizer().stylize(request)
    assert group_deviation(out, content, "root") < EXACT_RAD
    for group, source in (("right_arm", arms), ("left_leg", legs), ("right_leg", legs)):
        joints = list(GROUP_LOCAL_JOINTS[group])
        mean = {name: RotationStats.of(m.rotations[:, joints]).mean for name, m in
                (("out", out), ("content", content), ("source", source))}  # fmt: skip
        to_source = quat_angle(mean["out"], mean["source"]).mean()
        assert to_source < 0.1 * quat_angle(mean["content"], mean["source"]).mean()


def test_statistics_is_deterministic_and_exaggerates(clips):
    content, reference = clips["walk"], clips["tired_walk"]
    stylizer = StatisticsStylizer()
    a = stylizer.stylize(StyleRequest(content, reference, weights=all_weights(2.0)))
    b = stylizer.stylize(StyleRequest(content, reference, weights=all_weights(2.0)))
    assert np.array_equal(a.rotations, b.rotations) and np.array_equal(a.positions, b.positions)
    one = stylizer.stylize(StyleRequest(content, reference))
    # Weight 2 goes past the reference: the content-to-output offset doubles.
    assert mean_distance(a, content) > 1.8 * mean_distance(one, content)


@pytest.fixture(scope="module")
def retrieval():
    from training.evaluation.retrieval import RetrievalStylizer

    return RetrievalStylizer()


def test_retrieval_returns_a_training_clip_with_the_right_labels(clips, retrieval):
    from training.data.split import load_split

    train = set(load_split()["train"])
    content, reference = clips["walk"], clips["wave"]  # walk_normal_001 is a training take itself
    options = {"content_label": "walk", "style_label": "active"}
    picks = retrieval.retrieved(StyleRequest(content, reference, options=options))
    assert set(picks) == set(GROUPS)
    clip = picks["torso"]
    assert clip.id in train and (clip.content, clip.style) == ("walk", "active")
    out = retrieval.stylize(StyleRequest(content, reference, options=options))
    assert out.num_frames == content.num_frames and np.isfinite(out.rotations).all()
    retrieved = time_stretch(retrieval.clip_motion(clip), content.num_frames)
    assert quat_angle(out.world()[0][:, BODY], retrieved.world()[0][:, BODY]).max() < 1e-5


def test_retrieval_looks_labels_up_and_honours_groups(clips, retrieval):
    content, reference, legs = clips["walk"], clips["wave"], clips["elderly_run"]
    assert retrieval.identify(reference).id == "dataset-2_wave-right-hand_active_020"
    request = StyleRequest(content, reference, group_references={"left_leg": legs}, weights={"root": 0.0})
    picks = retrieval.retrieved(request)
    assert "root" not in picks
    assert {(c.content, c.style) for g, c in picks.items() if g != "left_leg"} == {("walk", "active")}
    assert (picks["left_leg"].content, picks["left_leg"].style) == ("walk", "elderly")
    out = retrieval.stylize(request)
    assert group_deviation(out, content, "root") < EXACT_RAD
    with pytest.raises(ValueError, match="label"):
        retrieval.stylize(StyleRequest(content.slice(0, 50), reference.slice(0, 40)))
