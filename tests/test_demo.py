"""``asteroid-audiosep demo`` without a browser: the CLI's options, what one request computes
(the CLI's ``separate_waveform`` output, written as the CLI writes it), errors as page messages."""
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import QUERIES, make_demo_package, make_demo_wav

from asteroid_audiosep import AudioSepError, separate_waveform
from asteroid_audiosep.cli import build_parser
from asteroid_audiosep.demo import MAX_QUERIES, DemoSeparator, collect_queries, page_response


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return make_demo_package(tmp_path_factory.mktemp("demo_model"))


@pytest.fixture(scope="module")
def separator(package, tmp_path_factory):
    model, table = package
    return DemoSeparator(model, "cpu", table, max_minutes=0.05, workdir=tmp_path_factory.mktemp("demo_out"))


def test_demo_is_a_registered_subcommand():
    parser = build_parser()
    assert "demo" in parser.format_help()
    args = parser.parse_args(["demo"])
    assert (args.host, args.port, args.max_minutes, args.model) == ("127.0.0.1", 7860, 30.0, "audiosep-base")
    args = parser.parse_args(["demo", "-m", "m.pth", "--host", "0.0.0.0", "--port", "8000", "--max-minutes", "2"])
    assert (args.host, args.port, args.max_minutes, args.model) == ("0.0.0.0", 8000, 2.0, "m.pth")
    assert not hasattr(args, "share")


def test_import_does_not_load_gradio():
    code = "import sys, asteroid_audiosep.cli, asteroid_audiosep.demo; print('gradio' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_collect_queries():
    assert collect_queries(" dog barking \n\nspeech\ndog barking") == ["dog barking", "speech"]
    for empty in (None, "", "  \n "):
        with pytest.raises(AudioSepError, match="query is empty"):
            collect_queries(empty)
    with pytest.raises(AudioSepError, match=f"at most {MAX_QUERIES}"):
        collect_queries("\n".join(f"q{k}" for k in range(MAX_QUERIES + 1)))


def test_run_gives_separate_waveform_outputs(separator, package, tmp_path):
    wav_path = make_demo_wav(tmp_path / "mix.wav")
    spectrum, outputs = separator.run(wav_path, list(QUERIES))
    wav, rate = sf.read(wav_path, dtype="float32", always_2d=True)
    expected = separate_waveform(package[0], torch.from_numpy(wav.T), rate, list(QUERIES), device="cpu",
                                 condition=separator.model.embed_queries(list(QUERIES)))
    assert spectrum.is_file() and [o.query for o in outputs] == list(QUERIES)
    for out, target in zip(outputs, expected):
        assert out.target.name == f"mix__{out.query.replace(' ', '_')}.wav"
        info = sf.info(out.target)
        assert (info.samplerate, info.channels, info.subtype) == (rate, 2, "FLOAT")
        written, _ = sf.read(out.target, dtype="float32", always_2d=True)
        residual, _ = sf.read(out.residual, dtype="float32", always_2d=True)
        assert np.abs(written.T - target.numpy()).max() < 1e-6
        assert np.abs(residual.T - (wav.T - target.numpy())).max() < 1e-6
        assert out.spectrogram.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_errors_become_page_messages(separator, tmp_path):
    pytest.importorskip("gradio", reason="the demo extra (gradio) is not installed")
    wav_path = make_demo_wav(tmp_path / "mix.wav")
    long_path = make_demo_wav(tmp_path / "long.wav", seconds=4.0, channels=1)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not audio")
    cases = [
        (wav_path, "", "query is empty"),
        (None, "speech", "no audio"),
        (broken, "speech", "cannot read audio file"),
        (long_path, "speech", "--max-minutes"),
        (wav_path, "a query not in the table", "not in the embedding table"),
    ]
    for audio, text, expected in cases:
        values = page_response(separator, audio and str(audio), text)
        message = values[0]["value"]
        assert message.startswith("**Error:**") and expected in message, message
        assert "Traceback" not in message
        assert all(not v["visible"] for v in values[3:])
    values = page_response(separator, str(wav_path), "speech")
    assert values[0]["value"].startswith("Separated 1 query")
    assert values[3]["visible"] and values[4]["value"].endswith("mix__speech.wav")
    assert not values[7]["visible"]
