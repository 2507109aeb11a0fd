"""Inputs a user meets first: every format libsndfile reads found in folders (and what was not
audio counted in the summary), and audio-example queries too short for CLAP's window."""

import logging

import numpy as np
import pytest
import soundfile as sf
from helpers import BandEncoder, make_demo_package

from asteroid_audiosep import Query
from asteroid_audiosep.audio import AUDIO_EXTENSIONS, FORMAT_EXTENSIONS, count_by_extension, scan_audio_folder
from asteroid_audiosep.cli import main
from asteroid_audiosep.errors import AudioSepError
from asteroid_audiosep.queries import MIN_EXAMPLE_SECONDS, embed_queries

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread per module


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return make_demo_package(tmp_path_factory.mktemp("formats_model"))


def noise(seconds: float, rate: int = 16000, seed: int = 0, amp: float = 0.1) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal(int(seconds * rate))).astype("float32")


def write(path, seconds=0.6, rate=16000, **kwargs):
    sf.write(path, noise(seconds, rate), rate, **kwargs)
    return path


def run(package, *args):
    model, table = package
    return main(["separate", "--model", str(model), "--query-embeddings", str(table), "--quiet", *map(str, args)])


def test_every_readable_format_has_an_extension():
    for name in sf.available_formats():
        if name != "RAW":  # header-less: reading it needs a rate and a format
            assert set(FORMAT_EXTENSIONS.get(name, ())) & set(AUDIO_EXTENSIONS), name
    assert {".oga", ".caf", ".w64", ".rf64", ".aifc", ".wav", ".flac"} <= set(AUDIO_EXTENSIONS)


def test_folder_with_oga_caf_w64_and_a_txt(package, tmp_path, capsys, caplog):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    write(src / "a.oga", format="OGG", subtype="VORBIS")
    write(src / "b.caf", format="CAF")
    write(src / "sub" / "c.w64", format="W64")
    (src / "notes.txt").write_text("not audio")
    (src / "data.mat").write_bytes(b"MATLAB 5.0 MAT-file, not audio")  # a .mat that is not audio
    with caplog.at_level(logging.DEBUG, logger="asteroid_audiosep"):  # what -v shows
        assert run(package, "-q", "speech", src, "-o", tmp_path / "out") == 0
    out = capsys.readouterr().out
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*__speech.*"))
    assert written == ["a__speech.flac", "b__speech.flac", "sub/c__speech.flac"]
    for name in written:
        wav, rate = sf.read(tmp_path / "out" / name)
        assert rate == 16000 and wav.shape[0] == pytest.approx(0.6 * 16000, abs=1)
    assert "separated 3 file(s)" in out and "skipped 2 files: 1 .mat, 1 .txt (not audio)" in out
    listed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("not audio, skipped")]
    assert listed == [f"not audio, skipped: {src / 'data.mat'}", f"not audio, skipped: {src / 'notes.txt'}"]
    # Run again into the input folder itself: its outputs and manifest are neither inputs nor "not audio".
    assert run(package, "-q", "speech", src, "-o", src) == 0
    assert run(package, "-q", "speech", src, "-o", src) == 0
    out = capsys.readouterr().out.splitlines()[-1]
    assert "0 file(s)" in out and "3 skipped" in out and "skipped 2 files: 1 .mat, 1 .txt" in out


def test_a_named_oga_file(package, tmp_path, capsys):
    write(tmp_path / "x.oga", format="OGG", subtype="VORBIS")
    assert run(package, "-q", "dog barking", tmp_path / "x.oga", "-o", tmp_path / "out") == 0
    assert (tmp_path / "out" / "x__dog_barking.flac").is_file()
    assert "not audio" not in capsys.readouterr().out


def test_a_folder_without_audio_names_what_it_skipped(package, tmp_path, capsys):
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.jpg").write_bytes(b"x")
    (tmp_path / "c.txt").write_text("x")
    assert run(package, "-q", "speech", tmp_path) == 2
    err = capsys.readouterr().err
    assert "no audio file found" in err and "skipped 3 files: 2 .txt, 1 .jpg (not audio)" in err
    assert scan_audio_folder(tmp_path) == ([], [tmp_path / "a.txt", tmp_path / "b.jpg", tmp_path / "c.txt"])


def test_count_by_extension():
    assert count_by_extension(["a.txt", "b.JPG", "c.txt", "README"]) == \
        "skipped 4 files: 2 .txt, 1 (no extension), 1 .jpg"
    assert count_by_extension(["a.txt"]) == "skipped 1 file: 1 .txt"
    assert count_by_extension([]) == ""


def short_warnings(caplog):
    return [r.getMessage() for r in caplog.records if "under 0.5 s" in r.getMessage()]


def test_a_short_audio_example_warns_naming_it(tmp_path, caplog):
    assert MIN_EXAMPLE_SECONDS == 0.5
    short = write(tmp_path / "short.wav", seconds=0.05)
    long = write(tmp_path / "long.wav", seconds=2.0)
    with caplog.at_level(logging.WARNING, logger="asteroid_audiosep"):
        emb = embed_queries(BandEncoder(), [Query.audio(short)])
    assert emb.shape == (1, 16)
    assert short_warnings(caplog) == [f"audio example {short} is 0.05 s long, under 0.5 s: CLAP repeats it to "
                                      "fill 10 s, so its embedding may not describe the sound; give a longer example"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="asteroid_audiosep"):
        embed_queries(BandEncoder(), [Query.audio(long), Query.audio(long, start=0.5, end=1.5)])
    assert short_warnings(caplog) == []
    with caplog.at_level(logging.WARNING, logger="asteroid_audiosep"):  # a short part of a long file warns too
        embed_queries(BandEncoder(), [Query.audio(long, start=1.0, end=1.1)])
    assert short_warnings(caplog) == [f"audio example {long}@1-1.1 is 0.1 s long, under 0.5 s: CLAP repeats it to "
                                      "fill 10 s, so its embedding may not describe the sound; give a longer example"]


def test_a_short_silent_example_keeps_its_error(tmp_path, caplog):
    sf.write(tmp_path / "quiet.wav", np.zeros(800, dtype="float32"), 16000)
    with caplog.at_level(logging.WARNING, logger="asteroid_audiosep"), pytest.raises(AudioSepError, match="silent"):
        embed_queries(BandEncoder(), [Query.audio(tmp_path / "quiet.wav")])
    assert short_warnings(caplog) == []
