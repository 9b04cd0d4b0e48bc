"""Retargeting between rigs (DESIGN §4): rig descriptions, presets, bone matching, the transfer."""
