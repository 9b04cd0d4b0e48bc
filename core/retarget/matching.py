"""Bone matching for rigs no preset knows: names for the limbs, the hierarchy for the torso.

Limb bones are recognised by name once normalised: namespaces (``mixamorig1:``, ``Armature|``) and
Rigify prefixes (``DEF-``, ``ORG-``) stripped, case and separators ignored, side markers read
(L/R, Left/Right, .l/_l/l_ ...) and synonyms merged (thigh/upleg/upperleg, calf/shin/leg ...).
Torso names vary far more (spine_01..05, Spine/Spine1/Spine2, spine.001..006 where "spine" is the
pelvis, LowerBack), so the torso is read off the hierarchy instead: the pelvis is where the legs
meet, the chest where the arms meet, the spine and neck are the first bones above them.
"""

from __future__ import annotations

import re

import numpy as np

from ..motion.skeleton import Skeleton
from .presets import detect_preset, preset_rig, strip_namespace
from .rig import Rig

_TOKEN = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_SIDES = {"l": "L", "left": "L", "r": "R", "right": "R"}
# Rigify prefixes: deform bones first, then plain names, then ORG; MCH-, VIS- and the like are helpers.
_PREFIX_RANK = {"DEF": 0, "": 1, "ORG": 2}
_LIMB_SYNONYMS = {
    "Shoulder": ("shoulder", "clavicle", "collar", "collarbone", "clav"),
    "UpperArm": ("upperarm", "arm", "uparm", "humerus"),
    "LowerArm": ("forearm", "lowerarm", "elbow"),
    "Hand": ("hand", "wrist"),
    "UpperLeg": ("thigh", "upleg", "upperleg", "femur"),
    "LowerLeg": ("shin", "calf", "leg", "lowerleg", "knee", "crus"),
    "Foot": ("foot", "ankle"),
    "Toes": ("toe", "toes", "toebase", "ball"),
}
_LIMB_OF = {key: limb for limb, keys in _LIMB_SYNONYMS.items() for key in keys}
_HEAD_KEYS = ("head", "skull")
_CENTRE_TORSO = {(None, key) for key in ("spine", "chest", "neck", "torso", "head")}  # (side, key)


def parse_bone_name(name: str) -> tuple[int, str | None, str, tuple[int, ...]] | None:
    """(prefix rank, side "L"/"R"/None, key, numbers) of a bone name, or None for helper bones.

    ``mixamorig:LeftUpLeg`` -> (1, "L", "upleg", ()); ``DEF-upper_arm.L.001`` -> (0, "L", "upperarm", (1,)).
    """
    name = strip_namespace(name)
    prefix, _, rest = name.partition("-") if re.match(r"^[A-Z]+-", name) else ("", "", name)
    if prefix not in _PREFIX_RANK:
        return None
    tokens = [t.lower() for t in _TOKEN.findall(rest)]
    word_at = [i for i, t in enumerate(tokens) if not t.isdigit()]
    side = None
    if len(word_at) > 1:  # a side marker is the first or last word; a lone "L" is a name
        for i in (word_at[0], word_at[-1]):
            if tokens[i] in _SIDES:
                side = _SIDES[tokens.pop(i)]
                break
    numbers = tuple(int(t) for t in tokens if t.isdigit())
    return _PREFIX_RANK[prefix], side, "".join(t for t in tokens if not t.isdigit()), numbers


def _ancestors(skeleton: Skeleton, joint: int) -> list[int]:
    """The joint and its ancestors up to the root."""
    chain = [joint]
    while skeleton.parents[chain[-1]] >= 0:
        chain.append(skeleton.parents[chain[-1]])
    return chain


def _common_ancestor(skeleton: Skeleton, a: int, b: int) -> int:
    above_b = set(_ancestors(skeleton, b))
    return next(j for j in _ancestors(skeleton, a) if j in above_b)


def _first_apart(skeleton: Skeleton, start: int, end: int) -> int | None:
    """The first bone strictly between ``start`` and its descendant ``end`` that does not sit on
    its parent's joint: helper bones with a zero offset (CMU LowerBack, Neck) are skipped."""
    path = _ancestors(skeleton, end)
    if start not in path:
        return None
    scale = np.linalg.norm(skeleton.offsets, axis=1).max()
    between = reversed(path[1 : path.index(start)])
    return next((j for j in between if np.linalg.norm(skeleton.offsets[j]) > 1e-6 * scale), None)


def match_bones(skeleton: Skeleton) -> tuple[dict[str, str], list[str]]:
    """A canonical joint -> bone mapping guessed from names and hierarchy, and the unmatched bones."""
    parsed = {j: parse_bone_name(n) for j, n in enumerate(skeleton.names)}
    parsed = {j: p for j, p in parsed.items() if p is not None}

    def best(candidates):
        ranked = sorted(candidates, key=lambda j: (parsed[j][0], parsed[j][3], len(_ancestors(skeleton, j))))
        return ranked[0] if ranked else None

    found: dict[str, int] = {}
    for limb in _LIMB_SYNONYMS:
        for side in "LR":
            j = best([j for j, (_, s, key, _) in parsed.items() if s == side and _LIMB_OF.get(key) == limb])
            if j is not None:
                found[f"{limb}_{side}"] = j

    if "UpperLeg_L" in found and "UpperLeg_R" in found:
        found["Hips"] = _common_ancestor(skeleton, found["UpperLeg_L"], found["UpperLeg_R"])
    arms = [found.get(f"Shoulder_{s}", found.get(f"UpperArm_{s}")) for s in "LR"]
    if "Hips" in found and None not in arms:
        chest = _common_ancestor(skeleton, *arms)
        if chest != found["Hips"]:  # with no bone between pelvis and chest, the chest is the spine
            spine = _first_apart(skeleton, found["Hips"], chest)
            found["Spine"] = chest if spine is None else spine
            if spine is not None:
                found["Chest"] = chest
        head = _find_head(skeleton, parsed, chest, best)
        if head is not None:
            found["Head"] = head
            neck = _first_apart(skeleton, chest, head)
            if neck is not None:
                found["Neck"] = neck

    mapping = {joint: skeleton.names[j] for joint, j in found.items()}
    used = set(mapping.values())
    return mapping, [n for n in skeleton.names if n not in used]


def _find_head(skeleton, parsed, chest, best) -> int | None:
    """A centre bone named head/skull below the chest; else the top of the chest's chain of
    spine/neck-named bones (the metarig's head is spine.006)."""
    below = [j for j in parsed if chest in _ancestors(skeleton, j)[1:]]
    named = best([j for j in below if parsed[j][1] is None and parsed[j][2] in _HEAD_KEYS])
    if named is not None:
        return named
    top = chest
    while True:
        chain = [c for c in skeleton.children(top) if c in parsed and parsed[c][1:3] in _CENTRE_TORSO]
        if not chain:
            return top if top != chest else None
        top = chain[0]


def rig_for_skeleton(skeleton: Skeleton, up_axis: str = "Y", name: str = "") -> Rig:
    """The rig description of a skeleton: its preset when the bone names show one, else a fuzzy match.

    Raises RigError naming the required canonical joints that no bone was found for."""
    preset = detect_preset(skeleton.names)
    if preset is not None:
        return preset_rig(preset, skeleton, up_axis)
    mapping, _ = match_bones(skeleton)
    return Rig(skeleton, mapping, up_axis=up_axis, name=name)
