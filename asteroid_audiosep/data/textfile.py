"""The one reader of the text files that come with corpora and evaluation sets (caption and
metadata CSVs, JSON lists, plain text): UTF-8, with or without a byte-order mark.

A file in another encoding (a caption CSV re-saved by a spreadsheet in Windows-1252, say) is
refused with one :class:`~asteroid_audiosep.errors.AudioSepError` naming the file, the line and
the byte, and saying which encoding was expected, instead of a ``UnicodeDecodeError`` traceback
that names nothing. Blank captions are counted and reported per file by
:func:`warn_blank_captions` (the readers leave them out, never silently).
"""
import codecs
import csv
import io
import json
import logging
import os
from pathlib import Path
from typing import Any, List, Sequence, Tuple, Union

from ..errors import AudioSepError

PathLike = Union[str, os.PathLike]

logger = logging.getLogger(__name__)

#: What every reader here expects.
EXPECTED_ENCODING = "UTF-8 (with or without a byte-order mark)"


def _decode_error(path: Path, data: bytes, err: UnicodeDecodeError) -> AudioSepError:
    line = data.count(b"\n", 0, err.start) + 1
    column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
    guess = ""
    candidates = ("utf-16",) if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else ("cp1252",)
    for encoding in candidates:
        try:
            data.decode(encoding)
        except UnicodeDecodeError:
            continue
        guess = f" (it reads as {encoding}: convert it, e.g. `iconv -f {encoding} -t utf-8 IN > OUT`)"
    return AudioSepError(
        f"{path}, line {line}, column {column}: byte 0x{data[err.start]:02x} is not valid {EXPECTED_ENCODING}; "
        f"this file must be UTF-8: re-save it as UTF-8{guess}"
    )


def read_text(path: PathLike) -> str:
    """The text of a UTF-8 file (a leading byte-order mark is removed).

    Raises:
        AudioSepError: the file is missing or unreadable, or not UTF-8 (the message names the
            file, line and column of the first bad byte and the expected encoding).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AudioSepError(f"file not found: {path}") from None
    except OSError as err:
        raise AudioSepError(f"cannot read {path}: {err}") from err
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise _decode_error(path, data, err) from None


def read_json(path: PathLike) -> Any:
    """A UTF-8 JSON file's content.

    Raises:
        AudioSepError: as :func:`read_text`, or the file is not JSON (with its line).
    """
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise AudioSepError(f"{path}, line {err.lineno}: not valid JSON ({err.msg})") from None


def read_csv_lines(path: PathLike, comment: str = "", **reader_options: Any) -> List[Tuple[int, List[str]]]:
    """Rows of a UTF-8 CSV file with their line numbers, in file order (nothing stripped; empty
    lines and comment lines left out).

    Args:
        path: the file.
        comment: lines starting with this (after spaces) are skipped (empty: none).
        reader_options: passed to :func:`csv.reader` (e.g. ``skipinitialspace=True``).

    Returns:
        ``(line, row)`` pairs; ``line`` is the (1-based) line where the row ends.

    Raises:
        AudioSepError: as :func:`read_text`, or the CSV is malformed (with its line).
    """
    text = read_text(path)
    # comment lines become empty lines, so that the reader's line numbers stay the file's
    lines = ("\n" if comment and line.lstrip().startswith(comment) else line
             for line in io.StringIO(text, newline=""))
    reader = csv.reader(lines, **reader_options)
    rows = []
    try:
        for row in reader:
            if row:
                rows.append((reader.line_num, row))
    except csv.Error as err:
        raise AudioSepError(f"{path}, line {reader.line_num}: malformed CSV ({err})") from None
    return rows


def warn_blank_captions(path: PathLike, where: Sequence[str], total: int) -> int:
    """Log one warning for the blank (empty or whitespace) captions of one file.

    Args:
        path: the caption file.
        where: one description per blank caption (e.g. ``"line 12, caption_3"``).
        total: captions read from the file.

    Returns:
        How many were blank.
    """
    if where:
        shown = ", ".join(where[:5]) + (", ..." if len(where) > 5 else "")
        logger.warning("%s: %d of %d captions are blank and were left out (%s)", path, len(where), total, shown)
    return len(where)
