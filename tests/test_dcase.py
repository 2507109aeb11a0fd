"""The DCASE 2024 Task 9 validation set: mixtures and scores as the released evaluator computes
them, the report's DCASE table, and bad folders."""
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from helpers import nontrivial, small_model_args

from asteroid_audiosep import AudioSep, AudioSepError
from asteroid_audiosep.data.dcase import VALIDATION_CSV, DCASEValidationDataset
from asteroid_audiosep.evaluation import evaluate_separation
from asteroid_audiosep.experiment import open_eval_set
from asteroid_audiosep.report import write_report

ROWS = [("src0", "noise0", 5, "a dog barks"), ("src1", "noise1", -15, "rain on a roof"),
        ("src2", "noise0", 15, "a dog barks"), ("src0", "noise1", 0, "someone whistles")]


@pytest.fixture()
def folder(tmp_path):
    """A small validation folder: 1 s clips at 16 kHz, one at 22.05 kHz, one loud source (its
    15 dB mixture clips and is declipped)."""
    rng = np.random.default_rng(0)
    for stem, rate, gain in (("src0", 16000, 0.3), ("src1", 16000, 0.2), ("src2", 16000, 1.0),
                             ("noise0", 22050, 0.2), ("noise1", 16000, 0.5)):
        t = np.arange(rate) / rate
        wav = gain * np.sin(2 * np.pi * rng.uniform(200, 2000) * t) * rng.uniform(0.5, 1.0, rate)
        sf.write(tmp_path / f"{stem}.wav", wav.astype(np.float32), rate, subtype="FLOAT")
    lines = ["source,noise,snr,caption"] + [f"{s},{n},{snr},{c}" for s, n, snr, c in ROWS]
    (tmp_path / VALIDATION_CSV).write_text("\n".join(lines) + "\n")
    return tmp_path


def _embed(texts):
    g = torch.Generator().manual_seed(0)
    table = {t: torch.randn(24, generator=g) for t in sorted({c for *_, c in ROWS})}
    return torch.stack([table[t] for t in texts])


def _released_scores(model, folder, source, noise, snr, caption):
    """A direct transcription of the released dcase_evaluator.py arithmetic."""
    import librosa

    source, _ = librosa.load(folder / f"{source}.wav", sr=16000, mono=True)
    noise, _ = librosa.load(folder / f"{noise}.wav", sr=16000, mono=True)
    source_power = np.mean(source ** 2)
    noise_power = np.mean(noise ** 2)
    desired_noise_power = source_power / (10 ** (snr / 10))
    scaling_factor = np.sqrt(desired_noise_power / noise_power)
    noise = noise * scaling_factor
    mixture = source + noise
    max_value = np.max(np.abs(mixture))
    if max_value > 1:
        source *= 0.9 / max_value
        mixture *= 0.9 / max_value

    def calculate_sdr(ref, est):
        return 10 * np.log10(max(np.mean(ref ** 2), 1e-10) / max(np.mean((est - ref) ** 2), 1e-10))

    def calculate_sisdr(ref, est):
        eps = np.finfo(ref.dtype).eps
        reference = ref.reshape(ref.size, 1)
        estimate = est.reshape(est.size, 1)
        rss = np.dot(reference.T, reference)
        a = (eps + np.dot(reference.T, estimate)) / (rss + eps)
        e_true = a * reference
        e_res = estimate - e_true
        return (10 * np.log10((eps + (e_true ** 2).sum()) / (eps + (e_res ** 2).sum())))

    sdr_no_sep = calculate_sdr(source, mixture)
    with torch.no_grad():
        sep = model(torch.from_numpy(mixture)[None, None], _embed([caption]))[0, 0].numpy()
    sdr = calculate_sdr(source, sep)
    return dict(sdr=sdr, sdri=sdr - sdr_no_sep, si_sdr=calculate_sisdr(source, sep)), max_value


def test_scores_equal_the_released_arithmetic(folder, tmp_path):
    torch.manual_seed(0)
    model = nontrivial(AudioSep(**small_model_args())).eval()
    dataset = open_eval_set({"name": "DCASE2024-T9-validation", "dcase2024_validation": str(folder)},
                            "caption", 16000)
    assert isinstance(dataset, DCASEValidationDataset) and len(dataset) == len(ROWS)
    out = evaluate_separation(model, dataset, tmp_path / "eval.csv", "DCASE2024-T9-validation", "caption",
                              embed=_embed, progress=False)
    got = pd.read_csv(out)
    peaks = []
    for k, row in enumerate(ROWS):
        want, peak = _released_scores(model, folder, *row)
        peaks.append(peak)
        for metric, value in want.items():
            assert abs(got[metric][k] - value) <= 1e-4, (k, metric, got[metric][k], value)
    assert max(peaks) > 1 > min(peaks)  # both branches of the declipping rule were exercised
    report = write_report(tmp_path / "report", separation_results=out, system_name="Mini")
    table = pd.read_csv(tmp_path / "report" / "tables" / "dcase2024_validation.csv")
    baseline = table[table["Source"] == "published"].iloc[0]
    assert (baseline["SDR"], baseline["SDRi"], baseline["SI-SDR"]) == (5.708, 5.673, 3.862)
    ours = table[table["Source"] == "this run"].iloc[0]
    assert ours["Items"] == len(ROWS) and ours["SDRi"] == pytest.approx(got["sdri"].mean())
    assert "DCASE 2024 Task 9" in report.read_text()


def test_missing_file_fails_before_any_work(folder):
    (folder / "noise1.wav").unlink()
    with pytest.raises(AudioSepError, match=r"2 audio files .* missing, first: line 3: .*noise1.wav"):
        DCASEValidationDataset(folder)
    with pytest.raises(AudioSepError, match="index not found"):
        DCASEValidationDataset(folder / "elsewhere")


def test_other_model_rates_and_bad_rows_are_refused(folder):
    with pytest.raises(AudioSepError, match="scored at 16000 Hz; this model runs at 32000 Hz"):
        DCASEValidationDataset(folder, sample_rate=32000)
    (folder / VALIDATION_CSV).write_text("source,noise,snr,caption\nsrc0,noise0,loud,a dog\n")
    with pytest.raises(AudioSepError, match="line 2: snr 'loud' is not a number"):
        DCASEValidationDataset(folder)
