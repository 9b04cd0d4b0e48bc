"""Add-on preferences: the runtime Python (or Install runtime), the model config, device and timeouts.

Install runtime creates a virtual environment with torch, numpy, scipy and safetensors from
Blender's own Python in a background process (runtime_install); the preferences show its state
(missing / installing / ready / failed and why) and its log, and redraw while it runs.
"""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, StringProperty

from . import session
from .client import ServerError
from .runtime_install import TORCH_CPU_INDEX_URL, RuntimeInstaller

LOG_LINES_SHOWN = 6
_installer: RuntimeInstaller | None = None


def installer() -> RuntimeInstaller:
    """The session's runtime installer (one, so its state survives redraws)."""
    global _installer
    if _installer is None:
        _installer = RuntimeInstaller()
    return _installer


def new_installer(cpu_only_torch: bool) -> RuntimeInstaller:
    """A fresh installer for the next install (it becomes the session's)."""
    global _installer
    _installer = RuntimeInstaller(extra_index_url=TORCH_CPU_INDEX_URL if cpu_only_torch else None)
    return _installer


def addon_prefs(context=None):
    """This add-on's preferences (None when it is not enabled, e.g. a module imported by hand)."""
    addon = (context or bpy.context).preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None


def _log_tail(path, lines: int) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip() for line in f.readlines()[-lines:]]
    except OSError:
        return []


class MST_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    runtime_python: StringProperty(
        name="Runtime Python",
        description="A Python interpreter that has torch, numpy, scipy and safetensors (e.g. a venv's "
        "bin/python); empty: the runtime made by Install runtime",
        subtype="FILE_PATH",
    )
    model_config: StringProperty(
        name="Model config",
        description="The model's config JSON (it names the stylizer and its .safetensors weights); "
        "empty: the model shipped with the add-on",
        subtype="FILE_PATH",
    )
    device: EnumProperty(
        name="Device",
        description="Where the runtime computes",
        items=(
            ("AUTO", "Auto", "The GPU when torch sees CUDA, else the CPU"),
            ("CPU", "CPU", "Always the CPU"),
            ("CUDA", "CUDA", "An NVIDIA GPU; an error when torch sees none"),
        ),
        default="AUTO",
    )
    timeout: FloatProperty(
        name="Timeout",
        description="Seconds the runtime may stay silent while working before it counts as hung and is restarted",
        default=120.0,
        min=5.0,
        max=3600.0,
        unit="TIME_ABSOLUTE",
    )
    start_timeout: FloatProperty(
        name="Start timeout",
        description="Seconds the runtime may take to start (imports and model loading)",
        default=120.0,
        min=5.0,
        max=3600.0,
        unit="TIME_ABSOLUTE",
    )
    cpu_only_torch: BoolProperty(
        name="CPU-only torch",
        description="Install runtime takes the small CPU build of torch (no CUDA download, about 200 MB "
        "instead of several GB)",
        default=False,
    )

    def draw(self, context):
        layout = self.layout
        box = layout.box()
        box.label(text="Runtime", icon="CONSOLE")
        box.prop(self, "runtime_python")
        inst = installer()
        status = inst.status()
        state, reason = status.state, status.reason
        row = box.row()
        row.label(text=f"Install runtime: {state}" + (f" ({reason})" if reason else ""), icon=_STATE_ICONS[state])
        row = box.row(align=True)
        if state == "installing":
            row.operator("mst.cancel_runtime_install", icon="CANCEL")
        else:
            row.operator("mst.install_runtime", icon="IMPORT")
            row.prop(self, "cpu_only_torch")
        row.operator("mst.open_log", text="Install log").which = "INSTALL"
        if state in ("installing", "failed"):
            col = box.column(align=True)
            for line in _log_tail(inst.log_path, LOG_LINES_SHOWN):
                col.label(text=line[:160])
        box = layout.box()
        box.label(text="Model and server", icon="SETTINGS")
        box.prop(self, "model_config")
        box.prop(self, "device")
        row = box.row()
        row.prop(self, "timeout")
        row.prop(self, "start_timeout")
        row = box.row(align=True)
        row.operator("mst.check_runtime", icon="PLAY")
        row.operator("mst.open_log", text="Server log").which = "SERVER"


_STATE_ICONS = {"missing": "QUESTION", "installing": "SORTTIME", "ready": "CHECKMARK", "failed": "ERROR"}


class MST_OT_install_runtime(bpy.types.Operator):
    bl_idname = "mst.install_runtime"
    bl_label = "Install Runtime"
    bl_description = (
        "Create a Python environment with torch, numpy, scipy and safetensors from Blender's Python "
        "(runs in the background; the log shows pip's output)"
    )

    def execute(self, context):
        prefs = addon_prefs(context)
        if installer().installing:
            self.report({"WARNING"}, "An install is already running")
            return {"CANCELLED"}
        if not getattr(bpy.app, "online_access", True):
            self.report(
                {"ERROR"},
                "Install runtime downloads packages with pip, and Blender's online access is off: allow it in "
                "Preferences > System > Network, or set Runtime Python to an environment you made yourself",
            )
            return {"CANCELLED"}
        inst = new_installer(prefs.cpu_only_torch)
        try:
            inst.start()
        except RuntimeError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        bpy.app.timers.register(_redraw_while_installing, first_interval=1.0)
        self.report({"INFO"}, f"Installing the runtime into {inst.venv_dir} (log: {inst.log_path})")
        return {"FINISHED"}


class MST_OT_cancel_runtime_install(bpy.types.Operator):
    bl_idname = "mst.cancel_runtime_install"
    bl_label = "Cancel Install"
    bl_description = "Stop the running runtime install"

    def execute(self, context):
        installer().cancel()
        return {"FINISHED"}


def _redraw_while_installing():
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "PREFERENCES":
                area.tag_redraw()
    return 1.0 if installer().installing else None


class MST_OT_check_runtime(bpy.types.Operator):
    bl_idname = "mst.check_runtime"
    bl_label = "Check Runtime"
    bl_description = "Start the runtime server now and report its device and model"

    def execute(self, context):
        prefs = addon_prefs(context)
        try:
            client = session.client(prefs)
            info = client.start()
        except ServerError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        seconds = client.last_start_seconds
        started = f", started in {seconds:.1f} s" if seconds is not None else ""
        self.report(
            {"INFO"},
            f"Runtime ready: device {info.get('device')}, stylizer {info.get('stylizer')}, pid {info.get('pid')}{started}",
        )
        return {"FINISHED"}


class MST_OT_open_log(bpy.types.Operator):
    bl_idname = "mst.open_log"
    bl_label = "Open Log"
    bl_description = "Open the log in Blender's text editor"

    which: EnumProperty(
        name="Log",
        description="Which log to open",
        items=(("SERVER", "Server", "The runtime server's log"), ("INSTALL", "Install", "The runtime install log")),
    )

    def execute(self, context):
        path = session.log_path() if self.which == "SERVER" else installer().log_path
        try:
            text = bpy.data.texts.load(str(path))
        except (OSError, RuntimeError):
            self.report({"WARNING"}, f"no log yet at {path}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Opened {path} as the text {text.name!r} (Text Editor)")
        return {"FINISHED"}


classes = (
    MST_AddonPreferences,
    MST_OT_install_runtime,
    MST_OT_cancel_runtime_install,
    MST_OT_check_runtime,
    MST_OT_open_log,
)
