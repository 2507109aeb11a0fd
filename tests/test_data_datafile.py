"""Datafiles in the released format: reading, writing, relative paths, errors."""
import json

import numpy as np
import pytest
import soundfile as sf

from asteroid_audiosep.data.datafile import (
    datafile_infos,
    drop_missing,
    read_datafile,
    write_datafile,
)
from asteroid_audiosep.errors import AudioSepError


def test_reads_released_format_and_resolves_relative_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "train.json"
    path.write_text(json.dumps({"data": [
        {"wav": "a.wav", "caption": "a dog barks"},
        {"wav": "/abs/b.wav", "caption": ["rain falls", " ", "heavy rain"], "labels": ["Rain"], "duration": 3},
    ]}))
    entries = read_datafile(path)
    assert entries[0]["wav"] == str(tmp_path.resolve() / "sub" / "a.wav")
    assert entries[0]["captions"] == ["a dog barks"] and entries[0]["labels"] == []
    assert entries[1]["wav"] == "/abs/b.wav"
    assert entries[1]["captions"] == ["rain falls", "heavy rain"]
    assert entries[1]["labels"] == ["Rain"] and entries[1]["duration"] == 3


def test_write_then_read_round_trip_keeps_released_shape(tmp_path):
    audio = tmp_path / "audio" / "x.wav"
    entries = [{"wav": str(audio), "captions": ["one"]}, {"wav": str(audio), "caption": ["p", "q"], "labels": ["L"]}]
    out = write_datafile(tmp_path / "lists" / "d.json", entries, infos={"dataset": "toy"})
    raw = json.loads(out.read_text())
    assert raw["data"][0] == {"wav": "../audio/x.wav", "caption": "one"}  # a plain string, as released
    assert raw["data"][1]["caption"] == ["p", "q"] and raw["data"][1]["labels"] == ["L"]
    back = read_datafile(out)
    assert back[0]["wav"] == str(audio.resolve()) and back[1]["captions"] == ["p", "q"]
    assert datafile_infos(out) == {"dataset": "toy"}


def test_relative_paths_given_to_the_writer_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    # As `./run.sh --data_dir data` writes them: the clips and the datafile both under data/.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "mini" / "audio").mkdir(parents=True)
    sf.write(tmp_path / "data" / "mini" / "audio" / "x.wav", np.zeros(160), 16000)
    out = write_datafile("data/mini/train.json", [{"wav": "data/mini/audio/x.wav", "caption": "x"}])
    assert json.loads(out.read_text())["data"][0]["wav"] == "audio/x.wav"
    monkeypatch.chdir(tmp_path / "data")  # read from elsewhere: still the same file
    assert read_datafile(tmp_path / "data" / "mini" / "train.json")[0]["wav"] == str(
        (tmp_path / "data" / "mini" / "audio" / "x.wav").resolve())
    assert drop_missing(read_datafile(tmp_path / "data" / "mini" / "train.json"))


@pytest.mark.parametrize("content, match", [
    ("not json", "cannot read"),
    (json.dumps([{"wav": "a", "caption": "b"}]), "released format"),
    (json.dumps({"data": [{"caption": "b"}]}), "'wav'"),
    (json.dumps({"data": [{"wav": "a"}]}), "caption"),
    (json.dumps({"data": [{"wav": "a", "caption": 3}]}), "string"),
    (json.dumps({"data": [{"wav": "a", "caption": ["", " "]}]}), "empty"),
])
def test_malformed_datafiles_raise_clear_errors(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(AudioSepError, match=match):
        read_datafile(path)


def test_missing_datafile_raises(tmp_path):
    with pytest.raises(AudioSepError, match="not found"):
        read_datafile(tmp_path / "nope.json")


def test_missing_audio_is_reported_or_skipped(tmp_path, caplog):
    good = tmp_path / "good.wav"
    sf.write(good, np.zeros(100, dtype=np.float32), 16000)
    entries = [{"wav": str(good)}] + [{"wav": str(tmp_path / f"gone{i}.wav")} for i in range(7)]
    with pytest.raises(AudioSepError, match=r"7 of 8 audio files .* missing.*gone0\.wav.*\.\.\."):
        drop_missing(entries)
    assert drop_missing(entries, skip_missing=True) == entries[:1]
    assert "7 of 8" in caplog.text
