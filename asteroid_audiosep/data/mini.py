"""The built-in mini corpus: procedurally synthesised sound classes with captions, split by
instance, written exactly like a prepared real corpus (datafiles + evaluation lists)."""
import hashlib
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..audio import save_audio
from ..errors import AudioSepError
from ..progress import progress
from .datafile import write_datafile, write_json_atomic
from .evallist import read_csv_rows, write_csv_atomic
from .evalmix import Excerpt, MixtureSpec, build_eval_mixtures
from .synth import synthesize

PathLike = Union[str, os.PathLike]

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
#: The held-out audio examples: clips of every class that are never targets nor training clips,
#: the audio queries of the evaluation lists (``audio`` column).
EXAMPLES_SPLIT = "examples"


@dataclass(frozen=True)
class SoundClass:
    """A mini-corpus class and its text.

    Attributes:
        name: identifier (also the synthesiser's name in :data:`~.synth.SYNTHS`).
        label: short class label, AudioSet style.
        captions: training captions (the label is one of them).
        paraphrases: held-out wordings, never used for training (zero-shot query test).
    """

    name: str
    label: str
    captions: Tuple[str, ...]
    paraphrases: Tuple[str, ...]


#: The classes, in a fixed order (the order seeds each class's random streams).
CLASSES: Tuple[SoundClass, ...] = (
    SoundClass("siren", "siren",
               ("siren", "an emergency siren wails", "a police siren is sounding", "the siren of an ambulance"),
               ("a rising and falling alarm from an emergency vehicle", "a fire truck's warning wail")),
    SoundClass("telephone_ring", "telephone ring",
               ("telephone ring", "a telephone is ringing", "the ringing of a telephone bell", "an old phone rings repeatedly"),
               ("a phone is ringing", "someone's landline keeps ringing")),
    SoundClass("church_bell", "church bell",
               ("church bell", "a church bell tolls", "a large bell rings and resonates", "bells ringing from a church tower"),
               ("a heavy bell chimes slowly", "the toll of a cathedral bell")),
    SoundClass("plucked_guitar", "acoustic guitar",
               ("acoustic guitar", "a guitar is being plucked", "someone plays notes on an acoustic guitar", "plucked guitar strings"),
               ("a person picking a melody on a six-string", "gentle guitar picking")),
    SoundClass("flute", "flute",
               ("flute", "a flute is playing a melody", "someone plays the flute", "a breathy wind instrument plays notes"),
               ("a woodwind solo with soft airy tones", "a flautist performing a tune")),
    SoundClass("drum_kit", "drum kit",
               ("drum kit", "drums playing a beat", "a drummer plays kick, snare and hi-hat", "a rock drum groove"),
               ("percussion keeping a steady rhythm", "someone drumming a pattern on a kit")),
    SoundClass("bird_chirps", "bird song",
               ("bird song", "birds are chirping", "a small bird sings", "high-pitched bird tweets"),
               ("a songbird twittering", "tweeting of a little bird in the morning")),
    SoundClass("clock_ticking", "clock tick",
               ("clock tick", "a clock is ticking", "the tick tock of a mechanical clock", "steady ticking of a clock"),
               ("a wall clock counting the seconds", "the tick-tock of a pendulum clock")),
    SoundClass("engine_hum", "engine idling",
               ("engine idling", "an engine is idling", "the low hum of a running motor", "a car engine rumbles"),
               ("a vehicle motor running at low revs", "the drone of an idle truck")),
    SoundClass("rain", "rain",
               ("rain", "rain is falling", "heavy rain pouring down", "raindrops hitting the ground"),
               ("a downpour outside", "precipitation pattering on a surface")),
    SoundClass("wind", "wind",
               ("wind", "wind is blowing", "strong gusts of wind", "the wind howls"),
               ("a breezy, blustery day", "air rushing past in gusts")),
    SoundClass("applause", "applause",
               ("applause", "a crowd is applauding", "people clapping their hands", "an audience gives applause"),
               ("spectators clap after a performance", "a round of clapping from the audience")),
    SoundClass("water_drips", "water drip",
               ("water drip", "water is dripping", "drops of water falling into a sink", "a leaking tap drips"),
               ("droplets plinking one by one", "a faucet slowly leaking drops")),
    SoundClass("alarm_beeps", "beeping alarm",
               ("beeping alarm", "an alarm is beeping", "electronic beeps from an alarm clock", "a high-pitched beeping sound"),
               ("a digital timer going off", "a smoke detector chirping beeps")),
    SoundClass("speech", "speech",
               ("speech", "a person is speaking", "a man talking", "someone talks in a calm voice"),
               ("a human voice saying words", "somebody giving a short spoken remark")),
    SoundClass("footsteps", "footsteps",
               ("footsteps", "someone is walking", "footsteps on a hard floor", "a person walks by"),
               ("the steps of a pedestrian", "shoes treading along a corridor")),
    SoundClass("helicopter", "helicopter",
               ("helicopter", "a helicopter is flying", "the chopping of helicopter rotor blades", "a helicopter hovers overhead"),
               ("a chopper passing in the sky", "whirring rotors of an aircraft")),
    SoundClass("crickets", "crickets",
               ("crickets", "crickets are chirping", "insects chirping at night", "the trill of crickets"),
               ("nocturnal insects making a rhythmic chirp", "a field of chirping bugs at dusk")),
)

#: Noise classes used in the noisy-speech set.
SPEECH_NOISES = ("rain", "wind", "engine_hum", "applause", "helicopter", "crickets")
#: Signal-to-noise ratios of the noisy-speech set (those of the Voicebank-DEMAND test set).
SPEECH_SNRS_DB = (2.5, 7.5, 12.5, 17.5)

_SPEECH_STREAM = 1_000  # random stream ids beyond the class indices


def _clip_rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def _synth_clip(name: str, rng: np.random.Generator, sample_rate: int, seconds: Tuple[float, float]) -> np.ndarray:
    duration = rng.uniform(*seconds)
    wav = synthesize(name, rng, int(duration * sample_rate), sample_rate)
    return (wav * rng.uniform(0.3, 0.9)).astype(np.float32)  # varied levels


def _write_split_clips(
    out_dir: Path, classes: Sequence[Tuple[int, SoundClass]], counts: Dict[str, int], seed: int,
    sample_rate: int, seconds: Tuple[float, float], subtype: str,
) -> Dict[str, List[Dict]]:
    clips: Dict[str, List[Dict]] = {split: [] for split in SPLITS}
    jobs = [(split, s, c, k) for s, split in enumerate(SPLITS) for c in classes for k in range(counts[split])]
    for split, split_id, (class_id, sound), k in progress(jobs, desc="synthesising mini corpus", unit="clip"):
        rng = _clip_rng(seed, class_id, split_id, k)
        path = out_dir / "audio" / split / sound.name / f"{sound.name}-{k:03d}.wav"
        save_audio(path, _synth_clip(sound.name, rng, sample_rate, seconds), sample_rate, subtype=subtype)
        clips[split].append({"wav": str(path), "captions": list(sound.captions), "labels": [sound.label],
                             "class": sound.name})
    return clips


def _eval_specs(clips: List[Dict], by_name: Dict[str, SoundClass], seed: int, split_id: int) -> List[MixtureSpec]:
    """Every clip of a split as a target, with a clip of another class as background."""
    rng = _clip_rng(seed, _SPEECH_STREAM + 100 + split_id)
    specs = []
    for clip in clips:
        others = [c for c in clips if c["class"] != clip["class"]]
        background = others[int(rng.integers(len(others)))]
        sound = by_name[clip["class"]]
        columns = {
            "caption": sound.captions[int(rng.integers(1, len(sound.captions)))],
            "label": sound.label,
            "paraphrase": sound.paraphrases[int(rng.integers(len(sound.paraphrases)))],
            "class": sound.name,
        }
        specs.append(MixtureSpec(Excerpt(Path(clip["wav"])), [Excerpt(Path(background["wav"]))], columns))
    return specs


def _write_examples(
    out_dir: Path, classes: Sequence[Tuple[int, SoundClass]], count: int, seed: int, sample_rate: int,
    seconds: Tuple[float, float], subtype: str,
) -> None:
    """``count`` held-out clips per class under ``audio/examples/`` (their own random streams:
    split id ``len(SPLITS)``, so the other clips are unchanged)."""
    jobs = [(c, k) for c in classes for k in range(count)]
    for (class_id, sound), k in progress(jobs, desc="held-out audio examples", unit="clip", leave=False):
        rng = _clip_rng(seed, class_id, len(SPLITS), k)
        path = out_dir / "audio" / EXAMPLES_SPLIT / sound.name / f"{sound.name}-{k:03d}.wav"
        save_audio(path, _synth_clip(sound.name, rng, sample_rate, seconds), sample_rate, subtype=subtype)


def _add_audio_column(csv_path: Path, count: int, seed: int, split_id: int) -> None:
    """Append an ``audio`` column to an evaluation list: per row, a held-out example of the
    row's class (a path relative to the list's folder), drawn from its own seeded stream."""
    rows = read_csv_rows(csv_path)
    columns = list(rows[0]) + ["audio"]
    rng = _clip_rng(seed, _SPEECH_STREAM + 200 + split_id)
    for row in rows:
        k = int(rng.integers(count))
        row["audio"] = f"../../audio/{EXAMPLES_SPLIT}/{row['class']}/{row['class']}-{k:03d}.wav"
    write_csv_atomic(csv_path, rows, columns)


def _speech_set(
    out_dir: Path, count: int, split: str, seed: int, sample_rate: int, seconds: Tuple[float, float], subtype: str
) -> Path:
    """Noisy/clean synthetic speech pairs at the Voicebank-DEMAND test SNRs."""
    split_id = SPLITS.index(split)
    specs = []
    for k in progress(range(count), desc=f"noisy speech ({split})", unit="pair", leave=False):
        rng = _clip_rng(seed, _SPEECH_STREAM, split_id, k)
        noise_name = SPEECH_NOISES[k % len(SPEECH_NOISES)]
        clean = out_dir / "sources" / split / f"speech-{k:03d}.wav"
        noise = out_dir / "sources" / split / f"noise-{k:03d}-{noise_name}.wav"
        save_audio(clean, _synth_clip("speech", rng, sample_rate, seconds), sample_rate, subtype=subtype)
        save_audio(noise, _synth_clip(noise_name, rng, sample_rate, (seconds[1], seconds[1])), sample_rate,
                   subtype=subtype)
        snr = SPEECH_SNRS_DB[int(rng.integers(len(SPEECH_SNRS_DB)))]
        columns = {"caption": "speech", "noise_class": noise_name, "class": "speech"}
        specs.append(MixtureSpec(Excerpt(clean), [Excerpt(noise)], columns, snr_db=snr))
    return build_eval_mixtures(specs, out_dir / split, sample_rate=sample_rate, seed=seed, subtype=subtype)


def _tree_digest(root: Path) -> str:
    """A hash of every file's relative path and bytes (to compare two generations)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def generate_mini_corpus(
    out_dir: PathLike,
    seed: int = 0,
    sample_rate: int = 16000,
    clips_per_class: Tuple[int, int, int] = (24, 4, 6),
    clip_seconds: Tuple[float, float] = (2.0, 4.0),
    classes: Optional[Sequence[str]] = None,
    speech_pairs: Tuple[int, int] = (40, 24),
    subtype: str = "PCM_16",
    examples_per_class: int = 4,
) -> Dict[str, Path]:
    """Synthesise the mini corpus: clips, datafiles, class metadata, evaluation lists.

    Layout written under ``out_dir``::

        classes.json                       class names, labels, captions, paraphrases
        audio/{train,validation,test}/<class>/<class>-NNN.wav
        audio/examples/<class>/<class>-NNN.wav   held-out clips, never a target nor trained on:
                                           the audio-example queries
        train.json validation.json test.json   datafiles (released format, labels, all
                                               training captions of the clip's class)
        eval/{validation,test}/            common evaluation-list format: every clip of the
                                           split mixed at 0 dB with a clip of another class;
                                           eval.csv columns idx, caption, label, paraphrase,
                                           class, ..., audio (a held-out example of the
                                           target's class, relative to the list's folder)
        speech/{train,test}/               noisy synthetic speech (mixture = noisy, segment =
                                           clean, caption "speech") at 2.5-17.5 dB SNR

    Splits are by instance: every clip has its own random parameters; paraphrases are never
    in any datafile. The same seed writes byte-identical files (paths inside the datafiles
    are relative, so the folder can be moved).

    Args:
        out_dir: destination folder (created).
        seed: seed of everything.
        sample_rate: rate of every file (>= 16 kHz keeps all classes below Nyquist).
        clips_per_class: clips per class in train, validation and test.
        clip_seconds: range of clip durations in seconds.
        classes: names of the classes to use (default: all of :data:`CLASSES`).
        speech_pairs: noisy-speech pairs in train and test (0 to skip the set).
        subtype: soundfile subtype of every written wav (16-bit keeps the corpus small).
        examples_per_class: held-out audio examples per class (0: none, and no ``audio``
            column). They are drawn after everything else from their own random streams: the
            other files are the same with or without them.

    Returns:
        Paths of what was written: ``train``, ``validation``, ``test`` (datafiles),
        ``classes``, ``eval_validation``, ``eval_test`` (CSVs) and, when built,
        ``speech_train``, ``speech_test`` (CSVs).

    Raises:
        AudioSepError: unknown class, fewer than 2 classes, or non-positive counts.
    """
    names = list(classes) if classes is not None else [c.name for c in CLASSES]
    by_name = {c.name: c for c in CLASSES}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise AudioSepError(f"unknown mini-corpus classes {unknown}; available: {sorted(by_name)}")
    if len(set(names)) < 2:
        raise AudioSepError("the mini corpus needs at least 2 classes (mixtures need another class)")
    if min(clips_per_class) < 1 or len(clips_per_class) != 3:
        raise AudioSepError(
            f"clips_per_class must be 3 positive counts (train, validation, test), got {clips_per_class}")
    if examples_per_class < 0:
        raise AudioSepError(f"examples_per_class must be >= 0, got {examples_per_class}")
    if not 0 < clip_seconds[0] <= clip_seconds[1]:
        raise AudioSepError(f"clip_seconds must be a range (min, max) of positive durations, got {clip_seconds}")
    if sample_rate < 16000:
        logger.warning("sample rate %d Hz is below 16 kHz: the highest classes will alias", sample_rate)
    out_dir = Path(out_dir)
    chosen = [(i, c) for i, c in enumerate(CLASSES) if c.name in names]
    counts = dict(zip(SPLITS, clips_per_class))
    seconds = (float(clip_seconds[0]), float(clip_seconds[1]))
    clips = _write_split_clips(out_dir, chosen, counts, seed, sample_rate, seconds, subtype)

    written: Dict[str, Path] = {}
    infos = {"dataset": "mini (synthetic)", "licenses": [{"title": "procedurally generated", "license": "CC0-1.0"}]}
    for split in SPLITS:
        entries = [{k: v for k, v in clip.items() if k != "class"} for clip in clips[split]]
        written[split] = write_datafile(out_dir / f"{split}.json", entries, infos=infos)
    for split_id, split in enumerate(SPLITS[1:], start=1):
        specs = _eval_specs(clips[split], by_name, seed, split_id)
        written[f"eval_{split}"] = build_eval_mixtures(
            specs, out_dir / "eval" / split, sample_rate=sample_rate, seed=seed, subtype=subtype)
    for split, count in zip(("train", "test"), speech_pairs):
        if count > 0:
            written[f"speech_{split}"] = _speech_set(out_dir / "speech", count, split, seed, sample_rate, seconds,
                                                     subtype)
    if examples_per_class > 0:
        _write_examples(out_dir, chosen, examples_per_class, seed, sample_rate, seconds, subtype)
        for split_id, split in enumerate(SPLITS[1:], start=1):
            _add_audio_column(written[f"eval_{split}"], examples_per_class, seed, split_id)
    meta = {
        "seed": seed,
        "sample_rate": sample_rate,
        "clips_per_class": counts,
        "clip_seconds": list(seconds),
        "classes": [asdict(c) for _, c in chosen],
    }
    written["classes"] = write_json_atomic(out_dir / "classes.json", meta)
    return written
