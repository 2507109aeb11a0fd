"""The data guard of issue 22: one YouTube-id rule for every documented naming, stage 0 all or
nothing (staging, ``--strict`` leaves nothing new), training refusing an unchecked datafile, and
one UTF-8 reader for captions/metadata that names the file and line. Fake corpora are written by
the tests in each tool's real naming (see tests/test_data_corpora_layouts.py)."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asteroid_audiosep.data import read_datafile
from asteroid_audiosep.data.clipnames import youtube_id_keys, youtube_ids, youtube_segment_keys
from asteroid_audiosep.data.corpora import build_audiocaps_eval, prepare_audiocaps, prepare_clotho
from asteroid_audiosep.data.datafile import datafile_infos, write_datafile
from asteroid_audiosep.data.evallist import read_csv_rows, read_eval_list
from asteroid_audiosep.data.overlap import check_overlap_recorded, eval_list_clips, find_eval_overlap
from asteroid_audiosep.data.stage import prepare_from_config
from asteroid_audiosep.errors import AudioSepError

SR = 8000
YT = ["--PJHxphWEs", "_7fmOlUlwoN", "-aYumc8KoXg", "6BJ455B1aAs", "oNHCc_izsDE", "b0RFKhbpFJA"]
SCRIPT = Path(__file__).resolve().parents[1] / "egs" / "audiosep" / "prepare_data.py"
SEGMENTS_HEADER = "# Segments csv created Sun Mar  5 10:54:25 2017\n# YTID, start_seconds, end_seconds, positive_labels\n"


def _audio(path, seconds=0.5):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(path)))
    fmt = {".flac": "FLAC", ".ogg": "OGG"}.get(path.suffix)
    sf.write(path, (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32), SR, format=fmt)
    return path


def _audioset_download_tree(root):
    """AudioSet lists + audio as `audioset-download` names it: <id>_<start>-<end>.ogg."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "class_labels_indices.csv").write_text('index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/04rlf,"Music"\n')
    rows = "".join(f'{ytid}, 30.000, 40.000, "/m/09x0r,/m/04rlf"\n' for ytid in YT)
    (root / "balanced_train_segments.csv").write_text(SEGMENTS_HEADER + rows)
    for ytid in YT:
        _audio(root / "audio" / "balanced_train" / f"{ytid}_30.0-40.0.ogg")


def _audiocaps_download_tree(root):
    """audiocaps-download: <split>/<audiocap_id>.ogg, one copy per caption row."""
    root.mkdir(parents=True, exist_ok=True)
    header = "audiocap_id,youtube_id,start_time,caption\n"
    rows = [(103549 + 10 * i + j, ytid) for i, ytid in enumerate(YT[:3]) for j in range(2)]
    (root / "test.csv").write_text(header + "".join(f"{a},{y},30,caption {j} of {y}\n"
                                                    for j, (a, y) in enumerate(rows)))
    for acid, _ in rows:
        _audio(root / "test" / f"{acid}.ogg")
    return rows


def test_one_youtube_rule_reads_every_documented_naming():
    named = {
        "Y--PJHxphWEs.wav": "--PJHxphWEs",  # PANNs
        "--PJHxphWEs_30.0-40.0.ogg": "--PJHxphWEs",  # audioset-download
        "_7fmOlUlwoN_30.000_40.000.flac": "_7fmOlUlwoN",  # audiosetdl, id starting with _
        "-JUBdOr8Hes_000030.mp4": "-JUBdOr8Hes",  # VGGSound
        "-JUBdOr8Hes_30.mp4": "-JUBdOr8Hes",  # VGGSound, other downloaders
        "oNHCc_izsDE_30.flac": "oNHCc_izsDE",  # aac-datasets
        "b0RFKhbpFJA": "b0RFKhbpFJA",  # an AudioCaps id
    }
    for name, ytid in named.items():
        assert youtube_ids(name) == {ytid}, name
        assert ytid in youtube_id_keys(name.rsplit(".", 1)[0] if "." in name[-5:] else name)
    for name in ("Santa Motor.wav", "1-100032-A-0.wav", "103549.ogg", "rain.wav"):
        assert youtube_ids(name) == set(), name
    assert "-JUBdOr8Hes_000030" in youtube_segment_keys("-JUBdOr8Hes_30")


def _eval_list(folder, srcs):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "eval.csv").write_text("idx,caption,src_wav,noise_wav\n" + "".join(
        f"{i},a sound,{src},YQQQQQQQQQQQ.wav\n" for i, src in enumerate(srcs)))
    return folder / "eval.csv"


def test_audioset_download_clip_found_dropped_and_strict_fails(tmp_path):
    _audioset_download_tree(tmp_path / "as")
    eval_csv = _eval_list(tmp_path / "eval", [f"Y{YT[0]}.wav"])  # an AudioCaps test clip, PANNs name
    cfg = {"paths": {"data_dir": str(tmp_path / "data")},
           "data": {"corpora": {"audioset": {"root": str(tmp_path / "as"), "splits": ["balanced_train"]}}},
           "evaluation": {"sets": [{"name": "ac", "list": str(eval_csv)}]}}
    with pytest.raises(AudioSepError, match=r"(?s)strict.*1 clips of .*audioset_balanced_train\.json"):
        prepare_from_config(cfg, strict=True)
    assert not (tmp_path / "data" / "audioset").exists()  # --strict: nothing new left behind
    assert not list((tmp_path / "data").glob(".*staging"))
    (datafile,) = prepare_from_config(cfg)
    entries = read_datafile(datafile)
    assert len(entries) == len(YT) - 1 and not any(e["ytid"] == YT[0] for e in entries)
    assert all(e["wav"].endswith("_30.0-40.0.ogg") for e in entries)
    record = datafile_infos(datafile)["overlap_check"]
    assert record["status"] == "dropped" and record["dropped"] == 1
    assert record["eval_sets"] == [os.path.abspath(eval_csv)]


def test_strict_run_leaves_no_new_datafile_and_an_earlier_one_untouched(tmp_path):
    _audioset_download_tree(tmp_path / "as")
    cfg = {"paths": {"data_dir": str(tmp_path / "data")},
           "data": {"corpora": {"audioset": {"root": str(tmp_path / "as"), "splits": ["balanced_train"]}},
                    "eval_overlap": "fail"}}
    (datafile,) = prepare_from_config(cfg)  # no evaluation set yet: clean
    before = datafile.read_bytes()
    cfg["data"]["valid_list"] = str(_eval_list(tmp_path / "eval", [f"{YT[1]}_30.000.flac"]))
    (tmp_path / "as" / "audio" / "balanced_train" / f"{YT[2]}_30.0-40.0.ogg").unlink()
    with pytest.raises(AudioSepError, match="strict"):
        prepare_from_config(cfg)
    assert datafile.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["audioset"]


def test_all_corpora_inputs_checked_before_any_is_prepared(tmp_path):
    _audioset_download_tree(tmp_path / "as")
    cfg = {"paths": {"data_dir": str(tmp_path / "data")},
           "data": {"corpora": {"audioset": {"root": str(tmp_path / "as"), "splits": ["balanced_train"]},
                                "clotho": {"root": str(tmp_path / "as")}}}}  # no Clotho lists there
    with pytest.raises(AudioSepError, match=r"data\.corpora\.clotho: Clotho development captions not found"):
        prepare_from_config(cfg)
    assert not (tmp_path / "data").exists()


def test_audiocaps_download_lists_record_youtube_ids_and_overlap_is_found(tmp_path):
    _audiocaps_download_tree(tmp_path / "ac")
    csv_path = build_audiocaps_eval(tmp_path / "ac", tmp_path / "eval", sample_rate=SR,
                                    backgrounds_per_clip=1, allow_missing_tags=True)
    first = read_csv_rows(csv_path)[0]
    assert Path(first["src_wav"]).stem.isdigit() and first["src_ytid"] in YT[:3]
    assert {"src_ytid", "noise_ytid"}.isdisjoint(read_eval_list(csv_path)[0].queries)  # not queries
    assert set(eval_list_clips(csv_path)) >= set(YT[:3])
    # a training datafile in PANNs naming (AudioSet) and one in the same audiocaps-download layout
    _audioset_download_tree(tmp_path / "as")
    train_ac = prepare_audiocaps(tmp_path / "ac", tmp_path / "out", splits=["test"])["test"]
    assert {e["ytid"] for e in read_datafile(train_ac)} == set(YT[:3])
    assert all(Path(e["wav"]).stem.isdigit() for e in read_datafile(train_ac))
    cfg = {"paths": {"data_dir": str(tmp_path / "data")},
           "data": {"corpora": {"audioset": {"root": str(tmp_path / "as"), "splits": ["balanced_train"]}}},
           "evaluation": {"sets": [{"name": "ac", "list": str(csv_path)}]}}
    (datafile,) = prepare_from_config(cfg)
    assert {e["ytid"] for e in read_datafile(datafile)} == set(YT[3:])
    found = find_eval_overlap([train_ac], {str(csv_path): eval_list_clips(csv_path)})
    assert len(found) == 1 and len(found[0].wavs) == 3
    # the command line on such a list
    proc = subprocess.run([sys.executable, str(SCRIPT), "check-overlap", "--train", str(train_ac),
                           "--eval", str(csv_path), "--strict"], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode == 1 and "3 clips of" in proc.stderr and "strict" in proc.stderr


def test_training_refuses_a_corpus_datafile_never_checked(tmp_path, caplog):
    _audioset_download_tree(tmp_path / "as")
    from asteroid_audiosep.data.corpora import prepare_audioset

    datafile = prepare_audioset(tmp_path / "as", tmp_path / "out", splits=["balanced_train"])["balanced_train"]
    eval_csv = _eval_list(tmp_path / "eval", [f"Y{YT[0]}.wav"])
    with pytest.raises(AudioSepError, match=r"never checked.*check-overlap --train .*audioset_balanced_train"):
        check_overlap_recorded([datafile], [eval_csv])
    check_overlap_recorded([datafile], [])  # no evaluation list configured: nothing to guard
    proc = subprocess.run([sys.executable, str(SCRIPT), "check-overlap", "--train", str(datafile),
                           "--eval", str(eval_csv)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode == 0, proc.stderr
    check_overlap_recorded([datafile], [eval_csv])  # recorded by check-overlap: accepted
    later = _eval_list(tmp_path / "later", [f"{YT[3]}_000030"])  # a list made after the check
    with pytest.raises(AudioSepError, match="checked before these evaluation lists existed"):
        check_overlap_recorded([datafile], [eval_csv, later])
    # the mini corpus (synthetic) needs no check; a user's own list is only warned about
    mini = write_datafile(tmp_path / "mini.json", [{"wav": "a.wav", "caption": "x"}],
                          infos={"dataset": "mini (synthetic)"})
    own = write_datafile(tmp_path / "own.json", [{"wav": "a.wav", "caption": "x"}])
    with caplog.at_level(logging.WARNING):
        check_overlap_recorded([mini, own], [eval_csv])
    assert "own.json has no known clip identity" in caplog.text and "mini.json" not in caplog.text


def test_training_preflight_refuses_unchecked_datafile(tmp_path):
    from asteroid_audiosep.engine.train_config import check_config, resolve_train_config

    _audioset_download_tree(tmp_path / "as")
    from asteroid_audiosep.data.corpora import prepare_audioset

    datafile = prepare_audioset(tmp_path / "as", tmp_path / "out", splits=["balanced_train"])["balanced_train"]
    eval_csv = _eval_list(tmp_path / "eval", [f"Y{YT[0]}.wav"])
    cfg = resolve_train_config({"paths": {"exp_dir": str(tmp_path / "exp")},
                                "data": {"train_datafiles": [str(datafile)], "valid_list": None},
                                "evaluation": {"sets": [{"name": "x", "list": str(eval_csv)}]}})
    with pytest.raises(AudioSepError, match="never checked for clips that are also evaluation clips"):
        check_config(cfg)


def _cp1252_clotho(root):
    (root / "development").mkdir(parents=True)
    _audio(root / "development" / "a.wav")
    text = "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n" \
           "a.wav,a dog barks,a caf\u00e9 is busy,  ,x,y\n"
    (root / "clotho_captions_development.csv").write_bytes(text.encode("cp1252"))
    return root / "clotho_captions_development.csv"


def test_non_utf8_caption_file_is_named_with_its_line(tmp_path):
    path = _cp1252_clotho(tmp_path / "clotho")
    with pytest.raises(AudioSepError) as err:
        prepare_clotho(tmp_path / "clotho", tmp_path / "out", splits=["development"])
    message = str(err.value)
    assert str(path) in message and "line 2" in message and "UTF-8" in message and "cp1252" in message
    assert not (tmp_path / "out").exists()
    # the same file as an evaluation list given to check-overlap
    train = write_datafile(tmp_path / "t.json", [{"wav": "a.wav", "caption": "x"}], infos={"clip_id": "file_name"})
    proc = subprocess.run([sys.executable, str(SCRIPT), "check-overlap", "--train", str(train),
                           "--eval", str(path)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{path}, line 2" in proc.stderr


def test_bom_accepted_and_blank_captions_counted_per_file(tmp_path, caplog):
    path = _cp1252_clotho(tmp_path / "clotho")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().decode("cp1252").encode("utf-8"))  # UTF-8 + BOM
    with caplog.at_level(logging.WARNING):
        written = prepare_clotho(tmp_path / "clotho", tmp_path / "out", splits=["development"])
    (entry,) = read_datafile(written["development"])
    assert entry["captions"] == ["a dog barks", "a caf\u00e9 is busy", "x", "y"]
    assert f"{path}: 1 of 5 captions are blank" in caplog.text and "caption_3" in caplog.text
    caplog.clear()
    datafile = tmp_path / "d.json"
    datafile.write_text(json.dumps({"data": [{"wav": "a.wav", "caption": ["one", " "]},
                                             {"wav": "b.wav", "caption": "two"}]}))
    with caplog.at_level(logging.WARNING):
        assert [e["captions"] for e in read_datafile(datafile)] == [["one"], ["two"]]
    assert "1 of 3 captions are blank" in caplog.text


def test_wavcaps_audioset_sl_records_ids_and_counts_blank_captions(tmp_path, caplog):
    from asteroid_audiosep.data.corpora import prepare_wavcaps

    (tmp_path / "json_files" / "AudioSet_SL").mkdir(parents=True)
    data = [{"id": f"Y{YT[0]}.wav", "caption": "A woman speaks."}, {"id": f"Y{YT[1]}.wav", "caption": "  "}]
    (tmp_path / "json_files" / "AudioSet_SL" / "as_final.json").write_text(json.dumps({"data": data}))
    for ytid in YT[:2]:
        _audio(tmp_path / "AudioSet_SL_flac" / f"Y{ytid}.flac")
    with caplog.at_level(logging.WARNING):
        written = prepare_wavcaps(tmp_path, tmp_path / "out", sources=["AudioSet_SL"], no_blacklist=True)
    assert [(e["ytid"], e["captions"]) for e in read_datafile(written["AudioSet_SL"])] == [
        (YT[0], ["A woman speaks."])]
    assert "as_final.json: 1 of 2 captions are blank" in caplog.text and f"Y{YT[1]}" in caplog.text


def test_staging_keeps_extracted_audio_and_paths_resolve_after_the_move(tmp_path):
    from asteroid_audiosep.video import _av

    av = _av()
    root = tmp_path / "vggsound"
    (root / "video").mkdir(parents=True)
    rows = []
    for k, ytid in enumerate(YT[:3]):
        rows.append(f"{ytid},{k},dog barking,train")
        with av.open(str(root / "video" / f"{ytid}_{k:06d}.mp4"), "w") as container:  # audio-only mp4
            stream = container.add_stream("aac", rate=16000)
            frame = av.AudioFrame.from_ndarray(
                (0.3 * np.sin(np.arange(8000) / 5.0)).astype(np.float32)[None], format="fltp", layout="mono")
            frame.sample_rate = 16000
            for packet in list(stream.encode(frame)) + list(stream.encode()):
                container.mux(packet)
    (root / "vggsound.csv").write_text("\n".join(rows) + "\n")
    data = tmp_path / "data"
    cfg = {"paths": {"data_dir": str(data)},
           "data": {"corpora": {"vggsound": {"root": str(root), "extract_audio": True}}},
           "enhancement": {"list": str(_eval_list(tmp_path / "eval", [f"{YT[1]}_000001"]))}}
    with pytest.raises(AudioSepError, match="strict"):
        prepare_from_config(cfg, strict=True)
    assert sorted(p.name for p in (data / "vggsound").iterdir()) == ["audio"]  # only the extracted tracks
    assert len(list((data / "vggsound" / "audio").glob("*.wav"))) == 3 and not list(data.glob(".*"))
    stamps = {p.name: p.stat().st_mtime_ns for p in (data / "vggsound" / "audio").glob("*.wav")}
    (datafile,) = prepare_from_config(cfg)
    assert datafile == data / "vggsound" / "vggsound_train.json"
    entries = read_datafile(datafile)
    assert [e["ytid"] for e in entries] == [YT[0], YT[2]]
    assert all(Path(e["wav"]).parent == data / "vggsound" / "audio" and Path(e["wav"]).is_file() for e in entries)
    assert {p.name: p.stat().st_mtime_ns for p in (data / "vggsound" / "audio").glob("*.wav")} == stamps  # resumed
    assert not list(data.glob(".*"))


def test_stage0_into_a_symlinked_corpus_folder(tmp_path):
    _audioset_download_tree(tmp_path / "as")
    (tmp_path / "big_disk" / "audioset").mkdir(parents=True)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "audioset").symlink_to(tmp_path / "big_disk" / "audioset")
    cfg = {"paths": {"data_dir": str(tmp_path / "data")},
           "data": {"corpora": {"audioset": {"root": str(tmp_path / "as"), "splits": ["balanced_train"]}}}}
    (datafile,) = prepare_from_config(cfg)
    assert datafile == tmp_path / "big_disk" / "audioset" / "audioset_balanced_train.json"
    assert (tmp_path / "data" / "audioset").is_symlink()
    entries = read_datafile(tmp_path / "data" / "audioset" / "audioset_balanced_train.json")
    assert len(entries) == len(YT) and all(Path(e["wav"]).is_file() for e in entries)
    assert not list((tmp_path / "big_disk").glob(".*")) and not list((tmp_path / "data").glob(".*"))
