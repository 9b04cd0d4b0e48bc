"""Core motion types."""

from core.motion.motion import Motion
from core.motion.skeleton import Skeleton

__all__ = ["Motion", "Skeleton"]
