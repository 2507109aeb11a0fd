"""``asteroid-audiosep separate``: outputs, modes, a clear message and exit status per bad input."""

import logging

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import DEEP_ARGS, nontrivial, small_model_args

from asteroid_audiosep import AudioSep
from asteroid_audiosep.cli import build_parser, main
from asteroid_audiosep.encoders import PrecomputedQueryEncoder

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread per module


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """A small model package and an embedding table holding two queries."""
    root = tmp_path_factory.mktemp("cli_model")
    torch.manual_seed(0)
    model = nontrivial(AudioSep(**DEEP_ARGS))
    torch.save(model.serialize(), root / "model.pth")
    table = PrecomputedQueryEncoder(
        table={"dog barking": torch.randn(24), "speech": torch.randn(24)}
    )
    table.save(root / "queries.pt")
    return root / "model.pth", root / "queries.pt"


def noise(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    return 0.1 * np.random.default_rng(seed).standard_normal(
        (int(seconds * rate), channels)
    ).astype("float32")


def run(package, *args):
    model, table = package
    return main(
        [
            "separate",
            "--model",
            str(model),
            "--query-embeddings",
            str(table),
            "--quiet",
            *map(str, args),
        ]
    )


def test_separate_is_a_registered_subcommand():
    help_text = build_parser().format_help()
    assert "separate" in help_text and "convert-official" in help_text
    args = build_parser().parse_args(["separate", "-q", "dog", "in.wav", "--remove"])
    assert args.queries == [("text", "dog")] and args.remove and args.outdir == "separated"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["separate", "-q", "dog", "in.wav", "--remove", "--keep-both"])
    # Queries of every kind keep their command-line order.
    args = build_parser().parse_args(["separate", "-q", "dog", "--query-span", "1-2", "--query-audio", "a.wav",
                                      "-q", "cat", "in.wav"])
    assert args.queries == [("text", "dog"), ("span", "1-2"), ("audio", "a.wav"), ("text", "cat")]


def test_separate_without_a_query_names_the_query_options(tmp_path, capsys):
    assert main(["separate", str(tmp_path / "in.wav")]) == 2
    err = capsys.readouterr().err
    assert "give at least one query" in err and "--query-audio" in err


def test_two_queries_stereo_44k(package, tmp_path, capsys):
    sf.write(tmp_path / "mix.wav", noise(2.1, 44100, 2), 44100)
    rc = run(
        package, "-q", "dog barking", "-q", "speech", tmp_path / "mix.wav", "-o", tmp_path / "out"
    )
    assert rc == 0
    for name in ["mix__dog_barking.wav", "mix__speech.wav"]:
        info = sf.info(tmp_path / "out" / name)
        assert (info.samplerate, info.channels, info.frames) == (44100, 2, int(2.1 * 44100))
    assert "separated 1 file(s) into 2 output(s), 0 skipped, 0 failed" in capsys.readouterr().out


def test_remove_writes_the_residual_only(package, tmp_path):
    sf.write(tmp_path / "mix.flac", noise(1.5, 16000), 16000)
    assert (
        run(package, "-q", "speech", "--remove", tmp_path / "mix.flac", "-o", tmp_path / "out") == 0
    )
    # FLAC in, FLAC out (the input's container); the manifest lists what this tool wrote.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".asteroid_audiosep_outputs",
                                                                    "mix__speech__residual.flac"]


def test_every_bad_input_is_reported_and_the_others_are_written(package, tmp_path, capsys, caplog):
    folder = tmp_path / "in"
    folder.mkdir()
    sf.write(folder / "good.wav", noise(1.2, 22050, 2), 22050)
    sf.write(folder / "silent.wav", np.zeros((8000, 1), dtype="float32"), 8000)
    sf.write(folder / "empty.wav", np.zeros((0, 1), dtype="float32"), 16000)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot audio at all")
    (folder / "notes.ogg").write_bytes(b"\x00" * 64)
    with caplog.at_level(logging.WARNING, logger="asteroid_audiosep"):
        rc = run(package, "-q", "speech", folder, tmp_path / "missing.wav", "-o", tmp_path / "out")
    err = capsys.readouterr().err
    assert rc == 1
    assert "corrupt.wav: cannot read audio file" in err
    assert "notes.ogg: cannot read audio file" in err
    assert "empty.wav: audio file" in err and "is empty (0 samples)" in err
    assert "missing.wav: no such file or folder" in err
    # The good file and the all-zero file (as silence, with a warning) are still written.
    good, rate = sf.read(tmp_path / "out" / "good__speech.wav", always_2d=True)
    assert rate == 22050 and good.shape == (int(1.2 * 22050), 2)
    silent, rate = sf.read(tmp_path / "out" / "silent__speech.wav", always_2d=True)
    assert rate == 8000 and silent.shape == (8000, 1) and not silent.any()
    assert any("digital silence" in r.getMessage() for r in caplog.records)
    produced = sorted(p.name for p in (tmp_path / "out").iterdir() if p.name != ".asteroid_audiosep_outputs")
    assert produced == ["good__speech.wav", "silent__speech.wav"]  # nothing partial, no temp files


def test_all_zero_input_alone_succeeds_with_a_warning(package, tmp_path, caplog):
    sf.write(tmp_path / "zero.wav", np.zeros((4000, 2), dtype="float32"), 16000)
    with caplog.at_level(logging.WARNING, logger="asteroid_audiosep"):
        assert run(package, "-q", "speech", tmp_path / "zero.wav", "-o", tmp_path / "out") == 0
    assert any("digital silence" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "query, message",
    [("", "empty string"), ("   ", "empty string"), ("a cat", "not in the embedding table")],
)
def test_bad_query_fails_before_any_work(package, tmp_path, capsys, query, message):
    sf.write(tmp_path / "mix.wav", noise(1.0, 16000), 16000)
    rc = run(package, "-q", "speech", "-q", query, tmp_path / "mix.wav", "-o", tmp_path / "out")
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unwritable_output_folder(package, tmp_path, capsys):
    sf.write(tmp_path / "a.wav", noise(1.0, 16000), 16000)
    sf.write(tmp_path / "b.wav", noise(1.0, 16000, seed=1), 16000)
    (tmp_path / "file").write_text("a file, not a folder")
    rc = run(
        package,
        "-q",
        "speech",
        tmp_path / "a.wav",
        tmp_path / "b.wav",
        "-o",
        tmp_path / "file" / "out",
    )
    err = capsys.readouterr().err
    assert rc == 1
    assert err.count("cannot write to") >= 2 and "a.wav" in err and "b.wav" in err


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    sf.write(tmp_path / "a.wav", noise(1.0, 16000), 16000)
    rc = main(
        ["separate", "--model", str(tmp_path / "nope.pth"), "-q", "speech", str(tmp_path / "a.wav")]
    )
    assert rc == 2
    assert "model not found" in capsys.readouterr().err


def test_overwrite_flag(package, tmp_path):
    sf.write(tmp_path / "a.wav", noise(1.0, 16000), 16000)
    out = tmp_path / "out" / "a__speech.wav"
    assert run(package, "-q", "speech", tmp_path / "a.wav", "-o", tmp_path / "out") == 0
    first = out.read_bytes()
    sf.write(tmp_path / "a.wav", noise(1.0, 16000, seed=5), 16000)
    assert run(package, "-q", "speech", tmp_path / "a.wav", "-o", tmp_path / "out") == 0
    assert out.read_bytes() == first  # skipped
    assert (
        run(package, "-q", "speech", "--overwrite", tmp_path / "a.wav", "-o", tmp_path / "out") == 0
    )
    assert out.read_bytes() != first


def test_small_model_args_still_work_without_the_deep_grid(tmp_path):
    """Any model configuration is chunked on its own pooling grid."""
    torch.manual_seed(0)
    model = AudioSep(**small_model_args())
    torch.save(model.serialize(), tmp_path / "m.pth")
    PrecomputedQueryEncoder(table={"speech": torch.randn(24)}).save(tmp_path / "t.pt")
    sf.write(tmp_path / "a.wav", noise(3.0, 16000), 16000)
    rc = main(
        [
            "separate",
            "--model",
            str(tmp_path / "m.pth"),
            "--query-embeddings",
            str(tmp_path / "t.pt"),
            "-q",
            "speech",
            "--chunk-seconds",
            "0.5",
            "--quiet",
            str(tmp_path / "a.wav"),
            "-o",
            str(tmp_path),
        ]
    )
    assert rc == 0 and sf.info(tmp_path / "a__speech.wav").frames == 48000
