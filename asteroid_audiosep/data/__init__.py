"""Data for language-queried audio separation: datafiles, datasets, mixing, corpora."""
from .datafile import read_datafile, write_datafile
from .datasets import LASSEvalDataset, LASSTrainDataset
from .mixing import SegmentMixer
