"""Audio-text hybrid training (``use_text_ratio < 1``): cached clip embeddings and embedding
standardisation.

- :func:`clip_embedding_cache`: the audio embedding of every training clip (the clip embedded
  whole, CLAP's 10 s windows averaged), computed once and kept in ``<exp>/clip_embeddings.pt``.
  An audio-queried training item is queried by its clip's embedding: embedding the target
  segment of every item at every step would cost a CLAP forward per item (about 0.75 s for
  HTSAT-tiny on a CPU core), hours for the mini run.
- :func:`standardization`: per modality, the mean and deviation of the training captions' text
  embeddings and of the training clips' audio embeddings. Randomly initialised towers give
  nearly collapsed embeddings (cosine 0.99 within a class, 0.975 across); subtracting the mean
  and dividing by the deviation, stored in the encoder spec (``standardize``) and thus with
  the model, makes their small differences readable by the separator. Asked for by
  ``standardize: true`` in ``model.query_encoder``; real CLAP weights do not need it.
"""
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..errors import AudioSepError

logger = logging.getLogger("train")

CLIP_CACHE_FILE = "clip_embeddings.pt"


def clip_embedding_cache(encoder_spec: dict, paths: Sequence[str], exp_dir: Path, write: bool,
                         encoder=None) -> torch.Tensor:
    """``(len(paths), D)`` audio embeddings of whole clips, from ``exp_dir/clip_embeddings.pt``
    when it was made by the same encoder spec for the same clips, else computed (and saved by
    rank 0, atomically; see :class:`~asteroid_audiosep.embedding_cache.EmbeddingCache`).

    Raises:
        AudioSepError: the encoder has no audio tower, or a clip is unreadable/silent.
    """
    from ..embedding_cache import EmbeddingCache

    def compute() -> dict:
        from ..audio import load_audio
        from ..encoders import build_query_encoder
        from ..progress import progress
        from ..queries import audio_embedding

        tower = encoder or build_query_encoder(encoder_spec)
        if not tower.supports_audio:
            raise AudioSepError(f"hybrid training needs audio embeddings; the {tower.name} encoder has no audio "
                                "tower: use a clap encoder, or training.use_text_ratio: 1.0")
        embeddings = []
        for clip in progress(list(paths), desc="embedding training clips", unit="clip"):
            wav, rate = load_audio(clip, mono=True)
            embeddings.append(audio_embedding(tower, wav[0], rate, what=f"training clip {clip}"))
        return {"source": encoder_spec, "paths": list(paths), "embeddings": torch.stack(embeddings).float()}

    cache = EmbeddingCache(Path(exp_dir) / CLIP_CACHE_FILE, [encoder_spec, list(paths)])
    content = cache.load()
    if content is not None:
        logger.info("clip embeddings: %d clips from %s", len(paths), cache.path)
        return content["embeddings"]
    return cache.get_or_compute(compute, write)["embeddings"]


def standardization(text: torch.Tensor, audio: torch.Tensor) -> Dict[str, List[float]]:
    """The ``standardize`` entry of a CLAP spec: per-dimension mean and deviation of the text
    and of the audio embeddings of the training set (deviations floored at 1e-6)."""
    stats = {}
    for name, emb in (("text", text), ("audio", audio)):
        if emb.shape[0] < 2:
            raise AudioSepError(f"standardisation needs at least 2 {name} embeddings, got {emb.shape[0]}")
        stats[f"{name}_mean"] = [round(float(v), 7) for v in emb.mean(0)]
        stats[f"{name}_std"] = [round(max(float(v), 1e-6), 7) for v in emb.std(0)]
    return stats


def standardize(emb: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``normalize((emb - mean) / std)``, as the CLAP encoder applies it."""
    mean, std = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
    return torch.nn.functional.normalize((emb.float() - mean) / std, dim=-1)


def prepare_hybrid(encoder_spec: dict, cache, train_set, exp_dir: Path, write: bool, hybrid: bool,
                   wanted: bool) -> Tuple[object, Optional[torch.Tensor], dict]:
    """Clip embeddings (when ``hybrid``) and standardisation (when the spec asks for it).

    Args:
        encoder_spec: the full spec of the encoder that made ``cache`` (without standardisation).
        cache: the text-embedding cache (a ``PrecomputedQueryEncoder``) of the captions.
        train_set: the :class:`~asteroid_audiosep.data.LASSTrainDataset`.
        exp_dir: the experiment folder (the clip cache goes there).
        write: whether this process writes files (rank 0).
        hybrid: whether audio-queried items are trained (``use_text_ratio < 1`` with
            ``query_modality: audio``; image-queried items use the picture table instead).
        wanted: whether to standardise (``standardize: true`` in the config's encoder spec).

    Returns:
        ``(cache, clip_embeddings or None, encoder_spec)``: the cache and the clip embeddings
        standardised and the spec holding the statistics when asked for.
    """
    from ..encoders import PrecomputedQueryEncoder

    if not hybrid and not wanted:
        return cache, None, encoder_spec
    paths = [str(entry["wav"]) for entry in train_set.entries]
    clips = clip_embedding_cache(encoder_spec, paths, exp_dir, write)
    if not wanted:
        return cache, clips, encoder_spec
    captions = sorted(set(train_set.captions()))
    stats = standardization(cache.encode_text(captions).float(), clips)
    spec = dict(encoder_spec, standardize=stats)
    texts = sorted(cache.index, key=cache.index.get)
    table = standardize(cache.encode_text(texts), stats["text_mean"], stats["text_std"])
    cache = PrecomputedQueryEncoder(table=dict(zip(texts, table)), source=spec)
    clips = standardize(clips, stats["audio_mean"], stats["audio_std"])
    logger.info("standardised embeddings: %d texts, %d clips", len(texts), len(clips))
    return cache, clips if hybrid else None, spec
