"""Motion Style Transfer: re-perform an armature's action in the style of a reference action.

The add-on reads actions and writes new ones (bpy, numpy); the stylizing runs in a separate runtime
process (``core.server``, bundled in this package as ``core``) that the add-on launches with the
runtime Python set in the preferences. Scripts use ``stylize`` / ``stylize_many`` (api.py).
"""

bl_info = {
    "name": "Motion Style Transfer",
    "author": "Motion Style Transfer contributors",
    "version": (0, 1, 0),
    "blender": (4, 2, 0),
    "location": "View3D > Sidebar > Motion Style",
    "description": "Key an armature's action, performed in the style of a reference action, onto a new action",
    "doc_url": "",
    "category": "Animation",
}

import bpy

from . import operators, panel, preferences, session, settings
from .api import StylizeError, stylize, stylize_many

__all__ = ["StylizeError", "register", "stylize", "stylize_many", "unregister"]

classes = settings.classes + preferences.classes + operators.classes + panel.classes


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    settings.register_properties()


def unregister():
    session.stop()
    settings.unregister_properties()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
