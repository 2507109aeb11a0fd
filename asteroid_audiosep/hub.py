"""Where released files come from: the Hugging Face hub, URLs, and the local cache.

This module knows names, repositories and folders; it imports no model code (converting a
downloaded checkpoint is :mod:`asteroid_audiosep.official`'s job, choosing between a name, a
checkpoint and a package is :mod:`asteroid_audiosep.pretrained`'s).
"""
import os
from pathlib import Path

from .errors import AudioSepError

#: Released models known by name: Hugging Face repo, file, repo type, and a mirror.
KNOWN_MODELS = {
    "audiosep-base": dict(
        repo_id="Audio-AGI/AudioSep",
        filename="checkpoint/audiosep_base_4M_steps.ckpt",
        repo_type="space",
        mirror=dict(repo_id="nielsr/audiosep-demo", filename="audiosep_base_4M_steps.ckpt"),
    ),
}


def default_cache_dir() -> Path:
    """Where converted released models are kept (``$ASTEROID_AUDIOSEP_CACHE`` or
    ``~/.cache/asteroid_audiosep``)."""
    return Path(os.environ.get("ASTEROID_AUDIOSEP_CACHE", Path.home() / ".cache" / "asteroid_audiosep"))


def download_official(name: str = "audiosep-base") -> Path:
    """Download a released checkpoint by name from the Hugging Face hub (needs internet; the hub
    keeps its own cache, so a second call does not download again).

    Raises:
        AudioSepError: an unknown name, or neither the repository nor its mirror answered.
    """
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


def download_url(url: str) -> Path:
    """A file given by URL, downloaded once into Asteroid's cache."""
    from asteroid.utils.hub_utils import cached_download

    try:
        return Path(cached_download(url))
    except Exception as err:
        raise AudioSepError(f"cannot download {url}: {err}") from err
