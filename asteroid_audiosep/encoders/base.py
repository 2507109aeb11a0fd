"""The query-encoder interface and its registry (encoders are imported by name, lazily)."""
import importlib
from typing import Callable, Dict, List, Sequence, Union

import torch
from torch import nn

from ..errors import AudioSepError

# name -> "module:Class"; modules are imported when an encoder of that type is built.
_REGISTRY: Dict[str, Union[str, Callable]] = {
    "clap": "asteroid_audiosep.encoders.clap:ClapQueryEncoder",
    "clip": "asteroid_audiosep.encoders.clip:ClipQueryEncoder",
    "sentence": "asteroid_audiosep.encoders.sentence:SentenceQueryEncoder",
    "precomputed": "asteroid_audiosep.encoders.precomputed:PrecomputedQueryEncoder",
}


def check_texts(texts: Sequence[str]) -> List[str]:
    """Validate a list of text queries (non-empty strings) and return it as a list."""
    if isinstance(texts, str):
        raise AudioSepError("text queries must be a list of strings, not a single string")
    texts = list(texts)
    if not texts:
        raise AudioSepError("no text query given")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise AudioSepError(f"query {i} is a {type(text).__name__}, expected a string")
        if not text.strip():
            raise AudioSepError(f"query {i} is an empty string: describe the sound to separate")
    return texts


class QueryEncoder(nn.Module):
    """Turns queries (text, and audio where the encoder has an audio tower) into embeddings.

    Subclasses implement :meth:`_embed_text` (unique, validated strings -> (N, D)) and
    :meth:`spec`; :meth:`encode_text` validates the queries and embeds identical ones once.
    Encoders are frozen feature extractors: they run without gradients.

    Attributes:
        embed_dim: size of the embeddings.
    """

    embed_dim: int = 0

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed text queries.

        Args:
            texts: N non-empty strings.

        Returns:
            A float tensor (N, embed_dim); identical strings share one computation.
        """
        texts = check_texts(texts)
        unique = list(dict.fromkeys(texts))
        emb = self._embed_text(unique)
        if len(unique) == len(texts):
            return emb
        index = {t: i for i, t in enumerate(unique)}
        return emb[torch.tensor([index[t] for t in texts], device=emb.device)]

    def _embed_text(self, texts: List[str]) -> torch.Tensor:
        raise NotImplementedError

    @property
    def has_audio_tower(self) -> bool:
        """Whether :meth:`encode_audio` is available."""
        return False

    @property
    def supports_audio(self) -> bool:
        """Whether audio examples can be queries (:meth:`encode_audio`)."""
        return self.has_audio_tower

    @property
    def supports_image(self) -> bool:
        """Whether pictures can be queries (:meth:`encode_image`)."""
        return False

    @property
    def name(self) -> str:
        """The encoder's type as written in specs (``clap``, ``clip``, ``sentence``, ...)."""
        try:
            return str(self.spec().get("type", type(self).__name__))
        except (AudioSepError, NotImplementedError):
            return type(self).__name__

    def encode_audio(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Embed audio queries (batch, time) at ``sample_rate`` -> (batch, embed_dim)."""
        raise AudioSepError(
            f"the {self.name} query encoder cannot embed audio: audio-example and span queries need "
            "a model whose encoder has an audio tower (clap); use text queries with this model"
        )

    def encode_image(self, images) -> torch.Tensor:
        """Embed pictures (PIL images, uint8/float tensors or file paths) -> (N, embed_dim)."""
        raise AudioSepError(
            f"the {self.name} query encoder cannot embed images: image and video queries need a "
            "model whose encoder has an image tower (clip); use text queries with this model"
        )

    def spec(self) -> dict:
        """Identity of this encoder (plain types), enough for :func:`build_query_encoder`."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        try:
            spec = self.spec()
        except AudioSepError:
            return ""
        return ", ".join(f"{k}={v!r}" for k, v in spec.items() if k != "type")


def register_query_encoder(name: str, cls_or_path: Union[str, Callable]) -> None:
    """Make a query encoder buildable by name, e.g. from a model package's spec.

    Args:
        name: the ``type`` of the spec.
        cls_or_path: the class, or ``"module:Class"`` to import it only when used.
    """
    _REGISTRY[name] = cls_or_path


def available_query_encoders() -> List[str]:
    """Names that :func:`build_query_encoder` accepts."""
    return sorted(_REGISTRY)


def get_query_encoder_class(name: str):
    """The class registered under ``name`` (imports its module)."""
    if name not in _REGISTRY:
        raise AudioSepError(
            f"unknown query encoder {name!r}; choose one of {available_query_encoders()}"
        )
    target = _REGISTRY[name]
    if isinstance(target, str):
        module, cls = target.split(":")
        target = getattr(importlib.import_module(module), cls)
    return target


def build_query_encoder(spec: Union[str, dict], **overrides) -> QueryEncoder:
    """Build a query encoder from its spec.

    Args:
        spec: ``{"type": name, **constructor_args}`` (as returned by ``encoder.spec()``), or
            just a name for the encoder's defaults.
        **overrides: constructor arguments replacing those of the spec.

    Returns:
        The encoder, in eval mode.
    """
    if isinstance(spec, str):
        spec = {"type": spec}
    spec = dict(spec or {})
    if "type" not in spec:
        raise AudioSepError(f"query encoder spec {spec} has no 'type'")
    name = spec.pop("type")
    spec.update(overrides)
    cls = get_query_encoder_class(name)
    try:
        encoder = cls(**spec)
    except TypeError as err:
        raise AudioSepError(f"bad arguments for the {name!r} query encoder: {err}") from err
    return encoder.eval()
