"""AudioSet: segment lists with label ids + class names -> captioned training datafiles.

Published layout (https://research.google.com/audioset/download.html)::

    <root>/balanced_train_segments.csv     # YTID, start_seconds, end_seconds, positive_labels
    <root>/unbalanced_train_segments.csv   # (3 header lines starting with '#')
    <root>/eval_segments.csv
    <root>/class_labels_indices.csv        # index, mid, display_name   (and/or ontology.json)
    <root>/audio/...                       # downloaded clips: Y<YTID>.wav, <YTID>.wav,
                                           # <YTID>_<start>.wav ... in any sub-folders
    <root>/video/...                       # optional: the videos, named alike (.mp4, .mkv, ...):
                                           # recorded as `video`, audio extractable (see .videos)
"""
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Union

from ...errors import AudioSepError
from ..textfile import read_json
from .common import (
    attach_audio,
    index_audio,
    read_table,
    require_file,
    write_corpus_datafiles,
    youtube_id_keys,
)
from .videos import attach_videos, video_inputs

PathLike = Union[str, os.PathLike]

SPLITS = ("balanced_train", "unbalanced_train", "eval")


def read_class_names(root: PathLike) -> Dict[str, str]:
    """Label id (mid, e.g. ``/m/09x0r``) -> display name, from ``class_labels_indices.csv``
    or, when absent, ``ontology.json``."""
    root = Path(root)
    if (root / "class_labels_indices.csv").is_file():
        rows = read_table(root / "class_labels_indices.csv")
        return {mid: name for _, mid, name, *_ in rows}
    ontology = require_file(root / "ontology.json", "AudioSet class names (class_labels_indices.csv or ontology.json)")
    try:
        return {node["id"]: node["name"] for node in read_json(ontology)}
    except (ValueError, KeyError, TypeError) as err:
        raise AudioSepError(f"cannot read {ontology}: {err}") from err


def read_segments(path: PathLike, names: Dict[str, str]) -> List[Dict]:
    """Clips of one segments CSV: ``ytid``, ``start``, ``labels`` (display names) and
    ``captions`` (the labels joined by ", ")."""
    clips = []
    for row in read_table(path, header=False, comment="#"):
        if len(row) < 4:
            raise AudioSepError(f"{path}: expected 'YTID, start, end, labels', got {row}")
        ytid, start, _, mids = row[0], row[1], row[2], row[3]
        unknown = [m for m in mids.split(",") if m not in names]
        if unknown:
            raise AudioSepError(f"{path}: label ids {unknown} of {ytid} are not in the class names file")
        labels = [names[m] for m in mids.split(",")]
        clips.append({"ytid": ytid, "start": float(start), "labels": labels, "captions": [", ".join(labels)]})
    return clips


def read_ontology_relatives(path: PathLike) -> Dict[str, Set[str]]:
    """Label name -> the names it may not share a mixture with: itself, its ancestors and its
    descendants in the AudioSet ontology (``ontology.json``: ``[{"id", "name", "child_ids"}]``).

    Siblings and unrelated classes are not included: "Speech" is related to "Female speech,
    woman speaking" (a descendant) and "Human voice" (an ancestor), not to "Music".

    Raises:
        AudioSepError: the file is missing or not in the ontology's format.
    """
    path = require_file(Path(path), "AudioSet ontology (ontology.json)")
    try:
        nodes = read_json(path)
        names = {n["id"]: n["name"] for n in nodes}
        children = {n["id"]: list(n.get("child_ids", [])) for n in nodes}
    except (ValueError, KeyError, TypeError) as err:
        raise AudioSepError(f"cannot read the AudioSet ontology {path}: {err}") from err
    parents: Dict[str, Set[str]] = {mid: set() for mid in names}
    for mid, kids in children.items():
        for kid in kids:
            parents.setdefault(kid, set()).add(mid)

    def closure(mid: str, links: Dict[str, Set[str]]) -> Set[str]:
        seen, stack = set(), [mid]
        while stack:
            for nxt in links.get(stack.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    down = {mid: set(kids) for mid, kids in children.items()}
    related: Dict[str, Set[str]] = {}
    for mid, name in names.items():
        ids = {mid} | closure(mid, parents) | closure(mid, down)
        related.setdefault(name, set()).update(names[i] for i in ids if i in names)
    return related


def read_audioset_labels(root: PathLike, splits: Sequence[str] = SPLITS) -> Dict[str, List[str]]:
    """YouTube id -> label names, over the given splits' segment lists that exist (used to
    check tag overlap in the AudioCaps protocol)."""
    root = Path(root)
    names = read_class_names(root)
    labels: Dict[str, List[str]] = {}
    for split in splits:
        path = root / f"{split}_segments.csv"
        if path.is_file():
            for clip in read_segments(path, names):
                labels[clip["ytid"]] = clip["labels"]
    return labels


def prepare_audioset(
    root: PathLike,
    out_dir: PathLike,
    splits: Sequence[str] = ("balanced_train", "unbalanced_train"),
    audio_dir: Optional[PathLike] = None,
    skip_missing: bool = True,
    video_dir: Optional[PathLike] = None,
    extract_audio: bool = False,
) -> Dict[str, Path]:
    """Write one datafile per split, ``audioset_<split>.json``; the caption of a clip is its
    label names joined by ", " (also stored as ``labels``), its video (when found) as ``video``.

    Args:
        root: folder with the segment CSVs and class names.
        out_dir: where the datafiles go.
        splits: among ``balanced_train``, ``unbalanced_train``, ``eval``.
        audio_dir: the downloaded audio (default ``<root>/audio``).
        skip_missing: leave out clips that were not downloaded (with a warning).
        video_dir: the videos (default ``<root>/video`` when it exists).
        extract_audio: extract the videos' audio tracks into ``<out_dir>/audio`` first.

    Returns:
        split -> datafile path.
    """
    root, out_dir = Path(root), Path(out_dir)
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise AudioSepError(f"unknown AudioSet splits {unknown}; choose among {SPLITS}")
    lists = {split: require_file(root / f"{split}_segments.csv", f"AudioSet {split} list")
             for split in splits}  # every input checked before anything is read or written
    names = read_class_names(root)
    videos, audio_roots = video_inputs(root, out_dir, youtube_id_keys, audio_dir, video_dir, extract_audio)
    index = index_audio(audio_roots, youtube_id_keys)
    planned = {}
    for split, path in lists.items():
        clips = attach_audio(read_segments(path, names), index, "ytid", f"AudioSet {split}",
                             skip_missing)
        clips = attach_videos(clips, videos, "ytid")
        planned[split] = dict(path=out_dir / f"audioset_{split}.json", clips=clips,
                              corpus="audioset")
    return write_corpus_datafiles(planned)
