"""Import of the released AudioSep checkpoint (``audiosep_base_4M_steps.ckpt``)."""
import re
import os
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import torch

from .errors import AudioSepError

#: Released models known by name: Hugging Face repo, file, repo type, and how to build them.
KNOWN_MODELS = {
    "audiosep-base": dict(
        repo_id="Audio-AGI/AudioSep",
        filename="checkpoint/audiosep_base_4M_steps.ckpt",
        repo_type="space",
        mirror=dict(repo_id="nielsr/audiosep-demo", filename="audiosep_base_4M_steps.ckpt"),
    ),
}

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
) -> Path:
    """Convert a released AudioSep checkpoint into an Asteroid model package.

    Args:
        checkpoint: the released Lightning checkpoint (``audiosep_base_4M_steps.ckpt``).
        out_path: the package to write (``.pth``). When the checkpoint holds the CLAP weights
            (``query_encoder.model.*``), they are written beside it as ``<stem>.clap.pt`` and
            the package's ``clap`` encoder points at that file.
        query_encoder: encoder spec to store instead (e.g. another CLAP checkpoint path).

    Returns:
        The package path.
    """
    from .models import RELEASED_ARGS, AudioSep

    checkpoint, out_path = Path(checkpoint), Path(out_path)
    if not checkpoint.is_file():
        raise AudioSepError(f"checkpoint not found: {checkpoint}")
    if out_path.resolve() == checkpoint.resolve():
        raise AudioSepError("the output package must not overwrite the input checkpoint")
    try:
        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception:
        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict", ckpt), dict):
        raise AudioSepError(f"{checkpoint} is not a Lightning checkpoint holding a state_dict")
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


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def default_cache_dir() -> Path:
    """Where converted released models are kept (``$ASTEROID_AUDIOSEP_CACHE`` or
    ``~/.cache/asteroid_audiosep``)."""
    return Path(os.environ.get("ASTEROID_AUDIOSEP_CACHE", Path.home() / ".cache" / "asteroid_audiosep"))


def download_official(name: str = "audiosep-base") -> Path:
    """Download a released checkpoint by name from the Hugging Face hub (needs internet)."""
    if name not in KNOWN_MODELS:
        raise AudioSepError(f"unknown released model {name!r}; known: {sorted(KNOWN_MODELS)}")
    from huggingface_hub import hf_hub_download

    info = KNOWN_MODELS[name]
    errors = []
    for source in (info, info.get("mirror")):
        if not source:
            continue
        try:
            return Path(
                hf_hub_download(
                    repo_id=source["repo_id"],
                    filename=source["filename"],
                    repo_type=source.get("repo_type", "model"),
                )
            )
        except Exception as err:  # network errors, missing files: try the mirror
            errors.append(f"{source['repo_id']}: {err}")
    raise AudioSepError(f"cannot download {name!r} ({'; '.join(errors)}); download it by hand "
                        "and run `asteroid-audiosep convert-official FILE OUT.pth`")


def resolve_model(name_or_path: Union[str, Path]) -> Path:
    """A model package path: an existing file, or a released model's name (downloaded and
    converted once into :func:`default_cache_dir`)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    name = str(name_or_path)
    if name in KNOWN_MODELS:
        package = default_cache_dir() / f"{name}.pth"
        if not package.is_file():
            convert_official(download_official(name), package)
        return package
    if name.startswith(("http://", "https://")):
        from asteroid.utils.hub_utils import cached_download

        return Path(cached_download(name))
    raise AudioSepError(
        f"model not found: {name!r} is neither a model package file nor a released model "
        f"name ({', '.join(sorted(KNOWN_MODELS))})"
    )
