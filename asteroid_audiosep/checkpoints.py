"""Reading torch files (checkpoints, packages) without running the code a pickle may hold.

Every model file this project reads -- a released checkpoint, a model package, a CLAP
checkpoint, a training checkpoint -- goes through :func:`load_checkpoint`: PyTorch's
weights-only unpickler, which rebuilds tensors and plain Python containers only, plus the
allow-list :data:`SAFE_GLOBALS` of the few other types that the released files hold. A file that
needs anything else is refused by :class:`UntrustedCheckpointError`, which names the types,
unless the caller trusts it (``trust=True``, the CLI's ``--trust-checkpoint``, or
:func:`trusted_checkpoints`): the file is then fully unpickled, which runs whatever code it holds.

What the released files hold besides tensors (found by building stand-ins with the released
training code's setup; see ``docs/security.md``):

- AudioSep (``audiosep_base_4M_steps.ckpt``), the DCASE 2024 Task 9 baseline and AudioSep-DP:
  Lightning checkpoints (``epoch``, ``global_step``, ``pytorch-lightning_version``, ``loops``,
  ``callbacks``, ``optimizer_states`` of AdamW, ``lr_schedulers`` of ``LambdaLR``): ints,
  floats, strings, bools, None, dicts, lists, tuples and tensors, all within PyTorch's default
  weights-only set.
- LAION-CLAP (``music_speech_audioset_epoch_15_esc_89.98.pt``): ``epoch``, ``name``,
  ``state_dict`` and the optimizer state, whose learning rate is a NumPy ``float64`` (its cosine
  schedule computes it with NumPy): ``numpy.core.multiarray.scalar``, ``numpy.dtype`` and
  ``numpy.dtypes.Float64DType``.
"""
import contextlib
import contextvars
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, Iterator, List, Union

import numpy as np
import torch

from .errors import AudioSepError

PathLike = Union[str, os.PathLike]

_TRUST = contextvars.ContextVar("asteroid_audiosep_trust_checkpoints", default=False)


def _numpy_scalar_globals() -> list:
    """A NumPy scalar pickles as ``numpy.core.multiarray.scalar(dtype, bytes)`` (NumPy 1.x) or
    ``numpy._core.multiarray.scalar`` (NumPy 2.x); allowed under both names, with the dtype of
    the one scalar type the released files hold (``float64``)."""
    try:
        from numpy._core.multiarray import scalar  # NumPy >= 2 (and 1.26's alias)
    except ImportError:  # pragma: no cover - NumPy < 1.26
        from numpy.core.multiarray import scalar
    found = [(scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar"), np.dtype]
    float64_dtype = type(np.dtype(np.float64))
    if float64_dtype is not np.dtype:  # NumPy >= 1.25: numpy.dtypes.Float64DType
        found.append(float64_dtype)
    return found


#: The non-tensor types, beyond PyTorch's default weights-only set, that the released
#: AudioSep / DCASE 2024 baseline / AudioSep-DP / LAION-CLAP checkpoints hold (see the module
#: docstring). Nothing here runs code when rebuilt.
SAFE_GLOBALS: List[Any] = _numpy_scalar_globals()


class UntrustedCheckpointError(AudioSepError):
    """A checkpoint holds objects that only a full unpickling (running its code) can rebuild."""


def _global_name(entry: Any) -> str:
    if isinstance(entry, tuple):
        return entry[1]
    return f"{entry.__module__}.{entry.__qualname__}"


def allowed_global_names() -> List[str]:
    """The names of :data:`SAFE_GLOBALS`, as they appear in a pickle."""
    return sorted({_global_name(entry) for entry in SAFE_GLOBALS})


@contextlib.contextmanager
def trusted_checkpoints(trust: bool = True) -> Iterator[None]:
    """Within this block, :func:`load_checkpoint` trusts every file (runs its code) when
    ``trust`` is true: what the CLI's ``--trust-checkpoint`` does for one command."""
    token = _TRUST.set(bool(trust) or _TRUST.get())
    try:
        yield
    finally:
        _TRUST.reset(token)


def checkpoints_trusted() -> bool:
    """Whether the current context trusts checkpoints (see :func:`trusted_checkpoints`)."""
    return _TRUST.get()


def unsafe_globals(path: PathLike) -> List[str]:
    """The classes and functions a torch file's pickle names beyond the weights-only set and
    :data:`SAFE_GLOBALS` (read from its opcodes; nothing is executed)."""
    with torch.serialization.safe_globals(SAFE_GLOBALS):
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(os.fspath(path)))


def _names_from_error(err: Exception) -> List[str]:
    """The first refused global, named by a weights-only error (legacy, non-zip files, which
    :func:`unsafe_globals` cannot scan)."""
    return sorted(set(re.findall(r"GLOBAL ([\w.]+) was not an allowed global", str(err))))


def load_checkpoint(path: PathLike, *, trust: bool = False, what: str = "checkpoint") -> Any:
    """Read a torch file on the CPU with the weights-only unpickler and :data:`SAFE_GLOBALS`.

    Args:
        path: the file (a checkpoint, a model package ...).
        trust: unpickle fully when the file needs more than the allow-list, i.e. run the code
            the file holds. Only for files from a source you trust. Also true inside
            :func:`trusted_checkpoints`.
        what: what the file is, for messages ("model file", "CLAP checkpoint" ...).

    Returns:
        The unpickled object.

    Raises:
        UntrustedCheckpointError: the file needs other types (named in the message) and is not
            trusted.
        AudioSepError: missing or unreadable (truncated, corrupt, not a torch file).
    """
    path = Path(path)
    if not path.is_file():
        raise AudioSepError(f"{what} not found: {path}")
    unreadable = (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile,
                  AttributeError, ModuleNotFoundError, ImportError, TypeError, KeyError, IndexError,
                  OSError)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        refused = err
    except unreadable as err:
        raise AudioSepError(f"cannot read {path} as a torch {what}: {err}") from err
    if not (trust or _TRUST.get()):
        try:
            names = unsafe_globals(path)
        except Exception:  # a legacy (non-zip) file: the refused name is in the message
            names = _names_from_error(refused)
        if not names:
            raise AudioSepError(f"cannot read {path} as a torch {what}: {refused}") from refused
        raise UntrustedCheckpointError(
            f"{path} is not loaded: besides tensors it holds {', '.join(names)}, which only a full "
            "unpickling can rebuild, and that runs code stored in the file. If you trust where the "
            "file comes from, pass --trust-checkpoint (API: trust_checkpoint=True; training: "
            "training.trust_init_from: true); see docs/security.md"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - anything a foreign pickle raises
        raise AudioSepError(f"cannot read {path} as a torch {what}: {err}") from err
