"""Reference-free separation scores with CLAP: CLAPScore, CLAPScore-i and RefCLAPScore.

Xiao et al. (2024), "A Reference-free Metric for Language-Queried Audio Source Separation using
Contrastive Language-Audio Pretraining" (arXiv 2407.04936), score a separated signal by how well
its CLAP audio embedding matches the CLAP text embedding of the query. With ``E_a`` the audio
tower, ``E_t`` the text tower and ``cos(u, v) = u.v / (|u| |v|)``:

- ``CLAPScore(s_hat, q) = cos(E_a(s_hat), E_t(q))``, in [-1, 1];
- ``CLAPScore-i(s_hat, x, q) = CLAPScore(s_hat, q) - CLAPScore(x, q)``: the improvement over the
  unprocessed mixture ``x`` (positive: the output matches the query better than the input did);
- ``RefCLAPScore(s_hat, s, q) = H(w * max(CLAPScore(s_hat, q), 0), max(cos(E_a(s_hat), E_a(s)), 0))``
  with ``H(a, b) = 2ab / (a + b)`` (0 when ``a + b = 0``): the harmonic mean of the text score and
  the similarity to the reference ``s``, the construction of RefCLIPScore (Hessel et al. 2021)
  that the paper follows.

Choices where the paper leaves a detail open (documented in ``docs/scoring.md`` and tested):

- **Level.** CLAP's log-mel front end is not invariant to gain, while a separator's output level
  is arbitrary. Every signal is scaled to an RMS of :data:`SCORE_RMS` (-20 dBFS) before it is
  embedded, so all scores are invariant to the output's gain. A signal whose RMS is below
  :data:`~asteroid_audiosep.queries.SILENCE_RMS` has no embedding: its scores are NaN ("nothing
  came out"), which ``--min-score`` counts as not found.
- **Length.** A signal is embedded as audio queries are (:func:`~asteroid_audiosep.queries.audio_windows`):
  10 s windows spread evenly over it, the last ending at its end, each embedded (the encoder
  resamples to CLAP's 48 kHz and repeat-pads shorter clips), the normalised window embeddings
  averaged and normalised again. Several channels are scored on their mean.
- **RefCLAPScore.** Both terms are clipped at 0 (as RefCLIPScore does) and the weight ``w``
  defaults to 1 (RefCLIPScore's 2.5 rescales CLIP's narrow cosine range; pass ``weight=2.5``
  for it).
- **Standardised towers.** The scores use the encoder's embeddings as the separator sees them:
  an encoder with ``standardize`` (the mini_clap setup's random towers) is scored in its
  standardised space, where the near-collapsed raw embeddings become readable.

:class:`ClapScorer` holds one encoder, embeds in batches and caches text embeddings and the
embeddings of files (keyed by path, size and modification time); ``separate --score``, the
evaluation and the demo all use it.
"""
import logging
import math
import os
import sys
import types
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from ..errors import AudioSepError

__all__ = [
    "SCORE_RMS",
    "ClapScorer",
    "clap_score",
    "clap_score_i",
    "ref_clap_score",
    "harmonic_mean",
    "ref_clap_from_embeddings",
    "resolve_score_encoder",
]

log = logging.getLogger("asteroid_audiosep")

PathLike = Union[str, os.PathLike]
#: An audio item: a file, or a ``(tensor, sample_rate)`` pair (mono ``(time,)`` or ``(channels, time)``).
AudioItem = Union[PathLike, Tuple[torch.Tensor, int]]

#: Every signal is scaled to this RMS (-20 dBFS) before it is embedded: scores ignore gain.
SCORE_RMS = 0.1
#: Most 10 s windows per call of the audio tower.
DEFAULT_BATCH = 8
#: File embeddings kept (the oldest are dropped first): a long run's memory stays bounded.
MAX_CACHED_FILES = 4096


def _build_from_spec(spec) -> "torch.nn.Module":
    from ..encoders import build_query_encoder

    if isinstance(spec, dict):
        return build_query_encoder(spec)
    text = str(spec).strip()
    if text.startswith("{"):
        import json

        try:
            return build_query_encoder(json.loads(text))
        except ValueError as err:
            raise AudioSepError(f"--score-encoder {text!r} is not a JSON encoder spec: {err}") from err
    path = Path(text).expanduser()
    if path.suffix.lower() in (".json", ".yaml", ".yml") and path.is_file():
        import yaml

        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(spec, dict):
            raise AudioSepError(f"{path} does not hold an encoder spec (a mapping with 'type')")
        return build_query_encoder(spec)
    if path.is_file() or path.suffix.lower() in (".pt", ".ckpt", ".pth"):
        from ..encoders.clap import resolve_clap_checkpoint

        return build_query_encoder({"type": "clap", "checkpoint": str(resolve_clap_checkpoint(text))})
    return build_query_encoder(text)


def resolve_score_encoder(encoder=None, model=None):
    """The encoder that scores: given (an encoder, a spec, a name, a CLAP checkpoint path) or the
    model's own.

    Args:
        encoder: a :class:`~asteroid_audiosep.encoders.QueryEncoder`, a :class:`ClapScorer`, a
            spec dict (``{"type": "clap", ...}``), its JSON text, a ``.json``/``.yaml`` file
            holding one, a CLAP checkpoint path, or an encoder name (``"clap"``); None: the
            model's own query encoder (when an embedding table stands in for it, the encoder of
            the model's spec is built).
        model: an :class:`~asteroid_audiosep.models.AudioSep` (used when ``encoder`` is None).

    Raises:
        AudioSepError: no encoder at all, or one without an audio tower (naming what to give).
    """
    if isinstance(encoder, ClapScorer):
        return encoder.encoder
    if encoder is None and model is not None:
        encoder = model.query_encoder
        from ..encoders import PrecomputedQueryEncoder

        if isinstance(encoder, PrecomputedQueryEncoder) and getattr(model, "query_encoder_spec", None):
            encoder = _build_from_spec(model.query_encoder_spec).to(model.window.device)
    elif encoder is not None and not isinstance(encoder, torch.nn.Module):
        encoder = _build_from_spec(encoder)
    if encoder is None:
        raise AudioSepError("CLAPScore needs an encoder: give a CLAP spec or checkpoint (--score-encoder)")
    if not getattr(encoder, "has_audio_tower", False):
        name = getattr(encoder, "name", type(encoder).__name__)
        raise AudioSepError(
            f"CLAPScore needs an encoder with an audio tower, and the {name} query encoder has none: "
            "give one with --score-encoder (a CLAP checkpoint path, 'clap', or a JSON encoder spec)"
        )
    return encoder.eval()


def harmonic_mean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``2ab / (a + b)``, 0 where ``a + b == 0`` (both terms are clipped at 0 before)."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    total = a + b
    return torch.where(total > 0, 2 * a * b / torch.where(total > 0, total, torch.ones_like(total)),
                       torch.zeros_like(total))


def ref_clap_from_embeddings(estimate: torch.Tensor, reference: torch.Tensor, text: torch.Tensor,
                             weight: float = 1.0) -> torch.Tensor:
    """RefCLAPScore from embeddings: ``H(w max(cos(e, t), 0), max(cos(e, r), 0))``.

    Args:
        estimate: ``(..., D)`` audio embeddings of the outputs.
        reference: ``(..., D)`` audio embeddings of the references.
        text: ``(..., D)`` text embeddings of the queries.
        weight: ``w``, the weight of the text term.
    """
    e, r, t = (F.normalize(torch.as_tensor(x, dtype=torch.float64), dim=-1) for x in (estimate, reference, text))
    text_term = (weight * (e * t).sum(-1)).clamp(min=0)
    ref_term = (e * r).sum(-1).clamp(min=0)
    return harmonic_mean(text_term, ref_term)


class ClapScorer:
    """One CLAP encoder that scores audio against text: batched, with caches.

    Args:
        encoder: what :func:`resolve_score_encoder` accepts (an encoder with an audio tower, a
            spec, a checkpoint path, ``"clap"``).
        model: the model whose own encoder scores when ``encoder`` is None.
        batch_size: most 10 s windows per call of the audio tower.

    Attributes:
        encoder: the query encoder (eval mode).
    """

    def __init__(self, encoder=None, model=None, batch_size: int = DEFAULT_BATCH):
        self.encoder = resolve_score_encoder(encoder, model)
        self.batch_size = max(1, int(batch_size))
        self._texts: Dict[str, torch.Tensor] = {}
        self._files: Dict[Tuple[str, int, int], torch.Tensor] = {}

    @property
    def embed_dim(self) -> int:
        return int(getattr(self.encoder, "embed_dim", 0) or 0)

    # ------------------------------------------------------------------ embeddings
    def text_embeddings(self, queries: Sequence[str]) -> torch.Tensor:
        """``(N, D)`` unit text embeddings (cached per text; new ones embedded in one batch)."""
        if isinstance(queries, str):
            queries = [queries]
        queries = list(queries)
        new = [q for q in dict.fromkeys(queries) if q not in self._texts]
        if new:
            rows = F.normalize(self.encoder.encode_text(new).detach().float().cpu(), dim=-1)
            self._texts.update(zip(new, rows))
        return torch.stack([self._texts[q] for q in queries])

    def audio_embeddings(self, items: Sequence[AudioItem]) -> torch.Tensor:
        """``(N, D)`` unit audio embeddings of files and ``(tensor, rate)`` pairs.

        Windows of all items are embedded together, ``batch_size`` at a time per (sample rate,
        length);
        a file's embedding is cached (path, size, mtime; the last :data:`MAX_CACHED_FILES`).
        A silent item's row is NaN.
        """
        from ..queries import audio_windows

        items = list(items)
        out: List[Optional[torch.Tensor]] = [None] * len(items)
        windows: Dict[Tuple[int, int], List[Tuple[int, torch.Tensor]]] = {}  # (rate, length) -> (item, window)
        keys: Dict[int, Tuple[str, int, int]] = {}
        for i, item in enumerate(items):
            key = _file_key(item)
            if key is not None and key in self._files:
                out[i] = self._files[key]
                continue
            wav, rate = _mono(item)
            rms = float(wav.pow(2).mean().sqrt()) if wav.numel() else 0.0
            if not math.isfinite(rms):
                raise AudioSepError(f"{_describe(item)} holds NaN or inf samples: cannot score it")
            if rms < _silence_rms():
                out[i] = torch.full((max(1, self.embed_dim),), math.nan)
            else:
                for w in audio_windows(wav * (SCORE_RMS / rms), rate):
                    windows.setdefault((rate, w.numel()), []).append((i, w))
            if key is not None:
                keys[i] = key
        sums: Dict[int, torch.Tensor] = {}
        with torch.no_grad():
            for (rate, _), pairs in windows.items():
                for start in range(0, len(pairs), self.batch_size):
                    part = pairs[start:start + self.batch_size]
                    emb = self.encoder.encode_audio(torch.stack([w for _, w in part]), int(rate))
                    for (i, _), row in zip(part, F.normalize(emb.detach().float().cpu(), dim=-1)):
                        sums[i] = sums[i] + row if i in sums else row
        for i, total in sums.items():
            out[i] = F.normalize(total, dim=-1)
        for i, key in keys.items():
            self._files[key] = out[i]
        while len(self._files) > MAX_CACHED_FILES:
            del self._files[next(iter(self._files))]
        return torch.stack(out)

    def audio_embedding(self, audio: Union[PathLike, torch.Tensor], rate: Optional[int] = None) -> torch.Tensor:
        """``(D,)`` unit embedding of one file or tensor (NaN when silent)."""
        return self.audio_embeddings([_item(audio, rate)])[0]

    # ------------------------------------------------------------------ scores
    def scores(self, items: Sequence[AudioItem], queries: Sequence[str]) -> torch.Tensor:
        """``(N,)`` CLAPScores of items against their queries (one query per item)."""
        if isinstance(queries, str):
            queries = [queries] * len(items)
        if len(queries) != len(items):
            raise AudioSepError(f"{len(items)} audio items but {len(queries)} queries")
        return (self.audio_embeddings(items).double() * self.text_embeddings(queries).double()).sum(-1)

    def clap_score(self, audio, rate: Optional[int], query: str) -> float:
        """``CLAPScore = cos(E_a(audio), E_t(query))`` (see the module docstring)."""
        return float(self.scores([_item(audio, rate)], [query])[0])

    def clap_score_i(self, estimate, mixture, rate: Optional[int], query: str) -> float:
        """``CLAPScore-i = CLAPScore(estimate) - CLAPScore(mixture)``."""
        s = self.scores([_item(estimate, rate), _item(mixture, rate)], [query, query])
        return float(s[0] - s[1])

    def ref_clap_score(self, estimate, reference, rate: Optional[int], query: str, weight: float = 1.0) -> float:
        """``RefCLAPScore = H(w max(CLAPScore, 0), max(cos(E_a(estimate), E_a(reference)), 0))``."""
        emb = self.audio_embeddings([_item(estimate, rate), _item(reference, rate)])
        return float(ref_clap_from_embeddings(emb[0], emb[1], self.text_embeddings([query])[0], weight))


def _silence_rms() -> float:
    from ..queries import SILENCE_RMS

    return SILENCE_RMS


def _item(audio, rate: Optional[int]) -> AudioItem:
    if isinstance(audio, (str, os.PathLike)):
        return audio
    if isinstance(audio, tuple):
        return audio
    if rate is None:
        raise AudioSepError("give the sample rate of an in-memory signal")
    return (audio, int(rate))


def _describe(item: AudioItem) -> str:
    return str(item) if isinstance(item, (str, os.PathLike)) else "the signal"


def _file_key(item: AudioItem) -> Optional[Tuple[str, int, int]]:
    if not isinstance(item, (str, os.PathLike)):
        return None
    try:
        stat = os.stat(item)
    except OSError as err:
        raise AudioSepError(f"cannot read {item}: {err}") from err
    return (str(Path(item).resolve()), stat.st_size, stat.st_mtime_ns)


def _mono(item: AudioItem) -> Tuple[torch.Tensor, int]:
    """A mono float32 ``(time,)`` signal and its rate (channels averaged)."""
    if isinstance(item, (str, os.PathLike)):
        import soundfile as sf

        try:
            data, rate = sf.read(str(item), dtype="float32", always_2d=True)
        except Exception as err:
            raise AudioSepError(f"cannot read {item}: {err}") from err
        wav = torch.from_numpy(data.mean(1))
    else:
        wav, rate = item
        wav = torch.as_tensor(wav, dtype=torch.float32)
        if wav.dim() == 2:
            wav = wav.mean(0)
        elif wav.dim() != 1:
            raise AudioSepError(f"a signal to score must be (time,) or (channels, time), got {tuple(wav.shape)}")
    if wav.numel() == 0:
        raise AudioSepError(f"{_describe(item)} is empty: nothing to score")
    return wav.detach().cpu(), int(rate)


def _scorer(encoder) -> ClapScorer:
    return encoder if isinstance(encoder, ClapScorer) else ClapScorer(encoder)


def clap_score(audio, rate: Optional[int], query: str, encoder=None) -> float:
    """CLAPScore of a signal for a text query: ``cos(E_a(audio), E_t(query))``.

    Args:
        audio: a file, or a ``(time,)``/``(channels, time)`` tensor.
        rate: the tensor's sample rate (None for a file).
        query: the text query.
        encoder: a :class:`ClapScorer` (reuse it: it caches), or what
            :func:`resolve_score_encoder` accepts (an encoder with an audio tower, a spec...).

    Returns:
        The score in [-1, 1]; NaN for a silent signal.
    """
    return _scorer(encoder).clap_score(audio, rate, query)


def clap_score_i(estimate, mixture, rate: Optional[int], query: str, encoder=None) -> float:
    """CLAPScore-i: ``CLAPScore(estimate, query) - CLAPScore(mixture, query)``.

    Args:
        estimate: the separated signal (file or tensor).
        mixture: the input it was separated from (file or tensor, at ``rate`` too).
        rate: the tensors' sample rate (None for files).
        query: the text query.
        encoder: see :func:`clap_score`.
    """
    return _scorer(encoder).clap_score_i(estimate, mixture, rate, query)


def ref_clap_score(estimate, reference, rate: Optional[int], query: str, encoder=None, weight: float = 1.0) -> float:
    """RefCLAPScore: ``H(w max(CLAPScore(est, q), 0), max(cos(E_a(est), E_a(ref)), 0))``,
    ``H(a, b) = 2ab / (a + b)`` (0 when both terms are 0), in [0, 1] for ``w = 1``.

    Args:
        estimate: the separated signal (file or tensor).
        reference: the reference source (file or tensor).
        rate: the tensors' sample rate (None for files).
        query: the text query.
        encoder: see :func:`clap_score`.
        weight: ``w`` (RefCLIPScore uses 2.5 for CLIP).
    """
    return _scorer(encoder).ref_clap_score(estimate, reference, rate, query, weight)


class _CallableModule(types.ModuleType):
    """This module, callable as :func:`clap_score`: the package exports the function under the
    module's name, and importing the module sets the package's attribute to the module."""

    def __call__(self, *args, **kwargs):
        return clap_score(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
