"""Read the released AudioSep evaluation benchmark (its metadata CSVs and data folders) into
:class:`~asteroid_audiosep.data.datasets.LASSEvalDataset` examples."""
import os
from pathlib import Path, PurePosixPath
from typing import Dict, List, Optional, Union

from ..errors import AudioSepError
from .datasets import LASSEvalDataset
from .evallist import EvalItem, is_query_column, read_csv_rows

PathLike = Union[str, os.PathLike]

#: The released benchmark's datasets: metadata file, default query column, and how the
#: paper aggregates per-example scores (see the reference README, "Metrics").
RELEASED_BENCHMARKS: Dict[str, Dict[str, str]] = {
    "audioset": dict(csv="audioset_eval.csv", query="caption", aggregation="class_median"),
    "vggsound": dict(csv="vggsound_eval.csv", query="s0_text", aggregation="mean"),
    "audiocaps": dict(csv="audiocaps_eval.csv", query="caption", aggregation="mean"),
    "clotho": dict(csv="clotho_eval.csv", query="caption", aggregation="mean"),
    "esc50": dict(csv="esc50_eval.csv", query="caption", aggregation="mean"),
    "music": dict(csv="music_eval.csv", query="caption", aggregation="class_mean"),
}

#: Datasets whose rows name ``mixture-{idx}.wav`` / ``segment-{idx}.wav``.
_INDEXED = ("audiocaps", "clotho", "esc50", "music")


def _resolve(data_dir: Path, relative: str, default_skip: int) -> Path:
    """A path written in the CSV, found under ``data_dir``.

    The released CSVs write paths relative to different roots (``data/mix_wav/...`` for
    VGGSound, ``evaluation/data/audioset/class_id=...`` for AudioSet); the first existing
    candidate obtained by dropping leading components wins, else the one that drops
    ``default_skip`` components.
    """
    parts = PurePosixPath(relative.replace("\\", "/")).parts
    candidates = [data_dir.joinpath(*parts[k:]) for k in range(len(parts))]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return candidates[min(default_skip, len(candidates) - 1)]


def _class_names(class_labels_csv: PathLike) -> Dict[str, str]:
    rows = read_csv_rows(class_labels_csv)
    if rows and not {"index", "display_name"} <= set(rows[0]):
        raise AudioSepError(f"{class_labels_csv} needs the columns 'index' and 'display_name'")
    return {r["index"].strip(): r["display_name"] for r in rows}


def read_released_benchmark(
    name: str,
    csv_path: PathLike,
    data_dir: PathLike,
    class_labels_csv: Optional[PathLike] = None,
) -> List[EvalItem]:
    """Parse one released benchmark CSV into evaluation items (files are not opened).

    Layouts (``data_dir`` is ``evaluation/data/<name>``):

    - esc50, music, audiocaps, clotho: row ``idx`` -> ``segment-{idx}.wav`` (target) and
      ``mixture-{idx}.wav``; queries from ``caption`` (AudioCaps also ``labels``). The class
      of a MUSIC or ESC-50 item is its caption (instrument or sound class).
    - vggsound: ``mix_wav`` and ``s0_wav`` are paths relative to ``data_dir``; the query is
      ``s0_text`` (also offered as ``caption``), the id is ``file_id``.
    - audioset: ``src_wav`` is the source and ``noise_wav`` the mixture, under
      ``class_id={c}/``; the query is the class display name (from ``class_labels_csv``
      when given, else the ``caption`` column, which holds the same names); the class is the
      class index ``idx``.

    Args:
        name: one of :data:`RELEASED_BENCHMARKS`.
        csv_path: the dataset's metadata CSV.
        data_dir: the folder holding its audio.
        class_labels_csv: AudioSet's ``class_labels_indices.csv`` (audioset only, optional).

    Returns:
        One :class:`~.evallist.EvalItem` per CSV row.

    Raises:
        AudioSepError: unknown name, or the CSV lacks the columns of that dataset.
    """
    if name not in RELEASED_BENCHMARKS:
        raise AudioSepError(f"unknown released benchmark {name!r}; choose one of {sorted(RELEASED_BENCHMARKS)}")
    data_dir = Path(data_dir)
    rows = read_csv_rows(csv_path)
    needed = {"audioset": {"idx", "caption", "src_wav", "noise_wav"},
              "vggsound": {"file_id", "mix_wav", "s0_wav", "s0_text"}}
    needed = needed.get(name, {"idx", "caption"})
    if rows and not needed <= set(rows[0]):
        raise AudioSepError(f"{csv_path} is not the released {name} metadata: needs columns {sorted(needed)}")
    items = []
    if name in _INDEXED:
        for row in rows:
            idx = row["idx"].strip()
            queries = {k: v for k, v in row.items() if is_query_column(k)}
            group = row["caption"] if name in ("music", "esc50") else ""
            items.append(EvalItem(idx, data_dir / f"mixture-{idx}.wav", data_dir / f"segment-{idx}.wav", queries,
                                  group))
    elif name == "vggsound":
        for row in rows:
            queries = {"s0_text": row["s0_text"], "caption": row["s0_text"]}
            if "s1_text" in row:
                queries["s1_text"] = row["s1_text"]
            mixture, target = (_resolve(data_dir, row[k], 0) for k in ("mix_wav", "s0_wav"))
            items.append(EvalItem(row["file_id"], mixture, target, queries, row["s0_text"]))
    else:  # audioset
        names = _class_names(class_labels_csv) if class_labels_csv is not None else {}
        for row in rows:
            class_id = row["idx"].strip()
            caption = names.get(class_id, row["caption"])
            target = _resolve(data_dir, row["src_wav"], len(PurePosixPath(row["src_wav"]).parts) - 2)
            mixture = _resolve(data_dir, row["noise_wav"], len(PurePosixPath(row["noise_wav"]).parts) - 2)
            item_id = target.stem.rsplit(",", 1)[0]  # "class_id=0,index=000"
            items.append(EvalItem(item_id, mixture, target, {"caption": caption}, class_id))
    return items


def released_benchmark_dataset(
    name: str,
    csv_path: PathLike,
    data_dir: PathLike,
    query_column: Optional[str] = None,
    sample_rate: Optional[int] = None,
    class_labels_csv: Optional[PathLike] = None,
    skip_missing: bool = False,
) -> LASSEvalDataset:
    """The released benchmark of one dataset as a :class:`LASSEvalDataset`.

    Args:
        name: one of :data:`RELEASED_BENCHMARKS` (audioset, vggsound, audiocaps, clotho,
            esc50, music).
        csv_path: its metadata CSV (``benchmark_metadata/<name>_eval.csv``).
        data_dir: its audio folder (``evaluation/data/<name>``).
        query_column: query column (default: the one the paper uses for that dataset).
        sample_rate: resample to this rate (the paper evaluates at 32 kHz).
        class_labels_csv: AudioSet's ``class_labels_indices.csv`` (audioset only).
        skip_missing: drop examples whose files are missing instead of raising.

    Returns:
        The dataset; its ``aggregation`` attribute says how the paper combines scores and each
        item's ``class`` the key it aggregates by (AudioSet class id, MUSIC instrument).

    Raises:
        AudioSepError: unknown dataset, malformed CSV, or missing audio (unless
            ``skip_missing``).
    """
    items = read_released_benchmark(name, csv_path, data_dir, class_labels_csv)
    spec = RELEASED_BENCHMARKS[name]
    return LASSEvalDataset.from_items(
        items,
        query_column=query_column or spec["query"],
        sample_rate=sample_rate,
        skip_missing=skip_missing,
        aggregation=spec["aggregation"],
        name=f"released {name} benchmark ({data_dir})",
    )
