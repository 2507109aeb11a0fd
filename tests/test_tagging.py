"""`tag` and `auto_queries`: CLAP-style zero-shot labels per window, with an encoder stand-in
whose embeddings make the right labels known."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import small_model_args
from tone_encoder import TONES, TextOnlyEncoder, ToneEncoder, tone

from asteroid_audiosep import AudioSep, AudioSepError, separate
from asteroid_audiosep.cli import main
from asteroid_audiosep.encoders import base as encoder_registry
from asteroid_audiosep.tagging import auto_queries, load_labels, tag_files

RATE = 16000
LABELS = list(TONES)


def _recording(tmp_path):
    """Three 2 s windows: a whistle; a beep over a quieter low hum; a mid tone."""
    windows = [tone(2000, 2, RATE), tone(1000, 2, RATE) + tone(250, 2, RATE, 0.2), tone(500, 2, RATE)]
    path = tmp_path / "scene.wav"
    sf.write(path, np.concatenate(windows), RATE, subtype="FLOAT")
    return path


def test_tag_returns_the_labels_of_each_window_in_order(tmp_path):
    enc = ToneEncoder()
    tags, errors = tag_files(enc, [_recording(tmp_path), tmp_path / "missing.wav"], LABELS, top=2,
                             window_seconds=2.0, cache_dir=tmp_path / "cache")
    assert [(t.start, t.end) for t in tags] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
    assert [t.labels[0][0] for t in tags] == ["whistle", "beep", "mid tone"]
    assert [label for label, _ in tags[1].labels] == ["beep", "low hum"]
    assert tags[1].labels[0][1] > tags[1].labels[1][1] > 0
    assert list(errors) == [str(tmp_path / "missing.wav")]  # the other file is still tagged
    # label embeddings are cached on disk: a second run embeds no text
    calls = enc.text_calls
    tag_files(enc, [_recording(tmp_path)], LABELS, window_seconds=2.0, cache_dir=tmp_path / "cache")
    assert enc.text_calls == calls and len(list((tmp_path / "cache").glob("labels-*.pt"))) == 1


def test_auto_queries_picks_the_two_most_likely_labels(tmp_path):
    wav = torch.from_numpy(tone(1000, 3, RATE) + tone(250, 3, RATE, 0.3) + tone(2000, 3, RATE, 0.05))
    queries = auto_queries(ToneEncoder(), wav, RATE, 2, labels=LABELS, cache_dir=tmp_path)
    assert [q.label for q in queries] == ["beep", "low hum"]
    assert all(q.kind == "text" and q.text_value == q.label for q in queries)
    kept = auto_queries(ToneEncoder(), wav, RATE, 2, min_score=0.6, labels=LABELS, cache_dir=tmp_path)
    assert [q.label for q in kept] == ["beep"]


def test_tag_refuses_an_encoder_without_audio_tower_and_an_empty_vocabulary(tmp_path):
    with pytest.raises(AudioSepError, match="sentence query encoder cannot embed .*clap"):
        tag_files(TextOnlyEncoder(), [_recording(tmp_path)], LABELS, cache_dir=tmp_path)
    empty = tmp_path / "labels.txt"
    empty.write_text("\n  \n")
    with pytest.raises(AudioSepError, match="has no labels: write one label per line"):
        load_labels(empty)
    assert len(load_labels()) == 527 and load_labels()[0] == "Speech"


def test_tag_command_prints_and_writes_csv_and_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(encoder_registry._REGISTRY, "tone", ToneEncoder)
    model = AudioSep(sample_rate=8000, n_fft=64, hop_length=32, channels=[4], bottleneck_channels=4,
                     pool_sizes=[[1, 2]], condition_dim=len(TONES), query_encoder={"type": "tone"})
    package = tmp_path / "model.pth"
    torch.save(model.serialize(), package)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    rec = _recording(tmp_path)
    args = ["tag", str(rec), "-m", str(package), "--labels", str(labels), "--top", "1", "--window", "2",
            "--cache-dir", str(tmp_path / "cache")]
    assert main(args + ["-o", str(tmp_path / "tags.csv")]) == 0
    out = capsys.readouterr().out
    assert "whistle" in out and "wrote" in out
    rows = (tmp_path / "tags.csv").read_text().splitlines()
    assert rows[0] == "file,start,end,rank,label,score" and [r.split(",")[4] for r in rows[1:]] == [
        "whistle", "beep", "mid tone"]
    assert main(args + ["-o", str(tmp_path / "tags.json")]) == 0
    windows = json.loads((tmp_path / "tags.json").read_text())
    assert [w["labels"][0]["label"] for w in windows] == ["whistle", "beep", "mid tone"]
    (tmp_path / "empty.txt").write_text("")
    assert main(["tag", str(rec), "-m", str(package), "--labels", str(tmp_path / "empty.txt")]) == 2
    assert "has no labels" in capsys.readouterr().err


def test_separate_auto_writes_outputs_named_after_the_two_labels(tmp_path, capsys):
    torch.manual_seed(0)
    model = AudioSep(**small_model_args(condition_dim=len(TONES)))
    model.set_query_encoder(ToneEncoder(), update_spec=False)
    mix = tone(500.0, 2.0, 16000) + tone(2000.0, 2.0, 16000, amp=0.3) + tone(250.0, 2.0, 16000, amp=0.05)
    sf.write(tmp_path / "mix.wav", mix, 16000)
    (tmp_path / "labels.txt").write_text("\n".join(TONES) + "\n")
    report = separate(tmp_path / "mix.wav", [], model=model, outdir=tmp_path / "out", auto=2,
                      labels=tmp_path / "labels.txt", progress=False)
    assert report.ok, report.summary()
    assert sorted(p.name for p in (tmp_path / "out").glob("*.wav")) == ["mix__mid_tone.wav", "mix__whistle.wav"]
    # A text-only encoder cannot tag: one clear error per file, nothing written.
    other = AudioSep(**small_model_args(condition_dim=len(TONES)))
    other.set_query_encoder(TextOnlyEncoder(), update_spec=False)
    report = separate(tmp_path / "mix.wav", [], model=other, outdir=tmp_path / "none", auto=1,
                      labels=["beep"], progress=False)
    assert not report.ok and "audio" in str(report.failed[0].error)
    assert main(["separate", "--auto", "0", "-m", "x.pth", str(tmp_path / "mix.wav")]) == 2
    assert "--auto must be >= 1" in capsys.readouterr().err


def test_a_file_is_tagged_window_by_window_as_its_waveform(tmp_path, monkeypatch):
    """--auto streams a file (10 s windows read one at a time) and finds what the whole waveform gives."""
    import soundfile

    from asteroid_audiosep.tagging import window_embeddings

    stereo = np.stack([tone(1000, 25, RATE) + tone(250, 25, RATE, 0.3), tone(2000, 25, RATE, 0.2)], axis=1)
    sf.write(tmp_path / "long.wav", stereo, RATE, subtype="FLOAT")
    reads = []
    read = soundfile.SoundFile.read
    monkeypatch.setattr(soundfile.SoundFile, "read", lambda self, n=-1, **k: reads.append(n) or read(self, n, **k))
    spans, streamed, heard = window_embeddings(ToneEncoder(), tmp_path / "long.wav", None)
    assert spans == [(0.0, 10.0), (10.0, 20.0), (20.0, 25.0)] and max(reads) == 10 * RATE  # never the whole file
    _, whole, _ = window_embeddings(ToneEncoder(), torch.from_numpy(stereo.T.copy()), RATE)
    assert torch.allclose(streamed, whole, atol=1e-6) and bool(heard.all())
    from_file = auto_queries(ToneEncoder(), tmp_path / "long.wav", None, 2, labels=LABELS, cache_dir=tmp_path)
    from_wave = auto_queries(ToneEncoder(), torch.from_numpy(stereo.T.copy()), RATE, 2, labels=LABELS,
                             cache_dir=tmp_path)
    assert [q.label for q in from_file] == [q.label for q in from_wave] == ["beep", "low hum"]
