"""CLIP query encoder (open_clip): text tower as in AudioSep-CLIP, image tower for picture queries."""
import os
from pathlib import Path
from typing import Any, List, Optional, Sequence

import torch
import torch.nn.functional as F

from ..errors import AudioSepError
from .base import QueryEncoder


def as_pil_image(image: Any):
    """A PIL RGB image from a PIL image, a file path, or a uint8/float tensor or array.

    Tensors are ``(3, H, W)`` or ``(H, W, 3)`` (or ``(H, W)`` grey); float values are taken in
    [0, 1] and quantised to 8 bits, as a picture file would be, so that a picture given as a
    file, a PIL image or a tensor gives the same embedding.

    Raises:
        AudioSepError: a missing or unreadable file, or a tensor of another shape.
    """
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, (str, os.PathLike)):
        from ..video import read_image

        return read_image(image)
    array = torch.as_tensor(image).detach().cpu()
    if array.dim() == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.permute(1, 2, 0)
    if array.dim() == 2:
        array = array[..., None]
    if array.dim() != 3 or array.shape[-1] not in (1, 3):
        raise AudioSepError(f"an image tensor must be (3, H, W), (H, W, 3) or (H, W), got {tuple(array.shape)}")
    if array.is_floating_point():
        array = (array.clamp(0, 1) * 255).round()
    array = array.to(torch.uint8).expand(*array.shape[:2], 3).contiguous()
    return Image.fromarray(array.numpy(), "RGB")


class ClipQueryEncoder(QueryEncoder):
    """Text and picture queries embedded by CLIP, L2-normalised (512-d for ViT-B-32).

    Text goes through the text tower (AudioSep-CLIP); pictures (:meth:`encode_image`) through
    the image tower with open_clip's own evaluation preprocessing (bicubic resize of the
    shorter side, centre crop, CLIP normalisation), into the same space.

    Args:
        model_name: open_clip architecture name.
        pretrained: an open_clip pretrained tag (``"openai"``, downloaded when online), a local
            weights file (a state dict, e.g. written by ``torch.save(model.state_dict(), f)``),
            or None for random weights.
        embed_dim: expected embedding size (checked when given).
        seed: with ``pretrained=None``, the seed of the random weights (the same seed gives the
            same towers, so a model trained with them can be evaluated later); None: the
            global torch generator's state.
    """

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: Optional[str] = "openai",
        embed_dim: Optional[int] = None,
        seed: Optional[int] = None,
    ):
        super().__init__()
        try:
            import open_clip
        except ImportError as err:
            raise AudioSepError("the 'clip' encoder needs `pip install open_clip_torch` (the `clip` extra)") from err
        if pretrained is not None and Path(pretrained).suffix and not Path(pretrained).is_file():
            raise AudioSepError(f"CLIP weights file not found: {pretrained}")
        try:
            with torch.random.fork_rng(devices=[]):
                if seed is not None:
                    torch.manual_seed(int(seed))
                model = open_clip.create_model(model_name, pretrained=pretrained)
        except RuntimeError as err:
            raise AudioSepError(f"cannot build CLIP {model_name!r} with weights {pretrained!r}: {err}") from err
        from open_clip.transform import PreprocessCfg, image_transform_v2

        self.preprocess = image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), is_train=False)
        self.model = model
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.model_name, self.pretrained, self.seed = model_name, pretrained, seed
        self.embed_dim = int(model.text_projection.shape[1])
        if embed_dim is not None and int(embed_dim) != self.embed_dim:
            raise AudioSepError(f"CLIP {model_name} gives {self.embed_dim}-d embeddings, not {embed_dim}")
        self.requires_grad_(False)
        self.eval()

    def _embed_text(self, texts: List[str]) -> torch.Tensor:
        device = self.model.token_embedding.weight.device
        emb = self.model.encode_text(self.tokenizer(texts).to(device))
        return F.normalize(emb.float(), dim=-1)

    @property
    def supports_image(self) -> bool:
        return True

    @torch.no_grad()
    def encode_image(self, images: Sequence[Any], batch_size: int = 32) -> torch.Tensor:
        """Embed pictures (PIL images, uint8/float tensors, or png/jpg paths) -> (N, embed_dim).

        Raises:
            AudioSepError: no picture, or an unreadable one (naming it).
        """
        if isinstance(images, (str, os.PathLike)) or not isinstance(images, (list, tuple)):
            images = [images]
        if not images:
            raise AudioSepError("no image given")
        device = next(self.model.visual.parameters()).device
        out = []
        for start in range(0, len(images), batch_size):
            pixels = torch.stack([self.preprocess(as_pil_image(im)) for im in images[start:start + batch_size]])
            out.append(F.normalize(self.model.encode_image(pixels.to(device)).float(), dim=-1))
        return torch.cat(out)

    def spec(self) -> dict:
        spec = {"type": "clip", "model_name": self.model_name, "pretrained": self.pretrained,
                "embed_dim": self.embed_dim}
        if self.seed is not None:
            spec["seed"] = self.seed
        return spec
