"""Data for language-queried audio separation: datafiles, datasets, mixing, corpora.

Public API:

- datafiles (released JSON format): :func:`read_datafile`, :func:`write_datafile`
- training: :class:`LASSTrainDataset` (files), :class:`LASSShardDataset` (webdataset shards),
  :func:`write_shards`, :class:`SegmentMixer` (on-the-fly mixing)
- evaluation: :class:`LASSEvalDataset` (common evaluation-list format),
  :func:`released_benchmark_dataset` (the released benchmark), :func:`build_eval_mixtures`
- corpora: :func:`generate_mini_corpus` and :mod:`.corpora` (the paper's corpora)

``webdataset`` and ``pyloudnorm`` (the ``data`` extra) are imported only when shards or
loudness-normalised mixtures are used.
"""
from .benchmark import (
    RELEASED_BENCHMARKS,
    read_released_benchmark,
    released_benchmark_dataset,
)
from .datafile import read_datafile, write_datafile
from .datasets import LASSEvalDataset, LASSTrainDataset
from .evallist import EvalItem, read_eval_list, write_eval_list
from .evalmix import Excerpt, MixtureSpec, build_eval_mixtures
from .mini import CLASSES as MINI_CLASSES
from .mini import generate_mini_corpus
from .mixing import SegmentMixer, mix_for_evaluation
from .shards import LASSShardDataset, write_shards

__all__ = [
    "EvalItem",
    "Excerpt",
    "LASSEvalDataset",
    "LASSShardDataset",
    "LASSTrainDataset",
    "MINI_CLASSES",
    "MixtureSpec",
    "RELEASED_BENCHMARKS",
    "SegmentMixer",
    "build_eval_mixtures",
    "generate_mini_corpus",
    "mix_for_evaluation",
    "read_datafile",
    "read_eval_list",
    "read_released_benchmark",
    "released_benchmark_dataset",
    "write_datafile",
    "write_eval_list",
    "write_shards",
]
