"""What the recipe's evaluation steps do to an experiment folder, as functions.

- :func:`claim_eval_dir`: an ``eval/`` (or ``enhance/``) folder holds the scores of one model
  package only; scores of another are moved aside, those of the same one are resumed.
- :func:`open_eval_set`: the dataset of one ``evaluation.sets`` entry for one query type.
- :func:`query_table`: the embeddings of a set's queries, from a precomputed table or the
  model's encoder; for the query types of :data:`FILE_QUERY_TYPES` (``audio``, ``image``) the
  list's column holds files, embedded as :class:`~asteroid_audiosep.queries.Query` objects.
"""
import hashlib
import logging
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Union

from .errors import AudioSepError
from .fileio import write_text_atomic

log = logging.getLogger(__name__)

PathFn = Callable[[Any], Path]

#: Query types whose column holds a file (relative to the list's folder, or absolute), and the
#: query each file becomes: an audio example (CLAP audio tower) or a picture (CLIP image tower).
FILE_QUERY_TYPES = {"audio": "audio", "image": "image"}


def file_sha256(path: Union[str, Path]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def claim_eval_dir(eval_dir: Union[str, Path], package: Union[str, Path]) -> bool:
    """Make ``eval_dir`` hold the scores of ``package`` only.

    ``eval_dir/model.sha256`` records the package's digest. When the folder holds scores of
    another package it is renamed to ``<name>.<time>`` and a fresh one is started.

    Returns:
        ``True`` when earlier scores of the same package are kept (a resume).
    """
    eval_dir, package = Path(eval_dir), Path(package)
    stamp = eval_dir / "model.sha256"
    digest = file_sha256(package)
    if eval_dir.is_dir() and any(eval_dir.iterdir()):
        previous = stamp.read_text().strip() if stamp.is_file() else None
        if previous == digest:
            return True
        aside = eval_dir.with_name(f"{eval_dir.name}.{time.strftime('%Y%m%d-%H%M%S')}")
        eval_dir.rename(aside)
        log.warning("%s held scores of another model: moved to %s; evaluating %s afresh",
                    eval_dir, aside, package)
    eval_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(stamp, digest + "\n")
    return False


def open_eval_set(entry: Dict[str, Any], query_column: str, sample_rate: int,
                  path: PathFn = Path):
    """The dataset of one ``evaluation.sets`` entry (``list: CSV``, ``released: NAME``,
    ``dcase2024_validation: FOLDER`` or ``recordings: CSV``, a list of recordings without
    references, :class:`~asteroid_audiosep.data.recordings.RecordingSet`).

    Args:
        entry: the config entry.
        query_column: the query type (column of the list) to read.
        sample_rate: the model's rate.
        path: turns a config path value into a path (e.g. expanding ``{data_dir}``).
    """
    name = entry.get("name") or entry.get("released")
    if "released" in entry:
        from .data.benchmark import released_benchmark_dataset

        for key in ("csv", "data_dir"):
            if not entry.get(key):
                raise AudioSepError(f"evaluation set {name}: set its {key} (released benchmark)")
        labels = entry.get("class_labels_csv")
        return released_benchmark_dataset(
            entry["released"], path(entry["csv"]), path(entry["data_dir"]),
            query_column=query_column, sample_rate=sample_rate,
            class_labels_csv=path(labels) if labels else None,
            skip_missing=bool(entry.get("skip_missing", False)),
        )
    if "dcase2024_validation" in entry:  # DCASE 2024 Task 9 validation folder (data/dcase.py)
        from .data.dcase import DCASEValidationDataset

        return DCASEValidationDataset(path(entry["dcase2024_validation"]), sample_rate=sample_rate)
    if "recordings" in entry:  # reference-free: real recordings and their queries (data/recordings.py)
        from .data.recordings import RecordingSet

        audio_dir = entry.get("audio_dir")
        return RecordingSet(path(entry["recordings"]), query_column=query_column, sample_rate=sample_rate,
                            audio_dir=path(audio_dir) if audio_dir else None)
    if "list" not in entry:
        raise AudioSepError(f"evaluation set {name}: give `list`, `released`, `dcase2024_validation` or `recordings`")
    from .data import LASSEvalDataset

    return LASSEvalDataset(path(entry["list"]), query_column=query_column, sample_rate=sample_rate)


def query_table(model, queries: Sequence[str], embeddings: Optional[Union[str, Path]] = None,
                query_type: str = "text", base_dir: Optional[Union[str, Path]] = None):
    """A :class:`~asteroid_audiosep.encoders.PrecomputedQueryEncoder` holding ``queries``:
    looked up in the table file ``embeddings`` when given (checked complete), else embedded once
    with the model's query encoder.

    For a ``query_type`` of :data:`FILE_QUERY_TYPES` each query is a file name (relative to
    ``base_dir``, or absolute) embedded as ``Query.audio(file)`` / ``Query.image(file)`` by the
    model's encoder (``embeddings``, a text table, is not used); the table maps the names as
    written in the list to their embeddings.

    Raises:
        AudioSepError: the encoder cannot embed that query type (naming it and what would work),
            missing files, a table without some queries.
    """
    from .encoders import PrecomputedQueryEncoder

    if query_type in FILE_QUERY_TYPES:
        return file_query_table(model.query_encoder, queries, query_type, base_dir)
    if not embeddings:
        return PrecomputedQueryEncoder.from_encoder(model.query_encoder, list(queries))
    table = PrecomputedQueryEncoder(embeddings)
    if table.embed_dim != model.condition_dim:
        raise AudioSepError(f"query embeddings {embeddings}: {table.embed_dim}-d embeddings, "
                            f"the model takes {model.condition_dim}-d conditions")
    missing = sorted({q for q in queries if q not in table})
    if missing:
        raise AudioSepError(f"query embeddings {embeddings} lack {len(missing)} queries "
                            f"({', '.join(map(repr, missing[:5]))}...): add them, or unset it")
    return table


def file_query_table(encoder, names: Sequence[str], query_type: str,
                     base_dir: Optional[Union[str, Path]] = None):
    """Embeddings of file queries (see :func:`query_table`), one per distinct name."""
    from .encoders import PrecomputedQueryEncoder
    from .progress import progress
    from .queries import Query, check_supported, embed_queries

    make = getattr(Query, FILE_QUERY_TYPES[query_type])
    names = sorted(set(names))
    if not names:
        raise AudioSepError(f"no {query_type} query to embed")
    check_supported([make(names[0])], encoder)  # before any file is read
    base = Path(base_dir) if base_dir is not None else Path(".")
    files = {n: Path(n) if Path(n).is_absolute() else base / n for n in names}
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing:
        raise AudioSepError(f"{len(missing)} {query_type} query files not found (e.g. {missing[0]}): "
                            f"the {query_type} column names files relative to {base}")
    table = {}
    for name in progress(names, desc=f"embedding {query_type} queries", unit="query"):
        table[name] = embed_queries(encoder, [make(str(files[name]))])[0]
    return PrecomputedQueryEncoder(table=table, source=None)


def model_package(exp_dir: Union[str, Path], given: Optional[Union[str, Path]] = None) -> Path:
    """The package a stage evaluates: ``given``, or ``<exp>/best_model.pth``."""
    package = Path(given) if given else Path(exp_dir) / "best_model.pth"
    if not package.is_file():
        raise AudioSepError(f"no model package at {package}: run stage 2 first")
    return package
