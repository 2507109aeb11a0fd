"""Where released files come from: the Hugging Face hub, URLs, and the local cache.

This module knows names, repositories and folders; it imports no model code (converting a
downloaded checkpoint is :mod:`asteroid_audiosep.official`'s job, choosing between a name, a
checkpoint and a package is :mod:`asteroid_audiosep.pretrained`'s).
"""
import os
from pathlib import Path

from .errors import AudioSepError

#: Released models known by name: a Hugging Face repo, file, repo type and mirror; or a Zenodo
#: record with the URL of its checkpoint file; or (file name not confirmed) the record only.
KNOWN_MODELS = {
    "audiosep-base": dict(
        repo_id="Audio-AGI/AudioSep",
        filename="checkpoint/audiosep_base_4M_steps.ckpt",
        repo_type="space",
        mirror=dict(repo_id="nielsr/audiosep-demo", filename="audiosep_base_4M_steps.ckpt"),
    ),
    # DCASE 2024 Task 9 baseline, file `audiosep,baseline-16k,step=200000.ckpt` of the record.
    "dcase2024-baseline": dict(
        record="https://zenodo.org/records/10887460",
        url="https://zenodo.org/records/10887460/files/audiosep%2Cbaseline-16k%2Cstep%3D200000.ckpt?download=1",
    ),
    # AudioSep-DP: the record publishes archives whose file names are not confirmed here; users
    # download and unpack them, and pass the .ckpt file (docs/zoo.md).
    "audiosep-dp-16k": dict(record="https://zenodo.org/records/14208090"),
    "audiosep-dp-32k": dict(record="https://zenodo.org/records/14208090"),
}


def default_cache_dir() -> Path:
    """Where converted released models are kept (``$ASTEROID_AUDIOSEP_CACHE`` or
    ``~/.cache/asteroid_audiosep``)."""
    return Path(os.environ.get("ASTEROID_AUDIOSEP_CACHE", Path.home() / ".cache" / "asteroid_audiosep"))


def download_official(name: str = "audiosep-base") -> Path:
    """Download a released checkpoint by name from the Hugging Face hub or Zenodo (needs
    internet; downloads are cached, so a second call does not download again).

    Raises:
        AudioSepError: an unknown name, a name whose file must be downloaded by hand, or no
            source answered.
    """
    if name not in KNOWN_MODELS:
        raise AudioSepError(f"unknown released model {name!r}; known: {sorted(KNOWN_MODELS)}")
    info = KNOWN_MODELS[name]
    by_hand = "`asteroid-audiosep convert-official FILE OUT.pth` (or pass FILE as the model)"
    if "record" in info and "url" not in info:
        raise AudioSepError(f"{name!r} is published as an archive on {info['record']}: download and "
                            f"unpack it, then run {by_hand}")
    if "url" in info:
        try:
            return download_url(info["url"])
        except AudioSepError as err:
            raise AudioSepError(f"{err}; download it by hand from {info['record']} and run {by_hand}") from err
    from huggingface_hub import hf_hub_download

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
