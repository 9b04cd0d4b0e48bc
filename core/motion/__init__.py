"""Core motion types."""

from .motion import Motion
from .skeleton import Skeleton

__all__ = ["Motion", "Skeleton"]
