"""Serialisable models (Asteroid ``BaseModel`` subclasses)."""
from .audiosep import RELEASED_ARGS, AudioSep

__all__ = ["AudioSep", "RELEASED_ARGS"]
