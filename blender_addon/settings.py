"""The add-on's stored settings: the style controls on the scene and the bone mapping on the armature.

The style controls live on the scene (``scene.motion_style``) so that every armature in a shot is
stylized with the same choices; the bone mapping lives on the armature data
(``armature.motion_style_mapping``) because it describes that rig and travels with it when the rig
is linked or appended into another file.
"""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from .core.motion.canonical import BODY_GROUPS
from .core.ops.cleanup import CLEANUP_CONTACT_SPEED_CM_PER_S
from .core.ops.contacts import CONTACT_HEIGHT_MARGIN_CM
from .core.retarget.rig import BODY_JOINTS

# DESIGN §5 body groups, in core's order, with their panel labels.
GROUP_LABELS = {
    "root": "Root trajectory",
    "torso": "Torso",
    "left_arm": "Left arm",
    "right_arm": "Right arm",
    "left_leg": "Left leg",
    "right_leg": "Right leg",
}
GROUPS = tuple((name, GROUP_LABELS[name]) for name in BODY_GROUPS)
GROUP_NAMES = tuple(g for g, _ in GROUPS)

# Weight presets: name -> (label, description, weights by group).
WEIGHT_PRESETS = {
    "FULL": ("Full body", "Every group takes the full style", dict.fromkeys(GROUP_NAMES, 1.0)),
    "UPPER": (
        "Upper body only",
        "Torso and arms take the style; the legs and the root trajectory keep the source",
        {"root": 0.0, "torso": 1.0, "left_arm": 1.0, "right_arm": 1.0, "left_leg": 0.0, "right_leg": 0.0},
    ),
    "LOWER": (
        "Lower body only",
        "Legs and the root trajectory take the style; torso and arms keep the source",
        {"root": 1.0, "torso": 0.0, "left_arm": 0.0, "right_arm": 0.0, "left_leg": 1.0, "right_leg": 1.0},
    ),
    "ARMS": (
        "Arms only",
        "Only the arms take the style",
        {"root": 0.0, "torso": 0.0, "left_arm": 1.0, "right_arm": 1.0, "left_leg": 0.0, "right_leg": 0.0},
    ),
    "KEEP_PATH": (
        "Keep the path",
        "Everything takes the style but the root trajectory, so the character still hits its marks",
        {**dict.fromkeys(GROUP_NAMES, 1.0), "root": 0.0},
    ),
    "NONE": ("Source only", "Every weight 0: the result equals the source", dict.fromkeys(GROUP_NAMES, 0.0)),
}


def _is_armature(_self, obj) -> bool:
    return obj.type == "ARMATURE"


class MST_PG_group_style(bpy.types.PropertyGroup):
    """One body group's weight and optional reference of its own."""

    weight: FloatProperty(
        name="Weight",
        description="How much of the style this group takes: 0 keeps the source exactly, 1 the full style, "
        "above 1 exaggerates it",
        default=1.0,
        min=0.0,
        max=4.0,
        soft_max=2.0,
        step=10,
    )
    use_reference: BoolProperty(
        name="Own reference",
        description="Take this group's style from its own reference instead of the main one",
        default=False,
    )
    reference_object: PointerProperty(
        type=bpy.types.Object,
        name="Armature",
        description="Armature that plays this group's style reference",
        poll=_is_armature,
    )
    reference_action: PointerProperty(
        type=bpy.types.Action,
        name="Action",
        description="This group's style reference action; empty: the armature's current action",
    )


def _group_pointers():
    return {
        name: PointerProperty(type=MST_PG_group_style, name=label, description=f"Style weight and reference: {label}")
        for name, label in GROUPS
    }


class MST_PG_style_settings(bpy.types.PropertyGroup):
    """The style controls of the N-panel (scene.motion_style)."""

    __annotations__ = {
        "source_action": PointerProperty(
            type=bpy.types.Action,
            name="Source action",
            description="The action to stylize; empty: the selected armature's current action",
        ),
        "use_frame_range": BoolProperty(
            name="Frame range",
            description="Stylize only these frames of the source action (else its whole range)",
            default=False,
        ),
        "frame_start": IntProperty(
            name="Start",
            description="First frame of the source action to stylize",
            default=1,
            min=-1048574,
            max=1048574,
        ),
        "frame_end": IntProperty(
            name="End",
            description="Last frame of the source action to stylize",
            default=250,
            min=-1048574,
            max=1048574,
        ),
        "reference_object": PointerProperty(
            type=bpy.types.Object,
            name="Style armature",
            description="Armature that plays the style reference (e.g. an imported BVH of an old man's walk); "
            "it may be the character itself",
            poll=_is_armature,
        ),
        "reference_action": PointerProperty(
            type=bpy.types.Action,
            name="Style action",
            description="The style reference action; empty: the style armature's current action",
        ),
        **_group_pointers(),
        "show_group_references": BoolProperty(
            name="Per-group references",
            description="Show a reference picker for each body group",
            default=False,
        ),
        "foot_cleanup": BoolProperty(
            name="Foot-contact cleanup",
            description="Pin the feet where the source plants them and bend the legs to reach (removes foot sliding)",
            default=True,
        ),
        "contact_height": FloatProperty(
            name="Contact height",
            description="A foot counts as planted within this height of its lowest level (cm on a standard body)",
            default=CONTACT_HEIGHT_MARGIN_CM,
            min=0.1,
            max=50.0,
        ),
        "contact_speed": FloatProperty(
            name="Contact speed",
            description="A foot counts as planted while slower than this (cm/s on a standard body)",
            default=CLEANUP_CONTACT_SPEED_CM_PER_S,
            min=0.1,
            max=500.0,
        ),
        "push_to_nla": BoolProperty(
            name="Push to NLA",
            description="Also put the result on a new NLA track (muted) so takes can be compared",
            default=False,
        ),
    }

    def weights(self) -> dict[str, float]:
        return {name: float(getattr(self, name).weight) for name in GROUP_NAMES}

    def frame_range(self) -> tuple[int, int] | None:
        """The source frame range the panel asks for, or None for the action's whole range."""
        return (self.frame_start, self.frame_end) if self.use_frame_range else None


class MST_PG_bone_mapping(bpy.types.PropertyGroup):
    """Canonical joint -> bone name set by hand on this armature; empty fields are detected."""

    __annotations__ = {
        joint: StringProperty(
            name=joint,
            description=f"Bone that plays the canonical joint {joint}; empty: detected from the bone names",
        )
        for joint in BODY_JOINTS
    }

    def overrides(self) -> dict[str, str]:
        return {joint: getattr(self, joint) for joint in BODY_JOINTS if getattr(self, joint)}


classes = (MST_PG_group_style, MST_PG_style_settings, MST_PG_bone_mapping)


def register_properties() -> None:
    bpy.types.Scene.motion_style = PointerProperty(type=MST_PG_style_settings)
    bpy.types.Armature.motion_style_mapping = PointerProperty(type=MST_PG_bone_mapping)


def unregister_properties() -> None:
    del bpy.types.Armature.motion_style_mapping
    del bpy.types.Scene.motion_style
