"""The released AudioSep checkpoint (``audiosep_base_4M_steps.ckpt``): its tensor names, their
split into separator and CLAP weights, and the conversion into an Asteroid model package.

Downloads live in :mod:`asteroid_audiosep.hub`; deciding what a model argument names lives in
:mod:`asteroid_audiosep.pretrained`.
"""
import re
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import torch

from .errors import AudioSepError
from .fileio import atomic_write

_RENAMES = [
    # (regex on the released name without "ss_model.", replacement) in order.
    (r"^base\.(bn0|pre_conv|after_conv)\.", r"separator.\1."),
    (r"^base\.encoder_block(\d)\.conv_block1\.", lambda m: f"separator.encoder_blocks.{int(m[1]) - 1}.conv_block."),
    (r"^base\.conv_block7a\.conv_block1\.", "separator.bottleneck.conv_block."),
    (r"^base\.decoder_block(\d)\.conv_block2\.", lambda m: f"separator.decoder_blocks.{int(m[1]) - 1}.conv_block."),
    (r"^base\.decoder_block(\d)\.(conv1|bn1)\.", lambda m: f"separator.decoder_blocks.{int(m[1]) - 1}.{m[2]}."),
    (r"^film\.encoder_block(\d)->conv_block1->beta(\d)\.",
     lambda m: f"separator.encoder_blocks.{int(m[1]) - 1}.conv_block.film{m[2]}.linear."),
    (r"^film\.conv_block7a->conv_block1->beta(\d)\.", r"separator.bottleneck.conv_block.film\1.linear."),
    (r"^film\.decoder_block(\d)->conv_block2->beta(\d)\.",
     lambda m: f"separator.decoder_blocks.{int(m[1]) - 1}.conv_block.film{m[2]}.linear."),
    (r"^film\.decoder_block(\d)->beta1\.", lambda m: f"separator.decoder_blocks.{int(m[1]) - 1}.film1.linear."),
]
# Released tensors that the computation never uses: the STFT/ISTFT kernels (torch.stft is
# used instead), and each decoder block's unused bn2 and beta2.
_DROPPED = re.compile(r"^(base\.(stft|istft)\.|base\.decoder_block\d\.bn2\.|film\.decoder_block\d->beta2\.)")


def _rename(key: str) -> Optional[str]:
    if _DROPPED.match(key):
        return None
    for pattern, repl in _RENAMES:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    raise KeyError(key)


def split_released_state_dict(
    state_dict: Dict[str, torch.Tensor],
) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
    """Split a released Lightning ``state_dict`` into (separator, CLAP) weights, the separator's
    renamed to :class:`~asteroid_audiosep.models.AudioSep` names.

    Raises:
        AudioSepError: the tensors are not exactly the released layout (names the missing and
            unexpected ones).
    """
    from .models import RELEASED_ARGS, AudioSep

    reference = AudioSep(**RELEASED_ARGS).state_dict()
    separator, clap, unexpected = {}, {}, []
    for key, value in state_dict.items():
        if key.startswith("query_encoder."):
            clap[key] = value
            continue
        if not key.startswith("ss_model."):
            unexpected.append(key)
            continue
        try:
            new = _rename(key[len("ss_model.") :])
        except KeyError:
            unexpected.append(key)
            continue
        if new is None:
            continue
        if new not in reference:
            unexpected.append(key)
        elif tuple(reference[new].shape) != tuple(value.shape):
            unexpected.append(f"{key} (shape {tuple(value.shape)}, expected {tuple(reference[new].shape)})")
        else:
            separator[new] = value
    missing = sorted(set(reference) - set(separator))
    if missing or unexpected:
        raise AudioSepError(
            "not a released AudioSep checkpoint (audiosep_base_4M_steps.ckpt layout): "
            f"{len(missing)} missing tensors {missing[:8]}{'...' if len(missing) > 8 else ''}, "
            f"{len(unexpected)} unexpected tensors {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}"
        )
    return separator, clap


def convert_official(
    checkpoint: Union[str, Path],
    out_path: Union[str, Path],
    query_encoder: Optional[dict] = None,
    *,
    trust_checkpoint: bool = False,
) -> Path:
    """Convert a released AudioSep checkpoint into an Asteroid model package.

    Args:
        checkpoint: the released Lightning checkpoint (``audiosep_base_4M_steps.ckpt``).
        out_path: the package to write (``.pth``). When the checkpoint holds the CLAP weights
            (``query_encoder.model.*``), they are written beside it as ``<stem>.clap.pt`` and
            the package's ``clap`` encoder points at that file.
        query_encoder: encoder spec to store instead (e.g. another CLAP checkpoint path).
        trust_checkpoint: read a checkpoint that holds more than the allowed types by full
            unpickling, which runs the code it holds (see :mod:`asteroid_audiosep.checkpoints`).

    Returns:
        The package path.
    """
    from .models import RELEASED_ARGS, AudioSep

    checkpoint, out_path = Path(checkpoint), Path(out_path)
    if not checkpoint.is_file():
        raise AudioSepError(f"checkpoint not found: {checkpoint}")
    if out_path.resolve() == checkpoint.resolve():
        raise AudioSepError("the output package must not overwrite the input checkpoint")
    ckpt = read_released_checkpoint(checkpoint, trust=trust_checkpoint)
    separator, clap = split_released_state_dict(ckpt.get("state_dict", ckpt))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if query_encoder is None:
        from .encoders.clap import CLAP_CHECKPOINT, clean_clap_state_dict

        query_encoder = {"type": "clap", "checkpoint": CLAP_CHECKPOINT, "embed_dim": 512}
        if clap:
            clap_path = out_path.with_name(out_path.stem + ".clap.pt")
            _atomic_save({"state_dict": clean_clap_state_dict(clap)}, clap_path)
            query_encoder["checkpoint"] = str(clap_path.resolve())
    model = AudioSep(**RELEASED_ARGS, query_encoder=query_encoder)
    model.load_state_dict(separator)
    package = model.serialize()
    package["infos"]["converted_from"] = checkpoint.name
    _atomic_save(package, out_path)
    return out_path


def read_released_checkpoint(checkpoint: Union[str, Path], *, trust: bool = False) -> Dict:
    """The content of a released Lightning checkpoint (read on the CPU).

    Read with :func:`asteroid_audiosep.checkpoints.load_checkpoint`: the weights-only unpickler
    and the allow-list of what released checkpoints hold besides tensors.

    Args:
        checkpoint: the file.
        trust: unpickle fully (runs the code the file holds) when it needs more than the
            allow-list.

    Raises:
        UntrustedCheckpointError: the file holds other objects and is not trusted.
        AudioSepError: unreadable (truncated, corrupt, not a torch file) or not holding a
            ``state_dict``.
    """
    from .checkpoints import load_checkpoint

    ckpt = load_checkpoint(checkpoint, trust=trust)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict", ckpt), dict):
        raise AudioSepError(f"{checkpoint} is not a Lightning checkpoint holding a state_dict")
    return ckpt


def _atomic_save(obj, path: Path) -> None:
    with atomic_write(path, mode=None) as tmp:
        torch.save(obj, tmp)
