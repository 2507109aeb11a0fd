"""Serialisable models (Asteroid ``BaseModel`` subclasses)."""
from .audiosep import RELEASED_ARGS, AudioSep
from .audiosep_dp import DP_RELEASED_ARGS, AudioSepDP

__all__ = ["AudioSep", "AudioSepDP", "RELEASED_ARGS", "DP_RELEASED_ARGS"]
