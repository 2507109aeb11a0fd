"""AudioCaps: caption lists -> training datafiles, and the paper's evaluation protocol
(each test clip mixed at 0 dB with 5 backgrounds whose AudioSet tags do not overlap its own).

Accepted layouts, found automatically (docs/data.md names the tool behind each)::

    <root>/train.csv  val.csv  test.csv     # audiocap_id, youtube_id, start_time, caption
                                            # (github.com/cdjkim/audiocaps, dataset/)
    <root>/audio/**/Y<YTID>.wav             # YouTube-id names: Y<YTID>, <YTID>, <YTID>_<start>
    <root>/[audio/]<split>/<audiocap_id>.ogg   # audiocaps-download: one file per caption
                                            # row, so five copies of a val/test clip
    <root>/AUDIOCAPS/csv_files_v1/<split>.csv  # aac-datasets, with the audio in
    <root>/AUDIOCAPS/audio_32000Hz/<split>/<YTID>_<start>.flac

The tags come from AudioSet's segment lists (see :mod:`.audioset`); the test clips are listed
in ``unbalanced_train_segments.csv``. With the AudioSet ontology, tags are compared through it.
"""

import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple, Union

import numpy as np

from ...errors import AudioSepError
from ..evalmix import Excerpt, MixtureSpec, build_eval_mixtures
from ..textfile import warn_blank_captions
from .audioset import read_audioset_labels, read_ontology_relatives
from .common import (
    attach_audio,
    index_audio,
    read_numbered_table,
    write_corpus_datafiles,
    youtube_id_keys,
)

PathLike = Union[str, os.PathLike]

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")

#: Folders (relative to the root) searched for ``<split>.csv``, in order: the published
#: layout, the repository's ``dataset/`` folder, aac-datasets (v1, v2, older releases).
LIST_FOLDERS = (".", "dataset", "AUDIOCAPS/csv_files_v1", "AUDIOCAPS/csv_files_v2", "AUDIOCAPS")


def find_audiocaps_list(root: PathLike, split: str) -> Path:
    """The caption list of ``split`` in any accepted layout.

    Raises:
        AudioSepError: unknown split, or no ``<split>.csv`` in any of :data:`LIST_FOLDERS`.
    """
    if split not in SPLITS:
        raise AudioSepError(f"unknown AudioCaps split {split!r}; choose among {SPLITS}")
    candidates = [Path(root) / folder / f"{split}.csv" for folder in LIST_FOLDERS]
    for path in candidates:
        if path.is_file():
            return path
    raise AudioSepError(
        f"AudioCaps {split} list not found: looked for "
        f"{', '.join(map(str, candidates))} (see docs/data.md for the layouts)"
    )


def default_audio_dir(root: PathLike) -> Path:
    """``<root>/audio`` when present, else ``<root>/AUDIOCAPS`` (aac-datasets), else the root
    (the ``<split>/`` folders of audiocaps-download)."""
    root = Path(root)
    for folder in (root / "audio", root / "AUDIOCAPS"):
        if folder.is_dir():
            return folder
    return root


def read_audiocaps_rows(root: PathLike, split: str) -> List[Dict]:
    """Clips of one split without audio: ``ytid``, ``captions`` (every row of the clip, in
    file order, wherever its rows are) and ``audiocap_ids``."""
    path = find_audiocaps_list(root, split)
    rows = read_numbered_table(path, header=False)
    if rows and rows[0][1][:2] == ["audiocap_id", "youtube_id"]:
        rows = rows[1:]
    grouped: "OrderedDict[str, Dict]" = OrderedDict()
    blank = []
    for line, row in rows:
        if len(row) < 4:
            raise AudioSepError(
                f"{path}, line {line}: expected 'audiocap_id, youtube_id, start_time, caption', got {row}"
            )
        clip = grouped.setdefault(row[1], {"ytid": row[1], "captions": [], "audiocap_ids": []})
        caption = ",".join(row[3:]).strip()
        if caption:
            clip["captions"].append(caption)
        else:
            blank.append(f"line {line}")
        clip["audiocap_ids"].append(row[0])
    warn_blank_captions(path, blank, len(rows))
    return [clip for clip in grouped.values() if clip["captions"]]


def read_audiocaps(
    root: PathLike, split: str, index: Optional[Dict[str, Path]] = None, skip_missing: bool = True
) -> List[Dict]:
    """Clips of one split with their captions and audio: ``ytid``, ``captions``, ``wav``.

    A clip's audio is found by its YouTube id or by any of its ``audiocap_id`` (the names of
    audiocaps-download), whichever the audio folder holds.
    """
    clips = read_audiocaps_rows(root, split)
    for clip in clips:
        clip["lookup"] = [clip["ytid"]] + clip["audiocap_ids"]
    if index is None:
        index = index_audio(default_audio_dir(root), youtube_id_keys)
    return attach_audio(clips, index, "lookup", f"AudioCaps {split}", skip_missing)


def audiocaps_eval_clips(root: PathLike) -> Tuple[Path, List[str]]:
    """The test list and the YouTube ids of its clips (the clips the protocol evaluates on)."""
    return find_audiocaps_list(root, "test"), [c["ytid"] for c in read_audiocaps_rows(root, "test")]


def prepare_audiocaps(
    root: PathLike,
    out_dir: PathLike,
    splits: Sequence[str] = ("train", "val"),
    audio_dir: Optional[PathLike] = None,
    skip_missing: bool = True,
) -> Dict[str, Path]:
    """Write ``audiocaps_<split>.json`` per split (one entry per clip, all its captions).

    Every split's list is found and read before any datafile is written.
    """
    for split in splits:
        find_audiocaps_list(root, split)
    index = index_audio(Path(audio_dir) if audio_dir else default_audio_dir(root), youtube_id_keys)
    planned = {
        split: dict(
            path=Path(out_dir) / f"audiocaps_{split}.json",
            corpus="audiocaps",
            clips=read_audiocaps(root, split, index, skip_missing),
        )
        for split in splits
    }
    return write_corpus_datafiles(planned)


def audiocaps_eval_specs(
    clips: List[Dict],
    tags: Dict[str, List[str]],
    backgrounds_per_clip: int = 5,
    seed: int = 0,
    related: Optional[Dict[str, Set[str]]] = None,
) -> List[MixtureSpec]:
    """For each clip, ``backgrounds_per_clip`` distinct other clips with no tag in common,
    paired with its captions in turn (0 dB).

    Args:
        clips: test clips (``ytid``, ``captions``, ``wav``).
        tags: YouTube id -> AudioSet label names; a clip without tags only requires its
            backgrounds to be other clips, and gets no ``labels`` value.
        backgrounds_per_clip: mixtures per clip.
        seed: seed of the draw.
        related: label -> labels it may not share a mixture with (itself, its ancestors and
            descendants: :func:`.audioset.read_ontology_relatives`); None compares labels exactly.
    """
    rng = np.random.default_rng(seed)

    def closed(labels: Sequence[str]) -> Set[str]:
        if related is None:
            return set(labels)
        return set().union(*(related.get(label, {label}) for label in labels)) if labels else set()

    specs = []
    for clip in clips:
        own = tags.get(clip["ytid"], [])
        forbidden = closed(own)
        candidates = [
            c
            for c in clips
            if c["ytid"] != clip["ytid"] and not forbidden & set(tags.get(c["ytid"], []))
        ]
        if len(candidates) < backgrounds_per_clip:
            logger.warning(
                "AudioCaps %s: only %d backgrounds without shared tags",
                clip["ytid"],
                len(candidates),
            )
        chosen = rng.permutation(len(candidates))[:backgrounds_per_clip]
        for k, b in enumerate(chosen):
            columns = {"caption": clip["captions"][k % len(clip["captions"])]}
            if own:
                columns["labels"] = "; ".join(own)
            specs.append(
                MixtureSpec(
                    Excerpt(Path(clip["wav"]), ytid=clip["ytid"]),
                    [Excerpt(Path(candidates[b]["wav"]), ytid=candidates[b]["ytid"])],
                    columns,
                )
            )
    if not specs:
        raise AudioSepError("AudioCaps evaluation: no clip has a background without shared tags")
    return specs


def audiocaps_test_tags(
    clips: List[Dict], audioset_root: Optional[PathLike], allow_missing_tags: bool = False
) -> Dict[str, List[str]]:
    """AudioSet tags of the test clips, checked to cover every clip.

    Raises:
        AudioSepError: tags are missing for some clip (or no AudioSet folder was given) and
            ``allow_missing_tags`` is false. The message counts them and names the list
            that holds them (``unbalanced_train_segments.csv``).
    """
    tags = read_audioset_labels(audioset_root) if audioset_root is not None else {}
    missing = [c["ytid"] for c in clips if not tags.get(c["ytid"])]
    if not missing:
        return tags
    where = (
        f"put it in {audioset_root}"
        if audioset_root is not None
        else "give its folder as audioset_root (--audioset-root)"
    )
    message = (
        f"AudioCaps test: no AudioSet tags for {len(missing)} of {len(clips)} clips "
        f"(e.g. {', '.join(missing[:3])}); AudioCaps clips are listed in AudioSet's "
        f"unbalanced_train_segments.csv: {where}"
    )
    if not allow_missing_tags:
        raise AudioSepError(
            message + ", or pass allow_missing_tags=True (--allow-missing-tags) to "
            "build without the tag check for them"
        )
    logger.warning(
        "%s. Building anyway (allow_missing_tags): those %d clips get no 'labels' "
        "value and backgrounds that are only required to be other clips",
        message,
        len(missing),
    )
    return tags


def build_audiocaps_eval(
    root: PathLike,
    out_dir: PathLike,
    audioset_root: Optional[PathLike] = None,
    sample_rate: int = 32000,
    backgrounds_per_clip: int = 5,
    seed: int = 0,
    audio_dir: Optional[PathLike] = None,
    ontology: Optional[PathLike] = None,
    allow_missing_tags: bool = False,
) -> Path:
    """Build the AudioCaps evaluation mixtures (test split, 0 dB). Returns the CSV path.

    Args:
        root: the AudioCaps folder (any accepted layout).
        out_dir: folder of the evaluation list.
        audioset_root: AudioSet's class names and segment lists, for the tags (default:
            ``<root>/AUDIOCAPS`` when aac-datasets put ``unbalanced_train_segments.csv`` there).
        sample_rate, backgrounds_per_clip, seed, audio_dir: see the protocol.
        ontology: ``ontology.json`` (default: ``<audioset_root>/ontology.json`` when present);
            with it a background shares no tag, ancestor or descendant of the target's tags.
        allow_missing_tags: build (with a counted warning) when some test clips have no tags.

    Raises:
        AudioSepError: tags missing for test clips (see :func:`audiocaps_test_tags`).
    """
    root = Path(root)
    if audioset_root is None and (root / "AUDIOCAPS" / "unbalanced_train_segments.csv").is_file():
        audioset_root = root / "AUDIOCAPS"
    index = index_audio(Path(audio_dir) if audio_dir else default_audio_dir(root), youtube_id_keys)
    clips = read_audiocaps(root, "test", index)
    tags = audiocaps_test_tags(clips, audioset_root, allow_missing_tags)
    if (
        ontology is None
        and audioset_root is not None
        and (Path(audioset_root) / "ontology.json").is_file()
    ):
        ontology = Path(audioset_root) / "ontology.json"
    if ontology is None and tags:
        logger.warning(
            "AudioCaps evaluation: no ontology.json, tags compared by exact label "
            '("Speech" and "Female speech, woman speaking" do not count as shared)'
        )
    related = read_ontology_relatives(ontology) if ontology is not None else None
    specs = audiocaps_eval_specs(clips, tags, backgrounds_per_clip, seed, related)
    return build_eval_mixtures(
        specs, out_dir, sample_rate=sample_rate, level="snr", snr_db=0.0, seed=seed
    )
