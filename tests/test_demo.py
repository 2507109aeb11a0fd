"""``asteroid-audiosep demo`` without a browser: the CLI's options, what one request computes
(the CLI's ``separate_waveform`` output, written as the CLI writes it, in the CLI's format),
progress per stage and chunk, query inputs as ``Query`` objects, user text shown literally,
errors as page messages without server paths."""
import html
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from helpers import DEMO_ARGS, QUERIES, BandEncoder, make_demo_package, make_demo_wav, nontrivial

from asteroid_audiosep import AudioSep, AudioSepError, Query, separate_waveform
from asteroid_audiosep.cli import build_parser
from asteroid_audiosep.demo import MAX_QUERIES, DemoSeparator, collect_queries, page_response
from asteroid_audiosep.demo_support import (
    EXAMPLES,
    clean_message,
    escape_markdown,
    escape_mathtext,
    make_example_clips,
    upload_limit,
)
from asteroid_audiosep.encoders import PrecomputedQueryEncoder
from asteroid_audiosep.outputs import choose_format

#: Queries a page must show as typed (Markdown, HTML, mathtext, an outside image).
NASTY = ("<img src=http://127.0.0.1:9/x.png> $\\frac$ **bold**", "siren $\\frac$ x", "$5 and $",
         "![x](http://127.0.0.1:9/md.png) <script>alert(1)</script> &amp; _a_ `b` # c")


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
    queries = collect_queries(" dog barking \n\nspeech\ndog barking", known=["speech", "siren"])
    assert [(q.kind, q.label) for q in queries] == [("text", "dog barking"), ("text", "speech"), ("text", "siren")]
    queries = collect_queries("", example="/up/bark.wav", picture="/up/dog.png")
    assert queries == [Query.audio("/up/bark.wav"), Query.image("/up/dog.png")]  # the CLI's objects
    for empty in (None, "", "  \n "):
        with pytest.raises(AudioSepError, match="query is empty"):
            collect_queries(empty)
    with pytest.raises(AudioSepError, match=f"at most {MAX_QUERIES}"):
        collect_queries("\n".join(f"q{k}" for k in range(MAX_QUERIES + 1)))


def test_run_gives_separate_waveform_outputs(separator, package, tmp_path):
    wav_path = make_demo_wav(tmp_path / "mix.wav")
    result = separator.run(wav_path, list(QUERIES))
    spectrum, outputs = result.spectrogram, result.outputs
    assert result.format == choose_format("WAV", "FLOAT")
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
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    cases = [
        (wav_path, "", "query is empty"),
        (None, "speech", "no audio"),
        (broken, "speech", "cannot read audio file broken.wav"),
        (empty, "speech", "empty.wav is empty (0 bytes)"),
        (long_path, "speech", "--max-minutes"),
        (wav_path, "a query not in the table", "not in the embedding table"),
    ]
    for audio, text, expected in cases:
        values = page_response(separator, audio and str(audio), text)
        message = values[0]["value"]
        assert message.startswith("Error:") and expected in message, message
        assert "Traceback" not in message and str(tmp_path) not in message and "/" not in message, message
        assert all(not v["visible"] for v in values[3:])
    values = page_response(separator, str(wav_path), "speech")
    assert values[0]["value"].startswith("Separated 1 query") and "32-bit float WAV" in values[0]["value"]
    assert values[2]["label"] == "Downloads: 32-bit float WAV"
    assert values[3]["visible"] and values[4]["value"].endswith("mix__speech.wav")
    assert not values[7]["visible"]


def test_clean_message_drops_server_folders():
    upload = "/tmp/gradio/3f2a/my clip.wav"
    message = f"cannot read audio file {upload}: format not recognised (see /srv/models/x.pth)"
    assert clean_message(message, [upload]) == ("cannot read audio file my clip.wav: format not recognised "
                                                "(see x.pth)")
    assert clean_message(r"C:\Users\me\clip.wav and http://127.0.0.1:9/a/b.png") == \
        "clip.wav and http://127.0.0.1:9/a/b.png"  # URLs (e.g. in a query) are kept


def test_escape_markdown_renders_literally():
    from markdown_it import MarkdownIt

    renderer = MarkdownIt("commonmark").enable(["table", "strikethrough"])  # gfm-like, without linkify
    for text in NASTY + ("www.example.com http://127.0.0.1/x 1. list\n# heading", "a\\*b \\\\ c"):
        rendered = renderer.render(escape_markdown(text)).strip()
        assert rendered.startswith("<p>") and rendered.endswith("</p>"), rendered
        inner = rendered[3:-4]
        assert "<" not in inner and "$" not in escape_markdown(text).replace("\\$", ""), rendered
        assert html.unescape(inner) == " ".join(text.split())


def test_model_description_renders_as_its_plain_text(separator):
    import re

    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark").render(separator.describe()).strip()
    assert html.unescape(re.sub("<[^>]+>", "", rendered)) == separator.describe(markdown=False)
    assert "model.pth" in separator.describe(markdown=False) and "text" in separator.describe(markdown=False)


def test_escape_mathtext_draws_literally(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    for text in NASTY + ("a \\$ b", "$x^2$"):
        title = ax.set_title(escape_mathtext(text))
        assert title._preprocess_math(title.get_text()) == (text, False)  # drawn as typed, no mathtext
        fig.savefig(tmp_path / "t.png")  # "siren $\frac$ x" unescaped would raise here
    plt.close(fig)


class _FalsyProgress:
    """Records calls; falsy like ``gr.Progress()`` (it has ``__len__``)."""

    def __init__(self):
        self.calls = []

    def __len__(self):
        return 0

    def __call__(self, fraction, desc=None):
        self.calls.append((fraction, desc))


def test_progress_per_stage_and_chunk(separator, tmp_path, monkeypatch):
    wav_path = make_demo_wav(tmp_path / "long.wav", seconds=2.9, rate=8000, channels=1)  # under 0.05 min
    progress = _FalsyProgress()
    separator.run(wav_path, ["speech"], progress)
    descs = [d for _, d in progress.calls]
    assert descs[0] == "reading the audio" and descs[-1] == "done"
    assert "separating: chunk 1 of 1" in descs and "writing the outputs" in descs
    fractions = [f for f, _ in progress.calls]
    assert fractions == sorted(fractions)

    monkeypatch.setattr(separator, "chunk_seconds", 0.5)  # 6 chunks: each one is reported
    progress = _FalsyProgress()
    result = separator.run(wav_path, ["speech"], progress)
    chunks = [d for _, d in progress.calls if d.startswith("separating")]
    assert chunks == [f"separating: chunk {k} of {len(chunks)}" for k in range(1, len(chunks) + 1)]
    assert len(chunks) >= 5 and result.outputs


@pytest.mark.parametrize("fmt, subtype, suffix", [("WAV", "PCM_16", ".wav"), ("FLAC", "PCM_24", ".flac"),
                                                 ("OGG", "VORBIS", ".ogg")])
def test_outputs_follow_the_cli_format_rule(separator, tmp_path, fmt, subtype, suffix):
    path = tmp_path / f"clip{suffix}"
    rate = 16000
    t = np.arange(rate) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype("float32"), rate, format=fmt, subtype=subtype)
    result = separator.run(path, ["speech"])
    expected = choose_format(fmt, subtype)
    assert result.format == expected
    for out in result.outputs:
        for written in (out.target, out.residual):
            info = sf.info(written)
            assert (info.format, info.subtype, written.suffix) == (expected.container, expected.subtype,
                                                                  expected.extension)


def test_nasty_queries_are_plain_text(package, tmp_path):
    pytest.importorskip("gradio", reason="the demo extra (gradio) is not installed")
    model, _ = package
    table = PrecomputedQueryEncoder(table={q: torch.randn(DEMO_ARGS["condition_dim"]) for q in NASTY})
    sep = DemoSeparator(model, "cpu", table.save(tmp_path / "nasty.pt"), max_minutes=0.05, workdir=tmp_path / "out")
    assert sep.labels == list(NASTY)
    values = page_response(sep, str(make_demo_wav(tmp_path / "mix.wav")), "\n".join(NASTY))
    assert values[0]["value"].startswith("Separated 4 query"), values[0]["value"]
    for k, query in enumerate(NASTY):  # the heading is a plain-text component holding the query as typed
        assert values[3 + 4 * k]["value"] == query and values[6 + 4 * k]["value"].endswith(".png")


def _mean_colour_encoder():
    class PictureEncoder(BandEncoder):
        @property
        def supports_image(self):
            return True

        def encode_image(self, images):
            from PIL import Image

            rgb = [torch.tensor(np.asarray(Image.open(i).convert("RGB"), dtype=np.float32).mean((0, 1))) for i in images]
            return F.normalize(torch.stack([torch.cat([c, torch.ones(13)]) for c in rgb]), dim=-1)

    return PictureEncoder()


def test_audio_and_picture_queries_go_through_query_objects(tmp_path):
    from PIL import Image

    torch.manual_seed(0)
    model = nontrivial(AudioSep(**dict(DEMO_ARGS, condition_dim=16))).eval()
    model.set_query_encoder(_mean_colour_encoder(), update_spec=False)
    sep = DemoSeparator(model, "cpu", max_minutes=0.05, workdir=tmp_path / "out")
    assert sep.query_kinds == ["text", "audio", "image"] and sep.labels == []
    wav_path = make_demo_wav(tmp_path / "mix.wav")
    example = make_demo_wav(tmp_path / "bark.wav", seconds=1.0, rate=16000, channels=1)
    picture = tmp_path / "dog.png"
    Image.new("RGB", (8, 8), (200, 30, 60)).save(picture)
    queries = collect_queries("dog", example=str(example), picture=str(picture))
    result = sep.run(wav_path, queries)
    assert [o.query for o in result.outputs] == ["dog", "sounds like bark.wav", "looks like dog.png"]
    wav, rate = sf.read(wav_path, dtype="float32", always_2d=True)
    expected = separate_waveform(model, torch.from_numpy(wav.T), rate,
                                 ["dog", Query.audio(str(example)), Query.image(str(picture))], device="cpu")
    for out, target in zip(result.outputs, expected):
        written, _ = sf.read(out.target, dtype="float32", always_2d=True)
        assert np.abs(written.T - target.numpy()).max() < 1e-6
    assert [o.target.name for o in result.outputs] == ["mix__dog.wav", "mix__bark.wav", "mix__dog_2.wav"]


def test_examples_and_limits(tmp_path):
    first = make_example_clips(tmp_path / "a")
    again = make_example_clips(tmp_path / "b", queries=["speech"])
    assert [q for _, q in first] == [q for _, q in EXAMPLES] and [q for _, q in again] == ["speech"] * 3
    for (a, _), (b, _) in zip(first, again):
        info = sf.info(a)
        assert (info.samplerate, info.channels, info.subtype, round(info.duration, 3)) == (16000, 1, "PCM_16", 4.0)
        assert open(a, "rb").read() == open(b, "rb").read()  # deterministic
        assert sf.read(a)[0].std() > 0.01
    # A 30-minute limit accepts 30 min of 48 kHz stereo float, refuses a 2-hour 44.1 kHz 16-bit stereo file.
    assert 30 * 60 * 48000 * 2 * 4 < upload_limit(30) < 2 * 3600 * 44100 * 2 * 2
