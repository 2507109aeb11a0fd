"""Released checkpoints of AudioSep's family (AudioSep, the DCASE 2024 baseline, AudioSep-DP):
their split into separator and CLAP weights, and the conversion into an Asteroid model package.

Recognising a checkpoint's layout and architecture lives in :mod:`asteroid_audiosep.layouts`.

Downloads live in :mod:`asteroid_audiosep.hub`; deciding what a model argument names lives in
:mod:`asteroid_audiosep.pretrained`.
"""
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import torch

from .errors import AudioSepError
from .fileio import atomic_write
from .layouts import match_layout, model_class


def split_released_state_dict(
    state_dict: Dict[str, torch.Tensor],
) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
    """Split a released Lightning ``state_dict`` into (separator, CLAP) weights, the separator's
    renamed to model names (any layout of :mod:`asteroid_audiosep.layouts`).

    Raises:
        AudioSepError: the tensors match no released layout (names the closest layout and the
            missing and unexpected tensors).
    """
    _, _, separator, clap = match_layout(state_dict)
    return separator, clap


def convert_official(
    checkpoint: Union[str, Path],
    out_path: Union[str, Path],
    query_encoder: Optional[dict] = None,
    *,
    trust_checkpoint: bool = False,
) -> Path:
    """Convert a released checkpoint of AudioSep's family into an Asteroid model package.

    The architecture (sample rate, STFT, dual-path block) is read from the tensors; the package
    is an :class:`AudioSep` or, with a dual-path block, an :class:`AudioSepDP`.

    Args:
        checkpoint: the released Lightning checkpoint (``audiosep_base_4M_steps.ckpt``, the
            DCASE 2024 baseline's or an AudioSep-DP one).
        out_path: the package to write (``.pth``). When the checkpoint holds the CLAP weights
            (``query_encoder.model.*``), they are written beside it as ``<stem>.clap.pt`` and
            the package's ``clap`` encoder points at that file.
        query_encoder: encoder spec to store instead (e.g. another CLAP checkpoint path).
        trust_checkpoint: read a checkpoint that holds more than the allowed types by full
            unpickling, which runs the code it holds (see :mod:`asteroid_audiosep.checkpoints`).

    Returns:
        The package path.
    """
    checkpoint, out_path = Path(checkpoint), Path(out_path)
    if not checkpoint.is_file():
        raise AudioSepError(f"checkpoint not found: {checkpoint}")
    if out_path.resolve() == checkpoint.resolve():
        raise AudioSepError("the output package must not overwrite the input checkpoint")
    ckpt = read_released_checkpoint(checkpoint, trust=trust_checkpoint)
    layout, args, separator, clap = match_layout(ckpt.get("state_dict", ckpt))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if query_encoder is None:
        from .encoders.clap import CLAP_CHECKPOINT, clean_clap_state_dict

        query_encoder = {"type": "clap", "checkpoint": CLAP_CHECKPOINT, "embed_dim": 512}
        if clap:
            clap_path = out_path.with_name(out_path.stem + ".clap.pt")
            _atomic_save({"state_dict": clean_clap_state_dict(clap)}, clap_path)
            query_encoder["checkpoint"] = str(clap_path.resolve())
    model = model_class(args)(**args, query_encoder=query_encoder)
    model.load_state_dict(separator)
    package = model.serialize()
    package["infos"]["converted_from"] = checkpoint.name
    package["infos"]["layout"] = layout
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
