"""What the demo page shows, made safe, and what it ships: user text as plain text (no
Markdown, HTML or matplotlib mathtext), error messages without the server's paths, the output
format in words, the upload limit, and the example clips (synthesised at start, deterministic).

Nothing here imports Gradio; :mod:`asteroid_audiosep.demo` builds the page.
"""
import os
import re
import string
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .errors import AudioSepError
from .outputs import OutputFormat
from .queries import Query

#: Most queries one request separates (the page has this many output slots).
MAX_QUERIES = 4

#: Upload limit per minute of accepted audio: 48 kHz stereo 32-bit float (the largest usual
#: uncompressed format), so any file within ``--max-minutes`` in a usual format fits.
BYTES_PER_MINUTE = 60 * 48000 * 2 * 4
_HEADER_BYTES = 1 << 20  # room for a file's header and metadata chunks

_MARKDOWN_SPECIAL = re.compile("([" + re.escape(string.punctuation) + "])")
# An absolute path (POSIX or Windows) of at least one folder: its folders are dropped.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/\\])(?:[A-Za-z]:)?(?:[\\/][^\s\\/'\"`:]+)+[\\/]")


def escape_markdown(text: str) -> str:
    """``text`` as Markdown that renders as exactly that text.

    Every ASCII punctuation character is backslash-escaped (CommonMark lets any of them be), so
    no emphasis, link, image, HTML tag, entity, autolink or heading is recognised; line breaks
    become spaces. Use it with ``latex_delimiters=[]`` on the Markdown component (no ``$`` maths).
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def escape_mathtext(text: str) -> str:
    """``text`` for a matplotlib title that is drawn literally: every ``$`` escaped, so no
    mathtext is parsed (``siren $\\frac$ x`` neither fails nor renders as maths)."""
    return str(text).replace("$", r"\$")


def clean_message(message: str, paths: Sequence[Optional[str]] = ()) -> str:
    """An error message without the server's folders: each of ``paths`` (uploaded files,
    the outputs' folder) becomes its file name, any other absolute path loses its folders."""
    message = str(message)
    for path in sorted({str(p) for p in paths if p}, key=len, reverse=True):
        message = message.replace(path, Path(path).name or "?")
    return _ABSOLUTE_PATH.sub("", message)


def upload_limit(max_minutes: float) -> int:
    """The largest upload (bytes) the page accepts: ``max_minutes`` of 48 kHz stereo float."""
    return int(max_minutes * BYTES_PER_MINUTE) + _HEADER_BYTES


def describe_bytes(size: int) -> str:
    """``726,663,168`` -> ``"693 MB"`` (MB = 2**20 bytes, as the browser counts)."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"


_SUBTYPES = {"FLOAT": "32-bit float", "DOUBLE": "64-bit float", "PCM_16": "16-bit PCM", "PCM_24": "24-bit PCM",
             "PCM_32": "32-bit PCM"}


def describe_format(fmt: OutputFormat) -> str:
    """``OutputFormat("WAV", "FLOAT", ".wav")`` -> ``"32-bit float WAV"``."""
    return f"{_SUBTYPES.get(fmt.subtype, fmt.subtype)} {fmt.container}"


#: The rule :func:`~asteroid_audiosep.outputs.choose_format` applies (``format="same"``), in words.
FORMAT_RULE = ("as `asteroid-audiosep separate` writes them: WAV stays WAV and FLAC stays FLAC, other formats "
               "become FLAC; 16- and 24-bit PCM are kept, anything else is 32-bit float (24-bit in FLAC)")


def collect_queries(text: Optional[str], known: Sequence[str] = (), example: Optional[str] = None,
                    picture: Optional[str] = None) -> List[Query]:
    """The page's query inputs as the :class:`~asteroid_audiosep.Query` objects the CLI builds.

    Args:
        text: the text box: one text query per non-empty line.
        known: labels picked from the model's known label set (text queries).
        example: an uploaded or recorded example of the sound (``Query.audio``).
        picture: an uploaded picture of the source (``Query.image``).

    Returns:
        The queries, text ones first, each identical text once.

    Raises:
        AudioSepError: no query, or more than :data:`MAX_QUERIES`.
    """
    lines = [line.strip() for line in (text or "").splitlines()] + [str(k).strip() for k in known or ()]
    queries = [Query.text(t) for t in dict.fromkeys(t for t in lines if t)]
    if example:
        queries.append(Query.audio(example))
    if picture:
        queries.append(Query.image(picture))
    if not queries:
        raise AudioSepError("the query is empty: type what to separate, e.g. 'dog barking' (one per line)")
    if len(queries) > MAX_QUERIES:
        raise AudioSepError(f"{len(queries)} queries given: the page separates at most {MAX_QUERIES} at once")
    return queries


def query_words(query: Query) -> str:
    """How the page names a query: its text, or the example sound / picture it is."""
    if query.kind == "audio":
        return f"sounds like {Path(os.fspath(query.examples[0].source)).name}"
    if query.kind == "image":
        return f"looks like {Path(os.fspath(query.image_source)).name}"
    return query.text_value if query.kind == "text" else query.label


def limits_markdown(max_minutes: float) -> str:
    """The page's limits and output rule, as Markdown (no user text)."""
    return (
        f"Inputs up to **{max_minutes:g} min** (`--max-minutes`; `asteroid-audiosep separate` streams files of "
        f"any length); files over **{describe_bytes(upload_limit(max_minutes))}** are refused by the browser "
        f"before they are sent. Up to {MAX_QUERIES} queries per run; runs wait in one queue. Outputs are "
        f"written {FORMAT_RULE}."
    )


# ------------------------------------------------------------------------------ examples
EXAMPLE_RATE = 16000
#: (file name, text query) of each example clip.
EXAMPLES = (("beeps_in_noise.wav", "beeping"), ("siren_in_rain.wav", "siren"), ("speech_like_hum.wav", "humming"))


def _example_signal(name: str, rate: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    noise = rng.standard_normal(t.size)
    if name.startswith("beeps"):  # 1 kHz beeps (0.2 s on, 0.3 s off) over low rumble
        gate = (t % 0.5) < 0.2
        rumble = np.convolve(noise, np.ones(40) / 40, mode="same")
        return 0.3 * gate * np.sin(2 * np.pi * 1000 * t) + 0.5 * rumble
    if name.startswith("siren"):  # a two-tone siren sweep over rain-like crackle
        freq = 900 + 300 * np.sin(2 * np.pi * 0.5 * t)
        crackle = noise * (rng.random(t.size) < 0.05)
        return 0.25 * np.sin(2 * np.pi * np.cumsum(freq) / rate) + 0.3 * crackle
    # a 150 Hz hum with harmonics, on and off like syllables, over hiss
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    hum = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 6))
    return 0.15 * envelope * hum + 0.03 * noise


def make_example_clips(folder: Path, queries: Optional[Sequence[str]] = None,
                       seconds: float = 4.0) -> List[Tuple[str, str]]:
    """Write the example clips (16-bit mono WAV, 16 kHz, ``seconds`` long, about 128 KB each,
    the same bytes every time) into ``folder``.

    Args:
        folder: where to write them.
        queries: the query of each clip instead of the built-in ones (a model that knows a
            fixed set of labels gets those), cycled over the clips.
        seconds: their length.

    Returns:
        ``[(path, query), ...]`` for ``gradio.Examples``.
    """
    import soundfile as sf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    examples = []
    for k, (name, query) in enumerate(EXAMPLES):
        rng = np.random.default_rng(k)
        wav = _example_signal(name, EXAMPLE_RATE, seconds, rng)
        wav = 0.7 * wav / max(float(np.abs(wav).max()), 1e-9)
        sf.write(folder / name, wav.astype(np.float32), EXAMPLE_RATE, subtype="PCM_16")
        if queries:
            query = queries[k % len(queries)]
        examples.append((str(folder / name), query))
    return examples
