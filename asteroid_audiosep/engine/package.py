"""Turn a training checkpoint into an Asteroid model package (``best_model.pth``), atomically."""
import os
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from ..checkpoints import load_checkpoint
from ..errors import AudioSepError
from ..fileio import atomic_write
from ..models import AudioSep

PathLike = Union[str, os.PathLike]


def load_training_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Read a Lightning checkpoint written by training (on CPU), with the weights-only
    unpickler (:func:`asteroid_audiosep.checkpoints.load_checkpoint`): training writes nothing
    else, so a file that needs more is refused.

    Raises:
        AudioSepError: the file is missing or unreadable (truncated, not a checkpoint).
    """
    ckpt = load_checkpoint(path, what="training checkpoint")
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise AudioSepError(f"{path} is not a Lightning training checkpoint (no state_dict)")
    return ckpt


def model_state_from_checkpoint(ckpt: Dict[str, Any], prefix: str = "model.") -> Dict[str, torch.Tensor]:
    """The model's tensors of a system checkpoint (keys without the system's ``model.`` prefix)."""
    state = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    if not state:
        raise AudioSepError(f"the checkpoint holds no tensor under {prefix!r}")
    return state


def save_package_atomic(package: Dict[str, Any], path: PathLike) -> Path:
    """``torch.save`` through a temporary file in the same folder and a rename."""
    with atomic_write(path, mode=None) as tmp:
        torch.save(package, tmp)
    return Path(path)


def export_model_package(
    model: AudioSep,
    path: PathLike,
    checkpoint: Optional[PathLike] = None,
    dataset_infos: Optional[Dict[str, Any]] = None,
    training_infos: Optional[Dict[str, Any]] = None,
) -> Path:
    """Write ``model`` (with the weights of ``checkpoint`` when given) as an Asteroid package.

    The package is ``model.serialize()`` (``model_name``, ``model_args``, ``state_dict``,
    ``infos``), updated at top level with the training set's ``get_infos()`` (``dataset``,
    ``task``, ``licenses`` ... as Asteroid recipes do), with ``infos["training"]`` holding the
    training summary. Loadable with ``AudioSep.from_pretrained(path)``.

    Args:
        model: the trained model (its architecture and query-encoder spec are stored).
        path: the package to write (e.g. ``exp_dir/best_model.pth``).
        checkpoint: a training checkpoint whose weights are loaded into ``model`` first.
        dataset_infos: the training dataset's ``get_infos()``.
        training_infos: plain-typed summary of the training (steps, validation figures, ...).

    Returns:
        The written path.
    """
    if checkpoint is not None:
        model.load_state_dict(model_state_from_checkpoint(load_training_checkpoint(checkpoint)))
    package = model.serialize()
    if dataset_infos:
        package.update(dataset_infos)
    if training_infos:
        package["infos"]["training"] = training_infos
    return save_package_atomic(package, path)
