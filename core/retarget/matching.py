"""Bone mapping detection: presets first, then bone names, then the skeleton's structure.

``detect_mapping`` says for every canonical joint which bone plays it and how it was found:

- "preset": every bone of a known rig is present under its exact name (core.retarget.presets).
- "name": the bone's name says what it is once normalised: namespaces (``mixamorig1:``), Rigify
  prefixes (``DEF-``, ``ORG-``) and any words before the body part (``CC_Base_``, ``Bip01``,
  ``J_Bip_``) ignored, case and separators ignored, side markers read wherever they stand (L/R,
  Left/Right, .l/_l/l_/lName) and synonyms merged (thigh/upleg/hip, calf/shin/leg/knee ...). Twist,
  IK, pole, roll, share, end and secondary bones never play a joint.
- "structure": read off the hierarchy and the rest pose. The torso between named anchors is read
  off the hierarchy (the pelvis is where the legs and the head's chain part, the chest where the
  arms part, spine and neck the first bones above them, helper bones on their parent's joint
  skipped); when names give no anchors the torso joints are found by their own names; and any joint
  still missing is found from the geometry of the rest pose (see ``_read_body``).

Limb bones are taken along their chain: a bone named like the next joint that is not below the
previous one is accepted only if its head sits where that joint's chain ends (a game rig's foot
under the root with an IK target): retargeting places such "detached" bones from their canonical
parent (core.retarget.retarget.detached_bones), and ``MappingResult.detached`` lists them.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import numpy as np

from ..motion.motion import Motion
from ..motion.skeleton import Skeleton
from .presets import detect_preset, preset_bones, preset_rig, strip_namespace
from .retarget import standing_rig
from .rig import BODY_JOINTS, REQUIRED_JOINTS, Rig, RigError, detect_up_axis, up_vector

_TOKEN = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_SIDES = {"l": "L", "left": "L", "r": "R", "right": "R"}
# Rigify prefixes: deform bones first, then plain names, then ORG; MCH-, VIS- and the like are helpers.
_PREFIX_RANK = {"DEF": 0, "": 1, "ORG": 2}
_QUALIFIERS = frozenset({"fk", "c"})  # Rigify's FK controls, VRM's centre marker: no meaning here
_HELPER_WORDS = frozenset({"ik", "pole", "twist", "roll", "share", "sec", "adj", "end", "nub", "target"})
# Limb keys in order of preference; "shoulder" is the upper arm unless another bone is (Poser's
# LeftCollar > LeftShoulder > LeftElbow), and the clavicle otherwise (Mixamo's LeftShoulder > LeftArm).
_LIMB_KEYS = {
    "Shoulder": ("clavicle", "collar", "collarbone", "clav", "shoulder"),
    "UpperArm": ("upperarm", "arm", "uparm", "humerus", "shldrbend", "shldr", "shoulder"),
    "LowerArm": ("forearm", "lowerarm", "loarm", "elbow", "forearmbend"),
    "Hand": ("hand", "wrist", "palm"),
    "UpperLeg": ("thigh", "upleg", "upperleg", "femur", "thighbend", "hip"),
    "LowerLeg": ("shin", "calf", "leg", "lowerleg", "loleg", "crus", "knee"),
    "Foot": ("foot", "ankle"),
    "Toes": ("toebase", "toe", "toes", "ball"),
}
_AMBIGUOUS = {"shoulder": ("UpperArm", "Shoulder")}
_TORSO_KEYS = {
    "Hips": ("hips", "hip", "pelvis"),
    "Spine": ("spine", "waist", "abdomen", "abdomenlower", "lowerback"),
    "Chest": ("chest", "upperchest", "chestupper", "chestlower", "torso", "ribcage", "thorax"),
    "Neck": ("neck", "necklower", "necktwist", "neckupper"),
    "Head": ("head", "skull"),
}
_ROLE_KEYS = {**_LIMB_KEYS, **_TORSO_KEYS}
_KNOWN_KEYS = frozenset(k for keys in _ROLE_KEYS.values() for k in keys)
_NECK_OR_HEAD = _TORSO_KEYS["Neck"] + _TORSO_KEYS["Head"]
_CHAINS = (("Shoulder", "UpperArm", "LowerArm", "Hand"), ("UpperLeg", "LowerLeg", "Foot", "Toes"))


@dataclass
class MappingResult:
    """preset: the preset whose bones were all found, or None; mapping: canonical joint -> bone;
    found_by: canonical joint -> "preset" / "name" / "structure"; unmatched: the bones that play no
    joint; detached: joints whose bone is not below its canonical parent's bone; notes: guesses a
    user should check (a side chosen by an axis sign)."""

    preset: str | None
    mapping: dict[str, str]
    found_by: dict[str, str]
    unmatched: list[str]
    detached: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        return [j for j in REQUIRED_JOINTS if j not in self.mapping]


# --- names ------------------------------------------------------------------------------------------


def _parse(name: str) -> tuple[int, str | None, list[str], tuple[int, ...]] | None:
    """(prefix rank, side, words, numbers) of a bone name, or None for a helper bone (an MCH- style
    prefix, or a leading underscore: MakeHuman's ``__UpLeg_L`` sits before ``UpLeg_L``)."""
    name = strip_namespace(name)
    if name.startswith("_"):
        return None
    prefix, _, rest = name.partition("-") if re.match(r"^[A-Z]+-", name) else ("", "", name)
    if prefix not in _PREFIX_RANK:
        return None
    tokens = [t.lower() for t in _TOKEN.findall(rest)]
    words = [t for t in tokens if not t.isdigit()]
    side = None
    if len(words) > 1:  # a side marker is a word of its own, first, last or between; a lone "L" is a name
        for i in (0, len(words) - 1, *range(1, len(words) - 1)):
            if words[i] in _SIDES:
                side = _SIDES[words.pop(i)]
                break
    numbers = tuple(int(t) for t in tokens if t.isdigit())
    return _PREFIX_RANK[prefix], side, [w for w in words if w not in _QUALIFIERS], numbers


def parse_bone_name(name: str) -> tuple[int, str | None, str, tuple[int, ...]] | None:
    """(prefix rank, side "L"/"R"/None, key, numbers) of a bone name, or None for helper bones.

    ``mixamorig:LeftUpLeg`` -> (1, "L", "upleg", ()); ``DEF-upper_arm.L.001`` -> (0, "L", "upperarm", (1,)).
    """
    parsed = _parse(name)
    return None if parsed is None else (parsed[0], parsed[1], "".join(parsed[2]), parsed[3])


def _role_key(words: list[str]) -> str | None:
    """The longest run of final words that names a body part (``CC_Base_L_Upperarm`` -> upperarm,
    ``ForeArm`` -> forearm, not arm); None for helper bones (``ik_foot_l``, ``upperarm_twist_01_l``)."""
    if _HELPER_WORDS.intersection(words):
        return None
    return next((k for k in ("".join(words[i:]) for i in range(len(words))) if k in _KNOWN_KEYS), None)


@dataclass
class _Names:
    """The parsed names of a skeleton's bones that name a body part: bone -> (rank, side, key,
    numbers); sides: bone -> "L"/"R" for every bone whose name has a side (fingers too)."""

    skeleton: Skeleton
    parsed: dict[int, tuple[int, str | None, str, tuple[int, ...]]]
    sides: dict[int, str]
    depth: list[int]

    @classmethod
    def read(cls, skeleton: Skeleton) -> _Names:
        parsed, sides = {}, {}
        for j, name in enumerate(skeleton.names):
            p = _parse(name)
            key = None if p is None else _role_key(p[2])
            if key is not None:
                parsed[j] = (p[0], p[1], key, p[3])
            if p is not None and p[1] is not None:
                sides[j] = p[1]
        depth = []
        for p in skeleton.parents:
            depth.append(0 if p < 0 else depth[p] + 1)
        return cls(skeleton, parsed, sides, depth)

    def candidates(self, role: str, side: str | None, keys=None) -> list[int]:
        """Bones on ``side`` whose key names ``role``, best first: deform before plain before ORG,
        preferred synonym, lowest numbers (upperleg01 before upperleg02), nearest the root."""
        keys = _ROLE_KEYS[role] if keys is None else keys
        found = [j for j, (_, s, key, _) in self.parsed.items() if s == side and key in keys]
        return sorted(
            found, key=lambda j: (self.parsed[j][0], keys.index(self.parsed[j][2]), self.parsed[j][3], self.depth[j])
        )

    def key(self, bone: int) -> str | None:
        return self.parsed[bone][2] if bone in self.parsed else None


def _limb_roles(names: _Names, side: str) -> dict[str, list[int]]:
    """Limb role -> candidate bones on one side, an ambiguous key given the role no other bone claims.

    A "shoulder" is the upper arm only where names show the arm around it (a collar above it, an
    elbow or forearm below it): with neither it is the clavicle, so one unnamed upper arm does not
    turn the clavicle into the arm."""
    roles = {role: names.candidates(role, side) for role in _LIMB_KEYS}
    claimed = {role for role, bones in roles.items() if any(names.key(b) not in _AMBIGUOUS for b in bones)}
    if not {"Shoulder", "LowerArm"} & claimed:
        claimed.add("UpperArm")
    for key, choices in _AMBIGUOUS.items():
        keep = next((r for r in choices if r not in claimed), None)
        for role in choices:
            if role != keep:
                roles[role] = [b for b in roles[role] if names.key(b) != key]
    return roles


# --- the body ---------------------------------------------------------------------------------------


@dataclass
class _Body:
    """A skeleton's rest pose as geometry: world heads, children, subtrees and a length scale."""

    skeleton: Skeleton
    pos: np.ndarray
    children: list[list[int]]
    subtree: list[np.ndarray]
    size: float

    @classmethod
    def read(cls, skeleton: Skeleton) -> _Body:
        pos = np.array(skeleton.offsets, dtype=np.float64)
        children: list[list[int]] = [[] for _ in skeleton.names]
        for j, p in enumerate(skeleton.parents):
            if p >= 0:
                pos[j] += pos[p]
                children[p].append(j)
        members: list[list[int]] = [[j] for j in range(len(pos))]
        for j in range(len(pos) - 1, -1, -1):
            for c in children[j]:
                members[j].extend(members[c])
        size = float(np.linalg.norm(pos.max(axis=0) - pos.min(axis=0))) or 1.0
        return cls(skeleton, pos, children, [np.array(m) for m in members], size)

    def is_below(self, joint: int, above: int) -> bool:
        return above in self.skeleton.ancestors(joint)[1:]

    def common_ancestor(self, *joints: int) -> int:
        shared = set(self.skeleton.ancestors(joints[0]))
        for j in joints[1:]:
            shared &= set(self.skeleton.ancestors(j))
        return next(j for j in self.skeleton.ancestors(joints[0]) if j in shared)

    def apart(self, joint: int) -> bool:
        """Whether a bone's head is off its parent's (helpers on the parent's joint are not)."""
        return float(np.linalg.norm(self.skeleton.offsets[joint])) > 1e-6 * self.size

    def first_apart(self, start: int, end: int) -> int | None:
        """The first bone strictly between ``start`` and its descendant ``end`` that is apart from
        its parent: helper bones with a zero offset (CMU LowerBack, Neck) are skipped."""
        path = self.skeleton.ancestors(end)
        if start not in path:
            return None
        return next((j for j in reversed(path[1 : path.index(start)]) if self.apart(j)), None)

    def reach(self, joint: int, branch: int) -> float:
        return float(np.linalg.norm(self.pos[self.subtree[branch]] - self.pos[joint], axis=1).max())

    def direction(self, joint: int, branch: int) -> np.ndarray:
        """Unit vector from a joint to the centre of one of its branches (zero if they coincide)."""
        d = self.pos[self.subtree[branch]].mean(axis=0) - self.pos[joint]
        n = np.linalg.norm(d)
        return d / n if n > 0 else d

    def main_path(self, start: int) -> list[int]:
        """From ``start`` down through the child reaching farthest, to a leaf, helpers on their
        parent's joint left out (the chain a limb's joints lie on; twist bones hang off it)."""
        path = [start]
        while self.children[path[-1]]:
            path.append(max(self.children[path[-1]], key=lambda c: self.reach(path[-1], c)))
        return [j for j in path if j == start or self.apart(j)]

    def ends_chain(self, upper: int, lower: int, bone: int) -> bool:
        """Whether ``bone`` starts where ``lower``'s chain ends: within a third of its length of its
        main child's head; with no child, 0.5 to 2 upper bone lengths on along the limb, within 45
        degrees (a game robot's shin is half as long again as its thigh, its knee bent)."""
        length = float(np.linalg.norm(self.pos[lower] - self.pos[upper]))
        path = self.main_path(lower)
        if len(path) > 1:
            return float(np.linalg.norm(self.pos[bone] - self.pos[path[1]])) < length / 3
        step = self.pos[bone] - self.pos[lower]
        reach = float(np.linalg.norm(step))
        along = step @ (self.pos[lower] - self.pos[upper])
        return 0.5 * length <= reach <= 2 * length and along >= 0.7 * reach * length


def _limbs_by_name(names: _Names, body: _Body, found: dict[str, int], detached: list[str]) -> None:
    """Each side's arm and leg along their chain: a bone below the previous joint's bone first; one
    elsewhere only if it starts where that chain ends (a detached foot)."""
    for side in "LR":
        roles = _limb_roles(names, side)
        for chain in _CHAINS:
            prev = upper = None
            for role in chain:
                cands = roles[role]
                if prev is not None:
                    cands = sorted(cands, key=lambda b: not body.is_below(b, prev))
                bone = next(iter(cands), None)
                if bone is None:
                    continue
                if prev is not None and not body.is_below(bone, prev):
                    if upper is None or not body.ends_chain(upper, prev, bone):
                        continue
                    detached.append(f"{role}_{side}")
                found[f"{role}_{side}"] = bone
                prev, upper = bone, prev


def _torso_by_name_and_hierarchy(names: _Names, body: _Body, found: dict[str, int]) -> None:
    """The torso: anchored on the named legs, arms and head where the hierarchy shows them, else each
    joint by its own name, so one missed name does not lose the others."""
    arms = [found.get(f"Shoulder_{s}", found.get(f"UpperArm_{s}")) for s in "LR"]
    arms_at = body.common_ancestor(*arms) if None not in arms else None
    head = _head(names, body, arms_at)
    hips = _hips(names, body, found, head, arms_at)
    if hips is not None:
        found["Hips"] = hips
        _spine_and_chest(names, body, found, hips, arms_at)
    if head is not None:
        found["Head"] = head
        top = found.get("Chest", found.get("Spine"))
        neck = body.first_apart(top, head) if top is not None else None
        neck = neck if neck is not None else next(iter(names.candidates("Neck", None)), None)
        if neck is not None and neck != head and body.is_below(head, neck):
            found["Neck"] = neck


def _spine_and_chest(names: _Names, body: _Body, found: dict[str, int], hips: int, arms_at: int | None) -> None:
    """The chest where the arms part (Biped's clavicles hang off the neck: the last bone below it)
    and the spine the first bone above the pelvis; else each by its own name."""
    if arms_at is not None and body.is_below(arms_at, hips):
        chest = next(j for j in body.skeleton.ancestors(arms_at) if names.key(j) not in _NECK_OR_HEAD)
        spine = body.first_apart(hips, chest) if chest != hips else None
        if spine is not None:
            found["Spine"], found["Chest"] = spine, chest
        elif chest != hips:
            found["Spine"] = chest
    else:
        for joint in ("Spine", "Chest"):
            bone = next((b for b in names.candidates(joint, None) if body.is_below(b, hips)), None)
            if bone is not None:
                found[joint] = bone


def _hips(names: _Names, body: _Body, found: dict[str, int], head, arms_at) -> int | None:
    """Where the thighs and the head's chain part (Biped's thighs hang off "Bip01 Spine": then the
    pelvis-named bone above), else the best pelvis-named bone."""
    legs = [found.get(f"UpperLeg_{s}") for s in "LR"]
    if None in legs:
        return next(iter(names.candidates("Hips", None)), None)
    hips = body.common_ancestor(*legs, *(j for j in (head, arms_at) if j is not None))
    if names.key(hips) in _TORSO_KEYS["Spine"]:
        hips = next((j for j in body.skeleton.ancestors(hips) if names.key(j) in _TORSO_KEYS["Hips"]), hips)
    return hips


def _head(names: _Names, body: _Body, chest: int | None) -> int | None:
    """A centre bone named head/skull (below the chest when the arms show it); else the top of the
    chest's chain of centre torso-named bones (the metarig's head is spine.006)."""
    named = [j for j in names.candidates("Head", None) if chest is None or body.is_below(j, chest)]
    if named or chest is None:
        return next(iter(named), None)
    top = chest
    while True:
        chain = [c for c in body.children[top] if names.key(c) in _KNOWN_KEYS and names.parsed[c][1] is None]
        if not chain:
            return top if top != chest else None
        top = chain[0]


# --- structure --------------------------------------------------------------------------------------


def _branches(body: _Body, joint: int, reach: float, origin: int | None = None) -> list[int]:
    """Child subtrees of ``joint`` reaching ``reach`` or farther from ``origin`` (the joint itself by
    default); a child next to the origin that forks again (a pelvis bone holding both legs beside the
    spine) is opened up."""
    origin = joint if origin is None else origin
    out = []
    for c in body.children[joint]:
        if body.reach(origin, c) < reach:
            continue
        near = np.linalg.norm(body.pos[c] - body.pos[origin]) < 0.05 * body.size
        inner = _branches(body, c, reach, origin) if near else []
        out.extend(inner if len(inner) >= 2 else [c])
    return out


def _segments(body: _Body, path: list[int]) -> list[float]:
    """Length of each bone on a path (head to the next head); a leaf counts half its parent's."""
    seg = [float(np.linalg.norm(body.pos[b] - body.pos[a])) for a, b in itertools.pairwise(path)]
    return seg + [seg[-1] / 2 if seg else 0.0]


def _limb(body: _Body, start: int) -> list[int | None] | None:
    """The bones of a limb from its branch: [girdle, upper, lower, end, tip] (None where absent) where
    upper and lower are the two longest consecutive bones (thigh and shin, upper arm and forearm) and
    the end may be a bone elsewhere that starts where the lower one ends (a foot under the root)."""
    path = body.main_path(start)
    if len(path) < 2:
        return None
    seg = _segments(body, path)
    i = max(range(len(path) - 1), key=lambda k: seg[k] + seg[k + 1])
    upper, lower = path[i], path[i + 1]
    rest = path[i + 2 :] or _detached_end(body, upper, lower)
    return [path[i - 1] if i > 0 else None, upper, lower, *(rest[:2] + [None] * (2 - len(rest[:2])))]


def _detached_end(body: _Body, upper: int, lower: int) -> list[int]:
    """The main path of the bone outside the limb (neither below nor above it) that starts where its
    lower bone ends, the nearest one if several do."""
    ends = [
        b
        for b in range(len(body.pos))
        if body.ends_chain(upper, lower, b) and not body.is_below(b, upper) and not body.is_below(upper, b)
    ]
    return body.main_path(min(ends, key=lambda b: np.linalg.norm(body.pos[b] - body.pos[lower]))) if ends else []


def _read_body(body: _Body, names: _Names) -> tuple[dict[str, int], list[str]]:
    """Every joint the geometry shows, and notes on guesses. The pelvis is the first bone where two
    branches go the same way (the legs) and a third the other way (the spine) with, up that spine, a
    bone where two branches part sideways (the arms) below a chain going on up (neck and head).
    Quadrupeds fail it (their spine runs level with the legs hanging below it, as do the front legs)
    and so do single chains. Limits: arms hanging straight down at rest, a thigh or upper arm split
    into several bones (the longer part is taken), legs without a forward-pointing foot and no side
    in any name (the +X side is taken as the left, as in BVH and Blender's axes, and a note says so)."""
    for pelvis in range(len(body.pos)):
        reading = _read_from_pelvis(body, pelvis)
        if reading is not None:
            return _sided(body, names, *reading)
    return {}, []


def _read_from_pelvis(body: _Body, pelvis: int):
    branches = _branches(body, pelvis, 0.15 * body.size)
    dirs = {b: body.direction(pelvis, b) for b in branches}
    for a in branches:
        for b in branches:
            if a >= b or dirs[a] @ dirs[b] < 0.5:
                continue
            legs = [_limb(body, a), _limb(body, b)]
            if None in legs:
                continue
            down = dirs[a] + dirs[b]
            for spine in branches:
                if spine in (a, b) or dirs[spine] @ down > -0.5 * np.linalg.norm(down):
                    continue
                up = dirs[spine] - down / 2
                upper = _read_upper_body(body, pelvis, spine, up / np.linalg.norm(up))
                if upper is not None:
                    return pelvis, legs, upper
    return None


def _read_upper_body(body: _Body, pelvis: int, spine: int, up: np.ndarray):
    """(up, chest, head chain, [arm, arm]) going up the spine from the pelvis, or None."""
    for chest in body.main_path(spine):
        arms = [b for b in _branches(body, chest, 0.1 * body.size) if abs(body.direction(chest, b) @ up) < 0.85]
        heads = [c for c in body.children[chest] if c not in arms and body.direction(chest, c) @ up > 0.5]
        for a in arms:
            for b in arms:
                if a < b and body.direction(chest, a) @ body.direction(chest, b) < 0.3 and heads:
                    limbs = [_limb(body, a), _limb(body, b)]
                    if None not in limbs:
                        return up, chest, body.main_path(heads[0]), limbs
    return None


def _sided(body, names, pelvis, legs, upper):
    """The joints of a read body, each limb pair put on its sides."""
    up, chest, head_chain, arms = upper
    notes: list[str] = []
    pos = body.pos
    forward = sum((pos[leg[4]] - pos[leg[3]] for leg in legs if None not in leg[3:]), np.zeros(3))
    forward -= (forward @ up) * up
    out = {"Hips": pelvis}
    spine = body.first_apart(pelvis, chest)
    out.update({"Spine": spine, "Chest": chest} if spine is not None else {"Spine": chest})
    rise = float((pos[chest] - pos[pelvis]) @ up)  # the head joint sits about 0.7 of this above the chest
    heads = [j for j in head_chain if j != chest]
    if heads:
        out["Head"] = min(heads, key=lambda j: abs(float((pos[j] - pos[chest]) @ up) - 0.7 * rise))
        neck = body.first_apart(chest, out["Head"])
        if neck is not None:
            out["Neck"] = neck
    for roles, pair in (
        (("Shoulder", "UpperArm", "LowerArm", "Hand", None), arms),
        ((None, "UpperLeg", "LowerLeg", "Foot", "Toes"), legs),
    ):
        left, note = _left_first(body, names, pair, up, forward)
        notes += [note] if note else []
        for side, limb in zip("LR", left):
            out.update({f"{r}_{side}": b for r, b in zip(roles, limb) if r is not None and b is not None})
    return out, notes


def _left_first(body, names, pair, up, forward):
    """The two limbs of a pair, the character's left one first, and a note when it is a guess: by
    the sides in the names of either limb's bones, else across the body (up x forward, forward from the toes), else
    by the sign along the axis between them."""
    subtrees = [set(body.subtree[next(b for b in limb if b is not None)].tolist()) for limb in pair]
    votes = [sum(1 if names.sides[j] == "L" else -1 for j in sub if j in names.sides) for sub in subtrees]
    if votes[0] != votes[1]:
        return (pair if votes[0] > votes[1] else pair[::-1]), None
    across = body.pos[pair[0][1]] - body.pos[pair[1][1]]
    left = np.cross(up, forward)
    if np.linalg.norm(forward) > 1e-6 * body.size and abs(across @ left) > 1e-6 * body.size:
        return (pair if across @ left > 0 else pair[::-1]), None
    axis = int(np.argmax(np.abs(across)))
    note = (
        f"no name or foot shows which of {body.skeleton.names[pair[0][1]]!r} and "
        f"{body.skeleton.names[pair[1][1]]!r} is on the left: the one along +{'XYZ'[axis]} was taken"
    )
    return (pair if across[axis] > 0 else pair[::-1]), note


# --- entry points -----------------------------------------------------------------------------------


def detect_mapping(skeleton: Skeleton) -> MappingResult:
    """The canonical joint -> bone mapping of a skeleton and how each joint was found: a preset whose
    bones are all there, else names, then the structure for whatever names leave missing."""
    preset = detect_preset(skeleton.names, skeleton.parents)
    if preset is not None:
        mapping = preset_bones(preset, skeleton.names)
        return _result(skeleton, preset, mapping, dict.fromkeys(mapping, "preset"), [], [])
    return _match(skeleton)


def _match(skeleton: Skeleton) -> MappingResult:
    """The mapping from names, then the structure for whatever names leave missing."""
    names, body = _Names.read(skeleton), _Body.read(skeleton)
    found: dict[str, int] = {}
    detached: list[str] = []
    _limbs_by_name(names, body, found, detached)
    _torso_by_name_and_hierarchy(names, body, found)
    found_by = {j: _how(names, j, b) for j, b in found.items()}
    notes: list[str] = []
    if any(j not in found for j in BODY_JOINTS):
        read, notes = _read_body(body, names)
        used = set(found.values())
        for joint, bone in read.items():
            if joint not in found and bone not in used:
                found[joint], found_by[joint] = bone, "structure"
                used.add(bone)
    mapping = {j: skeleton.names[found[j]] for j in BODY_JOINTS if j in found}
    return _result(skeleton, None, mapping, found_by, detached, notes)


def _how(names: _Names, joint: str, bone: int) -> str:
    """ "name" when the bone's own name says the joint, else "structure" (read off the hierarchy)."""
    return "name" if names.key(bone) in _ROLE_KEYS[joint.split("_")[0]] else "structure"


def _result(skeleton, preset, mapping, found_by, detached, notes) -> MappingResult:
    used = set(mapping.values())
    return MappingResult(
        preset,
        mapping,
        {j: found_by[j] for j in mapping},
        [n for n in skeleton.names if n not in used],
        [j for j in detached if j in mapping],
        notes,
    )


def match_bones(skeleton: Skeleton) -> tuple[dict[str, str], list[str]]:
    """A canonical joint -> bone mapping guessed from names and structure (no preset), and the
    unmatched bones."""
    result = _match(skeleton)
    return result.mapping, result.unmatched


SIDES_FRAMES = 1000


def sides_swapped(rig: Rig, motion: Motion | None = None) -> bool | None:
    """Whether the bones mapped to the left joints stand on the character's right (a rig exported
    with its left/right labels swapped): the hips and shoulders across the body, left being up x
    forward and forward the way the lower foot points to its toes (the planted foot: a swinging foot
    in a sprint flicks back, toes down), in most of the motion's frames (the rest pose without one).
    None when no toes are mapped, so nothing shows which way the body faces."""
    if not all(f"{j}_{s}" in rig.mapping for j in ("Foot", "Toes") for s in "LR"):
        return None
    arm = "Shoulder" if "Shoulder_L" in rig.mapping and "Shoulder_R" in rig.mapping else "UpperArm"
    names = [f"{j}_{s}" for j in ("Foot", "Toes", "UpperLeg", arm) for s in "LR"]
    if motion is None:
        pos = rig.rest_world()[1][None][:, [rig.bone(n) for n in names]]
    else:  # at most SIDES_FRAMES frames spread over the take: a median needs no more
        frames = np.unique(np.linspace(0, motion.num_frames - 1, min(motion.num_frames, SIDES_FRAMES)).astype(int))
        sample = motion.with_arrays(motion.rotations[frames], motion.positions[frames])
        pos = sample.world_of([rig.bone(n) for n in names])[1]
    at = {n: pos[:, i] for i, n in enumerate(names)}
    up = up_vector(rig.up_axis)
    left_lower = (at["Foot_L"] @ up < at["Foot_R"] @ up)[:, None]
    forward = np.where(left_lower, at["Toes_L"] - at["Foot_L"], at["Toes_R"] - at["Foot_R"])
    left = np.cross(up, forward - (forward @ up)[:, None] * up)
    cosines = []
    for joint in ("UpperLeg", arm):
        across = at[f"{joint}_L"] - at[f"{joint}_R"]
        norms = np.linalg.norm(across, axis=1) * np.linalg.norm(left, axis=1)
        cosines.append(np.einsum("fi,fi->f", across, left) / np.maximum(norms, 1e-12))
    return bool(np.median(np.mean(cosines, axis=0)) < -0.5)


def check_sides(rig: Rig, motion: Motion | None = None) -> None:
    """Raise RigError when the rig's left and right bones are swapped (sides_swapped): retargeting it
    would play each side's motion on the other side, mirrored through the body."""
    if sides_swapped(rig, motion):
        raise RigError(
            f"rig {rig.name!r}: the bones named left ({rig.mapping['UpperLeg_L']!r}, ...) are on the character's "
            "right and those named right on its left; swap the left/right bone names (or map the sides by "
            "hand in the add-on: Motion Style tab > Bone Mapping)"
        )


def rig_for_skeleton(
    skeleton: Skeleton, up_axis: str | None = None, name: str = "", motion: Motion | None = None
) -> Rig:
    """The rig description of a skeleton (detect_mapping); a preset's rig carries its rest pose.
    ``up_axis`` None: the axis the rest pose's Hips-to-Head direction points along
    (``detect_up_axis``): BVH files are usually Y-up, but MakeHuman's exports are Z-up.
    ``motion`` (on the skeleton): a skeleton whose legs point up at rest stands as the motion shows
    (core.retarget.retarget.standing_rig); without it such a rig is refused by check_rig.

    Raises RigError naming the required canonical joints that no bone was found for."""
    result = detect_mapping(skeleton)
    if result.missing:
        raise RigError(
            f"rig {name!r}: no bone found for the required canonical joints {', '.join(result.missing)}; "
            "map them by hand (in the add-on: Motion Style tab > Bone Mapping)"
        )

    def rig(axis: str) -> Rig:
        if result.preset is not None:
            return preset_rig(result.preset, skeleton, axis)
        return Rig(skeleton, result.mapping, up_axis=axis, name=name)

    if up_axis is None:
        y_up = rig("Y")
        up_axis = detect_up_axis(skeleton, y_up.mapping, y_up.rest_rotations)
    return rig(up_axis) if motion is None else standing_rig(rig(up_axis), motion)
