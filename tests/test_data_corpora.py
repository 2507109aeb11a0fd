"""Corpus preparation from tiny fake trees in each published layout, and the evaluation
protocols built on them."""
import json

import numpy as np
import pytest
import soundfile as sf

from asteroid_audiosep.data import LASSEvalDataset, read_datafile
from asteroid_audiosep.data.corpora import (
    build_audiocaps_eval,
    build_clotho_eval,
    build_esc50_eval,
    build_music_eval,
    build_vggsound_eval,
    build_voicebank_eval,
    prepare_audiocaps,
    prepare_audioset,
    prepare_clotho,
    prepare_esc50,
    prepare_music,
    prepare_vggsound,
    prepare_wavcaps,
)
from asteroid_audiosep.data.corpora.common import youtube_id_keys
from asteroid_audiosep.data.datafile import datafile_infos
from asteroid_audiosep.data.evallist import read_csv_rows
from asteroid_audiosep.errors import AudioSepError

SR = 8000
IDS = ["--PJHxphWEs", "Y7fmOlUlwoNg"[1:], "-aYumc8KoXg", "6BJ455B1aAs", "oNHCc_izsDE", "abcdefghijk"]


def _audio(path, seconds=1.0, sr=SR, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(abs(hash(path.name)) % 2**32 + seed)
    sf.write(path, (rng.standard_normal(int(seconds * sr)) * rng.uniform(0.05, 0.3)).astype(np.float32), sr,
             format="FLAC" if path.suffix == ".flac" else None)
    return path


def _snr(item):
    noise = item["mixture"] - item["target"]
    return 10 * np.log10(float((item["target"] ** 2).mean() / (noise ** 2).mean()))


def test_youtube_id_keys():
    assert "--PJHxphWEs" in youtube_id_keys("Y--PJHxphWEs")
    assert "--PJHxphWEs" in youtube_id_keys("--PJHxphWEs_30.000_40.000")
    assert "--PJHxphWEs_000030" in youtube_id_keys("--PJHxphWEs_000030")


def _audioset_tree(root, use_ontology=False):
    classes = [("/m/09x0r", "Speech"), ("/m/04rlf", "Music"), ("/m/0838f", "Water"), ("/t/dd00088", "Inside, small room")]
    if use_ontology:
        (root / "ontology.json").write_text(json.dumps([{"id": m, "name": n, "child_ids": []} for m, n in classes]))
    else:
        lines = ["index,mid,display_name"] + [f'{i},{m},"{n}"' for i, (m, n) in enumerate(classes)]
        (root / "class_labels_indices.csv").write_text("\n".join(lines) + "\n")
    header = "# Segments csv created Sun Mar  5 10:54:25 2017\n# num_ytids=4\n# YTID, start_seconds, end_seconds, positive_labels\n"
    rows = [f'{IDS[0]}, 30.000, 40.000, "/m/09x0r,/t/dd00088"', f'{IDS[1]}, 0.000, 10.000, "/m/04rlf"',
            f'{IDS[2]}, 10.000, 20.000, "/m/0838f"', f'{IDS[3]}, 5.000, 15.000, "/m/04rlf,/m/0838f"']
    (root / "balanced_train_segments.csv").write_text(header + "\n".join(rows) + "\n")
    (root / "eval_segments.csv").write_text(header + f'{IDS[4]}, 0.000, 10.000, "/m/09x0r"\n'
                                            f'{IDS[5]}, 0.000, 10.000, "/m/0838f"\n')
    _audio(root / "audio" / "bal" / f"Y{IDS[0]}.wav")
    _audio(root / "audio" / "bal" / f"{IDS[1]}_0.000.flac")
    _audio(root / "audio" / f"{IDS[2]}.wav")  # IDS[3] was not downloaded
    _audio(root / "audio" / "eval" / f"Y{IDS[4]}.wav")
    _audio(root / "audio" / "eval" / f"Y{IDS[5]}.wav")


@pytest.mark.parametrize("use_ontology", [False, True])
def test_audioset(tmp_path, caplog, use_ontology):
    _audioset_tree(tmp_path, use_ontology)
    written = prepare_audioset(tmp_path, tmp_path / "out", splits=["balanced_train", "eval"])
    entries = read_datafile(written["balanced_train"])
    assert len(entries) == 3 and "1 of 4 clips" in caplog.text
    assert entries[0]["labels"] == ["Speech", "Inside, small room"]
    assert entries[0]["captions"] == ["Speech, Inside, small room"]
    assert entries[1]["wav"].endswith(f"{IDS[1]}_0.000.flac")
    assert datafile_infos(written["eval"])["dataset"] == "AudioSet"
    with pytest.raises(AudioSepError, match="no audio file for 1 of 4"):
        prepare_audioset(tmp_path, tmp_path / "out2", splits=["balanced_train"], skip_missing=False)


def test_vggsound(tmp_path):
    labels = ["playing accordion", "dog barking", "sea lion barking"]
    rows = []
    for k, ytid in enumerate(IDS):
        split = "train" if k < 2 else "test"
        rows.append(f"{ytid},{10 * k},{labels[k % 3]},{split}")
        _audio(tmp_path / "audio" / f"{ytid}_{10 * k:06d}.wav", seconds=1.0, seed=k)
    (tmp_path / "vggsound.csv").write_text("\n".join(rows) + "\n")
    entries = read_datafile(prepare_vggsound(tmp_path, tmp_path / "out")["train"])
    assert [e["captions"] for e in entries] == [["playing accordion"], ["dog barking"]]
    csv_path = build_vggsound_eval(tmp_path, tmp_path / "eval", sample_rate=SR, num_mixtures=6, seed=1)
    rows = read_csv_rows(csv_path)
    assert len(rows) == 6
    import pyloudnorm

    meter = pyloudnorm.Meter(SR)
    ds = LASSEvalDataset(csv_path)
    for row, item in zip(rows, ds):
        target_label = row["caption"]
        noise_key = row["file_id"].split("+++")[1]
        assert target_label != labels[IDS.index(noise_key[:11]) % 3]
        assert -35 <= float(row["target_lufs"]) <= -25 and -35 <= float(row["background_lufs"]) <= -25
        assert float(item["mixture"].abs().max()) <= 0.9 + 1e-5
        measured = meter.integrated_loudness(item["target"].double().numpy() / float(row["scale"]))
        assert measured == pytest.approx(float(row["target_lufs"]), abs=0.2)


def _audiocaps_tree(root):
    root.mkdir(parents=True, exist_ok=True)
    header = "audiocap_id,youtube_id,start_time,caption\n"
    (root / "train.csv").write_text(header + f'1,{IDS[0]},30,"A man speaks, then water runs"\n2,{IDS[1]},0,Music plays\n')
    test = "".join(f"{10 + 5 * i + j},{ytid},0,caption {j} of {ytid}\n" for i, ytid in enumerate(IDS) for j in range(5))
    (root / "test.csv").write_text(header + test)
    for ytid in IDS:
        _audio(root / "audio" / f"Y{ytid}.wav", seconds=1.0)


def test_audiocaps(tmp_path):
    _audiocaps_tree(tmp_path / "ac")
    written = prepare_audiocaps(tmp_path / "ac", tmp_path / "out", splits=["train", "test"])
    train = read_datafile(written["train"])
    assert train[0]["captions"] == ["A man speaks, then water runs"]
    assert len(read_datafile(written["test"])[0]["captions"]) == 5
    # tags from AudioSet lists: IDS[0], IDS[4] speech; IDS[1], IDS[3] music; IDS[2], IDS[3], IDS[5] water
    (tmp_path / "as").mkdir()
    _audioset_tree(tmp_path / "as")
    csv_path = build_audiocaps_eval(tmp_path / "ac", tmp_path / "eval", audioset_root=tmp_path / "as",
                                    sample_rate=SR, backgrounds_per_clip=2, seed=0)
    rows = read_csv_rows(csv_path)
    tags = {IDS[0]: {"Speech", "Inside, small room"}, IDS[1]: {"Music"}, IDS[2]: {"Water"},
            IDS[3]: {"Music", "Water"}, IDS[4]: {"Speech"}, IDS[5]: {"Water"}}
    assert len(rows) == 2 * len(IDS)
    for row in rows:
        src, noise = row["src_wav"][1:12], row["noise_wav"][1:12]
        assert src != noise and not tags[src] & tags[noise]
        assert row["caption"].endswith(src)
    first = [r for r in rows if r["src_wav"][1:12] == IDS[0]]
    assert [r["caption"] for r in first] == [f"caption 0 of {IDS[0]}", f"caption 1 of {IDS[0]}"]
    assert len({r["noise_wav"] for r in first}) == 2
    ds = LASSEvalDataset(csv_path, query_column="labels")
    assert abs(_snr(ds[0])) < 0.01


def _clotho_tree(root):
    for split, names in [("development", ["a b.wav", "c,d.wav"]), ("evaluation", [f"e{i}.wav" for i in range(4)])]:
        lines = ["file_name,caption_1,caption_2,caption_3,caption_4,caption_5"]
        for name in names:
            lines.append(f'"{name}",' + ",".join(f'"{name} caption {k}, with comma"' for k in range(1, 6)))
            _audio(root / split / name, seconds=1.0 + 0.25 * len(lines))
        (root / f"clotho_captions_{split}.csv").write_text("\n".join(lines) + "\n")


def test_clotho(tmp_path):
    _clotho_tree(tmp_path)
    entries = read_datafile(prepare_clotho(tmp_path, tmp_path / "out", splits=["development"])["development"])
    assert entries[1]["wav"].endswith("c,d.wav") and len(entries[1]["captions"]) == 5
    assert entries[0]["captions"][0] == "a b.wav caption 1, with comma"
    csv_path = build_clotho_eval(tmp_path, tmp_path / "eval", sample_rate=SR, seed=3)
    rows = read_csv_rows(csv_path)
    assert len(rows) == 4 * 5
    for row in rows:
        assert len({row["src_wav"], row["noise_wav1"], row["noise_wav2"]}) == 3
    ds = LASSEvalDataset(csv_path)
    assert all(abs(_snr(ds[i])) < 0.01 for i in range(0, 20, 5))
    # the background is two clips end to end, cut to the target's length
    assert ds[0]["mixture"].shape == ds[0]["target"].shape == (int(1.5 * SR),)


def test_wavcaps(tmp_path):
    fsd = {"num_captions_per_audio": 1, "data": [
        {"id": "180913", "file_name": "UK Mello.wav", "caption": "A mellow tune plays.", "audio": "wav_path", "duration": 1.0},
        {"id": "999", "caption": "Missing audio.", "audio": "wav_path", "duration": 1.0}]}
    asl = {"data": [{"id": "Yb0RFKhbpFJA.wav", "caption": "Rain falls on a roof.", "audio": "wav_path", "duration": 10.0}]}
    (tmp_path / "json_files" / "FreeSound").mkdir(parents=True)
    (tmp_path / "json_files" / "AudioSet_SL").mkdir(parents=True)
    (tmp_path / "json_files" / "FreeSound" / "fsd_final.json").write_text(json.dumps(fsd))
    (tmp_path / "json_files" / "AudioSet_SL" / "as_final.json").write_text(json.dumps(asl))
    _audio(tmp_path / "Zip_files" / "FreeSound_flac" / "180913.flac")
    _audio(tmp_path / "AudioSet_SL" / "Yb0RFKhbpFJA.flac")
    written = prepare_wavcaps(tmp_path, tmp_path / "out", sources=["FreeSound", "AudioSet_SL"])
    fs = read_datafile(written["FreeSound"])
    assert [e["captions"] for e in fs] == [["A mellow tune plays."]] and fs[0]["wav"].endswith("180913.flac")
    assert read_datafile(written["AudioSet_SL"])[0]["captions"] == ["Rain falls on a roof."]
    with pytest.raises(AudioSepError, match="BBC_Sound_Effects"):
        prepare_wavcaps(tmp_path, tmp_path / "out", sources=["BBC_Sound_Effects"])


def test_esc50(tmp_path):
    lines = ["filename,fold,target,category,esc10,src_file,take"]
    for c, category in enumerate(["dog", "chirping_birds", "rain"]):
        for k in range(3):
            name = f"{k + 1}-{100 + c}-A-{c}.wav"
            lines.append(f"{name},{k + 1},{c},{category},False,{100 + c},A")
            _audio(tmp_path / "audio" / name, seconds=0.5)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "esc50.csv").write_text("\n".join(lines) + "\n")
    entries = read_datafile(prepare_esc50(tmp_path, tmp_path / "out")["all"])
    assert len(entries) == 9 and entries[3]["captions"] == ["chirping birds"]
    csv_path = build_esc50_eval(tmp_path, tmp_path / "eval", sample_rate=SR, pairs_per_class=2, seed=0)
    rows = read_csv_rows(csv_path)
    assert [r["caption"] for r in rows] == ["chirping birds"] * 2 + ["dog"] * 2 + ["rain"] * 2
    for row in rows:
        assert row["src_wav"].split("-")[-1] != row["noise_wav"].split("-")[-1]  # other class
    assert abs(_snr(LASSEvalDataset(csv_path)[0])) < 0.01
    again = build_esc50_eval(tmp_path, tmp_path / "eval2", sample_rate=SR, pairs_per_class=2, seed=0)
    assert again.read_bytes() == csv_path.read_bytes()


@pytest.mark.parametrize("with_json", [False, True])
def test_music(tmp_path, with_json):
    instruments = {"accordion": ["Y1mCi6eWXVb"], "acoustic_guitar": ["X4UWEifacwI", "kuNep98Fd8o"], "erhu": ["abcdefghijk"]}
    for name, ids in instruments.items():
        for k, ytid in enumerate(ids):
            folder = tmp_path / "audio" if with_json else tmp_path / name
            _audio(folder / f"{ytid}.wav", seconds=2.5 + k)  # 2 or 3 whole 1-s segments
    if with_json:
        (tmp_path / "MUSIC_solo_videos.json").write_text(json.dumps({"videos": instruments}))
    entries = read_datafile(prepare_music(tmp_path, tmp_path / "out")["all"])
    assert sorted(e["captions"][0] for e in entries) == ["accordion", "acoustic guitar", "acoustic guitar", "erhu"]
    csv_path = build_music_eval(tmp_path, tmp_path / "eval", sample_rate=SR, segment_seconds=1.0, seed=0)
    rows = read_csv_rows(csv_path)
    segments = 2 + (2 + 3) + 2
    assert len(rows) == segments * 2  # every segment with each of the 2 other instruments
    ds = LASSEvalDataset(csv_path)
    assert {it.group for it in ds.items} == {"accordion", "acoustic guitar", "erhu"}
    item = ds[0]
    assert item["target"].shape == (SR,) and abs(_snr(item)) < 0.01
    assert rows[1]["src_wav"] == "Y1mCi6eWXVb_0.wav"


def test_voicebank(tmp_path):
    for k in range(3):
        _audio(tmp_path / "clean_testset_wav" / f"p232_00{k}.wav", seconds=0.5, sr=48000)
        _audio(tmp_path / "noisy_testset_wav" / f"p232_00{k}.wav", seconds=0.5, sr=48000, seed=9)
    _audio(tmp_path / "noisy_testset_wav" / "p232_009.wav", seconds=0.5, sr=48000)
    csv_path = build_voicebank_eval(tmp_path, tmp_path / "eval")
    ds = LASSEvalDataset(csv_path)
    assert len(ds) == 3 and ds.queries() == ["speech"] and ds[2]["id"] == "p232_002"
    assert ds[0]["mixture"].shape == (8000,)
    clean, _ = sf.read(tmp_path / "clean_testset_wav" / "p232_000.wav")
    assert np.corrcoef(clean[::3][:7000], ds[0]["target"].numpy()[:7000])[0, 1] > 0.5


def test_missing_layouts_say_what_is_expected(tmp_path):
    with pytest.raises(AudioSepError, match="docs/data.md"):
        prepare_esc50(tmp_path, tmp_path / "out")
    with pytest.raises(AudioSepError, match="vggsound.csv"):
        prepare_vggsound(tmp_path, tmp_path / "out")
    with pytest.raises(AudioSepError, match="Clotho"):
        prepare_clotho(tmp_path, tmp_path / "out")
