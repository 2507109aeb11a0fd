"""Query encoders: text (and audio) queries -> embeddings that condition the separator.

Each encoder imports its heavy library (laion-clap, open_clip, transformers) only when built.
"""
from .base import (
    QueryEncoder,
    available_query_encoders,
    build_query_encoder,
    check_texts,
    get_query_encoder_class,
    register_query_encoder,
)
from .precomputed import PrecomputedQueryEncoder

__all__ = [
    "QueryEncoder",
    "PrecomputedQueryEncoder",
    "available_query_encoders",
    "build_query_encoder",
    "check_texts",
    "get_query_encoder_class",
    "register_query_encoder",
]
