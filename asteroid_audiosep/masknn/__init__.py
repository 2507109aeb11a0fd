"""Network building blocks of AudioSep (no STFT, no query encoder)."""
from .film import FiLM
from .resunet import ConvBlockRes, DecoderBlock, EncoderBlock, ResUNet30

__all__ = ["FiLM", "ConvBlockRes", "EncoderBlock", "DecoderBlock", "ResUNet30"]
