"""CLIP text-tower query encoder (open_clip), as in AudioSep-CLIP."""
from pathlib import Path
from typing import List, Optional

import torch
import torch.nn.functional as F

from ..errors import AudioSepError
from .base import QueryEncoder


class ClipQueryEncoder(QueryEncoder):
    """Text queries embedded by CLIP's text tower, L2-normalised (512-d for ViT-B-32).

    Args:
        model_name: open_clip architecture name.
        pretrained: an open_clip pretrained tag (``"openai"``, downloaded when online), a local
            weights file, or None for random weights (tests).
        embed_dim: expected embedding size (checked when given).
    """

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: Optional[str] = "openai",
        embed_dim: Optional[int] = None,
    ):
        super().__init__()
        try:
            import open_clip
        except ImportError as err:
            raise AudioSepError("the 'clip' encoder needs `pip install open_clip_torch` (the `clip` extra)") from err
        if pretrained is not None and Path(pretrained).suffix and not Path(pretrained).is_file():
            raise AudioSepError(f"CLIP weights file not found: {pretrained}")
        try:
            model = open_clip.create_model(model_name, pretrained=pretrained)
        except RuntimeError as err:
            raise AudioSepError(f"cannot build CLIP {model_name!r} with weights {pretrained!r}: {err}") from err
        # Only the text tower is used.
        model.visual = None
        self.model = model
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.model_name, self.pretrained = model_name, pretrained
        self.embed_dim = int(model.text_projection.shape[1])
        if embed_dim is not None and int(embed_dim) != self.embed_dim:
            raise AudioSepError(f"CLIP {model_name} gives {self.embed_dim}-d embeddings, not {embed_dim}")
        self.requires_grad_(False)
        self.eval()

    def _embed_text(self, texts: List[str]) -> torch.Tensor:
        device = self.model.token_embedding.weight.device
        emb = self.model.encode_text(self.tokenizer(texts).to(device))
        return F.normalize(emb.float(), dim=-1)

    def spec(self) -> dict:
        return {
            "type": "clip",
            "model_name": self.model_name,
            "pretrained": self.pretrained,
            "embed_dim": self.embed_dim,
        }
