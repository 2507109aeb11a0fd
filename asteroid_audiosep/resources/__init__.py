"""Data files shipped with the package: the paper's published numbers (``paper_results.csv``:
Tables III, IV and VII of Liu et al. 2023 and the released checkpoint's README figures)."""
from pathlib import Path

PAPER_RESULTS = Path(__file__).resolve().parent / "paper_results.csv"
