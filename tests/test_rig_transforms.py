"""Rigs as imports and game engines make them: any signed up axis, a floor under the soles, mapped
bones parented away from their canonical parent (IK feet), and the rig check that names the fix."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.errors import RequestError
from core.io.bvh import read_bvh
from core.motion.skeleton import Skeleton
from core.ops.rotations import quat_angle, quat_conj, quat_rotate
from core.retarget.presets import bundled_rig
from core.retarget.retarget import check_rig, detached_bones, leg_length, retarget
from core.retarget.rig import REQUIRED_JOINTS, UP_AXIS_TO_Y_UP, Rig, RigError, detect_up_axis, up_vector
from tests.conftest import bandai_clip

AXES = ("X", "-X", "Y", "-Y", "Z", "-Z")


@pytest.fixture(scope="module")
def walk(data_root):
    return read_bvh(bandai_clip("dataset-2_walk_normal_001.bvh.gz"))


@pytest.fixture(scope="module")
def canonical():
    return bundled_rig("bandai")


@pytest.fixture(scope="module")
def mixamo():
    return bundled_rig("mixamo")


def _turned(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    return quat_rotate(np.broadcast_to(q, v.shape[:-1] + (4,)), v)


def _body_height(rig: Rig) -> float:
    pos = rig.rest_world()[1]
    return float(pos[rig.bone("Head"), 1] - min(pos[rig.bone(t), 1] for t in ("Toes_L", "Toes_R")))


def _on_axis(rig: Rig, axis: str, **changes) -> Rig:
    """The Y-up rig with its skeleton coordinates turned so that up is ``axis``."""
    sk = rig.skeleton
    offsets = _turned(quat_conj(UP_AXIS_TO_Y_UP[axis]), sk.offsets)
    fields = {"up_axis": axis, "name": f"{rig.name} {axis}-up", **changes}
    return Rig(Skeleton(sk.names, sk.parents, offsets), rig.mapping, **fields)


# --- signed up axes -------------------------------------------------------------------------------


def test_every_signed_axis_turns_onto_y_up():
    assert set(UP_AXIS_TO_Y_UP) == set(AXES)
    np.testing.assert_array_equal(UP_AXIS_TO_Y_UP["Y"], [1.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(UP_AXIS_TO_Y_UP["Z"], [np.sqrt(0.5), -np.sqrt(0.5), 0.0, 0.0])
    for axis in AXES:
        q = UP_AXIS_TO_Y_UP[axis]
        assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-15)
        unit = np.zeros(3)
        unit["XYZ".index(axis[-1])] = -1.0 if axis.startswith("-") else 1.0
        np.testing.assert_allclose(up_vector(axis), unit, atol=1e-15)
        np.testing.assert_allclose(_turned(q, unit), [0.0, 1.0, 0.0], atol=1e-15)


@pytest.mark.parametrize("axis", AXES)
def test_a_rig_along_any_axis_is_detected_and_retargets_like_its_y_up_twin(mixamo, canonical, walk, axis):
    turned = _on_axis(mixamo, axis)
    assert detect_up_axis(turned.skeleton, turned.mapping) == axis
    check_rig(turned)
    y_pos = retarget(walk, canonical, mixamo).world()[1]
    pos = retarget(walk, canonical, turned).world()[1]
    np.testing.assert_allclose(pos, _turned(quat_conj(UP_AXIS_TO_Y_UP[axis]), y_pos), atol=1e-8)


def test_up_axis_detection_reads_the_rest_pose_not_the_zero_pose(canonical):
    """The Bandai rig's zero pose has its bones along +X; its rest pose stands up along +Y."""
    assert detect_up_axis(canonical.skeleton, canonical.mapping, canonical.rest_rotations) == "Y"
    torso = {j: b for j, b in canonical.mapping.items() if j in ("Hips", "Spine")}  # no head: the spine shows up
    assert detect_up_axis(canonical.skeleton, torso, canonical.rest_rotations) == "Y"
    with pytest.raises(RigError, match="Bone Mapping"):
        detect_up_axis(canonical.skeleton, {"Hips": canonical.mapping["Hips"]})


def test_every_up_axis_is_accepted_and_others_refused(mixamo):
    for axis in AXES:
        assert Rig.from_json(_on_axis(mixamo, axis).to_json()).up_axis == axis
    with pytest.raises(RigError, match="up_axis must be one of"):
        Rig(mixamo.skeleton, mixamo.mapping, up_axis="+Y")


# --- the floor ------------------------------------------------------------------------------------


def _toeless(rig: Rig, drop: float, **changes) -> Rig:
    """The rig without toe joints, its whole skeleton lowered by ``drop`` (its root near the
    origin, as BVH rigs have it, so its ankles are below y = 0)."""
    sk = rig.skeleton
    offsets = sk.offsets.copy()
    offsets[[k for k, p in enumerate(sk.parents) if p < 0]] -= [0.0, drop, 0.0]
    mapping = {j: b for j, b in rig.mapping.items() if j in REQUIRED_JOINTS}
    return Rig(Skeleton(sk.names, sk.parents, offsets), mapping, name="toeless", **changes)


def test_a_given_floor_puts_the_soles_on_the_ground(mixamo, canonical, walk):
    """A toeless rig whose rest pose stands below y = 0 (its root at the origin, as BVH rigs have
    it): without a floor its ankles are taken for the soles and the walk sinks by the ankle height;
    with its floor (the soles' height at rest) it walks on the ground exactly as the same rig
    standing on y = 0 at rest does. The ground of the motion is y = 0 either way."""
    drop = 100.0
    on_floor = retarget(walk, canonical, _toeless(mixamo, 0.0)).world()[1]
    floored = retarget(walk, canonical, _toeless(mixamo, drop, floor=-drop)).world()[1]
    np.testing.assert_allclose(floored, on_floor, atol=1e-9)
    guessed = retarget(walk, canonical, _toeless(mixamo, drop)).world()[1]
    ankle = mixamo.rest_world()[1][mixamo.bone("Foot_L"), 1]
    assert ankle > 5.0
    np.testing.assert_allclose(guessed[..., 1], floored[..., 1] - ankle, atol=1e-9)


def test_the_floor_is_along_the_rigs_own_up_axis(mixamo, canonical, walk):
    y_up = retarget(walk, canonical, _toeless(mixamo, 0.0, floor=-3.0)).world()[1]
    turned = _on_axis(_toeless(mixamo, 0.0), "-X", floor=-3.0)
    pos = retarget(walk, canonical, turned).world()[1]
    np.testing.assert_allclose(pos, _turned(quat_conj(UP_AXIS_TO_Y_UP["-X"]), y_up), atol=1e-8)


def test_the_floor_survives_json_and_old_json_still_loads(mixamo):
    rig = _toeless(mixamo, 0.0, floor=-1.5)
    assert Rig.from_json(rig.to_json()).floor == -1.5
    old = json.loads(mixamo.to_json())
    del old["floor"]
    assert Rig.from_json(json.dumps(old)).floor is None
    for bad in (float("nan"), "low", True):
        with pytest.raises(RigError, match="floor must be a finite number"):
            Rig(mixamo.skeleton, mixamo.mapping, floor=bad)


# --- detached mapped bones (IK feet) --------------------------------------------------------------


def _reparented(rig: Rig, moves: dict[str, str]) -> Rig:
    """The rig with each joint's bone (and its subtree) moved under another joint's bone, offsets
    adjusted so the rest geometry is the same, and the moved subtrees listed right after their
    new parent, so that a foot comes before its shin in the joint order."""
    assert rig.rest_rotations is None  # the rest pose is the zero pose: world offsets add up
    sk = rig.skeleton
    rest = rig.rest_world()[1]
    parent = {k: p for k, p in enumerate(sk.parents)}
    parent.update({rig.bone(j): rig.bone(to) for j, to in moves.items()})
    moved = {rig.bone(j) for j in moves}
    order = []

    def visit(k):
        order.append(k)
        children = [c for c in range(sk.num_joints) if parent[c] == k]
        for c in sorted(children, key=lambda c: c not in moved):
            visit(c)

    for root in (k for k in range(sk.num_joints) if parent[k] < 0):
        visit(root)
    offsets = np.array([rest[k] - rest[parent[k]] if k in moved else sk.offsets[k] for k in order])
    parents = tuple(order.index(parent[k]) if parent[k] >= 0 else -1 for k in order)
    skeleton = Skeleton(tuple(sk.names[k] for k in order), parents, offsets)
    return Rig(skeleton, rig.mapping, name=f"{rig.name} detached")


@pytest.fixture(scope="module")
def ik_rig(mixamo):
    """Mixamo with both feet (toes below them) and the left hand parented to the hips."""
    return _reparented(mixamo, {"Foot_L": "Hips", "Foot_R": "Hips", "Hand_L": "Hips"})


def test_reparented_rig_has_the_same_rest_and_is_detached(mixamo, ik_rig):
    np.testing.assert_allclose(_by_name(ik_rig, ik_rig.rest_world()[1], mixamo), mixamo.rest_world()[1], atol=1e-9)
    assert sorted(ik_rig.skeleton.names[b] for b in detached_bones(ik_rig)) == sorted(
        mixamo.mapping[j] for j in ("Foot_L", "Foot_R", "Hand_L")
    )
    assert ik_rig.bone("Foot_L") < ik_rig.bone("LowerLeg_L")  # placed from a bone that comes later
    assert leg_length(ik_rig) == pytest.approx(leg_length(mixamo), rel=1e-12)
    check_rig(ik_rig)


def _by_name(rig: Rig, array: np.ndarray, like: Rig) -> np.ndarray:
    """``array`` (..., J, k) on ``rig``'s joints, reordered to ``like``'s joint order."""
    return array[..., [rig.skeleton.index(n) for n in like.skeleton.names], :]


def test_ik_feet_sit_at_the_end_of_the_shin(mixamo, ik_rig, canonical, walk):
    regular = retarget(walk, canonical, mixamo).world()
    detached = retarget(walk, canonical, ik_rig).world()
    height = _body_height(mixamo)
    assert np.abs(_by_name(ik_rig, detached[1], mixamo) - regular[1]).max() < 1e-6 * height
    assert quat_angle(_by_name(ik_rig, detached[0], mixamo), regular[0]).max() < 1e-9


def test_ik_rig_round_trips_through_canonical(ik_rig, canonical, walk):
    on_rig = retarget(walk, canonical, ik_rig)
    back = retarget(retarget(on_rig, ik_rig, canonical), canonical, ik_rig, target_base=on_rig)
    assert quat_angle(on_rig.rotations, back.rotations).max() < 1e-4
    assert np.abs(on_rig.world()[1] - back.world()[1]).max() < 1e-6 * _body_height(ik_rig)
    # the base's own (root-relative, IK) translations of those bones never pull them off the limb
    detached = [ik_rig.bone(j) for j in ("Foot_L", "Foot_R", "Hand_L")]
    positions = on_rig.positions.copy()
    positions[:, detached] += np.random.default_rng(0).normal(0.0, 5.0, positions[:, detached].shape)
    wandering = on_rig.with_arrays(positions=positions)
    again = retarget(retarget(on_rig, ik_rig, canonical), canonical, ik_rig, target_base=wandering)
    assert np.abs(again.world()[1] - on_rig.world()[1]).max() < 1e-6 * _body_height(ik_rig)


# --- check_rig ------------------------------------------------------------------------------------


def test_check_rig_accepts_the_bundled_rigs():
    for name in ("bandai", "mixamo", "rigify_def", "metarig"):
        check_rig(bundled_rig(name))


def _with_offset(rig: Rig, joint: str, offset) -> Rig:
    sk = rig.skeleton
    offsets = sk.offsets.copy()
    offsets[rig.bone(joint)] = offset
    return Rig(Skeleton(sk.names, sk.parents, offsets), rig.mapping, name="broken")


@pytest.mark.parametrize(
    "case, joint",
    [("knee_on_hip", "UpperLeg_L"), ("hips_together", "UpperLeg_L"), ("shin_below_foot", "Foot_L")],
)
def test_check_rig_names_the_joint_the_bone_and_the_fix(mixamo, case, joint):
    if case == "knee_on_hip":
        rig = _with_offset(mixamo, "LowerLeg_L", [0.0, 0.0, 0.0])
    elif case == "hips_together":
        left = mixamo.skeleton.offsets[mixamo.bone("UpperLeg_L")]
        rig = _with_offset(mixamo, "UpperLeg_R", left)
    else:  # the shin and foot bones swapped: the foot would follow a bone that hangs below it
        swapped = {**mixamo.mapping, "Foot_L": mixamo.mapping["LowerLeg_L"], "LowerLeg_L": mixamo.mapping["Foot_L"]}
        rig = Rig(mixamo.skeleton, swapped, name="broken")
    with pytest.raises(RigError) as err:
        check_rig(rig)
    message = str(err.value)
    assert joint in message and repr(rig.mapping[joint]) in message, message
    assert f"map another bone to {joint} in the Motion Style tab > Bone Mapping" in message, message
    assert isinstance(err.value, RequestError)


@pytest.mark.parametrize("fps", [30.0, 60.0])
def test_stylizing_an_ik_rig_equals_stylizing_the_regular_rig(mixamo, ik_rig, canonical, walk, fps):
    """Through the whole pipeline the IK feet and hand follow the stylized limbs (their translations
    are the pipeline's, not the content's), and a weight-0 leg keeps its foot's own translation. At
    30 fps the two rigs' outputs are the same; at 60 fps the placed bones still sit exactly at the
    end of their limbs, while the bones below them differ a little between the 30 fps frames (the
    style change is interpolated in each bone's local frame, and a detached bone's parent differs)."""
    from core.ops.resample import resample
    from core.runtime import RigMotion, stylize_rig_motion

    style = read_bvh(bandai_clip("dataset-1_walk_angry_001.bvh"))
    style = RigMotion(Rig(style.skeleton, canonical.mapping, canonical.rest_rotations), style)
    contents = {rig: retarget(resample(walk.slice(0, 90), fps), canonical, rig) for rig in (mixamo, ik_rig)}
    weights = {"right_leg": 0.0}
    outputs = {rig: stylize_rig_motion(RigMotion(rig, m), style, weights=weights) for rig, m in contents.items()}
    height = _body_height(mixamo)
    ik = _by_name(ik_rig, outputs[ik_rig].world()[1], mixamo)
    regular = outputs[mixamo].world()[1]
    placed = [mixamo.bone(j) for j in ("Foot_L", "Hand_L")]
    assert np.abs(ik[:, placed] - regular[:, placed]).max() < 1e-6 * height
    assert np.abs(ik - regular).max() < (1e-6 if fps == 30.0 else 1e-3) * height
    moved = np.abs(ik[:, placed] - _by_name(ik_rig, contents[ik_rig].world()[1], mixamo)[:, placed]).max()
    assert moved > 0.01 * height  # the limbs were restyled...
    kept = ik_rig.bone("Foot_R")  # ...but the weight-0 leg's foot kept its own translation
    np.testing.assert_array_equal(outputs[ik_rig].positions[:, kept], contents[ik_rig].positions[:, kept])


def test_the_pipeline_refuses_a_broken_rig_before_stylizing(mixamo, canonical, walk):
    from core.runtime import Job, RigMotion, stylize_rig_motion

    broken = _with_offset(mixamo, "LowerLeg_L", [0.0, 0.0, 0.0])
    stages = []
    motion = retarget(walk.slice(0, 10), canonical, mixamo)
    with pytest.raises(RigError, match="UpperLeg_L"):
        stylize_rig_motion(
            RigMotion(broken, motion),
            RigMotion(canonical, walk.slice(0, 10)),
            job=Job(lambda step, total, stage: stages.append(stage)),
        )
    assert stages[-1] == "retarget in"
