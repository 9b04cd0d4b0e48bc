"""Content labels under left/right mirroring.

Mirroring (core.ops.mirror) is a training augmentation; a mirrored left-hand wave is a right-hand
wave, so the augmentation must swap the label too or the content judge learns the wrong side.
Styles never change under mirroring.
"""

from __future__ import annotations

_PAIRS = (
    ("wave-left-hand", "wave-right-hand"),  # dataset-2
    ("raise-up-left-hand", "raise-up-right-hand"),  # dataset-2
    ("walk-turn-left", "walk-turn-right"),  # dataset-2
    ("walk-left", "walk-right"),  # dataset-1 (sideways steps)
)
MIRROR_CONTENT: dict[str, str] = {**dict(_PAIRS), **{b: a for a, b in _PAIRS}}


def mirror_content_label(name: str) -> str:
    """The content label of the mirrored clip (unchanged for left/right-symmetric contents)."""
    return MIRROR_CONTENT.get(name, name)
