"""Corpora as users have them (issue 18): downloader layouts, WavCaps blacklists, the AudioCaps
tag check, all-or-nothing preparation and the train/evaluation overlap check, on fake folders
written in the real formats (``#`` header lines, quoted multi-label fields, CRLF, captions on
non-adjacent rows, Clotho names with commas, WavCaps JSON with the Zip_files nesting)."""

import json
import logging

import numpy as np
import pytest
import soundfile as sf

from asteroid_audiosep.data import read_datafile
from asteroid_audiosep.data.corpora import (
    build_audiocaps_eval,
    check_corpus_options,
    prepare_audiocaps,
    prepare_audioset,
    prepare_clotho,
    prepare_corpus,
    prepare_vggsound,
    prepare_wavcaps,
)
from asteroid_audiosep.data.corpora.audioset import read_ontology_relatives
from asteroid_audiosep.data.datafile import datafile_infos
from asteroid_audiosep.data.evallist import read_csv_rows
from asteroid_audiosep.data.overlap import (
    dropped_summary,
    eval_list_clips,
    find_eval_overlap,
    remove_eval_overlap,
    youtube_ids,
)
from asteroid_audiosep.errors import AudioSepError

SR = 8000
YT = ["--PJHxphWEs", "7fmOlUlwoNg", "-aYumc8KoXg", "6BJ455B1aAs", "oNHCc_izsDE", "b0RFKhbpFJA"]
SEGMENTS_HEADER = (
    "# Segments csv created Sun Mar  5 10:54:25 2017\n# num_ytids=6, num_segs=6, "
    "num_unique_labels=4, num_positive_labels=8\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
)
# ontology.json as published: Human voice > Speech > Female speech; Music unrelated
ONTOLOGY = [
    {
        "id": "/m/09l8g",
        "name": "Human voice",
        "description": "",
        "citation_uri": "",
        "positive_examples": [],
        "child_ids": ["/m/09x0r"],
        "restrictions": [],
    },
    {
        "id": "/m/09x0r",
        "name": "Speech",
        "description": "",
        "citation_uri": "",
        "positive_examples": [],
        "child_ids": ["/m/02zsn"],
        "restrictions": [],
    },
    {
        "id": "/m/02zsn",
        "name": "Female speech, woman speaking",
        "description": "",
        "citation_uri": "",
        "positive_examples": [],
        "child_ids": [],
        "restrictions": [],
    },
    {
        "id": "/m/04rlf",
        "name": "Music",
        "description": "",
        "citation_uri": "",
        "positive_examples": [],
        "child_ids": [],
        "restrictions": [],
    },
]


def _audio(path, seconds=0.5, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + len(str(path)))
    sf.write(
        path,
        (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32),
        SR,
        format="FLAC" if path.suffix == ".flac" else ("OGG" if path.suffix == ".ogg" else None),
    )
    return path


def _audiocaps_csvs(folder):
    """train: one caption per clip; test: five per clip, rows interleaved, CRLF line ends."""
    folder.mkdir(parents=True, exist_ok=True)
    header = "audiocap_id,youtube_id,start_time,caption\r\n"
    train = f'91139,{YT[0]},30,"A woman talks, then music plays"\r\n58146,{YT[1]},0,Music plays\r\n'
    (folder / "train.csv").write_bytes((header + train).encode())
    test = [
        (100 + 10 * i + j, ytid, f"caption {j} of {ytid}")
        for j in range(5)
        for i, ytid in enumerate(YT)
    ]
    rows = "".join(f'{acid},{ytid},0,"{cap}"\r\n' for acid, ytid, cap in test)  # non-adjacent rows
    (folder / "test.csv").write_bytes((header + rows).encode())
    return test


def test_audiocaps_download_layout_finds_every_clip_and_five_captions(tmp_path):
    test = _audiocaps_csvs(tmp_path)
    _audio(tmp_path / "train" / "91139.ogg")
    _audio(tmp_path / "train" / "58146.ogg")
    for acid, _, _ in test:  # audiocaps-download: one copy per caption row, named by audiocap_id
        _audio(tmp_path / "test" / f"{acid}.ogg")
    written = prepare_audiocaps(tmp_path, tmp_path / "out", splits=["train", "test"])
    train, test_entries = read_datafile(written["train"]), read_datafile(written["test"])
    assert len(train) == 2 and train[0]["captions"] == ["A woman talks, then music plays"]
    assert len(test_entries) == len(YT)
    for entry, ytid in zip(test_entries, YT):
        assert entry["captions"] == [f"caption {j} of {ytid}" for j in range(5)]


def test_aac_datasets_layout(tmp_path):
    _audiocaps_csvs(tmp_path / "AUDIOCAPS" / "csv_files_v1")
    for ytid in YT:
        _audio(tmp_path / "AUDIOCAPS" / "audio_32000Hz" / "test" / f"{ytid}_0.flac")
    entries = read_datafile(prepare_audiocaps(tmp_path, tmp_path / "out", splits=["test"])["test"])
    assert [e["wav"].rsplit("/", 1)[1] for e in entries] == [f"{y}_0.flac" for y in YT]


def _audioset_lists(root, tagged, ontology=True):
    names = [(o["id"], o["name"]) for o in ONTOLOGY]
    (root / "class_labels_indices.csv").write_text(
        "index,mid,display_name\n" + "".join(f'{i},{m},"{n}"\n' for i, (m, n) in enumerate(names))
    )
    if ontology:
        (root / "ontology.json").write_text(json.dumps(ONTOLOGY))
    rows = "".join(f'{ytid}, 0.000, 10.000, "{mids}"\n' for ytid, mids in tagged.items())
    (root / "unbalanced_train_segments.csv").write_text(SEGMENTS_HEADER + rows)


def _audiocaps_test_audio(root):
    _audiocaps_csvs(root)
    for ytid in YT:
        _audio(root / "audio" / f"Y{ytid}.wav", seed=YT.index(ytid))


def test_audiocaps_eval_fails_without_tags_naming_the_list(tmp_path):
    _audiocaps_test_audio(tmp_path / "ac")
    (tmp_path / "as").mkdir()
    _audioset_lists(tmp_path / "as", {YT[0]: "/m/09x0r"})  # only 1 of 6 test clips tagged
    with pytest.raises(AudioSepError, match=r"5 of 6 clips.*unbalanced_train_segments\.csv"):
        build_audiocaps_eval(
            tmp_path / "ac", tmp_path / "eval", audioset_root=tmp_path / "as", sample_rate=SR
        )
    with pytest.raises(AudioSepError, match="6 of 6 clips"):
        build_audiocaps_eval(tmp_path / "ac", tmp_path / "eval", sample_rate=SR)
    assert not (tmp_path / "eval" / "eval.csv").exists()


def test_audiocaps_eval_missing_tags_allowed_is_counted_and_no_empty_labels_column(
    tmp_path, caplog
):
    _audiocaps_test_audio(tmp_path / "ac")
    csv_path = build_audiocaps_eval(
        tmp_path / "ac",
        tmp_path / "eval",
        sample_rate=SR,
        backgrounds_per_clip=1,
        allow_missing_tags=True,
    )
    assert "6 of 6 clips" in caplog.text
    assert "labels" not in read_csv_rows(csv_path)[0]


def test_audiocaps_eval_compares_tags_through_the_ontology(tmp_path):
    _audiocaps_test_audio(tmp_path / "ac")
    (tmp_path / "as").mkdir()
    # target "Speech"; backgrounds "Female speech" (descendant), "Human voice" (ancestor), Music
    tagged = {
        YT[0]: "/m/09x0r",
        YT[1]: "/m/02zsn",
        YT[2]: "/m/02zsn",
        YT[3]: "/m/09l8g",
        YT[4]: "/m/04rlf",
        YT[5]: "/m/04rlf",
    }
    _audioset_lists(tmp_path / "as", tagged)
    relatives = read_ontology_relatives(tmp_path / "as" / "ontology.json")
    assert relatives["Speech"] == {"Speech", "Human voice", "Female speech, woman speaking"}
    assert "Music" not in relatives["Female speech, woman speaking"]
    csv_path = build_audiocaps_eval(
        tmp_path / "ac",
        tmp_path / "eval",
        audioset_root=tmp_path / "as",
        sample_rate=SR,
        backgrounds_per_clip=2,
        seed=0,
    )
    rows = read_csv_rows(csv_path)
    speech = [r for r in rows if r["src_wav"][1:12] == YT[0]]
    assert len(speech) == 2 and {r["noise_wav"][1:12] for r in speech} == {YT[4], YT[5]}
    assert all(r["labels"] for r in rows)
    # without the ontology the exact-label rule lets "Female speech" behind "Speech"
    (tmp_path / "as" / "ontology.json").unlink()
    rows = read_csv_rows(
        build_audiocaps_eval(
            tmp_path / "ac",
            tmp_path / "eval2",
            audioset_root=tmp_path / "as",
            sample_rate=SR,
            backgrounds_per_clip=5,
            seed=0,
        )
    )
    assert {YT[1], YT[2]} <= {r["noise_wav"][1:12] for r in rows if r["src_wav"][1:12] == YT[0]}


def _wavcaps_tree(root, bare_soundbible=False):
    asl = {
        "num_captions_per_audio": 1,
        "data": [
            {
                "id": f"Y{YT[0]}.wav",
                "caption": "A woman speaks.",
                "audio": "wav_path",
                "duration": 10.0,
            },
            {
                "id": f"Y{YT[5]}.wav",
                "caption": "Rain falls on a roof.",
                "audio": "wav_path",
                "duration": 10.0,
            },
        ],
    }
    (root / "json_files" / "AudioSet_SL").mkdir(parents=True)
    (root / "json_files" / "AudioSet_SL" / "as_final.json").write_text(json.dumps(asl))
    sb = [
        {
            "id": "1234",
            "title": "Bell",
            "caption": "A bell rings.",
            "audio": "wav_path",
            "duration": 2.0,
        }
    ]
    (root / "json_files" / "SoundBible").mkdir(parents=True)
    (root / "json_files" / "SoundBible" / "sb_final.json").write_text(
        json.dumps(sb if bare_soundbible else {"data": sb})
    )
    nested = (
        root
        / "Zip_files"
        / "AudioSet_SL"
        / "mnt"
        / "fast"
        / "nobackup"
        / "scratch4weeks"
        / "AudioSet_SL_flac"
    )
    _audio(nested / f"Y{YT[0]}.flac")
    _audio(nested / f"Y{YT[5]}.flac")
    _audio(root / "Zip_files" / "SoundBible" / "mnt" / "SoundBible_flac" / "1234.flac")
    (root / "json_files" / "blacklist").mkdir()
    # the AudioCaps-test blacklist lists YT[0]; the exclude_all list is not applied by default
    (root / "json_files" / "blacklist" / "blacklist_exclude_test_ac.json").write_text(
        json.dumps({"AudioSet": [f"Y{YT[0]}.wav"], "FreeSound": ["180913.wav"]})
    )
    (root / "json_files" / "blacklist" / "blacklist_exclude_all_ac.json").write_text(
        json.dumps({"AudioSet": [f"Y{YT[0]}.wav", f"Y{YT[5]}.wav"], "FreeSound": []})
    )


def test_wavcaps_blacklist_applied_by_default_and_counted(tmp_path, caplog):
    _wavcaps_tree(tmp_path, bare_soundbible=True)
    written = prepare_wavcaps(tmp_path, tmp_path / "out", sources=["AudioSet_SL", "SoundBible"])
    entries = read_datafile(written["AudioSet_SL"])
    assert [e["captions"] for e in entries] == [["Rain falls on a roof."]]
    dropped = datafile_infos(written["AudioSet_SL"])["dropped_clips"]
    assert dropped == {"blacklist": 1, "blacklist_exclude_test_ac.json": 1}
    assert read_datafile(written["SoundBible"])[0]["captions"] == [
        "A bell rings."
    ]  # older bare list
    assert "0 clips dropped for overlap" in dropped_summary([written["AudioSet_SL"]])
    assert "1 by the WavCaps blacklists" in dropped_summary([written["AudioSet_SL"]])
    with caplog.at_level(logging.WARNING):
        kept = prepare_wavcaps(
            tmp_path, tmp_path / "out2", sources=["AudioSet_SL"], no_blacklist=True
        )
    assert len(read_datafile(kept["AudioSet_SL"])) == 2 and "no blacklist applied" in caplog.text
    only_all = tmp_path / "json_files" / "blacklist" / "blacklist_exclude_all_ac.json"
    with pytest.raises(AudioSepError, match="every clip is blacklisted"):
        prepare_wavcaps(tmp_path, tmp_path / "out3", sources=["AudioSet_SL"], blacklist=[only_all])
    with pytest.raises(AudioSepError, match="blacklist not found"):
        prepare_wavcaps(
            tmp_path, tmp_path / "out3", sources=["AudioSet_SL"], blacklist=[tmp_path / "nope"]
        )


def _clotho_tree(root, splits=("development", "evaluation")):
    names = {
        "development": ["Uh, Hi, Mom. I Crashed the Car.wav", "Santa Motor.wav", "rain.wav"],
        "evaluation": ["Santa Motor.wav", "wind.wav"],
    }
    for split in splits:
        lines = ["file_name,caption_1,caption_2,caption_3,caption_4,caption_5"]
        for name in names[split]:
            lines.append(f'"{name}",' + ",".join(f'"{name} caption {k}"' for k in range(1, 6)))
            _audio(root / split / name)
        (root / f"clotho_captions_{split}.csv").write_text("\n".join(lines) + "\n")


def test_missing_split_input_leaves_no_partial_datafile(tmp_path):
    _clotho_tree(tmp_path / "clotho", splits=("development",))  # no validation split
    with pytest.raises(AudioSepError, match="validation"):
        prepare_clotho(tmp_path / "clotho", tmp_path / "out")
    assert not (tmp_path / "out" / "clotho_development.json").exists()
    (tmp_path / "as").mkdir()
    _audioset_lists(tmp_path / "as", {YT[0]: "/m/09x0r"})
    (tmp_path / "as" / "balanced_train_segments.csv").write_text(
        SEGMENTS_HEADER + f'{YT[0]}, 0, 10, "/m/09x0r"\n'
    )
    (tmp_path / "as" / "unbalanced_train_segments.csv").unlink()
    _audio(tmp_path / "as" / "audio" / f"Y{YT[0]}.wav")
    with pytest.raises(AudioSepError, match="unbalanced_train"):
        prepare_audioset(tmp_path / "as", tmp_path / "out_as")
    assert not (tmp_path / "out_as" / "audioset_balanced_train.json").exists()
    _audiocaps_csvs(tmp_path / "ac")  # no val.csv
    _audio(tmp_path / "ac" / "audio" / f"Y{YT[0]}.wav")
    with pytest.raises(AudioSepError, match="val list not found"):
        prepare_audiocaps(tmp_path / "ac", tmp_path / "out_ac")
    assert not (tmp_path / "out_ac").exists()


def test_vggsound_warning_counts_only_train_clips(tmp_path, caplog):
    rows = [
        f"{YT[0]},0,people marching,train",
        f'{YT[1]},30,"dog barking, growling",train',
        f"{YT[2]},10,wind chime,test",
        f"{YT[3]},10,wind chime,test",
    ]
    (tmp_path / "vggsound.csv").write_text("\n".join(rows) + "\n")
    _audio(tmp_path / "audio" / f"{YT[0]}_000000.wav")  # YT[1] (train) and the test clips missing
    with caplog.at_level(logging.WARNING):
        entries = read_datafile(prepare_vggsound(tmp_path, tmp_path / "out")["train"])
    assert len(entries) == 1 and "1 of 2 clips" in caplog.text


def test_unknown_corpus_options_are_rejected():
    with pytest.raises(AudioSepError, match=r"unknown options \['split'\]"):
        check_corpus_options("clotho", {"root": "/x", "split": ["development"]})
    with pytest.raises(AudioSepError, match="root"):
        check_corpus_options("clotho", {"root": "???"})
    with pytest.raises(AudioSepError, match=r"unknown options \['sources'\]"):
        prepare_corpus("audioset", {"root": "/x", "sources": ["FreeSound"]}, "/tmp/never")


def test_youtube_ids():
    assert youtube_ids("Y--PJHxphWEs.wav") == {"--PJHxphWEs"}
    assert youtube_ids("--PJHxphWEs_30.000_40.000.flac") == {"--PJHxphWEs"}
    assert youtube_ids("-JUBdOr8Hes_000030") == {"-JUBdOr8Hes"}
    assert youtube_ids("Santa Motor.wav") == set() and youtube_ids("1-100032-A-0.wav") == set()


def test_overlap_check_drops_clips_in_both_and_names_both_files(tmp_path, caplog):
    # training: AudioCaps train (YouTube ids) and Clotho development (file names)
    _audiocaps_csvs(tmp_path / "ac")
    _audio(tmp_path / "ac" / "audio" / f"Y{YT[0]}.wav")
    _audio(tmp_path / "ac" / "audio" / f"Y{YT[1]}.wav")
    ac = prepare_audiocaps(tmp_path / "ac", tmp_path / "data" / "audiocaps", splits=["train"])[
        "train"
    ]
    _clotho_tree(tmp_path / "clotho")
    cl = prepare_clotho(tmp_path / "clotho", tmp_path / "data" / "clotho", splits=["development"])[
        "development"
    ]
    # evaluation: released AudioCaps holds YT[1] as a background; Clotho holds "Santa Motor.wav"
    released = tmp_path / "audiocaps_eval.csv"
    released.write_text(
        f'idx,caption,labels,src_wav,noise_wav\n0,A dog,"Dog",Y{YT[4]}.wav,Y{YT[1]}.wav\n'
    )
    clotho_eval = tmp_path / "clotho_eval.csv"
    clotho_eval.write_text(
        "idx,caption,src_wav,noise_wav1,noise_wav1\n"
        '0,A motor,Santa Motor.wav,"Uh, Hi, Mom.wav",wind.wav\n'
    )
    evals = {
        str(released): eval_list_clips(released),
        str(clotho_eval): eval_list_clips(clotho_eval),
    }
    assert "Uh, Hi, Mom.wav" in evals[str(clotho_eval)]
    found = find_eval_overlap([ac, cl], evals)
    assert [(o.datafile, o.eval_set, len(o.wavs)) for o in found] == [
        (ac, str(released), 1),
        (cl, str(clotho_eval), 1),
    ]
    with pytest.raises(AudioSepError, match="strict"):
        remove_eval_overlap([ac, cl], evals, strict=True)
    assert len(read_datafile(ac)) == 2  # strict leaves the files as they were
    with caplog.at_level(logging.WARNING):
        remove_eval_overlap([ac, cl], evals)
    assert str(ac) in caplog.text and str(released) in caplog.text
    assert str(cl) in caplog.text and str(clotho_eval) in caplog.text
    assert [e["captions"] for e in read_datafile(ac)] == [["A woman talks, then music plays"]]
    assert not any(e["wav"].endswith("Santa Motor.wav") for e in read_datafile(cl))
    assert datafile_infos(ac)["dropped_clips"]["eval_overlap"] == 1
    assert "2 clips dropped for overlap" in dropped_summary([ac, cl])
    assert find_eval_overlap([ac, cl], evals) == []


def test_vggsound_eval_ids_and_wavcaps_audioset_overlap(tmp_path):
    released = tmp_path / "vggsound_eval.csv"
    released.write_text(
        "file_id,mix_wav,s0_wav,s0_text,s1_wav,s1_text\n"
        f"{YT[5]}_000030+++{YT[2]}_000001,data/mix_wav/{YT[5]}_000030+++{YT[2]}_000001.wav,"
        f"data/s0_wav/x.wav,playing accordion,data/s1_wav/y.wav,sea lion barking\n"
    )
    names = eval_list_clips(released)
    assert f"{YT[5]}_000030" in names and f"{YT[2]}_000001" in names
    _wavcaps_tree(tmp_path / "wc")
    wc = prepare_wavcaps(tmp_path / "wc", tmp_path / "out", sources=["AudioSet_SL"])["AudioSet_SL"]
    found = find_eval_overlap([wc], {str(released): names})
    assert len(found) == 1 and found[0].wavs[0].endswith(f"Y{YT[5]}.flac")


def test_report_shows_the_dropped_clips(tmp_path):
    import pandas as pd

    from asteroid_audiosep.report import write_report

    results = pd.DataFrame(
        {
            "id": ["a", "b"],
            "dataset": ["mini", "mini"],
            "query_type": ["caption"] * 2,
            "sdr": [1.0, 2.0],
            "sdri": [1.0, 2.0],
            "si_sdr": [0.5, 1.5],
        }
    )
    note = "Training data: 3 clips dropped for overlap with the evaluation sets, 1 by the WavCaps blacklists."
    report = write_report(tmp_path / "report", separation_results=results, notes=[note])
    assert note in report.read_text()
