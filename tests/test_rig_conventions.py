"""Bone mapping detection (core.retarget.matching.detect_mapping) on every common humanoid naming
convention, on rigs whose names say nothing, and on armatures that are not humanoid.

Real files where the shared data has them (Character Creator, MakeHuman, LAFAN1/Geno, CMU BVH; the
glTF Fox and cylinder); the other conventions are the bundled Mixamo rest skeleton renamed and
re-parented into that convention, geometry kept, with the twist, IK, helper, hair and finger bones
such rigs carry.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from core.io.bvh import read_bvh
from core.motion.skeleton import Skeleton
from core.ops.rotations import quat_rotate
from core.retarget.matching import detect_mapping, rig_for_skeleton
from core.retarget.presets import PRESETS, bundled_rig
from core.retarget.rig import BODY_JOINTS, RigError

MIXAMO = bundled_rig("mixamo")
_SK = MIXAMO.skeleton
_PLAIN = [n.split(":")[1] for n in _SK.names]
_POS = dict(zip(_PLAIN, MIXAMO.rest_world()[1]))
_PARENT = {n: (_PLAIN[p] if p >= 0 else None) for n, p in zip(_PLAIN, _SK.parents)}
_SIDE_WORDS = (("Left", "L", "l"), ("Right", "R", "r"))


def _skeleton(rows) -> Skeleton:
    """A skeleton from (name, parent name or None, rest world position) rows, parents first."""
    names = [r[0] for r in rows]
    pos = {name: np.asarray(p, dtype=np.float64) for name, _, p in rows}
    offsets = [pos[n] - (pos[p] if p else 0.0) for n, p, _ in rows]
    return Skeleton(tuple(names), tuple(names.index(p) if p else -1 for _, p, _ in rows), np.array(offsets))


def _convention(rename: dict[str, str], parents: dict[str, str] | None = None, extra=()) -> Skeleton:
    """The Mixamo rest skeleton in another convention: each Mixamo bone named in ``rename`` keeps
    its rest position under its new name (the others are dropped and their children re-attached
    to the nearest kept ancestor), ``parents`` re-parents bones (new names), ``extra`` adds
    (name, parent, position) distractor bones after them."""
    parents = parents or {}
    rows = []
    for plain in _PLAIN:
        if plain not in rename:
            continue
        above = _PARENT[plain]
        while above is not None and above not in rename:
            above = _PARENT[above]
        name = rename[plain]
        rows.append((name, parents.get(name, rename.get(above)), _POS[plain]))
    rows += list(extra)
    order, placed = [], set()
    while len(order) < len(rows):  # parents first, whatever the re-parenting did to the order
        for row in rows:
            if row[0] not in placed and (row[1] is None or row[1] in placed):
                order.append(row)
                placed.add(row[0])
    return _skeleton(order)


def _sided(template: dict[str, str], side: int) -> dict[str, str]:
    words = dict(zip(("Side", "S", "s"), _SIDE_WORDS[side]))
    return {k.format(**words): v.format(**words) for k, v in template.items()}


def _both_sides(template: dict[str, str]) -> dict[str, str]:
    return {**_sided(template, 0), **_sided(template, 1)}


def _mid(a: str, b: str, t: float = 0.5) -> np.ndarray:
    return (1 - t) * _POS[a] + t * _POS[b]


def _expected(rename: dict[str, str], **overrides) -> dict[str, str]:
    """The Mixamo preset's mapping carried through a renaming, with per-joint overrides."""
    out = {j: rename[b] for j, b in PRESETS["mixamo"].items() if b in rename}
    out.update(overrides)
    return {j: b for j, b in out.items() if b is not None}


def _assert_mapping(skeleton: Skeleton, expected: dict[str, str], preset=None):
    result = detect_mapping(skeleton)
    assert result.mapping == expected, {j: (result.mapping.get(j), b) for j, b in expected.items()
                                        if result.mapping.get(j) != b}
    assert result.preset == preset
    assert set(result.found_by) == set(result.mapping)
    assert sorted(result.unmatched) == sorted(set(skeleton.names) - set(expected.values()))
    rig_for_skeleton(skeleton, name="test")  # a usable rig
    return result


# --- Mixamo and Rigify: presets -----------------------------------------------------------------------

@pytest.mark.parametrize("prefix", ["mixamorig:", "mixamorig1:", "mixamorig_", "", "Armature|mixamorig12:",
                                    "Character1_"])
def test_mixamo_with_any_prefix_is_the_mixamo_preset(prefix):
    rename = {n: prefix + n for n in _PLAIN}
    result = _assert_mapping(_convention(rename), _expected(rename), preset="mixamo")
    assert set(result.found_by.values()) == {"preset"}


@pytest.mark.parametrize("name", ["rigify_def", "metarig"])
def test_bundled_rigify_and_metarig_are_their_presets(name):
    rig = bundled_rig(name)
    _assert_mapping(rig.skeleton, rig.mapping, preset=name)


def test_rigify_org_bones_are_the_org_preset():
    sk = bundled_rig("rigify_def").skeleton
    org = Skeleton(tuple(n.replace("DEF-", "ORG-") for n in sk.names), sk.parents, sk.offsets)
    expected = {j: b.replace("DEF-", "ORG-") for j, b in bundled_rig("rigify_def").mapping.items()}
    _assert_mapping(org, expected, preset="rigify_org")


@pytest.mark.parametrize("toe", ["toe_fk", "toe"])
def test_generated_rigify_maps_its_fk_controls(toe):
    """A generated rig has DEF and ORG bones too, but they follow the controls, so keys go on these."""
    deform = bundled_rig("rigify_def").skeleton
    pos = dict(zip(deform.names, bundled_rig("rigify_def").rest_world()[1]))
    rows = list(zip(deform.names, [deform.names[p] if p >= 0 else None for p in deform.parents], pos.values()))
    rows += [("torso", "root", pos["DEF-spine.001"]), ("hips", "torso", pos["DEF-spine.001"]),
             ("chest", "torso", pos["DEF-spine.001"]), ("neck", "chest", pos["DEF-spine.004"]),
             ("head", "neck", pos["DEF-spine.006"]), ("MCH-spine", "torso", pos["DEF-spine"])]
    for s in "LR":
        rows += [(f"shoulder.{s}", "chest", pos[f"DEF-shoulder.{s}"]),
                 (f"MCH-upper_arm_parent.{s}", f"shoulder.{s}", pos[f"DEF-upper_arm.{s}"]),
                 (f"upper_arm_fk.{s}", f"MCH-upper_arm_parent.{s}", pos[f"DEF-upper_arm.{s}"]),
                 (f"forearm_fk.{s}", f"upper_arm_fk.{s}", pos[f"DEF-forearm.{s}"]),
                 (f"hand_fk.{s}", f"forearm_fk.{s}", pos[f"DEF-hand.{s}"]),
                 (f"upper_arm_ik.{s}", f"MCH-upper_arm_parent.{s}", pos[f"DEF-upper_arm.{s}"]),
                 (f"hand_ik.{s}", "root", pos[f"DEF-hand.{s}"]),
                 (f"MCH-thigh_parent.{s}", "MCH-spine", pos[f"DEF-thigh.{s}"]),
                 (f"thigh_fk.{s}", f"MCH-thigh_parent.{s}", pos[f"DEF-thigh.{s}"]),
                 (f"shin_fk.{s}", f"thigh_fk.{s}", pos[f"DEF-shin.{s}"]),
                 (f"foot_fk.{s}", f"shin_fk.{s}", pos[f"DEF-foot.{s}"]),
                 (f"{toe}.{s}", f"foot_fk.{s}", pos[f"DEF-toe.{s}"]),
                 (f"thigh_ik.{s}", f"MCH-thigh_parent.{s}", pos[f"DEF-thigh.{s}"]),
                 (f"foot_ik.{s}", "root", pos[f"DEF-foot.{s}"]),
                 (f"thigh_tweak.{s}", f"thigh_fk.{s}", pos[f"DEF-thigh.{s}.001"])]
    expected = {"Hips": "torso", "Spine": "chest", "Neck": "neck", "Head": "head"}
    for s in "LR":
        expected.update({f"Shoulder_{s}": f"shoulder.{s}", f"UpperArm_{s}": f"upper_arm_fk.{s}",
                         f"LowerArm_{s}": f"forearm_fk.{s}", f"Hand_{s}": f"hand_fk.{s}",
                         f"UpperLeg_{s}": f"thigh_fk.{s}", f"LowerLeg_{s}": f"shin_fk.{s}",
                         f"Foot_{s}": f"foot_fk.{s}", f"Toes_{s}": f"{toe}.{s}"})
    _assert_mapping(_skeleton(rows), expected, preset="rigify_controls")


# --- conventions matched by name ----------------------------------------------------------------------

_UNREAL = {"Hips": "pelvis", "Spine": "spine_01", "Spine1": "spine_02", "Spine2": "spine_03", "Neck": "neck_01",
           "Head": "head", **_both_sides({
               "{Side}Shoulder": "clavicle_{s}", "{Side}Arm": "upperarm_{s}", "{Side}ForeArm": "lowerarm_{s}",
               "{Side}Hand": "hand_{s}", "{Side}UpLeg": "thigh_{s}", "{Side}Leg": "calf_{s}",
               "{Side}Foot": "foot_{s}", "{Side}ToeBase": "ball_{s}"})}


def test_unreal_mannequin_skips_twist_and_ik_bones():
    extra = [("root", None, np.zeros(3)), ("ik_foot_root", "root", np.zeros(3)), ("ik_hand_root", "root", np.zeros(3)),
             ("ik_hand_gun", "ik_hand_root", _POS["RightHand"])]
    for side, s in (("Left", "l"), ("Right", "r")):
        extra += [(f"upperarm_twist_01_{s}", f"upperarm_{s}", _mid(f"{side}Arm", f"{side}ForeArm")),
                  (f"lowerarm_twist_01_{s}", f"lowerarm_{s}", _mid(f"{side}ForeArm", f"{side}Hand")),
                  (f"thigh_twist_01_{s}", f"thigh_{s}", _mid(f"{side}UpLeg", f"{side}Leg")),
                  (f"calf_twist_01_{s}", f"calf_{s}", _mid(f"{side}Leg", f"{side}Foot")),
                  (f"ik_foot_{s}", "ik_foot_root", _POS[f"{side}Foot"]),
                  (f"ik_hand_{s}", "ik_hand_gun", _POS[f"{side}Hand"])]
    sk = _convention(_UNREAL, parents={"pelvis": "root"}, extra=extra)
    result = _assert_mapping(sk, _expected(_UNREAL, Chest="spine_03"))
    assert result.found_by["Foot_L"] == "name" and result.found_by["Chest"] == "structure"


def test_3ds_max_biped_thighs_under_the_spine_and_clavicles_under_the_neck():
    rename = {"Hips": "Bip01 Pelvis", "Spine": "Bip01 Spine", "Spine1": "Bip01 Spine1", "Spine2": "Bip01 Spine2",
              "Neck": "Bip01 Neck", "Head": "Bip01 Head", "HeadTop_End": "Bip01 HeadNub", **_both_sides({
                  "{Side}Shoulder": "Bip01 {S} Clavicle", "{Side}Arm": "Bip01 {S} UpperArm",
                  "{Side}ForeArm": "Bip01 {S} Forearm", "{Side}Hand": "Bip01 {S} Hand",
                  "{Side}HandIndex1": "Bip01 {S} Finger1", "{Side}HandIndex2": "Bip01 {S} Finger11",
                  "{Side}UpLeg": "Bip01 {S} Thigh", "{Side}Leg": "Bip01 {S} Calf", "{Side}Foot": "Bip01 {S} Foot",
                  "{Side}ToeBase": "Bip01 {S} Toe0", "{Side}Toe_End": "Bip01 {S} Toe0Nub"})}
    parents = {"Bip01 Pelvis": "Bip01", **_both_sides({"Bip01 {S} Thigh": "Bip01 Spine",
                                                      "Bip01 {S} Clavicle": "Bip01 Neck"})}
    extra = [("Bip01", None, _POS["Hips"]), ("Bip01 Footsteps", "Bip01", np.zeros(3))]
    _assert_mapping(_convention(rename, parents, extra), _expected(rename, Chest="Bip01 Spine2"))


def test_character_creator_real_100_joint_skeleton(data_root):
    clips = sorted((data_root / "motion" / "cmu_iclone_ccbase").glob("*.bvh.gz"))
    expected = {"Hips": "CC_Base_Hip", "Spine": "CC_Base_Waist", "Chest": "CC_Base_Spine02",
                "Neck": "CC_Base_NeckTwist01", "Head": "CC_Base_Head", **{
                    f"{j}_{s}": f"CC_Base_{s}_{b}" for s in "LR" for j, b in (
                        ("Shoulder", "Clavicle"), ("UpperArm", "Upperarm"), ("LowerArm", "Forearm"), ("Hand", "Hand"),
                        ("UpperLeg", "Thigh"), ("LowerLeg", "Calf"), ("Foot", "Foot"), ("Toes", "ToeBase"))}}
    roots = set()
    for clip in (clips[0], next(c for c in clips if c.name.startswith("002_"))):  # with and without RL_BoneRoot
        sk = read_bvh(clip).skeleton
        roots.add(sk.names[0])
        assert sk.num_joints >= 100
        _assert_mapping(sk, expected)
    assert roots == {"CC_Base_Hip", "RL_BoneRoot"}


@pytest.mark.parametrize("generation", ["genesis", "older"])
def test_daz_figures(generation):
    if generation == "genesis":
        rename = {"Hips": "hip", "Spine": "abdomenLower", "Spine1": "abdomenUpper", "Spine2": "chestLower",
                  "Neck": "neckLower", "Head": "head", **_both_sides({
                      "{Side}Shoulder": "{s}Collar", "{Side}Arm": "{s}ShldrBend", "{Side}ForeArm": "{s}ForearmBend",
                      "{Side}Hand": "{s}Hand", "{Side}UpLeg": "{s}ThighBend", "{Side}Leg": "{s}Shin",
                      "{Side}Foot": "{s}Foot", "{Side}ToeBase": "{s}Toe", "{Side}HandIndex1": "{s}Index1"})}
        extra = [("chestUpper", "chestLower", _mid("Spine2", "Neck", 0.4)), ("neckUpper", "neckLower", _mid("Neck", "Head")),
                 ("pelvis", "hip", _POS["Hips"])]
        parents = {"neckLower": "chestUpper", "head": "neckUpper",
                   **_both_sides({"{s}Collar": "chestUpper", "{s}ThighBend": "pelvis", "{s}Shin": "{s}ThighTwist",
                                  "{s}ForearmBend": "{s}ShldrTwist", "{s}Hand": "{s}ForearmTwist",
                                  "{s}Toe": "{s}Metatarsals"})}
        for side, s in (("Left", "l"), ("Right", "r")):
            extra += [(f"{s}ShldrTwist", f"{s}ShldrBend", _mid(f"{side}Arm", f"{side}ForeArm")),
                      (f"{s}ForearmTwist", f"{s}ForearmBend", _mid(f"{side}ForeArm", f"{side}Hand")),
                      (f"{s}ThighTwist", f"{s}ThighBend", _mid(f"{side}UpLeg", f"{side}Leg")),
                      (f"{s}Metatarsals", f"{s}Foot", _mid(f"{side}Foot", f"{side}ToeBase"))]
        expected = _expected(rename, Chest="chestUpper")
    else:
        rename = {"Hips": "hip", "Spine": "abdomen", "Spine1": "abdomen2", "Spine2": "chest", "Neck": "neck",
                  "Head": "head", **_both_sides({
                      "{Side}Shoulder": "{s}Collar", "{Side}Arm": "{s}Shldr", "{Side}ForeArm": "{s}ForeArm",
                      "{Side}Hand": "{s}Hand", "{Side}UpLeg": "{s}Thigh", "{Side}Leg": "{s}Shin",
                      "{Side}Foot": "{s}Foot", "{Side}ToeBase": "{s}Toe"})}
        parents, extra = {}, []
        expected = _expected(rename)
    _assert_mapping(_convention(rename, parents, extra), expected)


def test_poser_bvh_shoulder_is_the_upper_arm_below_a_collar():
    rename = {"Hips": "Hips", "Spine1": "Chest", "Neck": "Neck", "Head": "Head", **_both_sides({
        "{Side}Shoulder": "{Side}Collar", "{Side}Arm": "{Side}Shoulder", "{Side}ForeArm": "{Side}Elbow",
        "{Side}Hand": "{Side}Wrist", "{Side}UpLeg": "{Side}Hip", "{Side}Leg": "{Side}Knee",
        "{Side}Foot": "{Side}Ankle", "{Side}ToeBase": "{Side}Toe"})}
    result = _assert_mapping(_convention(rename), _expected(rename, Spine="Chest"))
    assert result.found_by["UpperArm_L"] == "name" and result.found_by["Shoulder_R"] == "name"


def test_vrm_humanoid_skips_secondary_and_adjust_bones():
    rename = {"Hips": "J_Bip_C_Hips", "Spine": "J_Bip_C_Spine", "Spine1": "J_Bip_C_Chest",
              "Spine2": "J_Bip_C_UpperChest", "Neck": "J_Bip_C_Neck", "Head": "J_Bip_C_Head", **_both_sides({
                  "{Side}Shoulder": "J_Bip_{S}_Shoulder", "{Side}Arm": "J_Bip_{S}_UpperArm",
                  "{Side}ForeArm": "J_Bip_{S}_LowerArm", "{Side}Hand": "J_Bip_{S}_Hand",
                  "{Side}HandIndex1": "J_Bip_{S}_Index1", "{Side}UpLeg": "J_Bip_{S}_UpperLeg",
                  "{Side}Leg": "J_Bip_{S}_LowerLeg", "{Side}Foot": "J_Bip_{S}_Foot",
                  "{Side}ToeBase": "J_Bip_{S}_ToeBase"})}
    extra = [(f"J_Sec_Hair{i}_01", "J_Bip_C_Head", _POS["HeadTop_End"] + (0, -5 * i, -8)) for i in range(1, 6)]
    for side, s in (("Left", "L"), ("Right", "R")):
        extra += [(f"J_Sec_{s}_Bust1", "J_Bip_C_UpperChest", _mid("Spine2", f"{side}Shoulder") + (0, 0, 10)),
                  (f"J_Adj_{s}_FaceEye", "J_Bip_C_Head", _POS["Head"] + (3, 8, 8)),
                  (f"J_Sec_{s}_SkirtBack0_01", "J_Bip_C_Hips", _mid("Hips", f"{side}UpLeg") + (0, 0, -10)),
                  (f"J_Sec_{s}_SkirtBack0_02", f"J_Sec_{s}_SkirtBack0_01", _mid(f"{side}UpLeg", f"{side}Leg"))]
    _assert_mapping(_convention(rename, extra=extra), _expected(rename, Chest="J_Bip_C_UpperChest"))


def test_dotted_side_prefixes():
    rename = {"Hips": "Hips", "Spine": "Spine", "Spine2": "Chest", "Neck": "Neck", "Head": "Head", **_both_sides({
        "{Side}Shoulder": "{S}.Clavicle", "{Side}Arm": "{S}.UpperArm", "{Side}ForeArm": "{S}.Forearm",
        "{Side}Hand": "{S}.Hand", "{Side}UpLeg": "{S}.Thigh", "{Side}Leg": "{S}.Shin", "{Side}Foot": "{S}.Foot",
        "{Side}ToeBase": "{S}.Toe"})}
    _assert_mapping(_convention(rename), _expected(rename))


def _geno(data_root) -> Skeleton:
    return read_bvh(data_root / "rigs" / "geno_lafan1_resolved" / "Geno_bind.bvh").skeleton


_GENO = {"Hips": "Hips", "Spine": "Spine", "Chest": "Spine3", "Neck": "Neck", "Head": "Head", **{
    f"{j}_{s}": f"{side}{b}" for s, side in (("L", "Left"), ("R", "Right")) for j, b in (
        ("Shoulder", "Shoulder"), ("UpperArm", "Arm"), ("LowerArm", "ForeArm"), ("Hand", "Hand"),
        ("UpperLeg", "UpLeg"), ("LowerLeg", "Leg"), ("Foot", "Foot"), ("Toes", "ToeBase"))}}


def test_lafan1_geno_real_skeleton_with_end_bones(data_root):
    """Mixamo's names on a four-bone spine: not the Mixamo preset, whose chest would be one bone low."""
    result = _assert_mapping(_geno(data_root), _GENO)
    assert "LeftUpLegEnd" in result.unmatched and "HeadEnd" in result.unmatched


def test_bvh_namespace_prefix(data_root):
    sk = _geno(data_root)
    prefixed = Skeleton(tuple(f"BVH:{n}" for n in sk.names), sk.parents, sk.offsets)
    _assert_mapping(prefixed, {j: f"BVH:{b}" for j, b in _GENO.items()})


def test_cmu_and_bandai_presets(data_root, walk_clip):
    cmu = read_bvh(data_root / "cmu-skeleton" / "rest.bvh").skeleton
    assert detect_mapping(cmu).preset == "cmu"
    bandai = read_bvh(walk_clip).skeleton
    assert detect_mapping(bandai).mapping == {j: j for j in BODY_JOINTS}


@pytest.mark.parametrize("clip, hips, spine, chest, neck, head, limbs", [
    ("tpose.bvh", "root", "spine05", "spine01", "neck01", "head",
     ("clavicle.{s}", "upperarm01.{s}", "lowerarm01.{s}", "wrist.{s}", "upperleg01.{s}", "lowerleg01.{s}",
      "foot.{s}", "toe1-1.{s}")),
    ("benchmark.bvh", "root", "spine05", "spine01", "neck01", "head",
     ("clavicle.{s}", "upperarm01.{s}", "lowerarm01.{s}", "wrist.{s}", "upperleg01.{s}", "lowerleg01.{s}",
      "foot.{s}", "toe1-1.{s}")),
    ("walk1.bvh", "Root", "Spine1", "Spine3", "Neck", "Head",
     ("Clavicle_{s}", "UpArm_{s}", "LoArm_{s}", "Hand_{s}", "UpLeg_{s}", "LoLeg_{s}", "Foot_{s}", "Toe_{s}")),
])
def test_makehuman_real_skeletons_with_split_and_helper_bones(data_root, clip, hips, spine, chest, neck, head, limbs):
    """The pelvis is where the legs and the spine part (MakeHuman's spine hangs off the root, beside
    its "Hips" or pelvis.L/R helpers); ``__`` helpers and second halves of split bones are skipped."""
    sk = read_bvh(data_root / "motion" / "makehuman_cc0" / clip).skeleton
    joints = ("Shoulder", "UpperArm", "LowerArm", "Hand", "UpperLeg", "LowerLeg", "Foot", "Toes")
    expected = {"Hips": hips, "Spine": spine, "Chest": chest, "Neck": neck, "Head": head}
    expected.update({f"{j}_{s}": b.format(s=s) for s in "LR" for j, b in zip(joints, limbs)})
    _assert_mapping(sk, expected)


# --- structure ----------------------------------------------------------------------------------------

_GAME = {"Hips": "Hips", "Spine": "Abdomen", "Spine2": "Torso", "Neck": "Neck", "Head": "Head", **_both_sides({
    "{Side}Shoulder": "Shoulder.{S}", "{Side}Arm": "UpperArm.{S}", "{Side}ForeArm": "LowerArm.{S}",
    "{Side}Hand": "Palm.{S}", "{Side}HandMiddle1": "Fingers.{S}", "{Side}UpLeg": "UpperLeg.{S}",
    "{Side}Leg": "LowerLeg.{S}", "{Side}Foot": "Foot.{S}"})}


def _game_rig(rename=_GAME) -> Skeleton:
    """A game rig: feet under the root beside pole targets, the shins with nothing below them."""
    foot = {rename[f"{side}Foot"] for side in ("Left", "Right")}
    extra = [("Root", None, np.zeros(3))] + [
        (f"PoleTarget.{s}", "Root", _POS[f"{side}Leg"] + (0, 0, 40)) for side, s in (("Left", "L"), ("Right", "R"))]
    return _convention(rename, {"Hips": "Root", **dict.fromkeys(foot, "Root")}, extra)


def test_game_rig_feet_under_the_root_are_detached_feet():
    result = _assert_mapping(_game_rig(), _expected(_GAME, Chest="Torso"))
    assert sorted(result.detached) == ["Foot_L", "Foot_R"] and result.found_by["Foot_L"] == "name"
    assert "Toes_L" not in result.mapping  # no toes: the rig stays usable


def test_a_foot_far_from_the_shin_end_is_not_taken():
    sk = _game_rig()
    far = sk.offsets.copy()
    far[sk.index("Foot.L")] += (0, 0, 60)  # a control half a leg in front of the ankle
    result = detect_mapping(Skeleton(sk.names, sk.parents, far))
    assert "Foot_L" not in result.mapping and result.mapping["Foot_R"] == "Foot.R"


def _nameless(skeleton: Skeleton) -> Skeleton:
    return Skeleton(tuple(f"Bone.{i:03d}" for i in range(skeleton.num_joints)), skeleton.parents, skeleton.offsets)


@pytest.mark.parametrize("up", ["Y", "Z"])
def test_nameless_rig_is_read_from_its_structure(up):
    """Bone.000.. names: pelvis, legs, spine, arms, neck and head from the rest pose, fingers and all,
    in Y-up or Z-up coordinates."""
    sk = _nameless(_SK)
    if up == "Z":
        turn = np.broadcast_to([np.sqrt(0.5), np.sqrt(0.5), 0.0, 0.0], (sk.num_joints, 4))
        sk = Skeleton(sk.names, sk.parents, quat_rotate(turn, sk.offsets))
    expected = {j: f"Bone.{_SK.index(b):03d}" for j, b in MIXAMO.mapping.items()}
    result = _assert_mapping(sk, expected)
    assert set(result.found_by.values()) == {"structure"} and not result.notes


def test_nameless_game_rig_finds_its_detached_feet():
    sk = _nameless(_game_rig())
    expected = {j: f"Bone.{_game_rig().index(b):03d}" for j, b in _expected(_GAME, Chest="Torso").items()}
    result = detect_mapping(sk)
    assert result.mapping == expected
    assert result.notes  # no toes show forward and no name shows a side: the +X side was taken as left


def test_a_missed_name_does_not_lose_the_others():
    """Thighs named like nothing: the pelvis and head keep their names, the thighs come from the structure."""
    rename = {**_GAME, "LeftUpLeg": "Bone.001", "RightUpLeg": "Bone.002"}
    result = detect_mapping(_game_rig(rename))
    assert result.mapping["Hips"] == "Hips" and result.found_by["Hips"] == "name"
    assert result.mapping["Head"] == "Head" and result.found_by["Head"] == "name"
    assert (result.mapping["UpperLeg_L"], result.found_by["UpperLeg_L"]) == ("Bone.001", "structure")
    assert result.mapping["Foot_R"] == "Foot.R" and not result.missing


def test_extra_spine_bones_twist_bones_and_zero_length_helpers():
    """UE5-like five-bone spine and two-bone neck, helpers on their parent's joint, no toes."""
    rename = {**_UNREAL, "Spine2": "spine_05"}
    rename.pop("LeftToeBase"), rename.pop("RightToeBase")
    extra = [("spine_03", "spine_02", _mid("Spine1", "Spine2", 0.33)), ("spine_04", "spine_03", _mid("Spine1", "Spine2", 0.66)),
             ("neck_02", "neck_01", _mid("Neck", "Head")), ("pelvis_helper", "pelvis", _POS["Hips"])]
    for side, s in (("Left", "l"), ("Right", "r")):
        extra += [(f"thigh_twist_01_{s}", f"thigh_{s}", _mid(f"{side}UpLeg", f"{side}Leg")),
                  (f"knee_helper_{s}", f"calf_{s}", _POS[f"{side}Leg"])]
    sk = _convention(rename, {"spine_05": "spine_04", "head": "neck_02"}, extra)
    _assert_mapping(sk, _expected(rename, Chest="spine_05"))


# --- not humanoid -------------------------------------------------------------------------------------

def _gltf_skeleton(path) -> Skeleton:
    """The rest skeleton of a .glb file's first skin: joint world positions from the node transforms."""
    data = path.read_bytes()
    doc = json.loads(data[20 : 20 + struct.unpack("<I", data[12:16])[0]])
    nodes = doc["nodes"]
    parent = {c: i for i, n in enumerate(nodes) for c in n.get("children", ())}
    world = {}

    def matrix(i):
        if i not in world:
            n = nodes[i]
            x, y, z, w = n.get("rotation", (0, 0, 0, 1))
            rot = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
            m = np.eye(4)
            m[:3, :3] = rot * np.asarray(n.get("scale", (1, 1, 1)))
            m[:3, 3] = n.get("translation", (0, 0, 0))
            world[i] = m if i not in parent else matrix(parent[i]) @ m
        return world[i]

    joints = doc["skins"][0]["joints"]
    order = []

    def visit(i):
        if i in joints:
            order.append(i)
        for c in nodes[i].get("children", ()):
            visit(c)

    for root in [j for j in joints if parent.get(j) not in joints]:
        visit(root)
    up = {j: next((a for a in _chain(parent, j) if a in joints), None) for j in order}
    rows = [(nodes[j].get("name", f"joint{j}"), nodes[up[j]].get("name", f"joint{up[j]}") if up[j] is not None else None,
             matrix(j)[:3, 3]) for j in order]
    return _skeleton(rows)


def _chain(parent, j):
    while j in parent:
        j = parent[j]
        yield j


@pytest.mark.parametrize("folder, glb", [("khronos_Fox", "Fox.glb"), ("khronos_RiggedSimple", "RiggedSimple.glb")])
def test_non_humanoid_gltf_rigs_are_refused_naming_the_missing_joints(data_root, folder, glb):
    sk = _gltf_skeleton(data_root / "rigs" / folder / glb)
    result = detect_mapping(sk)
    assert result.missing
    with pytest.raises(RigError) as err:
        rig_for_skeleton(sk, name=glb)
    message = str(err.value)
    assert ", ".join(result.missing) in message and "Motion Style tab > Bone Mapping" in message
    if folder == "khronos_Fox":  # four legs and a tail: the hind legs are not taken for thighs
        assert "UpperLeg_L" in result.missing


def test_nameless_quadruped_and_single_chain_are_refused():
    """A quadruped built from the humanoid's limbs (body level, four legs down, a tail) and a chain."""
    rows = [("Bone", None, (0, 60, 0)), ("Bone.001", "Bone", (0, 60, 30)), ("Bone.002", "Bone.001", (0, 60, 60)),
            ("Bone.003", "Bone.002", (0, 75, 80)), ("Bone.004", "Bone.003", (0, 80, 95)),
            ("Bone.005", "Bone", (0, 62, -20)), ("Bone.006", "Bone.005", (0, 65, -40))]
    for k, (start, z) in enumerate((("Bone", 0), ("Bone.002", 60))):
        for x in (-10, 10):
            name = f"Leg{k}{x}"
            rows += [(f"{name}.a", start, (x, 55, z)), (f"{name}.b", f"{name}.a", (x, 30, z)),
                     (f"{name}.c", f"{name}.b", (x, 5, z)), (f"{name}.d", f"{name}.c", (x, 0, z + 8))]
    quadruped = _skeleton(rows)
    chain = _skeleton([(f"Bone.{i:03d}", f"Bone.{i - 1:03d}" if i else None, (0, 10 * i, 0)) for i in range(10)])
    for sk in (quadruped, chain):
        result = detect_mapping(sk)
        assert not any(b == "structure" for j, b in result.found_by.items() if j.startswith(("UpperArm", "UpperLeg")))
        with pytest.raises(RigError, match="Motion Style tab > Bone Mapping"):
            rig_for_skeleton(sk)


def test_real_game_robot_with_feet_under_the_root(data_root):
    """three.js RobotExpressive: Quaternius-style names, feet under the root beside pole targets, a
    bent knee and a shin half as long again as the thigh. Its "Hips" bone hangs below "Body",
    where the legs and the spine part, so Body plays the pelvis."""
    sk = _gltf_skeleton(data_root / "rigs" / "threejs_RobotExpressive" / "RobotExpressive.glb")
    result = detect_mapping(sk)
    assert not result.missing and sorted(result.detached) == ["Foot_L", "Foot_R"]
    assert {j: result.mapping[j] for j in ("Hips", "Chest", "Head", "Hand_L", "UpperLeg_R", "Foot_R")} == {
        "Hips": "Body", "Chest": "Torso", "Head": "Head", "Hand_L": "Palm1.L", "UpperLeg_R": "UpperLeg.R",
        "Foot_R": "Foot.R"}


@pytest.mark.parametrize("folder, glb", [("khronos_CesiumMan", "CesiumMan.glb"),
                                         ("khronos_RiggedFigure", "RiggedFigure.glb")])
def test_real_rigs_with_numbered_joint_names_are_read_from_their_structure(data_root, folder, glb):
    """``arm_joint_L_1``, ``leg_joint_R_2``: the structure finds the joints; the sides in the names agree."""
    sk = _gltf_skeleton(data_root / "rigs" / folder / glb)
    result = detect_mapping(sk)
    assert not result.missing and not result.notes
    for joint, bone in result.mapping.items():
        if joint[-2:] in ("_L", "_R"):
            assert f"_{joint[-1]}" in bone and result.found_by[joint] == "structure", (joint, bone)
    for upper, lower in (("UpperArm_L", "Hand_L"), ("UpperLeg_R", "Foot_R"), ("Hips", "Head")):
        parents = {k: p for k, p in enumerate(sk.parents) if p >= 0}
        assert sk.index(result.mapping[upper]) in _chain(parents, sk.index(result.mapping[lower]))
