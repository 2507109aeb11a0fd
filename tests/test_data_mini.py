"""The built-in mini corpus: classes, splits, held-out paraphrases, determinism, readability."""
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from asteroid_audiosep.data import LASSEvalDataset, LASSTrainDataset, read_datafile
from asteroid_audiosep.data.mini import CLASSES, SPEECH_SNRS_DB, generate_mini_corpus
from asteroid_audiosep.data.synth import SYNTHS, synthesize
from asteroid_audiosep.errors import AudioSepError

SMALL = dict(clips_per_class=(3, 1, 2), clip_seconds=(1.0, 1.5), speech_pairs=(2, 4))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("mini") / "a"
    return out, generate_mini_corpus(out, seed=5, **SMALL)


def _tree(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_class_catalogue():
    assert len(CLASSES) >= 16 and set(SYNTHS) == {c.name for c in CLASSES}
    for sound in CLASSES:
        assert len(sound.captions) >= 3 and sound.label in sound.captions and len(sound.paraphrases) >= 2
    all_captions = {c for s in CLASSES for c in s.captions}
    assert not all_captions & {p for s in CLASSES for p in s.paraphrases}


def test_every_class_synthesises_distinct_instances():
    for name in SYNTHS:
        a = synthesize(name, np.random.default_rng(0), 8000, 16000)
        b = synthesize(name, np.random.default_rng(1), 8000, 16000)
        assert a.shape == (8000,) and np.isfinite(a).all() and np.abs(a).max() == pytest.approx(1.0)
        assert not np.allclose(a, b), name


def test_layout_classes_and_splits(corpus):
    out, written = corpus
    meta = json.loads((out / "classes.json").read_text())
    assert len(meta["classes"]) == len(CLASSES) >= 16
    splits = {s: read_datafile(written[s]) for s in ("train", "validation", "test")}
    assert [len(v) for v in splits.values()] == [3 * len(CLASSES), len(CLASSES), 2 * len(CLASSES)]
    for entries in splits.values():
        assert Counter(e["labels"][0] for e in entries).keys() == {c.label for c in CLASSES}
    paths = [{e["wav"] for e in v} for v in splits.values()]
    assert not (paths[0] & paths[1] or paths[0] & paths[2] or paths[1] & paths[2])
    digests = [{hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in v} for v in paths]
    assert sum(len(d) for d in digests) == len(set().union(*digests))  # no clip repeated anywhere
    train_captions = {c for e in splits["train"] for c in e["captions"]}
    paraphrases = {p for c in meta["classes"] for p in c["paraphrases"]}
    assert paraphrases and not paraphrases & train_captions
    raw = json.loads(written["train"].read_text())["data"][0]
    assert not raw["wav"].startswith("/")  # relative: the corpus can move


def test_evaluation_lists(corpus):
    _, written = corpus
    ds = LASSEvalDataset(written["eval_test"])
    assert {"caption", "label", "paraphrase"} <= set(ds.query_columns) and len(ds) == 2 * len(CLASSES)
    train_captions = {c for e in read_datafile(written["train"]) for c in e["captions"]}
    paraphrased = LASSEvalDataset(written["eval_test"], query_column="paraphrase")
    assert not set(paraphrased.queries()) & train_captions
    for i in range(0, len(ds), 7):
        item = ds[i]
        background = item["mixture"] - item["target"]
        snr = 10 * np.log10(float((item["target"] ** 2).mean() / (background ** 2).mean()))
        assert abs(snr) < 0.05 and float(item["mixture"].abs().max()) <= 0.9 + 1e-4
        assert item["class"] in SYNTHS
    speech = LASSEvalDataset(written["speech_test"])
    assert len(speech) == 4 and speech.queries() == ["speech"]
    item = speech[0]
    snr = 10 * np.log10(float((item["target"] ** 2).mean() / ((item["mixture"] - item["target"]) ** 2).mean()))
    assert min(abs(snr - s) for s in SPEECH_SNRS_DB) < 0.05


def test_training_dataset_reads_the_corpus(corpus):
    _, written = corpus
    ds = LASSTrainDataset([written["train"]], sample_rate=16000, segment_seconds=1.0)
    assert len(ds) == 3 * len(CLASSES)
    assert ds[0]["waveform"].shape == (1, 16000)
    assert set(ds.captions()) == {c for s in CLASSES for c in s.captions}


def _features(path):
    x, sr = sf.read(path)
    _, _, spec = signal.spectrogram(x, sr, nperseg=512, noverlap=256)
    bands = np.stack([b.mean(0) for b in np.array_split(np.log(spec + 1e-8), 24, axis=0)])
    return np.r_[bands.mean(1), bands.std(1), np.abs(np.diff(bands, axis=1)).mean(1)]


def test_classes_are_acoustically_distinct(corpus):
    """A nearest-centroid classifier on band energies must tell most test clips apart."""
    _, written = corpus
    train, test = read_datafile(written["train"]), read_datafile(written["test"])
    x_train = np.stack([_features(e["wav"]) for e in train])
    x_test = np.stack([_features(e["wav"]) for e in test])
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    labels = sorted({e["labels"][0] for e in train})
    centroids = np.stack([x_train[[e["labels"][0] == c for e in train]].mean(0) for c in labels])
    predicted = np.argmin(((x_test[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    accuracy = np.mean([labels[p] == e["labels"][0] for p, e in zip(predicted, test)])
    assert accuracy >= 0.75


def test_same_seed_identical_bytes_other_seed_differs(corpus, tmp_path):
    out, _ = corpus
    generate_mini_corpus(tmp_path / "b", seed=5, **SMALL)
    assert _tree(out) == _tree(tmp_path / "b")
    few = dict(SMALL, classes=["rain", "siren"], speech_pairs=(0, 0))
    generate_mini_corpus(tmp_path / "c", seed=6, **few)
    generate_mini_corpus(tmp_path / "d", seed=7, **few)
    c, d = _tree(tmp_path / "c"), _tree(tmp_path / "d")
    assert c.keys() == d.keys()
    assert all(c[k] != d[k] for k in c if k.endswith(".wav"))


@pytest.mark.parametrize("kwargs", [dict(classes=["rain", "thunder"]), dict(classes=["rain"]),
                                    dict(clips_per_class=(1, 0, 1))])
def test_bad_arguments(tmp_path, kwargs):
    with pytest.raises(AudioSepError):
        generate_mini_corpus(tmp_path, **kwargs)


@pytest.mark.parametrize("sample_rate", [8000, 11025, 44100])
def test_every_class_synthesises_at_other_rates(sample_rate):
    for name in SYNTHS:
        wav = synthesize(name, np.random.default_rng(0), sample_rate, sample_rate)
        assert wav.shape == (sample_rate,) and np.isfinite(wav).all() and np.abs(wav).max() > 0.5, name


def test_held_out_audio_examples_leave_the_rest_unchanged(corpus, tmp_path):
    out, written = corpus
    without = tmp_path / "without"
    generate_mini_corpus(without, seed=5, examples_per_class=0, **SMALL)
    tree, bare = _tree(out), _tree(without)
    extra = {k for k in tree if k not in bare}
    assert extra and all(k.startswith("audio/examples/") for k in extra)  # only the examples are new...
    assert len(extra) == 4 * len(CLASSES)
    for key in bare:  # ...and every other file is the same, but the eval lists gain a last column
        if not key.endswith("eval.csv") or key.startswith("speech/"):
            assert tree[key] == bare[key], key
    picked = Counter()
    for split in ("validation", "test"):
        with_audio = (out / "eval" / split / "eval.csv").read_text().splitlines()
        plain = (without / "eval" / split / "eval.csv").read_text().splitlines()
        assert [line.rsplit(",", 1)[0] for line in with_audio] == plain
        ds = LASSEvalDataset(out / "eval" / split / "eval.csv", query_column="audio")
        for item in ds.items:
            example = (out / "eval" / split / item.queries["audio"]).resolve()
            assert example.is_file() and example.parent.name == item.group
            assert example.parent.parent.name == "examples"
            picked[example.name] += 1
    assert len(picked) > len(CLASSES)  # drawn among the class's examples, not always the first
    # the training clips and targets are never examples
    assert not {Path(e["wav"]).resolve() for e in read_datafile(written["train"])} & {
        (out / k).resolve() for k in extra}
