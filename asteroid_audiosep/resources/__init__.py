"""Data files shipped with the package: the paper's published numbers (``paper_results.csv``:
Tables III, IV and VII of Liu et al. 2023 and the released checkpoint's README figures), the
AudioSet class names (the default vocabulary of ``tag``) and a download-free RoBERTa tokenizer."""
from pathlib import Path

_HERE = Path(__file__).resolve().parent
PAPER_RESULTS = _HERE / "paper_results.csv"
#: AudioSet's 527 display names, one a line, in index order (from class_labels_indices.csv).
AUDIOSET_LABELS = _HERE / "audioset_labels.txt"
#: Training defaults; its ``model`` section is also the released architecture (``models.RELEASED_ARGS``).
TRAIN_DEFAULTS = _HERE / "train_defaults.yaml"
#: A byte-level BPE RoBERTa tokenizer with no merges (every byte one token): offline runs with
#: randomly initialised CLAP towers; real CLAP weights need roberta-base's own tokenizer.
BYTE_LEVEL_TOKENIZER = _HERE / "byte_level_bpe"
