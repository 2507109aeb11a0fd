"""Inference: seam-free chunking, streaming, multi-query batches, rates/channels, file outputs."""

import math

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import DEEP_ARGS, nontrivial

import asteroid_audiosep
from asteroid_audiosep import AudioSep, AudioSepError, api
from asteroid_audiosep import apply as apply_module
from asteroid_audiosep.apply import ChunkRunner, separate_segment
from asteroid_audiosep.audio import resample
from asteroid_audiosep.outputs import MANIFEST, unique_slugs
from asteroid_audiosep.stream import (
    AudioFileSignal,
    TensorSignal,
    processing_rate,
    resample_margin,
    resample_range,
    resampled_length,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread per module


#: A small model with the released pooling depth (time pooled by 32, 0.32 s grid at 16 kHz).
@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return nontrivial(AudioSep(**DEEP_ARGS)).eval()


def snr_db(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    return 10 * math.log10(
        reference.pow(2).sum().item() / (estimate - reference).pow(2).sum().item()
    )


def make_signal(rate: int, seconds: float, channels: int = 1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * rate)) / rate
    tone = 0.3 * torch.sin(2 * math.pi * 440 * t) * (torch.sin(2 * math.pi * 0.7 * t) > 0)
    return 0.1 * torch.randn(channels, t.numel(), generator=g) + tone


def whole_clip(model, wav: torch.Tensor, rate: int, conditions: torch.Tensor) -> torch.Tensor:
    """The reference: resample the whole clip, one forward per (query, channel), resample back."""
    x = resample(wav, rate, model.sample_rate)
    outs = []
    with torch.inference_mode():
        for c in conditions:
            out = model(x[:, None], c[None].expand(x.shape[0], -1))[:, 0]
            outs.append(resample(out, model.sample_rate, rate)[..., : wav.shape[-1]])
    return torch.stack(outs)


# ---------------------------------------------------------------------------- chunking
@pytest.mark.parametrize("rate", [16000, 44100, 22050])
def test_chunk_plan_is_aligned_to_the_pooling_grid(model, rate):
    separator = ChunkRunner(model, torch.zeros(1, 24), chunk_seconds=1.0, context_seconds=0.64)
    plan = separator.plan(TensorSignal(torch.zeros(1, 7 * rate), rate, model.sample_rate))
    unit = model.time_pool_factor * model.hop_length
    assert unit == 5120
    assert plan.context % unit == 0
    assert plan.context - plan.trim >= 0.63 * model.sample_rate + plan.margin
    chunks = list(plan)
    # n = ceil(length / chunk) chunks of equal length on the grid: no sliver at the end.
    assert len(chunks) == len(plan) == 7
    assert chunks[0].start == 0 and chunks[-1].end == plan.length
    spans = [c.end - c.start for c in chunks]
    assert all(s % unit == 0 for s in spans[:-1]) and max(spans) - min(spans) < 2 * unit
    assert max(spans) <= math.ceil(model.sample_rate / unit) * unit
    for a, b in zip(chunks, chunks[1:]):
        assert a.end == b.start and b.start % unit == 0 and b.seg_start % unit == 0
    # Segments not cut by the signal's end fill whole pooling units: the network pads nothing.
    for c in [c for c in chunks if c.seg_end < plan.length]:
        assert ((c.seg_end - c.seg_start) // model.hop_length + 1) % model.time_pool_factor == 0
    # Boundaries also fall on whole resampling blocks, so they map to integer input samples.
    assert all(c.start * rate % model.sample_rate == 0 for c in chunks)


@pytest.mark.parametrize(
    "seconds, chunks", [(2, 1), (5, 1), (10, 1), (10.5, 1), (11.6, 2), (20, 2), (30, 3), (180, 18)]
)
def test_chunk_plan_wastes_nothing(model, seconds, chunks):
    """One segment's worth is one forward without context; longer signals pay context only."""
    rate = model.sample_rate
    separator = ChunkRunner(model, torch.zeros(1, 24))  # 10 s chunks, 0.64 s context
    plan = separator.plan(TensorSignal(torch.zeros(1, int(seconds * rate)), rate, rate))
    assert len(plan) == chunks  # ceil(length / 10 s), or 1 up to one segment (11.52 s)
    work = sum(c.seg_end - c.seg_start for c in plan)
    if chunks == 1:
        assert plan.context == 0 and work == plan.length
    else:
        assert work <= plan.length + 2 * plan.context * (chunks - 1)
        assert max(c.end - c.start for c in plan) <= 10.24 * rate


def test_one_segment_is_the_whole_forward(model, monkeypatch):
    wav = make_signal(16000, 10.5)
    cond = torch.randn(1, model.condition_dim, generator=torch.Generator().manual_seed(4))
    calls = []
    original = apply_module.separate_segments

    def spy(model, wavs, *args, **kwargs):
        calls.append(tuple(wavs.shape))
        return original(model, wavs, *args, **kwargs)

    monkeypatch.setattr(apply_module, "separate_segments", spy)
    out = api.separate_waveform(model, wav, 16000, ["q"], condition=cond)
    assert calls == [(1, 1, wav.shape[-1])]
    with torch.inference_mode():
        whole = model(wav[None], cond)[0]
    assert torch.equal(out[0], whole)


def test_batched_equals_unbatched(model, monkeypatch):
    wav = make_signal(16000, 7.3, 2)
    cond = torch.randn(2, model.condition_dim, generator=torch.Generator().manual_seed(5))
    kwargs = dict(condition=cond, chunk_seconds=1.0)
    calls = []
    original = apply_module.separate_segments

    def spy(model, wavs, *args, **kw):
        calls.append(wavs.shape[0])
        return original(model, wavs, *args, **kw)

    monkeypatch.setattr(apply_module, "separate_segments", spy)
    single = api.separate_waveform(model, wav, 16000, ["a", "b"], **kwargs)
    assert set(calls) == {1}
    calls.clear()
    batched = api.separate_waveform(model, wav, 16000, ["a", "b"], batch_size=16, **kwargs)
    assert max(calls) == 4 and len(calls) < len(single[0, 0]) // 16000  # 4 chunks x 2 x 2 items
    assert (batched - single).abs().max().item() <= 1e-5


@pytest.mark.parametrize("rate, channels", [(16000, 1), (44100, 2)])
def test_chunked_output_equals_whole_clip_output(model, rate, channels):
    wav = make_signal(rate, 6.0, channels)
    conditions = torch.randn(2, model.condition_dim, generator=torch.Generator().manual_seed(1))
    reference = whole_clip(model, wav, rate, conditions)
    chunked = api.separate_waveform(
        model, wav, rate, ["a", "b"], condition=conditions, chunk_seconds=1.0, context_seconds=0.64
    )
    assert chunked.shape == (2, channels, wav.shape[-1])
    assert snr_db(reference, chunked) >= 70.0


def test_misaligned_chunks_would_show_seams(model, monkeypatch):
    """The seam test above is sensitive: chunk boundaries off the pooling grid fail it."""
    wav = make_signal(16000, 6.0)
    conditions = torch.randn(1, model.condition_dim, generator=torch.Generator().manual_seed(1))
    reference = whole_clip(model, wav, 16000, conditions)
    init = ChunkRunner.__init__

    def off_grid(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.unit = 3 * model.hop_length

    monkeypatch.setattr(ChunkRunner, "__init__", off_grid)
    chunked = api.separate_waveform(
        model, wav, 16000, ["a"], condition=conditions, chunk_seconds=1.0
    )
    assert snr_db(reference, chunked) < 60.0


@pytest.mark.parametrize(
    "src, dst", [(44100, 16000), (16000, 44100), (22050, 16000), (16000, 16000)]
)
def test_resample_range_equals_whole_resampling(src, dst):
    x = torch.randn(2, src + 977, generator=torch.Generator().manual_seed(0))
    whole = resample(x, src, dst)
    assert whole.shape[-1] == resampled_length(x.shape[-1], src, dst)
    for start, end in [
        (0, 10),
        (123, 4567),
        (whole.shape[-1] - 300, whole.shape[-1]),
        (0, whole.shape[-1]),
    ]:
        part = resample_range(lambda a, b: x[:, a:b], x.shape[-1], start, end, src, dst)
        assert torch.allclose(part, whole[:, start:end], atol=1e-6)


def test_unusual_rates_round_trip(model):
    """44101 Hz has no small resampling kernel: it is processed as 44100 Hz, sample for sample."""
    assert processing_rate(44101, 16000) == 44100 and processing_rate(44100, 16000) == 44100
    wav = make_signal(44101, 1.5, 2)
    cond = torch.randn(1, 24)
    out = api.separate_waveform(model, wav, 44101, ["q"], condition=cond)
    assert out.shape == (1, 2, wav.shape[-1]) and torch.isfinite(out).all()
    as_44100 = api.separate_waveform(model, wav, 44100, ["q"], condition=cond)
    assert torch.equal(out, as_44100)


def test_files_are_streamed_in_bounded_blocks(model, tmp_path, monkeypatch):
    """Memory does not grow with the file: no read is longer than one chunk plus context."""
    path = tmp_path / "long.wav"
    sf.write(path, make_signal(44100, 12.0, 2).T.numpy(), 44100)
    reads = []
    original = AudioFileSignal.read

    def spy(self, start, end):
        reads.append(end - start)
        return original(self, start, end)

    monkeypatch.setattr(AudioFileSignal, "read", spy)
    conditions = torch.randn(1, model.condition_dim)
    report = api.separate(
        path,
        ["q"],
        model,
        tmp_path / "out",
        query_embeddings=conditions,
        progress=False,
        chunk_seconds=1.0,
    )
    assert report.ok
    separator = ChunkRunner(model, conditions, chunk_seconds=1.0)
    plan = separator.plan(AudioFileSignal(path, model.sample_rate))
    segment = plan.chunk + 2 * plan.context + plan.unit  # the longest segment, at 16 kHz
    longest = segment * 44100 / model.sample_rate + 2 * resample_margin(44100, model.sample_rate)
    assert len(reads) > 2 * len(plan) - 1 and max(reads) <= longest < 12 * 44100 / 3
    out, rate = sf.read(tmp_path / "out" / "long__q.wav", always_2d=True)
    assert rate == 44100 and out.shape == (12 * 44100, 2)


# ---------------------------------------------------------------------------- queries and channels
def test_query_batch_equals_single_query_runs(model):
    wav = make_signal(16000, 2.5, 1)
    conditions = torch.randn(3, model.condition_dim, generator=torch.Generator().manual_seed(2))
    batch = separate_segment(model, wav, conditions)
    for q in range(3):
        single = separate_segment(model, wav, conditions[q : q + 1])
        assert (batch[q] - single[0]).abs().max().item() <= 1e-5
    assert (batch[0] - batch[1]).abs().max().item() > 1e-3  # the queries do differ
    # Sub-batches give the same result.
    assert torch.allclose(separate_segment(model, wav, conditions, batch_size=2), batch, atol=1e-5)


def test_channels_are_separated_independently(model):
    wav = make_signal(16000, 2.0, 2)
    conditions = torch.randn(2, model.condition_dim)
    both = separate_segment(model, wav, conditions)
    for ch in range(2):
        alone = separate_segment(model, wav[ch : ch + 1], conditions)
        assert (both[:, ch] - alone[:, 0]).abs().max().item() <= 1e-5


def test_silent_input_gives_exact_silence(model):
    wav = torch.zeros(1, 32000)
    conditions = torch.randn(1, model.condition_dim)
    with torch.inference_mode():
        assert model(wav[None], conditions).abs().max().item() == 0.0  # what skipping relies on
    blocks = list(ChunkRunner(model, conditions).run(TensorSignal(wav, 16000, 16000)))
    assert all(b.silent for b in blocks) and all(b.targets.abs().max() == 0 for b in blocks)


@pytest.mark.parametrize("length", [1, 100, 256, 257])
def test_very_short_inputs(model, length):
    wav = torch.randn(2, length, generator=torch.Generator().manual_seed(length))
    out = api.separate_waveform(model, wav, 16000, ["q"], condition=torch.randn(1, 24))
    assert out.shape == (1, 2, length) and torch.isfinite(out).all()
    # At 44.1 kHz, too: the resampled input is shorter still.
    out = api.separate_waveform(model, wav, 44100, ["q"], condition=torch.randn(1, 24))
    assert out.shape == (1, 2, length) and torch.isfinite(out).all()


def test_non_finite_input_is_a_clear_error(model):
    wav = make_signal(16000, 1.0)
    wav[0, 100] = float("nan")
    with pytest.raises(AudioSepError, match="NaN or infinite"):
        api.separate_waveform(
            model, wav, 16000, ["q"], condition=torch.randn(1, model.condition_dim)
        )


# ---------------------------------------------------------------------------- files
def write(path, wav: torch.Tensor, rate: int):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wav.T.numpy(), rate, subtype="FLOAT" if path.suffix == ".wav" else None)
    return path


def test_stereo_44k_round_trip_and_remove_plus_target_is_the_mixture(model, tmp_path):
    wav = make_signal(44100, 3.3, 2)
    path = write(tmp_path / "in" / "song.wav", wav, 44100)
    conditions = torch.randn(2, model.condition_dim)
    report = api.separate(
        path,
        ["dog barking", "Speech!"],
        model,
        tmp_path / "out",
        mode="both",
        query_embeddings=conditions,
        progress=False,
    )
    assert report.ok, report.summary()
    names = sorted(p.name for p in (tmp_path / "out").iterdir() if p.name != MANIFEST)
    assert names == [
        "song__dog_barking.wav",
        "song__dog_barking__residual.wav",
        "song__speech.wav",
        "song__speech__residual.wav",
    ]
    mixture, _ = sf.read(path, dtype="float32", always_2d=True)
    for slug in ["dog_barking", "speech"]:
        target, rate = sf.read(
            tmp_path / "out" / f"song__{slug}.wav", dtype="float32", always_2d=True
        )
        residual, _ = sf.read(
            tmp_path / "out" / f"song__{slug}__residual.wav", dtype="float32", always_2d=True
        )
        assert rate == 44100 and target.shape == residual.shape == mixture.shape == (
            wav.shape[1],
            2,
        )
        assert np.abs(target + residual - mixture).max() <= 1e-6
        assert np.abs(target).max() > 1e-3 and np.abs(residual).max() > 1e-3
    # The file output is the in-memory API's output.
    target, _ = sf.read(tmp_path / "out" / "song__speech.wav", dtype="float32", always_2d=True)
    memory = api.separate_waveform(model, wav, 44100, ["speech"], condition=conditions[1:])
    assert np.abs(target.T - memory[0].numpy()).max() <= 1e-6


def test_existing_outputs_are_skipped_unless_overwrite(model, tmp_path):
    path = write(tmp_path / "a.wav", make_signal(16000, 1.0), 16000)
    cond = torch.randn(1, model.condition_dim)
    out = tmp_path / "out" / "a__q.wav"
    assert api.separate(
        path, "q", model, tmp_path / "out", query_embeddings=cond, progress=False
    ).ok
    out.write_bytes(b"stale")
    report = api.separate(path, "q", model, tmp_path / "out", query_embeddings=cond, progress=False)
    assert report.files[0].status == "skipped" and out.read_bytes() == b"stale"
    report = api.separate(
        path, "q", model, tmp_path / "out", query_embeddings=cond, progress=False, overwrite=True
    )
    assert report.files[0].status == "written" and sf.info(out).frames == 16000
    assert not [
        p for p in (tmp_path / "out").iterdir() if p.name.startswith(".") and p.name != MANIFEST
    ]  # no temp files left


def test_an_input_is_never_overwritten(model, tmp_path):
    a = write(tmp_path / "a.wav", make_signal(16000, 1.0), 16000)
    clash = write(tmp_path / "a__q.wav", make_signal(16000, 1.0, seed=3), 16000)
    before = clash.read_bytes()
    report = api.separate(
        [a, clash],
        "q",
        model,
        tmp_path,
        query_embeddings=torch.randn(1, 24),
        progress=False,
        overwrite=True,
    )
    assert (
        report.files[0].status == "failed" and "would overwrite an input" in report.files[0].error
    )
    assert report.files[1].status == "written"  # a__q__q.wav
    assert clash.read_bytes() == before


def test_folders_keep_their_layout_and_previous_outputs_are_not_inputs(model, tmp_path):
    write(tmp_path / "in" / "x" / "a.flac", make_signal(16000, 1.0), 16000)
    write(tmp_path / "in" / "b.wav", make_signal(8000, 1.0), 8000)
    cond = torch.randn(1, model.condition_dim)
    kwargs = dict(query_embeddings=cond, progress=False)
    assert api.separate(tmp_path / "in", "q", model, tmp_path / "in" / "sep", **kwargs).ok
    assert (tmp_path / "in" / "sep" / "x" / "a__q.flac").is_file()
    assert sf.info(tmp_path / "in" / "sep" / "b__q.wav").samplerate == 8000
    report = api.separate(tmp_path / "in", "q", model, tmp_path / "in" / "sep", **kwargs)
    assert [f.status for f in report.files] == ["skipped", "skipped"]


def test_query_slugs():
    assert api.query_slug("Dog barking!") == "dog_barking"
    assert api.query_slug("  a  cat / meowing ") == "a_cat_meowing"
    assert api.query_slug("犬の鳴き声") == "犬の鳴き声"
    assert api.query_slug("!!!") == "query"
    assert unique_slugs(["Dog", "dog!", "cat"]) == ["dog", "dog_2", "cat"]


def test_bad_queries_and_settings_are_clear_errors(model, tmp_path):
    path = write(tmp_path / "a.wav", make_signal(16000, 1.0), 16000)
    with pytest.raises(AudioSepError, match="empty string"):
        api.separate(path, ["speech", "  "], model, tmp_path / "out", progress=False)
    with pytest.raises(AudioSepError, match="mode"):
        api.separate(path, "q", model, tmp_path / "out", mode="keep", progress=False)
    with pytest.raises(AudioSepError, match="no query encoder"):
        api.separate(path, "q", model, tmp_path / "out", progress=False)
    with pytest.raises(AudioSepError, match=r"\(1, 24\)"):
        api.separate(
            path, "q", model, tmp_path / "out", query_embeddings=torch.randn(2, 24), progress=False
        )
    # The legacy half=True is fp16: refused on a CPU without fast fp16, naming the faster choice.
    with pytest.raises(AudioSepError, match="fp16 is slower than fp32 on this CPU.*use precision fp32"):
        api.separate_waveform(
            model,
            torch.randn(1, 1600),
            16000,
            "q",
            condition=torch.randn(1, 24),
            half=True,
            device="cpu",
        )


def test_public_entry_point():
    assert asteroid_audiosep.separate is api.separate
    assert "separate" in asteroid_audiosep.__all__


# ---------------------------------------------------------------------------- folders (pipeline)
def test_folder_batched_equals_unbatched_and_errors_stay_per_file(model, tmp_path, monkeypatch):
    """Short files of equal length and the chunks of a long file share network calls; a file
    that fails inside a batch fails alone, its outputs removed, the others written as unbatched.
    """
    folder = tmp_path / "in"
    for k in range(4):
        write(folder / f"clip{k}.flac", make_signal(44100, 1.5, 2, seed=k), 44100)
    write(folder / "long.wav", make_signal(44100, 4.1, 2, seed=9), 44100)
    bad = make_signal(44100, 1.5, 2, seed=7)
    bad[1, 30000] = float("nan")
    write(folder / "clip_nan.wav", bad, 44100)
    cond = torch.randn(2, model.condition_dim, generator=torch.Generator().manual_seed(6))
    kwargs = dict(query_embeddings=cond, progress=False, chunk_seconds=1.0)
    calls = []
    original = apply_module.separate_segments

    def spy(model, wavs, *args, **kw):
        calls.append(wavs.shape[0])
        return original(model, wavs, *args, **kw)

    monkeypatch.setattr(apply_module, "separate_segments", spy)
    one = api.separate(folder, ["a", "b"], model, tmp_path / "one", **kwargs)
    assert set(calls) == {1}
    calls.clear()
    many = api.separate(folder, ["a", "b"], model, tmp_path / "many", batch_size=64, **kwargs)
    assert max(calls) > 1  # segments of several files (or chunks) in one call
    for report in (one, many):
        status = {f.input.name: f.status for f in report.files}
        assert status.pop("clip_nan.wav") == "failed" and set(status.values()) == {"written"}
        assert "NaN" in report.failed[0].error
    for out in ("one", "many"):
        names = sorted(p.name for p in (tmp_path / out).iterdir() if p.name != MANIFEST)
        assert len(names) == 10 and not any("nan" in n or n.startswith(".") for n in names)
    for path in sorted(p for p in (tmp_path / "one").iterdir() if p.name != MANIFEST):
        a, rate = sf.read(path, dtype="float32", always_2d=True)
        b, _ = sf.read(tmp_path / "many" / path.name, dtype="float32", always_2d=True)
        assert rate == 44100 and a.shape == b.shape and np.abs(a - b).max() <= 1e-5


def test_output_writer_is_atomic(tmp_path):
    from asteroid_audiosep.outputs import OutputSpec, OutputWriter

    specs = [
        OutputSpec("target", 0, tmp_path / "t.wav"),
        OutputSpec("residual", 0, tmp_path / "r.wav"),
    ]
    writer = OutputWriter(specs, 8000, 1, 100)
    writer.write(torch.ones(1, 1, 100), torch.full((1, 100), 3.0))
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == []
    writer.abort()
    assert list(tmp_path.iterdir()) == []
    writer = OutputWriter(specs, 8000, 1, 100)
    writer.write(torch.ones(1, 1, 100), torch.full((1, 100), 3.0))
    assert writer.commit() == [s.path for s in specs]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.wav", "t.wav"]
    assert sf.read(tmp_path / "r.wav")[0].max() == 2.0
