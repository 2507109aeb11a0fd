"""Picture embeddings of the training clips (vision-queried training, AudioSep-CLIP's Table V).

A clip whose datafile entry has a ``video`` is queried, when drawn for it, by the mean CLIP
image embedding of its frames taken every second (the middle of each second), as the paper
describes; an entry with an ``image`` by that picture's embedding. Each clip is embedded once,
before training, and kept in ``<exp_dir>/picture_embeddings.pt`` keyed by file and frame times,
so the image tower never runs during the training steps and a rerun (or resume) reuses it.
"""
import logging
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from ..errors import AudioSepError
from ..progress import progress

logger = logging.getLogger("train")

PICTURE_CACHE_FILE = "picture_embeddings.pt"


def entry_picture(entry: Dict[str, Any]) -> Optional[str]:
    """The picture source of a datafile entry: its ``image``, else its ``video``, else None."""
    return entry.get("image") or entry.get("video") or None


def _query_and_key(path: str):
    from ..queries import Query
    from ..video import clip_frame_times, is_image_file, video_duration

    if is_image_file(path):
        return Query.image(path), path
    times = clip_frame_times(video_duration(path))
    return Query.video(path), f"{path}@" + ",".join(f"{t:g}" for t in times)


def check_pictures(entries: Sequence[Dict[str, Any]], skip_missing: bool, source: str) -> List[Optional[str]]:
    """Each entry's picture source, None for entries without one or (``skip_missing``) whose file
    is missing; those are queried by text, with one warning that counts them.

    Raises:
        AudioSepError: pictures are missing and ``skip_missing`` is false (naming the first
            ones), or no entry has a picture at all.
    """
    sources = [entry_picture(e) for e in entries]
    missing = [s for s in sources if s is not None and not Path(s).is_file()]
    if missing:
        names = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        message = f"{len(missing)} of {len(entries)} videos/images listed in {source} are missing: {names}"
        if not skip_missing:
            raise AudioSepError(message + " (fix the paths, or set data.skip_missing: true to query those "
                                "clips by text)")
        logger.warning("%s; those clips are queried by text", message)
        sources = [s if s is not None and Path(s).is_file() else None for s in sources]
    if not any(sources):
        raise AudioSepError(f"training.query_modality is image but no entry of {source} has a 'video' or "
                            "'image': add them (prepare_data records videos found under <root>/video), or "
                            "set training.use_text_ratio: 1.0")
    return sources


def build_picture_table(encoder_spec: dict, sources: Sequence[Optional[str]], exp_dir: Path, write: bool,
                        skip_missing: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(table (N, D), has_picture (N,) bool)``: the picture embedding of every clip that has one.

    Embeddings come from ``exp_dir/picture_embeddings.pt`` when it was written with the same
    encoder, the others are computed and the file rewritten (by rank 0: ``write``).

    Raises:
        AudioSepError: an unreadable video or image (with ``skip_missing`` such a clip is
            queried by text instead, with one counted warning).
    """
    from ..embedding_cache import EmbeddingCache
    from ..encoders import build_query_encoder
    from ..queries import embed_queries

    cache = EmbeddingCache(Path(exp_dir) / PICTURE_CACHE_FILE, encoder_spec)
    path = cache.path
    cached: Dict[str, torch.Tensor] = dict((cache.load() or {}).get("embeddings", {}))
    keys: List[Optional[str]] = []
    queries: Dict[str, Any] = {}
    failed: List[str] = []
    for source in sources:
        key = None
        if source is not None:
            try:
                query, key = _query_and_key(source)
            except AudioSepError as err:
                if not skip_missing:
                    raise AudioSepError(f"{err} (set data.skip_missing: true to query such clips by text)") from None
                failed.append(source)
            else:
                if key not in cached:
                    queries[key] = query
        keys.append(key)
    if queries:
        encoder, start = build_query_encoder(encoder_spec), time.perf_counter()
        for key, query in progress(list(queries.items()), desc="picture embeddings", unit="clip", disable=not write):
            try:
                cached[key] = embed_queries(encoder, [query])[0]
            except AudioSepError as err:
                if not skip_missing:
                    raise AudioSepError(f"{err} (set data.skip_missing: true to query such clips by text)") from None
                failed.append(key)
        logger.info("picture embeddings: %d clips embedded in %.1f s", len(cached), time.perf_counter() - start)
        if write:
            cache.save({"source": encoder_spec, "embeddings": cached})
    else:
        logger.info("picture embeddings: %d clips from %s", sum(k is not None for k in keys), path)
    if failed:
        logger.warning("%d videos/images could not be read (first: %s); those clips are queried by text",
                       len(failed), failed[0])
    dim = next(iter(cached.values())).numel() if cached else 0
    table = torch.zeros(len(keys), dim)
    has = torch.zeros(len(keys), dtype=torch.bool)
    for i, key in enumerate(keys):
        if key is not None and key in cached:
            table[i], has[i] = cached[key], True
    return table, has
