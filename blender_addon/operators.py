"""The add-on's operators: Stylize Action, its cancel button, weight presets and bone-mapping helpers.

Stylize Action is modal when invoked from the UI (a timer polls the job, the panel and the status
bar show progress, Esc or the panel's Cancel stops it) and blocking in ``execute`` for scripts and
headless runs (DESIGN §2: headless Blender runs ``execute`` even for INVOKE_DEFAULT). Both drive
one StylizeJob, and both change the file only in ``_finish`` once the result is in, so a single
Ctrl+Z removes the new action and restores the previous assignment.
"""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty

from . import session, stylize_io
from .client import ServerError
from .job import CANCELLED, DONE, ModalDriver, StylizeJob
from .preferences import addon_prefs
from .rig_setup import require_rig, rig_setup
from .settings import BODY_JOINTS, GROUP_NAMES, WEIGHT_PRESETS

TIMER_SECONDS = 0.1


class ActiveJob:
    """The one stylize job running in the UI (the panel shows it; Cancel reaches it)."""

    job: StylizeJob | None = None
    cancel_asked = False  # the panel's Cancel button; the modal operator acts on it

    @classmethod
    def begin(cls, job: StylizeJob) -> None:
        cls.job, cls.cancel_asked = job, False

    @classmethod
    def running(cls) -> StylizeJob | None:
        job = cls.job
        return job if job is not None and not job.finished else None


def style_request(context) -> stylize_io.PreparedRequest:
    """The request the panel's settings describe for the active armature (reads only)."""
    settings = context.scene.motion_style
    require_rig(context.active_object)  # a rig the add-on cannot use is named first, before its actions
    source = stylize_io.take_of(context.active_object, settings.source_action, what="source")
    if settings.reference_object is None:
        raise ValueError("pick a style armature (Motion Style tab > Style) whose action is the style reference")
    reference = stylize_io.take_of(settings.reference_object, settings.reference_action, "style reference")
    groups = {}
    for name in GROUP_NAMES:
        group = getattr(settings, name)
        if group.use_reference and group.reference_object is not None:
            groups[name] = stylize_io.take_of(group.reference_object, group.reference_action, f"{name} reference")
    options = stylize_io.cleanup_options(settings.foot_cleanup, settings.contact_height, settings.contact_speed)
    return stylize_io.prepare(
        source, reference, groups, settings.weights(), options, frame_range=settings.frame_range()
    )


class MST_OT_stylize_action(bpy.types.Operator):
    bl_idname = "mst.stylize_action"
    bl_label = "Stylize Action"
    bl_description = (
        "Key the active armature's action, performed in the style of the reference, onto a new action "
        "(the source action is never changed)"
    )
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        if obj is None or obj.type != "ARMATURE":
            cls.poll_message_set("Select an armature whose action is the source")
            return False
        if ActiveJob.running() is not None:
            cls.poll_message_set("A stylize job is running (Esc or Cancel stops it)")
            return False
        return True

    # --- shared ---------------------------------------------------------------------------------

    def _start(self, context):
        """(prepared request, job, client) or None after reporting why not."""
        try:
            prepared = style_request(context)
            client = session.client(addon_prefs(context))
        except (ValueError, ServerError) as e:
            self.report({"ERROR"}, str(e))
            return None
        return prepared, StylizeJob(), client

    def _finish(self, context, job: StylizeJob, prepared) -> set:
        """The only step that changes the file: the new action, its assignment, the NLA track."""
        ActiveJob.job = None
        if job.state == DONE:
            settings = context.scene.motion_style
            try:
                action = stylize_io.apply_result(prepared, job.result, push_to_nla=settings.push_to_nla)
            except (ValueError, ReferenceError) as e:  # ReferenceError: the armature was deleted meanwhile
                self.report({"ERROR"}, f"could not key the result: {e}")
                return {"CANCELLED"}
            for warning in prepared.warnings[:5]:
                self.report({"WARNING"}, warning)
            self.report(
                {"INFO"},
                f"Stylized {prepared.source.label!r} with {prepared.reference.label!r} in {job.seconds:.1f} s: "
                f"new action {action.name!r}",
            )
            return {"FINISHED"}
        if job.state == CANCELLED:
            self.report({"WARNING"}, "Stylize cancelled: nothing was changed")
            return {"CANCELLED"}
        self.report({"ERROR"}, f"Stylize failed: {job.describe_error()}")
        return {"CANCELLED"}

    # --- blocking (scripts, headless) -----------------------------------------------------------

    def execute(self, context):
        started = self._start(context)
        if started is None:
            return {"CANCELLED"}
        prepared, job, client = started
        ActiveJob.begin(job)
        job.start(client, prepared.request)
        job.wait()
        return self._finish(context, job, prepared)

    # --- modal (the UI) -------------------------------------------------------------------------

    def invoke(self, context, event):
        started = self._start(context)
        if started is None:
            return {"CANCELLED"}
        self._prepared, job, client = started
        ActiveJob.begin(job)
        self._driver = ModalDriver(job, client, self._prepared.request)
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_SECONDS, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if (event.type == "ESC" and event.value == "PRESS") or ActiveJob.cancel_asked:
            self._driver.cancel()
        if event.type != "TIMER" and not self._driver.cancel_wanted:
            return {"PASS_THROUGH"}
        state = self._driver.tick()
        job = self._driver.job
        if state == ModalDriver.STARTING:
            self._show(context, "starting the runtime")
            return {"RUNNING_MODAL"}
        if not job.finished:
            self._show(context, job.stage or "working")
            return {"RUNNING_MODAL"}
        self._end(context)
        return self._finish(context, job, self._prepared)

    def cancel(self, context):  # Blender quits or the window closes mid-job
        self._driver.cancel()
        self._driver.tick()
        self._end(context)
        ActiveJob.job = None

    def _show(self, context, stage: str) -> None:
        job = self._driver.job
        context.window_manager.progress_update(int(job.progress * 100))
        text = f"Stylizing {self._prepared.source.label}: {stage} ({job.progress:.0%}), Esc cancels"
        context.workspace.status_text_set(text)
        _redraw_panels(context)

    def _end(self, context) -> None:
        wm = context.window_manager
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        context.workspace.status_text_set(None)
        _redraw_panels(context)


def _redraw_panels(context) -> None:
    for area in context.screen.areas if context.screen else ():
        if area.type == "VIEW_3D":
            area.tag_redraw()


class MST_OT_cancel_stylize(bpy.types.Operator):
    bl_idname = "mst.cancel_stylize"
    bl_label = "Cancel"
    bl_description = "Stop the running stylize job; nothing is changed"

    @classmethod
    def poll(cls, context):
        return ActiveJob.running() is not None

    def execute(self, context):
        ActiveJob.cancel_asked = True
        return {"FINISHED"}


class MST_OT_weight_preset(bpy.types.Operator):
    bl_idname = "mst.weight_preset"
    bl_label = "Weight Preset"
    bl_description = "Set every body group's style weight from a preset"
    bl_options = {"REGISTER", "UNDO"}

    preset: EnumProperty(
        name="Preset",
        description="Which groups take the style",
        items=[(key, label, description) for key, (label, description, _) in WEIGHT_PRESETS.items()],
    )

    def execute(self, context):
        settings = context.scene.motion_style
        for group, weight in WEIGHT_PRESETS[self.preset][2].items():
            getattr(settings, group).weight = weight
        return {"FINISHED"}


class _OnActiveArmature:
    """Mapping operators act on the active armature's data."""

    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and obj.type == "ARMATURE"


class MST_OT_fill_bone_mapping(_OnActiveArmature, bpy.types.Operator):
    bl_idname = "mst.fill_bone_mapping"
    bl_label = "Fill From Detection"
    bl_description = "Write the detected bone of every canonical joint into the mapping fields, to edit them"

    def execute(self, context):
        obj = context.active_object
        setup = rig_setup(obj)
        mapping = obj.data.motion_style_mapping
        for joint, bone in setup.mapping.items():
            setattr(mapping, joint, bone)
        self.report({"INFO"}, f"{len(setup.mapping)} of {len(BODY_JOINTS)} joints mapped")
        return {"FINISHED"}


class MST_OT_clear_bone_mapping(_OnActiveArmature, bpy.types.Operator):
    bl_idname = "mst.clear_bone_mapping"
    bl_label = "Clear"
    bl_description = "Forget the bones set by hand; every joint is detected from the bone names again"

    def execute(self, context):
        mapping = context.active_object.data.motion_style_mapping
        for joint in BODY_JOINTS:
            setattr(mapping, joint, "")
        return {"FINISHED"}


classes = (
    MST_OT_stylize_action,
    MST_OT_cancel_stylize,
    MST_OT_weight_preset,
    MST_OT_fill_bone_mapping,
    MST_OT_clear_bone_mapping,
)
