"""Queries written as text: the command line's forms (``START-END``, ``FILE[@START-END]``,
``FILE[@SECONDS]``) and YAML files of named, possibly combined queries."""
import dataclasses
import os
import re
from pathlib import Path
from typing import List, Tuple, Union

from .errors import AudioSepError
from .queries import AudioExample, Query

PathLike = Union[str, os.PathLike]

_SPAN = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*-\s*(\d+(?:\.\d*)?)\s*$")


def parse_span(text: str) -> Tuple[float, float]:
    """``"3.2-4.0"`` -> ``(3.2, 4.0)``."""
    match = _SPAN.match(str(text))
    if not match:
        raise AudioSepError(f"span {text!r}: write START-END in seconds, e.g. 3.2-4.0")
    start, end = float(match[1]), float(match[2])
    if end <= start:
        raise AudioSepError(f"span {text!r}: START must be < END")
    return start, end


def parse_audio_argument(text: str) -> Query:
    """``FILE[@START-END]`` or ``FILE1,FILE2,...`` (a few-shot query) -> an audio query."""
    examples = []
    for item in str(text).split(","):
        path, _, span = item.strip().partition("@")
        if not path:
            raise AudioSepError(f"--query-audio {text!r}: an empty file name")
        start, end = parse_span(span) if span else (None, None)
        if not Path(path).is_file():
            raise AudioSepError(f"--query-audio: {path} not found")
        examples.append(AudioExample(path, None, start, end))
    return Query.audio(*examples)


def parse_video_argument(text: str) -> Query:
    """``FILE[@SECONDS]`` -> a video query (default: the middle frame)."""
    path, _, at = str(text).rpartition("@") if "@" in str(text) else (str(text), "", "")
    if not Path(path).is_file():
        raise AudioSepError(f"--query-video: {path} not found")
    if at:
        try:
            seconds = float(at)
        except ValueError:
            raise AudioSepError(f"--query-video {text!r}: write FILE@SECONDS") from None
    else:
        from .video import video_duration

        seconds = video_duration(path) / 2
    return Query.video(path, at=seconds)


def load_queries_file(path: PathLike) -> List[Query]:
    """Named, possibly combined queries from YAML::

        dog: {text: "a dog barking", audio: [bark.wav], weights: [0.5, 0.5]}
        siren: "an emergency siren"
        bell: {audio: [bell1.wav, bell2.wav@0-2]}

    Each entry's parts (``text``, ``audio``, ``image``, ``video``, ``span``) are combined with
    ``weights`` (default equal). Relative file names are read from the YAML file's folder.

    Raises:
        AudioSepError: unreadable YAML (with the line), an entry with no part, an unknown key.
    """
    import yaml

    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text())
    except OSError as err:
        raise AudioSepError(f"cannot read the queries file {path}: {err}") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise AudioSepError(f"{path}{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(content, dict) or not content:
        raise AudioSepError(f"{path}: expected a mapping of query names to queries")
    base = path.parent

    def local(p: str) -> str:
        return str(p) if Path(p).is_absolute() else str(base / p)

    queries = []
    for name, entry in content.items():
        if isinstance(entry, str):
            queries.append(Query.text(entry, name=str(name)))
            continue
        if not isinstance(entry, dict):
            raise AudioSepError(f"{path}: query {name!r} must be a string or a mapping")
        unknown = set(entry) - {"text", "audio", "image", "video", "span", "weights"}
        if unknown:
            raise AudioSepError(f"{path}: query {name!r} has unknown keys {sorted(unknown)}; "
                                "use text, audio, image, video, span, weights")
        parts = []
        if entry.get("text"):
            parts.append(Query.text(str(entry["text"])))
        if entry.get("audio"):
            files = entry["audio"] if isinstance(entry["audio"], list) else [entry["audio"]]
            parts.append(parse_audio_argument(",".join(local(str(f)) for f in files)))
        if entry.get("image"):
            parts.append(Query.image(local(str(entry["image"]))))
        if entry.get("video"):
            parts.append(parse_video_argument(local(str(entry["video"]))))
        if entry.get("span"):
            parts.append(Query.span(*parse_span(str(entry["span"]))))
        if not parts:
            raise AudioSepError(f"{path}: query {name!r} has no text, audio, image, video or span")
        weights = entry.get("weights")
        if weights is not None and len(weights) != len(parts):
            raise AudioSepError(f"{path}: query {name!r} has {len(parts)} parts but {len(weights)} weights")
        if len(parts) == 1 and weights is None:
            queries.append(dataclasses.replace(parts[0], name=str(name)))
        else:
            queries.append(Query.mix(parts, weights, name=str(name)))
    return queries
