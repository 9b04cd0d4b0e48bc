"""The "Motion Style" tab of the 3D view's sidebar (N-panel): source, style, weights, foot cleanup,
bone mapping and the Stylize Action button with the running job's progress."""

from __future__ import annotations

import bpy

from .action_io import action_fcurves, key_rate, scene_fps
from .operators import ActiveJob
from .rig_setup import rig_setup
from .settings import BODY_JOINTS, GROUPS

_setup_cache: dict = {}


def cached_rig_setup(obj):
    """rig_setup for drawing: recomputed only when the armature's bones, hand mapping or action (a rig
    whose legs point up at rest stands as its action shows) change."""
    mapping = obj.data.motion_style_mapping
    transform = tuple(round(v, 6) for row in obj.matrix_world for v in row)
    action = obj.animation_data.action if obj.animation_data else None
    joints = tuple(getattr(mapping, j) for j in BODY_JOINTS)
    key = (obj.name, obj.data.name, len(obj.data.bones), transform, joints, getattr(action, "name", None))
    hit = _setup_cache.get(obj.name)
    if hit is None or hit[0] != key:
        if len(_setup_cache) > 32:
            _setup_cache.clear()
        hit = _setup_cache[obj.name] = (key, rig_setup(obj))
    return hit[1]


_rate_cache: dict = {}


def cached_key_rate(obj, action) -> float:
    """key_rate for drawing: recomputed only when the action's curves or the scene's rate change."""
    key = (obj.name, action.name, len(action_fcurves(obj, action)), tuple(action.frame_range), scene_fps())
    hit = _rate_cache.get((obj.name, action.name))
    if hit is None or hit[0] != key:
        if len(_rate_cache) > 64:
            _rate_cache.clear()
        hit = _rate_cache[(obj.name, action.name)] = (key, key_rate(obj, action))
    return hit[1]


def draw_source(layout, settings, obj) -> None:
    """The source box: the action (default the current one), the frame range and a rate warning."""
    box = layout.box()
    box.label(text="Source", icon="ACTION")
    current = obj.animation_data.action if obj.animation_data else None
    box.prop(settings, "source_action", text="Action")
    action = settings.source_action or current
    if action is None:
        box.label(text="The armature has no action: pick one", icon="ERROR")
        return
    if settings.source_action is None:
        box.label(text=f"Current action: {action.name}")
    row = box.row(align=True)
    row.prop(settings, "use_frame_range", text="")
    sub = row.row(align=True)
    sub.active = settings.use_frame_range
    sub.prop(settings, "frame_start")
    sub.prop(settings, "frame_end")
    rate, scene = cached_key_rate(obj, action), scene_fps()
    if abs(rate - scene) > 1e-3:
        box.label(text=f"Keys at {rate:g} fps, scene at {scene:g} fps: read and keyed at {rate:g} fps", icon="INFO")


class _MotionStylePanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Motion Style"


class VIEW3D_PT_motion_style(_MotionStylePanel, bpy.types.Panel):
    bl_label = "Motion Style"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.motion_style
        obj = context.active_object
        col = layout.column()
        if obj is None or obj.type != "ARMATURE":
            col.label(text="Select the armature to stylize", icon="INFO")
        else:
            draw_source(layout, settings, obj)
        box = layout.box()
        box.label(text="Style reference", icon="ARMATURE_DATA")
        box.prop(settings, "reference_object", text="Armature")
        box.prop(settings, "reference_action", text="Action")
        layout.prop(settings, "push_to_nla")

        job = ActiveJob.running()
        if job is not None:
            row = layout.row(align=True)
            row.progress(factor=job.progress, type="BAR", text=f"{job.stage or 'starting'} {job.progress:.0%}")
            row.operator("mst.cancel_stylize", text="", icon="CANCEL")
        else:
            layout.operator("mst.stylize_action", icon="PLAY")


class VIEW3D_PT_motion_style_weights(_MotionStylePanel, bpy.types.Panel):
    bl_label = "Style Weights"
    bl_parent_id = "VIEW3D_PT_motion_style"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.motion_style
        layout.operator_menu_enum("mst.weight_preset", "preset", text="Presets", icon="PRESET")
        layout.prop(settings, "show_group_references")
        col = layout.column(align=True)
        for name, label in GROUPS:
            group = getattr(settings, name)
            col.prop(group, "weight", text=label, slider=True)
            if settings.show_group_references:
                sub = col.box()
                sub.prop(group, "use_reference", text=f"{label}: own reference")
                if group.use_reference:
                    sub.prop(group, "reference_object")
                    sub.prop(group, "reference_action")


class VIEW3D_PT_motion_style_feet(_MotionStylePanel, bpy.types.Panel):
    bl_label = "Foot Contacts"
    bl_parent_id = "VIEW3D_PT_motion_style"
    bl_options = {"DEFAULT_CLOSED"}

    def draw_header(self, context):
        self.layout.prop(context.scene.motion_style, "foot_cleanup", text="")

    def draw(self, context):
        settings = context.scene.motion_style
        col = self.layout.column()
        col.active = settings.foot_cleanup
        col.prop(settings, "contact_height")
        col.prop(settings, "contact_speed")


class VIEW3D_PT_motion_style_mapping(_MotionStylePanel, bpy.types.Panel):
    bl_label = "Bone Mapping"
    bl_parent_id = "VIEW3D_PT_motion_style"
    bl_options = {"DEFAULT_CLOSED"}

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and obj.type == "ARMATURE"

    def draw(self, context):
        layout = self.layout
        obj = context.active_object
        setup = cached_rig_setup(obj)
        found = f"preset {setup.preset}" if setup.preset else "matched by bone names and structure"
        layout.label(text=f"{obj.name}: {found}", icon="CHECKMARK" if setup.rig else "ERROR")
        if setup.rig is not None:
            layout.label(text=f"up axis {setup.rig.up_axis}, {len(setup.mapping)} joints mapped")
        if setup.error:
            for line in setup.error.split("; ")[:4]:
                layout.label(text=line, icon="ERROR")
        row = layout.row(align=True)
        row.operator("mst.fill_bone_mapping", icon="BONE_DATA")
        row.operator("mst.clear_bone_mapping", icon="X")
        mapping = obj.data.motion_style_mapping
        col = layout.column(align=True)
        for joint in BODY_JOINTS:
            row = col.row(align=True)
            detected = setup.mapping.get(joint, "")
            icon = "ERROR" if joint in setup.missing or joint in setup.bad else "NONE"
            row.prop_search(mapping, joint, obj.data, "bones", text=joint, icon=icon)
            if not getattr(mapping, joint):
                how = setup.found_by.get(joint)
                row.label(text=f"{detected} ({how})" if detected else "—")
        if setup.unmapped_bones:
            layout.label(text=f"{len(setup.unmapped_bones)} bones keep the source animation (unmapped)")


classes = (
    VIEW3D_PT_motion_style,
    VIEW3D_PT_motion_style_weights,
    VIEW3D_PT_motion_style_feet,
    VIEW3D_PT_motion_style_mapping,
)
