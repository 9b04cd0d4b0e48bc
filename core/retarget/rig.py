"""A rig description: a skeleton plus the bones that play the canonical joints.

The add-on stores it on the armature as JSON, so it holds only what retargeting needs: joint names,
parents and rest offsets, the canonical joint -> bone mapping, the rest pose that alignment reads,
the up axis of the skeleton's coordinates and, where the add-on knows it, the floor under the feet.

Rest convention: the skeleton's zero-rotation pose is the rig's rest pose, with every joint's rest
frame aligned to the world (as BVH files and Blender's BVH exporter have it). A Blender pose bone
with armature-space rotation P (``pose_bone.matrix``) and rest rotation B (``bone.matrix_local``)
has world rotation P @ B^-1 in this convention; local rotations follow from the parents. Rigs whose
zero pose is not a pose at all (the Bandai rig, bones along +X) carry ``rest_rotations``.
"""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass, field

import numpy as np

from ..errors import RequestError
from ..motion.canonical import JOINT_NAMES, PLACEMENT_ROOT
from ..motion.skeleton import Skeleton
from ..ops.kinematics import forward_kinematics
from ..ops.rotations import identity_quat, quat_conj, quat_rotate

# Canonical joints that retargeting drives. The placement joint is not among them: the canonical
# features fold it into the pelvis, so a rig's ground-level root bone keeps its base animation.
BODY_JOINTS: tuple[str, ...] = tuple(n for n in JOINT_NAMES if n != PLACEMENT_ROOT)
# Rigs without clavicles, a chest, a neck or toes are common; anything else is needed to pose a body.
OPTIONAL_JOINTS = frozenset({"Chest", "Neck", "Shoulder_L", "Shoulder_R", "Toes_L", "Toes_R"})
REQUIRED_JOINTS: tuple[str, ...] = tuple(n for n in BODY_JOINTS if n not in OPTIONAL_JOINTS)

# Rotation taking a skeleton's coordinates to Y-up (w, x, y, z): for each signed axis, the shortest
# turn of that axis onto +Y (180 degrees about X for -Y). "Z" is Blender's armature space (Z up, -Y
# forward): (x, y, z) -> (x, z, -y), a -90 degree turn about X. Imported rigs (FBX, glTF: Y up) and
# rigs lying along any axis take the others (detect_up_axis).
_H = np.sqrt(0.5)
UP_AXIS_TO_Y_UP = {
    "Y": np.array([1.0, 0.0, 0.0, 0.0]),
    "Z": np.array([_H, -_H, 0.0, 0.0]),
    "-Y": np.array([0.0, 1.0, 0.0, 0.0]),
    "-Z": np.array([_H, _H, 0.0, 0.0]),
    "X": np.array([_H, 0.0, 0.0, _H]),
    "-X": np.array([_H, 0.0, 0.0, -_H]),
}
# The joints above the hips that show where up is, the first one mapped taken.
_UPPER_BODY = ("Head", "Neck", "Chest", "Spine")


class RigError(RequestError):
    """A rig description that cannot be used for retargeting (missing or unknown bones, a rest pose
    that gives a joint no direction); a request error, since the user fixes it in the bone mapping."""


def mapping_hint(joint: str) -> str:
    """What a user does about a bone that cannot play its joint; every rig check's message ends with it."""
    return f"map another bone to {joint} in the Motion Style tab > Bone Mapping"


def up_vector(up_axis: str) -> np.ndarray:
    """The unit vector of a signed up axis ("Y", "-Z", ...) in the skeleton's coordinates."""
    return quat_rotate(quat_conj(UP_AXIS_TO_Y_UP[up_axis]), np.array([0.0, 1.0, 0.0]))


def detect_up_axis(skeleton: Skeleton, mapping: dict[str, str], rest_rotations=None) -> str:
    """The signed coordinate axis closest to the direction from the mapped Hips up to the mapped
    Head (else Neck, Chest or Spine) in the rest pose: the skeleton coordinates' up axis, whatever
    the file format or the way the body lies (an FBX import is Y-up in armature space)."""
    top = next((j for j in _UPPER_BODY if j in mapping), None)
    if "Hips" not in mapping or top is None:
        missing = "Hips" if "Hips" not in mapping else _UPPER_BODY[0]
        raise RigError(f"the up axis needs the Hips and one of {', '.join(_UPPER_BODY)}; {mapping_hint(missing)}")
    rest = identity_quat((skeleton.num_joints,)) if rest_rotations is None else np.asarray(rest_rotations, float)
    _, pos = forward_kinematics(skeleton.parents, rest, skeleton.offsets)
    rise = pos[skeleton.index(mapping[top])] - pos[skeleton.index(mapping["Hips"])]
    if np.linalg.norm(rise) < 1e-9:
        raise RigError(
            f"{top} (bone {mapping[top]!r}) sits where the Hips (bone {mapping['Hips']!r}) do at rest, so the up "
            f"axis is unknown; {mapping_hint(top)}"
        )
    return max(UP_AXIS_TO_Y_UP, key=lambda axis: float(rise @ up_vector(axis)))


@dataclass(frozen=True, eq=False)
class Rig:
    """skeleton: the rig's joints in its rest pose; mapping: canonical body joint -> bone name;
    rest_rotations: (J, 4) local rotations of the rest pose when it is not the zero pose;
    up_axis: a key of UP_AXIS_TO_Y_UP, the up axis of the skeleton's coordinates;
    floor: the height of the ground at rest along the up axis, in skeleton coordinates (the lowest
    point of the feet: a skeleton has only the ankle and toe heads, the add-on knows bone tails);
    None when unknown (standing_pelvis_height then guesses it)."""

    skeleton: Skeleton
    mapping: dict[str, str]
    rest_rotations: np.ndarray | None = None
    up_axis: str = "Y"
    name: str = ""
    floor: float | None = None
    _bones: dict[str, int] = field(init=False, repr=False, compare=False)
    _derived: dict[str, object] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        names = set(self.skeleton.names)
        unknown_joints = sorted(set(self.mapping) - set(BODY_JOINTS))
        if unknown_joints:
            raise RigError(f"rig {self.name!r}: {unknown_joints} are not canonical body joints {BODY_JOINTS}")
        absent = sorted(b for b in self.mapping.values() if b not in names)
        if absent:
            raise RigError(f"rig {self.name!r}: mapped bones {absent} are not in the skeleton")
        if len(set(self.mapping.values())) != len(self.mapping):
            raise RigError(f"rig {self.name!r}: a bone is mapped to two canonical joints: {self.mapping}")
        missing = [j for j in REQUIRED_JOINTS if j not in self.mapping]
        if missing:
            raise RigError(
                f"rig {self.name!r}: no bone found for the required canonical joints {', '.join(missing)}; "
                "map them by hand (canonical joint -> bone name)"
            )
        if self.up_axis not in UP_AXIS_TO_Y_UP:
            raise RigError(f"rig {self.name!r}: up_axis must be one of {sorted(UP_AXIS_TO_Y_UP)}, got {self.up_axis!r}")
        if self.rest_rotations is not None:
            rest = np.asarray(self.rest_rotations, dtype=np.float64)
            if rest.shape != (self.skeleton.num_joints, 4):
                expected = (self.skeleton.num_joints, 4)
                raise RigError(f"rig {self.name!r}: rest_rotations must be {expected}, got {rest.shape}")
            object.__setattr__(self, "rest_rotations", rest)
        if self.floor is not None:
            if isinstance(self.floor, bool) or not isinstance(self.floor, numbers.Real) or not np.isfinite(self.floor):
                raise RigError(f"rig {self.name!r}: floor must be a finite number or None, got {self.floor!r}")
            object.__setattr__(self, "floor", float(self.floor))
        object.__setattr__(self, "_bones", {j: self.skeleton.index(b) for j, b in self.mapping.items()})
        object.__setattr__(self, "_derived", {})

    def derived(self, key: str, compute):
        """``compute(self)``, computed once per rig: a rig never changes, and retargeting a batch of
        takes asks for its rest pose and standing height over and over. Arrays come back read-only."""
        if key not in self._derived:
            value = compute(self)
            for array in value if isinstance(value, tuple) else (value,):
                if isinstance(array, np.ndarray):
                    array.setflags(write=False)
            self._derived[key] = value
        return self._derived[key]

    def bone(self, joint: str) -> int:
        """Skeleton index of the bone mapped to a canonical joint."""
        return self._bones[joint]

    def rest_pose(self) -> np.ndarray:
        """(J, 4) local rotations of the rest pose."""
        if self.rest_rotations is not None:
            return self.rest_rotations
        return identity_quat((self.skeleton.num_joints,))

    def rest_world(self) -> tuple[np.ndarray, np.ndarray]:
        """World rotations (J, 4) and positions (J, 3) of the rest pose, in the skeleton's axes (read-only)."""
        return self.derived("rest_world", lambda r: forward_kinematics(r.skeleton.parents, r.rest_pose(), r.skeleton.offsets))

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "up_axis": self.up_axis,
                "mapping": self.mapping,
                "skeleton": {
                    "names": list(self.skeleton.names),
                    "parents": list(self.skeleton.parents),
                    "offsets": self.skeleton.offsets.tolist(),
                },
                "rest_rotations": None if self.rest_rotations is None else self.rest_rotations.tolist(),
                "floor": self.floor,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Rig:
        data = json.loads(text)
        sk = data["skeleton"]
        rest = data.get("rest_rotations")
        return cls(
            skeleton=Skeleton(tuple(sk["names"]), tuple(sk["parents"]), np.array(sk["offsets"], dtype=np.float64)),
            mapping=dict(data["mapping"]),
            rest_rotations=None if rest is None else np.array(rest, dtype=np.float64),
            up_axis=data.get("up_axis", "Y"),
            name=data.get("name", ""),
            floor=data.get("floor"),
        )
