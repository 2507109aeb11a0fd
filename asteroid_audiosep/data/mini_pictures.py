"""The mini corpus's picture stream: a short procedural video per clip and held-out pictures of
each class, for vision-queried training and image queries (AudioSep-CLIP's Table V, offline).

Every class has global picture cues that survive even a randomly initialised CLIP image tower
(measured, see the shared reference notes): a full-frame colour (hue step 20 degrees) and a
stripe period of its own. Each clip varies them (hue, saturation and brightness jitter, stripe
phase and drift) and adds a white disc at a random place that moves from frame to frame. The
held-out pictures are drawn from other random streams: an image query is never a frame of the
clip it queries.
"""
import colorsys
import json
import os
from pathlib import Path
from typing import Dict, List, Union

import numpy as np

from ..audio import audio_info
from ..errors import AudioSepError
from ..fileio import atomic_write
from ..progress import progress
from .datafile import read_datafile, write_datafile
from .evallist import read_csv_rows, write_csv_atomic

PathLike = Union[str, os.PathLike]

_PICTURE_STREAM = 7_000  # random stream ids beyond those of the audio
_HELD_OUT_STREAM = 8_000


def class_picture(class_id: int, rng: np.random.Generator, size: int = 64, frames: int = 1) -> List[np.ndarray]:
    """``frames`` pictures (``(size, size, 3)`` uint8) of class ``class_id``, one clip's variation."""
    hue = (class_id * 20.0 + rng.uniform(-4, 4)) / 360.0 % 1.0
    rgb = np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0)))
    period = 4 + (class_id % 6) * 2 + class_id // 6
    phase, drift = rng.uniform(0, 2 * np.pi), rng.uniform(-0.5, 0.5)
    centre, velocity = rng.uniform(0.15, 0.85, 2) * size, rng.uniform(-2, 2, 2)
    radius = rng.uniform(0.08, 0.18) * size
    y, x = np.mgrid[:size, :size].astype(np.float64)
    out = []
    for k in range(frames):
        stripes = 0.5 + 0.5 * np.sin(2 * np.pi * x / period + phase + drift * k)
        image = rgb[:, None, None] * (0.55 + 0.45 * stripes)[None]
        cx, cy = np.clip(centre + velocity * k, 0, size)
        image[:, (x - cx) ** 2 + (y - cy) ** 2 < radius ** 2] = 1.0
        out.append(np.round(image.transpose(1, 2, 0) * 255).astype(np.uint8))
    return out


def add_picture_stream(out_dir: PathLike, seed: int = 0, fps: int = 4, size: int = 64,
                       pictures_per_class: int = 4) -> Dict[str, Path]:
    """Add the picture stream to a mini corpus written by :func:`~.mini.generate_mini_corpus`.

    Writes ``video/<split>/<class>/<clip>.mp4`` (as long as the clip, ``fps`` frames a second,
    H.264 through PyAV), ``pictures/<class>-NN.png`` (held out), adds ``video`` to every
    datafile entry and an ``image`` column (a held-out picture of the target's class, its path
    relative to the list's folder) to the evaluation lists. Files already there are kept (a
    rerun finishes an interrupted one); every file is written atomically.

    Returns:
        What was written: the datafiles and evaluation lists (by split) and ``pictures``.

    Raises:
        AudioSepError: the folder holds no mini corpus.
    """
    from PIL import Image

    from ..video import write_video

    out_dir = Path(out_dir)
    meta_path = out_dir / "classes.json"
    if not meta_path.is_file():
        raise AudioSepError(f"{out_dir} holds no mini corpus (no classes.json): generate it first")
    from .mini import CLASSES

    class_ids = {c.name: i for i, c in enumerate(CLASSES)}
    names = [c["name"] for c in json.loads(meta_path.read_text())["classes"]]
    written: Dict[str, Path] = {}
    pictures: Dict[str, List[Path]] = {}
    for name in names:
        rng = np.random.default_rng([seed, _HELD_OUT_STREAM, class_ids[name]])
        pictures[name] = []
        for k in range(pictures_per_class):
            path = out_dir / "pictures" / f"{name}-{k:02d}.png"
            if not path.is_file():
                with atomic_write(path, mode=None) as tmp:
                    Image.fromarray(class_picture(class_ids[name], rng, size)[0]).save(tmp, format="PNG")
            else:
                class_picture(class_ids[name], rng, size)  # same draws as a first run
            pictures[name].append(path)
    written["pictures"] = out_dir / "pictures"
    for split_id, split in enumerate(("train", "validation", "test")):
        datafile = out_dir / f"{split}.json"
        if not datafile.is_file():
            continue
        entries = read_datafile(datafile)
        for entry in progress(entries, desc=f"mini pictures ({split})", unit="clip"):
            wav = Path(entry["wav"])
            name, index = wav.parent.name, int(wav.stem.rsplit("-", 1)[-1])
            video = out_dir / "video" / split / name / f"{wav.stem}.mp4"
            if not video.is_file():
                info = audio_info(wav)
                frames = max(1, int(np.ceil(info.frames / info.samplerate * fps)))
                rng = np.random.default_rng([seed, _PICTURE_STREAM, class_ids[name], split_id, index])
                write_video(video, class_picture(class_ids[name], rng, size, frames), fps=fps)
            entry["video"] = str(video)
        infos = json.loads(datafile.read_text()).get("infos")
        written[split] = write_datafile(datafile, entries, infos=infos)
    for split_id, split in enumerate(("validation", "test"), start=1):
        csv_path = out_dir / "eval" / split / "eval.csv"
        if not csv_path.is_file():
            continue
        rows = read_csv_rows(csv_path)
        rng = np.random.default_rng([seed, _HELD_OUT_STREAM, 1000 + split_id])
        for row in rows:
            choice = pictures[row["class"]][int(rng.integers(pictures_per_class))]
            row["image"] = os.path.relpath(choice, csv_path.parent).replace(os.sep, "/")
        columns = list(rows[0])
        written[f"eval_{split}"] = write_csv_atomic(csv_path, rows, columns)
    return written
