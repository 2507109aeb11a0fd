"""LAION-CLAP query encoder (HTSAT audio tower + RoBERTa text tower), AudioSep's default."""
import contextlib
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Union

import torch

from ..errors import AudioSepError
from .base import QueryEncoder

#: The CLAP checkpoint AudioSep was trained with, and where it is published.
CLAP_CHECKPOINT = "music_speech_audioset_epoch_15_esc_89.98.pt"
CLAP_HF_REPO = "lukewys/laion_clap"

#: roberta-base's architecture, so the text tower is built without downloading its weights
#: (the CLAP checkpoint overwrites them anyway).
ROBERTA_BASE = dict(
    vocab_size=50265,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_act="gelu",
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    max_position_embeddings=514,
    type_vocab_size=1,
    initializer_range=0.02,
    layer_norm_eps=1e-5,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
)

#: ``tokenizer`` value naming the shipped byte-level tokenizer (no download; for random towers).
BYTE_LEVEL = "byte-level"

_STANDARD_KEYS = ("text_mean", "text_std", "audio_mean", "audio_std")

CLAP_SAMPLE_RATE = 48000
CLAP_CLIP_SAMPLES = 480000


def import_clap_module():
    """Import laion-clap's ``clap_module`` without running ``laion_clap/__init__``.

    ``import laion_clap`` downloads three tokenizers from the Hugging Face hub (and fails
    offline); the model code itself (``clap_module``) needs nothing from the network.
    """
    if "clap_module" in sys.modules:
        return sys.modules["clap_module"]
    spec = importlib.util.find_spec("laion_clap")
    if spec is None or not spec.submodule_search_locations:
        raise AudioSepError("the 'clap' encoder needs `pip install laion-clap` (the `clap` extra)")
    root = str(Path(list(spec.submodule_search_locations)[0]))
    if root not in sys.path:
        sys.path.append(root)
    return importlib.import_module("clap_module")


@contextlib.contextmanager
def _text_tower_from_config(text_config: dict):
    """Make laion-clap build ``RobertaModel`` from a config instead of downloading it."""
    from transformers import RobertaConfig, RobertaModel

    model_mod = importlib.import_module("clap_module.model")

    class _ConfiguredRoberta:
        @staticmethod
        def from_pretrained(*_args, **_kwargs):
            return RobertaModel(RobertaConfig(**text_config), add_pooling_layer=True)

    original = model_mod.RobertaModel
    model_mod.RobertaModel = _ConfiguredRoberta
    try:
        yield
    finally:
        model_mod.RobertaModel = original


def resolve_clap_checkpoint(checkpoint: str) -> Path:
    """A local CLAP checkpoint path; the published file name is downloaded from the hub."""
    path = Path(checkpoint).expanduser()
    if path.is_file():
        return path
    if checkpoint == CLAP_CHECKPOINT or (path.name == CLAP_CHECKPOINT and not path.exists()):
        try:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(CLAP_HF_REPO, CLAP_CHECKPOINT))
        except Exception as err:
            raise AudioSepError(
                f"cannot download {CLAP_CHECKPOINT} from the Hugging Face repo {CLAP_HF_REPO} "
                f"({err}); download it by hand and pass its path"
            ) from err
    raise AudioSepError(f"CLAP checkpoint not found: {checkpoint}")


def clean_clap_state_dict(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Strip wrapper prefixes (``module.``, AudioSep's ``query_encoder.model.[model.]``) and
    the ``position_ids`` buffer that recent transformers versions no longer hold."""
    out = {}
    for key, value in state_dict.items():
        for prefix in ("module.", "query_encoder.model.", "model."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        if key == "text_branch.embeddings.position_ids":
            continue
        out[key] = value
    return out


def load_clap_state_dict(path: Union[str, Path], *, trust: bool = False) -> Dict[str, torch.Tensor]:
    """Read a CLAP checkpoint (a ``{"state_dict": ...}`` dict or a bare state dict).

    Read with :func:`asteroid_audiosep.checkpoints.load_checkpoint` (weights-only, with the
    allow-list that covers the published CLAP checkpoints' NumPy learning rates).

    Args:
        path: the checkpoint.
        trust: unpickle fully (runs the code the file holds) when it needs more than the
            allow-list.

    Raises:
        UntrustedCheckpointError: the file holds other objects and is not trusted.
        AudioSepError: unreadable, or no state dict in it.
    """
    from ..checkpoints import load_checkpoint

    ckpt = load_checkpoint(path, trust=trust, what="CLAP checkpoint")
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else ckpt
    if not isinstance(state, dict):
        raise AudioSepError(f"{path} is not a CLAP checkpoint (no state dict)")
    return clean_clap_state_dict(state)


class ClapQueryEncoder(QueryEncoder):
    """LAION-CLAP text (and audio) embeddings, 512-d, L2-normalised, as in AudioSep-CLAP.

    Args:
        checkpoint: a CLAP checkpoint file, or the published name
            ``music_speech_audioset_epoch_15_esc_89.98.pt`` (downloaded from the Hugging Face
            hub when online), or None for random weights (tests).
        amodel: audio tower (laion-clap config name), ``HTSAT-base`` for AudioSep.
        tmodel: text tower, ``roberta``.
        tokenizer: a RoBERTa tokenizer folder or hub name.
        text_config: overrides of the RoBERTa architecture (tests build a small one).
        max_length: tokenizer padding/truncation length (AudioSep: 512).
        embed_dim: expected embedding size (checked when given).
        state_dict: CLAP weights given in memory (e.g. from the released AudioSep checkpoint),
            instead of ``checkpoint``.
        seed: with ``checkpoint=None``, the seed of the random towers (the same seed builds the
            same towers, so a model trained with them can be evaluated later); None: unseeded.
        standardize: ``{"text_mean", "text_std", "audio_mean", "audio_std"}`` (lists of
            ``embed_dim`` floats): each embedding has its modality's mean subtracted, is divided
            by its deviation and L2-normalised again. Makes the nearly collapsed embeddings of
            random towers readable (see :mod:`asteroid_audiosep.engine.hybrid`).
    """

    def __init__(
        self,
        checkpoint: Optional[str] = CLAP_CHECKPOINT,
        amodel: str = "HTSAT-base",
        tmodel: str = "roberta",
        tokenizer: str = "roberta-base",
        text_config: Optional[dict] = None,
        max_length: int = 512,
        embed_dim: Optional[int] = None,
        state_dict: Optional[Dict[str, torch.Tensor]] = None,
        seed: Optional[int] = None,
        standardize: Optional[Dict[str, List[float]]] = None,
    ):
        super().__init__()
        if standardize is not None and (not isinstance(standardize, dict) or set(standardize) != set(_STANDARD_KEYS)):
            raise AudioSepError(f"standardize needs {_STANDARD_KEYS}, each a list of embed_dim floats")
        if tmodel != "roberta":
            raise AudioSepError(f"only the 'roberta' CLAP text tower is supported, got {tmodel!r}")
        clap_module = import_clap_module()
        factory = importlib.import_module("clap_module.factory")
        configs = getattr(factory, "_MODEL_CONFIGS", {})
        if amodel not in configs:
            raise AudioSepError(f"unknown CLAP audio model {amodel!r}; choose from {sorted(configs)}")
        cfg = json.loads(json.dumps(configs[amodel]))
        cfg["text_cfg"]["model_type"] = tmodel
        self.text_config = dict(text_config or {})
        self.seed = None if seed is None else int(seed)
        with torch.random.fork_rng(devices=[]), _text_tower_from_config({**ROBERTA_BASE, **self.text_config}):
            if self.seed is not None:
                torch.manual_seed(self.seed)
            self.model = clap_module.CLAP(**cfg, enable_fusion=False)
        self.model_cfg = cfg
        self.checkpoint = checkpoint
        if state_dict is None and checkpoint is not None:
            state_dict = load_clap_state_dict(resolve_clap_checkpoint(checkpoint))
        if state_dict is not None:
            state_dict = clean_clap_state_dict(state_dict)
            missing, unexpected = self.model.load_state_dict(state_dict, strict=False)
            if missing or unexpected:
                raise AudioSepError(
                    f"CLAP weights do not fit the {amodel}/{tmodel} model: missing "
                    f"{missing[:5]}..., unexpected {unexpected[:5]}..."
                )
        self.tokenizer_name = tokenizer
        try:
            from transformers import RobertaTokenizer

            if tokenizer == BYTE_LEVEL:
                from ..resources import BYTE_LEVEL_TOKENIZER

                self.tokenizer = RobertaTokenizer.from_pretrained(str(BYTE_LEVEL_TOKENIZER))
            else:
                self.tokenizer = RobertaTokenizer.from_pretrained(tokenizer)
        except OSError as err:
            raise AudioSepError(
                f"cannot load the RoBERTa tokenizer {tokenizer!r} ({err}); offline, pass a local "
                "folder holding vocab.json and merges.txt (or 'byte-level' with random towers)"
            ) from err
        self.amodel, self.tmodel = amodel, tmodel
        self.max_length = int(max_length)
        self.embed_dim = int(self.model.joint_embed_shape)
        if embed_dim is not None and int(embed_dim) != self.embed_dim:
            raise AudioSepError(f"CLAP gives {self.embed_dim}-d embeddings, not {embed_dim}")
        self.standardize = None
        if standardize is not None:
            if any(len(standardize[k]) != self.embed_dim for k in _STANDARD_KEYS):
                raise AudioSepError(f"standardize needs {_STANDARD_KEYS}, each of {self.embed_dim} floats")
            keys = _STANDARD_KEYS
            self.standardize = {k: [float(v) for v in standardize[k]] for k in keys}
            for k in keys:
                self.register_buffer(f"_{k}", torch.tensor(self.standardize[k]), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def _standardized(self, emb: torch.Tensor, modality: str) -> torch.Tensor:
        if self.standardize is None:
            return emb
        mean, std = getattr(self, f"_{modality}_mean"), getattr(self, f"_{modality}_std")
        return torch.nn.functional.normalize((emb.float() - mean) / std, dim=-1)

    def _embed_text(self, texts: List[str]) -> torch.Tensor:
        tokens = self.tokenizer(
            texts,
            padding="max_length",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return self._standardized(self.model.get_text_embedding(dict(tokens)), "text")

    @property
    def has_audio_tower(self) -> bool:
        return True

    @torch.no_grad()
    def encode_audio(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """CLAP audio embeddings: resample to 48 kHz, repeat-pad (or cut) to 10 s.

        Args:
            wav: (batch, time) or (time,) mono audio.
            sample_rate: its rate.

        Returns:
            (batch, 512) L2-normalised embeddings.
        """
        from ..audio import resample

        if wav.dim() == 1:
            wav = wav[None]
        if wav.dim() != 2 or wav.shape[-1] == 0:
            raise AudioSepError(f"audio queries must be (batch, time) mono audio, got {tuple(wav.shape)}")
        wav = resample(wav.float(), int(sample_rate), CLAP_SAMPLE_RATE)
        items = []
        for clip in wav:
            if clip.shape[0] > CLAP_CLIP_SAMPLES:
                clip = clip[:CLAP_CLIP_SAMPLES]
            elif clip.shape[0] < CLAP_CLIP_SAMPLES:
                clip = clip.repeat(CLAP_CLIP_SAMPLES // clip.shape[0])
                clip = torch.nn.functional.pad(clip, (0, CLAP_CLIP_SAMPLES - clip.shape[0]))
            items.append({"waveform": clip, "longer": torch.tensor([False])})
        return self._standardized(self.model.get_audio_embedding(items), "audio")

    def spec(self) -> dict:
        spec = {
            "type": "clap",
            "checkpoint": self.checkpoint,
            "amodel": self.amodel,
            "tmodel": self.tmodel,
            "tokenizer": self.tokenizer_name,
            "max_length": self.max_length,
            "embed_dim": self.embed_dim,
        }
        if self.text_config:
            spec["text_config"] = self.text_config
        if self.seed is not None:
            spec["seed"] = self.seed
        if self.standardize is not None:
            spec["standardize"] = self.standardize
        return spec
