"""Streaming separation (``Separator.stream``, ``asteroid-audiosep stream``): equal to the offline
path, with the latency it states."""
import io
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import DEEP_ARGS, BandEncoder, make_demo_package, nontrivial, small_model_args

from asteroid_audiosep import AudioSep, AudioSepDP, AudioSepError, Query, Separator
from asteroid_audiosep.apply import ChunkPlan
from asteroid_audiosep.cli import main
from asteroid_audiosep.cli_stream import run_stream

pytestmark = pytest.mark.usefixtures("one_thread")  # bit-for-bit comparisons: one torch thread


def _separator(model, **kwargs) -> Separator:
    return Separator(model, "cpu", precision="fp32", progress=False, **kwargs)


@pytest.fixture(scope="module")
def deep():
    """A small model with the released pooling depth (0.32 s grid at 16 kHz)."""
    torch.manual_seed(0)
    return _separator(nontrivial(AudioSep(**DEEP_ARGS)))


@pytest.fixture(scope="module")
def deep_dp():
    """The same with AudioSep-DP's dual-path block at the bottleneck."""
    torch.manual_seed(0)
    return _separator(nontrivial(AudioSepDP(dprnn={"layers": 1, "hidden": 8}, **DEEP_ARGS)))


@pytest.fixture(scope="module")
def small():
    """A shallow model (32 ms grid) with a short context: cheap chunks for the latency tests."""
    torch.manual_seed(0)
    return _separator(nontrivial(AudioSep(**small_model_args())), context_seconds=0.1)


def signal(rate: int, seconds: float, channels: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * rate)) / rate
    return 0.1 * torch.randn(channels, t.numel(), generator=g) + 0.3 * torch.sin(2 * math.pi * 440 * t)


def conditions(separator: Separator, count: int = 2) -> torch.Tensor:
    return torch.randn(count, separator.model.condition_dim, generator=torch.Generator().manual_seed(3))


def feed(stream, wav: torch.Tensor, sizes) -> list:
    """Feed ``wav`` in blocks of the given sizes (cycled); the outputs, the flush's last."""
    outs, pos, k = [], 0, 0
    while pos < wav.shape[-1]:
        outs.append(stream.process(wav[:, pos : pos + sizes[k % len(sizes)]]))
        pos += sizes[k % len(sizes)]
        k += 1
    outs.append(stream.flush())
    return outs


def snr_db(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    return 10 * math.log10(reference.pow(2).sum().item() / max((estimate - reference).pow(2).sum().item(), 1e-30))


# ------------------------------------------------------------------------------------------ equality
@pytest.mark.parametrize("which, rate, channels, block_seconds, sizes", [
    ("plain", 16000, 1, 0.32, [1280]),          # the model's rate; blocks divide the 5120-sample chunk
    ("plain", 22050, 2, 0.3, [1000, 3001]),     # resampled; blocks that do not divide the chunk
    ("plain", 44100, 2, 0.5, [44100]),          # blocks longer than the chunk
    ("dp", 22050, 2, 0.3, [777]),               # a dual-path block: the same chunks, the same output
])
def test_concatenated_outputs_equal_the_offline_output(which, rate, channels, block_seconds, sizes, request):
    separator = request.getfixturevalue("deep" if which == "plain" else "deep_dp")
    wav, cond = signal(rate, 2.3, channels), conditions(separator)
    stream = separator.stream(["a", "b"], rate, channels, block_seconds, conditions=cond)
    outs = feed(stream, wav, sizes)
    streamed = torch.cat(outs, dim=-1)
    offline = separator.separate_waveform(wav, rate, ["a", "b"], conditions=cond, block_seconds=block_seconds)
    assert streamed.shape == offline.shape == (2, channels, wav.shape[-1])
    assert torch.equal(streamed, offline)
    assert outs[-1].shape[-1] > 0 and stream.samples_out == wav.shape[-1]  # flush() returned the tail
    assert sum(o.shape[-1] > 0 for o in outs[:-1]) >= 2  # output came out while input went in
    # Against the default offline plan (here one forward over the whole clip): the seam figure.
    assert snr_db(separator.separate_waveform(wav, rate, ["a", "b"], conditions=cond), streamed) >= 60.0


@pytest.fixture(scope="module")
def band():
    """A shallow model whose query encoder embeds text ("dog", "cat") and audio."""
    torch.manual_seed(0)
    model = nontrivial(AudioSep(**small_model_args(condition_dim=16)))
    model.set_query_encoder(BandEncoder())
    return _separator(model, context_seconds=0.1)


def test_text_queries_and_numpy_float64_blocks(band):
    separator = band
    wav = signal(16000, 1.0, 1)
    stream = separator.stream(["dog", "cat"], 16000, 1, 0.25)
    assert stream.labels == ["dog", "cat"]
    buffer = wav[:, -100:].clone()  # too short to release a chunk: the stream holds it
    outs = [stream.process(wav[0, :7000].double().numpy()), stream.process(wav[:, 7000:-100]), stream.process(buffer)]
    assert outs[-1].shape[-1] == 0
    buffer.zero_()  # a caller reusing its buffer does not change what the stream took
    outs.append(stream.flush())
    assert torch.equal(torch.cat(outs, -1), separator.separate_waveform(wav, 16000, ["dog", "cat"], block_seconds=0.25))


# ------------------------------------------------------------------------------------------ latency
@pytest.mark.parametrize("rate, channels, block_seconds, context", [
    (16000, 1, 0.2, 0.1), (22050, 2, 0.15, 0.1), (16000, 1, 0.1, 0.0)])  # last: no context, no resampling
def test_latency_is_the_measured_delay(small, rate, channels, block_seconds, context):
    """Fed one sample per call: the first output comes with input sample ``latency``, and just
    before each chunk is released the input is exactly ``latency`` samples ahead of the output."""
    separator = _separator(small.model, context_seconds=context)
    stream = separator.stream(["a"], rate, channels, block_seconds, conditions=conditions(small, 1))
    wav = signal(rate, 3.0, channels)
    releases, lags, outs = [], [], []
    for i in range(stream.latency + int(3.5 * block_seconds * rate)):
        before = stream.samples_out
        out = stream.process(wav[:, i : i + 1])
        outs.append(out)
        lags.append(stream.samples_in - stream.samples_out)
        if out.shape[-1]:
            releases.append((i, i - before))  # input index delivered, its lead over the output
    assert releases[0][0] == stream.latency
    assert len(releases) >= 3 and {lead for _, lead in releases} == {stream.latency}
    assert max(lags) == stream.latency
    assert stream.latency_seconds == stream.latency / rate
    assert block_seconds <= stream.latency_seconds < block_seconds + 0.5  # chunk + context + margins
    rest = stream.flush()
    offline = separator.separate_waveform(wav[:, : stream.samples_in], rate, ["a"], conditions=conditions(small, 1),
                                          block_seconds=block_seconds)
    assert torch.equal(torch.cat([*outs, rest], -1), offline)


def test_a_streams_plan_of_a_prefix_is_a_prefix_of_its_plan(small):
    runner = small.runner(conditions(small, 1), 0.2)
    layout = runner.layout(22050)
    whole = ChunkPlan.build(100_000, **layout, fixed=True)
    assert len(set(b - a for a, b in zip(whole.bounds, whole.bounds[1:-1]))) == 1  # one length but the last
    for length in (1, 4000, 40_000, 65_537):
        part = ChunkPlan.build(length, **layout, fixed=True)
        assert part.bounds[:-1] == tuple(b for b in whole.bounds if b < length) and part.bounds[-1] == length


def test_flush_returns_the_tail_and_ends_the_stream(small):
    stream = small.stream(["a"], 16000, 1, 0.25, conditions=conditions(small, 1))
    head = stream.process(signal(16000, 0.1, 1))
    assert head.shape == (1, 1, 0)  # less than the latency: nothing yet
    tail = stream.flush()
    assert tail.shape == (1, 1, 1600)
    assert stream.flush().shape == (1, 1, 0)
    with pytest.raises(AudioSepError, match="flushed"):
        stream.process(signal(16000, 0.1, 1))


# ------------------------------------------------------------------------------------------ bad input
def test_bad_blocks_raise_a_clear_error_and_leave_the_stream_usable(small):
    stream = small.stream(["a"], 16000, 2, 0.25, conditions=conditions(small, 1))
    with pytest.raises(AudioSepError, match=r"\(2, samples\).*got shape \(1, 100\)"):
        stream.process(torch.zeros(1, 100))
    with pytest.raises(AudioSepError, match="pass its transpose"):
        stream.process(np.zeros((100, 2), dtype=np.float32))
    with pytest.raises(AudioSepError, match="int16 / 32768"):
        stream.process(np.zeros((2, 100), dtype=np.int16))
    bad = torch.zeros(2, 100)
    bad[1, 5] = float("nan")
    with pytest.raises(AudioSepError, match="NaN"):
        stream.process(bad)
    assert stream.samples_in == 0  # refused blocks are not taken
    wav = signal(16000, 0.7, 2)
    out = torch.cat([stream.process(wav), stream.flush()], -1)
    assert out.shape == (1, 2, wav.shape[-1])


def test_bad_stream_settings(small):
    cond = conditions(small, 1)
    with pytest.raises(AudioSepError, match="block_seconds"):
        small.stream(["a"], 16000, 1, 0.0, conditions=cond)
    with pytest.raises(AudioSepError, match="channels"):
        small.stream(["a"], 16000, 0, conditions=cond)
    with pytest.raises(AudioSepError, match="rate"):
        small.stream(["a"], 44100.5, 1, conditions=cond)
    with pytest.raises(AudioSepError, match="model takes 2 channels"):
        torch.manual_seed(0)
        _separator(AudioSep(**small_model_args(in_channels=2))).stream(["a"], 16000, 1, conditions=cond)


def test_span_queries_cannot_stream(band):
    with pytest.raises(AudioSepError, match="span of the input"):
        band.stream(["dog", Query.span(0.0, 1.0)], 16000, 1)


# ------------------------------------------------------------------------------------------ command line
@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return make_demo_package(tmp_path_factory.mktemp("stream_pkg"))


def test_cli_pipes_float32_pcm_through(package, tmp_path):
    """Bytes in on stdin, the same separation as the API on stdout, the log on stderr."""
    model, table = package
    rate, channels = 22050, 2
    wav = signal(rate, 1.7, channels, seed=4)
    pcm = wav.numpy().T.astype("<f4").tobytes()  # interleaved frames
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(os.getcwd()), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run(
        [sys.executable, "-m", "asteroid_audiosep", "stream", "-q", "dog barking", "--rate", str(rate),
         "--channels", str(channels), "--block-seconds", "0.5", "-m", str(model), "--query-embeddings", str(table),
         "--precision", "fp32", "--threads", "1", "--device", "cpu"],
        input=pcm, capture_output=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    log = proc.stderr.decode()
    assert "real-time factor" in log and "latency" in log
    assert len(proc.stdout) == len(pcm)
    got = torch.from_numpy(np.frombuffer(proc.stdout, dtype="<f4").reshape(-1, channels).T.copy())
    expected = Separator(model, "cpu", precision="fp32", query_embeddings=table, progress=False).separate_waveform(
        wav, rate, ["dog barking"], block_seconds=0.5)[0]
    assert (got - expected).abs().max().item() <= 1e-6


def test_cli_partial_trailing_frame(package):
    model, table = package
    separator = Separator(model, "cpu", precision="fp32", query_embeddings=table, progress=False)
    wav = signal(16000, 0.6, 2)
    data = wav.numpy().T.astype("<f4").tobytes() + b"\x00\x01\x02"
    sink = io.BytesIO()
    with pytest.raises(AudioSepError, match=r"3 trailing byte\(s\) of a 8-byte frame.*--channels"):
        run_stream(separator.stream(["dog barking"], 16000, 2, 0.5), io.BufferedReader(io.BytesIO(data)), sink)
    written = np.frombuffer(sink.getvalue(), dtype="<f4").reshape(-1, 2).T
    expected = separator.separate_waveform(wav, 16000, ["dog barking"], block_seconds=0.5)[0]
    assert torch.equal(torch.from_numpy(written.copy()), expected)  # every whole frame separated and written


def test_cli_takes_exactly_one_query(capsys):
    assert main(["stream", "-q", "dog", "-q", "cat", "--rate", "16000", "--channels", "1"]) == 2
    assert "one query" in capsys.readouterr().err
