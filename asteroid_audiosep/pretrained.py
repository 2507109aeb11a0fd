"""One answer to "which model does this argument name?", for every caller.

A model argument (the CLI's ``-m``, the recipe's ``import.model`` and ``training.init_from``,
:func:`asteroid_audiosep.separate`'s ``model``) is one of:

- a **model package** written by :meth:`AudioSep.serialize` (``best_model.pth``), or its URL;
- a **released checkpoint** (``audiosep_base_4M_steps.ckpt``, a Lightning checkpoint whose
  tensors start with ``ss_model.``), converted to a package once;
- a **released model name** (``audiosep-base``), downloaded from the hub and converted once
  into :func:`~asteroid_audiosep.hub.default_cache_dir`.

Files are recognised by content, not by suffix, and read with the weights-only unpickler
(:func:`asteroid_audiosep.checkpoints.load_checkpoint`); ``trust_checkpoint=True`` reads a file
that holds more than the allowed types by full unpickling, which runs the code it holds.
"""
import hashlib
import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from .errors import AudioSepError
from .hub import KNOWN_MODELS, default_cache_dir, download_official, download_url

PathLike = Union[str, os.PathLike]

PACKAGE, CHECKPOINT = "package", "released-checkpoint"


def read_model_file(path: PathLike, trust_checkpoint: bool = False) -> Tuple[str, Dict[str, Any]]:
    """``(kind, content)`` of a model file: ``"package"`` or ``"released-checkpoint"``.

    Raises:
        UntrustedCheckpointError: the file holds more than the allowed types and
            ``trust_checkpoint`` is false.
        AudioSepError: missing, unreadable, or neither kind (the message says what it holds).
    """
    from .official import read_released_checkpoint

    path = Path(path)
    if not path.is_file():
        raise AudioSepError(f"model file not found: {path}")
    content = read_released_checkpoint(path, trust=trust_checkpoint)
    if "model_name" in content and "model_args" in content:
        return PACKAGE, content
    state = content.get("state_dict", content)
    if any(str(key).startswith("ss_model.") for key in state):
        return CHECKPOINT, content
    if any(str(key).startswith("model.") for key in state):
        raise AudioSepError(
            f"{path} is a training checkpoint of this recipe, not a model package: use the "
            "experiment's best_model.pth (written at the end of training)"
        )
    raise AudioSepError(
        f"{path} is neither an AudioSep model package (model_name, model_args, state_dict) nor "
        "a released AudioSep checkpoint (ss_model.* tensors)"
    )


def _converted_name(path: Path) -> str:
    stat = path.stat()
    key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()
    return f"{path.stem}-{hashlib.sha1(key).hexdigest()[:10]}.pth"


def package_path(model: PathLike, convert_dir: Optional[PathLike] = None, trust_checkpoint: bool = False) -> Path:
    """The model package that ``model`` names, converting or downloading it when needed.

    Args:
        model: a package file, a released checkpoint file, a released model name or a URL.
        convert_dir: where a converted released checkpoint is written (default: the cache,
            ``<cache>/converted/<stem>-<hash>.pth``, reused while the checkpoint is unchanged).
        trust_checkpoint: read a file that holds more than the allowed types by full
            unpickling, which runs the code it holds.

    Raises:
        AudioSepError: nothing of that name, or an unreadable file.
    """
    text = os.fspath(model)
    path = Path(text).expanduser()
    if path.is_file():
        kind, _ = read_model_file(path, trust_checkpoint)
        if kind == PACKAGE:
            return path
        out_dir = Path(convert_dir) if convert_dir is not None else default_cache_dir() / "converted"
        out = out_dir / (_converted_name(path) if convert_dir is None else f"{path.stem}.pth")
        if not out.is_file():
            from .official import convert_official

            convert_official(path, out, trust_checkpoint=trust_checkpoint)
        return out
    if text in KNOWN_MODELS:
        package = default_cache_dir() / f"{text}.pth"
        if not package.is_file():
            from .official import convert_official

            convert_official(download_official(text), package, trust_checkpoint=trust_checkpoint)
        return package
    if text.startswith(("http://", "https://")):
        return package_path(download_url(text), convert_dir, trust_checkpoint)
    raise AudioSepError(
        f"model not found: {text!r} is neither a model file (package or released checkpoint) "
        f"nor a released model name ({', '.join(sorted(KNOWN_MODELS))})"
    )


def load_model(model: Union[PathLike, "AudioSep"], convert_dir: Optional[PathLike] = None,  # noqa: F821
               trust_checkpoint: bool = False):
    """The :class:`~asteroid_audiosep.models.AudioSep` that ``model`` names (see
    :func:`package_path`); an ``AudioSep`` instance is returned as it is.

    ``trust_checkpoint=True`` also covers the files the model's spec names (its CLAP checkpoint).
    """
    from .checkpoints import trusted_checkpoints
    from .models import AudioSep

    if isinstance(model, AudioSep):
        return model
    with trusted_checkpoints(trust_checkpoint):
        if isinstance(model, dict):
            return AudioSep.from_pretrained(model)
        return AudioSep.from_pretrained(str(package_path(model, convert_dir, trust_checkpoint)))


def import_package(model: Optional[PathLike], out: PathLike, trust_checkpoint: bool = False) -> Path:
    """Write the package that ``model`` names to ``out`` (converted from a released checkpoint,
    downloaded for a released name, copied for a package), atomically.

    Raises:
        AudioSepError: ``model`` unset or not found, or ``out`` is the input itself.
    """
    import shutil

    from .fileio import atomic_write

    if not model:
        raise AudioSepError("no model given: set import.model (audiosep-base, a .ckpt or a model package)")
    out = Path(out)
    source = Path(os.fspath(model)).expanduser()
    if source.is_file() and source.resolve() == out.resolve():
        raise AudioSepError(f"the model to import is the output itself: {out}")
    if source.is_file() and read_model_file(source, trust_checkpoint)[0] == CHECKPOINT:
        from .official import convert_official

        return convert_official(source, out, trust_checkpoint=trust_checkpoint)
    package = package_path(model, trust_checkpoint=trust_checkpoint)
    with atomic_write(out, mode=None) as tmp:
        shutil.copyfile(package, tmp)
    return out
