"""Procedural synthesis of everyday sound classes (the mini corpus's sources).

Every function ``f(rng, num_samples, sample_rate) -> np.ndarray`` draws its own parameters
(pitch, tempo, timbre, timing) from ``rng``, so each call is a new recording instance of the
class. The classes differ in what a separation model can hear: pitch range, harmonicity,
temporal pattern and spectral envelope. Outputs are float64, mono, peak-normalised to 1.
"""
from typing import Callable, Dict, Optional

import numpy as np
from scipy import signal

Synth = Callable[[np.random.Generator, int, int], np.ndarray]


# ----------------------------------------------------------------------------- helpers

def _t(n: int, sr: int) -> np.ndarray:
    return np.arange(n) / sr


def _phase(freq: np.ndarray, sr: int) -> np.ndarray:
    """Phase (radians) of an oscillator following an instantaneous frequency track."""
    return 2 * np.pi * np.cumsum(freq) / sr


def _band(x: np.ndarray, sr: int, low: Optional[float] = None, high: Optional[float] = None,
          order: int = 2) -> np.ndarray:
    """Butterworth low-, high- or band-pass filter; cut-offs are kept below Nyquist."""
    nyq = sr / 2
    if high is not None:
        high = min(high, 0.95 * nyq)
    if low is not None:
        low = min(low, 0.8 * (high if high is not None else nyq))  # stays a valid band at low rates
    if low is not None and high is not None:
        sos = signal.butter(order, [low, high], btype="bandpass", fs=sr, output="sos")
    elif low is not None:
        sos = signal.butter(order, low, btype="highpass", fs=sr, output="sos")
    else:
        sos = signal.butter(order, high, btype="lowpass", fs=sr, output="sos")
    return signal.sosfilt(sos, x)


def _decay(n: int, sr: int, tau: float) -> np.ndarray:
    return np.exp(-_t(n, sr) / tau)


def _add(out: np.ndarray, event: np.ndarray, start: int) -> None:
    """Add an event into ``out`` at sample ``start`` (clipped to the buffer)."""
    if start >= len(out) or start + len(event) <= 0:
        return
    lo = max(start, 0)
    hi = min(start + len(event), len(out))
    out[lo:hi] += event[lo - start : hi - start]


def _smooth_random(rng: np.random.Generator, n: int, sr: int, rate: float) -> np.ndarray:
    """A slowly varying random curve in [0, 1] with changes about ``rate`` times a second."""
    points = max(int(n / sr * rate) + 3, 4)
    values = rng.uniform(0, 1, points)
    return np.interp(np.linspace(0, points - 1, n), np.arange(points), values)


def _onsets(rng: np.random.Generator, n: int, sr: int, period: float, jitter: float = 0.0) -> np.ndarray:
    """Sample indices of a (jittered) periodic event train with a random phase."""
    times = np.arange(rng.uniform(0, period), n / sr, period)
    times = times + rng.normal(0, jitter * period, len(times))
    return (times * sr).astype(int)


def _soft_gate(gate: np.ndarray, sr: int, ramp: float = 0.005) -> np.ndarray:
    """An on/off gate with ``ramp``-second linear edges (no clicks)."""
    width = max(int(ramp * sr), 1)
    return np.convolve(gate.astype(float), np.ones(width) / width, mode="same")


def _poisson_onsets(rng: np.random.Generator, n: int, rate: float, sr: int) -> np.ndarray:
    count = rng.poisson(rate * n / sr)
    return np.sort(rng.integers(0, n, count))


def _normalize(x: np.ndarray, sr: int) -> np.ndarray:
    fade = min(int(0.005 * sr), len(x) // 2)
    if fade:
        ramp = np.linspace(0, 1, fade)
        x[:fade] *= ramp
        x[-fade:] *= ramp[::-1]
    peak = np.max(np.abs(x))
    return x / peak if peak > 0 else x


# ----------------------------------------------------------------------------- classes

def siren(rng, n, sr):
    """Emergency siren: a loud tone sweeping up and down (wail) or fast (yelp)."""
    base = rng.uniform(550, 800)
    depth = rng.uniform(300, 650)
    rate = rng.uniform(0.25, 0.6) if rng.random() < 0.5 else rng.uniform(2.5, 4.0)
    lfo = 0.5 - 0.5 * np.cos(2 * np.pi * rate * _t(n, sr) + rng.uniform(0, 2 * np.pi))
    phase = _phase(base + depth * lfo, sr)
    x = np.sin(phase) + 0.35 * np.sin(2 * phase) + 0.2 * np.sin(3 * phase)
    return x + 0.01 * rng.standard_normal(n)


def telephone_ring(rng, n, sr):
    """Telephone bell: two close tones, warbled at ~20 Hz, in ring-pause cadences."""
    f1 = rng.uniform(380, 500)
    f2 = f1 * rng.uniform(1.08, 1.15)
    t = _t(n, sr)
    tone = np.sin(2 * np.pi * f1 * t) + np.sin(2 * np.pi * f2 * t)
    tone *= 0.55 + 0.45 * np.tanh(3 * np.sin(2 * np.pi * rng.uniform(16, 25) * t))
    ring, pause = rng.uniform(0.35, 1.0), rng.uniform(0.2, 0.5)
    double = rng.random() < 0.5  # UK-style double ring or single long ring
    period = (2 * ring + pause + rng.uniform(0.6, 1.2)) if double else ring + rng.uniform(0.8, 1.5)
    phase = (t + rng.uniform(0, 0.2)) % period
    gate = (phase < ring) | (double & (phase > ring + pause) & (phase < 2 * ring + pause))
    return tone * _soft_gate(gate, sr, 0.01)


def church_bell(rng, n, sr):
    """Church bell: inharmonic partials with long, frequency-dependent decays."""
    f0 = rng.uniform(180, 420)
    ratios = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.51, 2.66, 3.01, 4.17])
    amps = rng.uniform(0.3, 1.0, len(ratios)) / (1 + 0.3 * np.arange(len(ratios)))
    taus = rng.uniform(1.2, 2.5) / (1 + 0.6 * np.arange(len(ratios)))
    strike = np.zeros(min(n, int(3.0 * sr)))
    ts = _t(len(strike), sr)
    for r, a, tau in zip(ratios, amps, taus):
        if f0 * r < 0.45 * sr:
            strike += a * np.sin(2 * np.pi * f0 * r * ts + rng.uniform(0, 2 * np.pi)) * np.exp(-ts / tau)
    x = np.zeros(n)
    for onset in _onsets(rng, n, sr, rng.uniform(0.9, 1.6), jitter=0.02) - int(0.3 * sr):
        _add(x, strike * rng.uniform(0.7, 1.0), onset)
    return x


def _pluck(rng, f0, length, sr, damping):
    period = max(int(round(sr / f0)), 2)
    burst = np.zeros(length)
    burst[:period] = rng.uniform(-1, 1, period)
    a = np.zeros(period + 2)
    a[0], a[period], a[period + 1] = 1.0, -damping / 2, -damping / 2
    return signal.lfilter([1.0], a, burst)


def plucked_guitar(rng, n, sr):
    """Plucked guitar string (Karplus-Strong), a few notes of a scale."""
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16])
    root = rng.uniform(98, 196)
    x = np.zeros(n)
    onsets = _onsets(rng, n, sr, rng.uniform(0.3, 0.7), jitter=0.1)
    for onset in onsets:
        f0 = root * 2 ** (rng.choice(scale) / 12)
        length = min(n, int(1.5 * sr))
        note = _pluck(rng, f0, length, sr, rng.uniform(0.990, 0.997))
        _add(x, note * rng.uniform(0.6, 1.0), max(onset, 0))
    return _band(x, sr, high=rng.uniform(3000, 5000))


def flute(rng, n, sr):
    """Flute: breathy, nearly sinusoidal notes with vibrato, played legato."""
    root = rng.uniform(350, 700)
    steps = rng.choice([0, 2, 3, 5, 7, 8, 10, 12], size=rng.integers(2, 5))
    bounds = np.sort(rng.integers(0, n, len(steps) - 1))
    freq = np.full(n, root)
    for step, lo, hi in zip(steps, np.r_[0, bounds], np.r_[bounds, n]):
        freq[lo:hi] = root * 2 ** (step / 12)
    freq = signal.lfilter([0.002], [1, -0.998], freq - freq[0]) + freq[0]  # glide
    t = _t(n, sr)
    freq *= 1 + 0.006 * np.sin(2 * np.pi * rng.uniform(4.5, 6) * t)
    phase = _phase(freq, sr)
    tone = np.sin(phase) + 0.3 * np.sin(2 * phase) + 0.08 * np.sin(3 * phase)
    breath = _band(rng.standard_normal(n), sr, 1000, 4000) * 0.08
    envelope = np.minimum(1, t / 0.08) * (0.85 + 0.15 * _smooth_random(rng, n, sr, 2))
    return (tone + breath) * envelope


def drum_kit(rng, n, sr):
    """Drum kit groove: kick, snare and hi-hat on an eighth-note grid."""
    eighth = 30 / rng.uniform(85, 140)
    kick_len, snare_len, hat_len = int(0.25 * sr), int(0.2 * sr), int(0.06 * sr)
    tk = _t(kick_len, sr)
    kick = np.sin(_phase(45 + 90 * np.exp(-tk / 0.03), sr)) * np.exp(-tk / 0.12)
    ts = _t(snare_len, sr)
    snare = (_band(rng.standard_normal(snare_len), sr, 1200, 7000) + 0.5 * np.sin(2 * np.pi * 190 * ts)) \
        * np.exp(-ts / 0.06)
    hat = _band(rng.standard_normal(hat_len), sr, low=min(6000, 0.35 * sr)) * _decay(hat_len, sr, 0.015)
    x = np.zeros(n)
    start = rng.uniform(0, 0.3)
    for k, time in enumerate(np.arange(start, n / sr, eighth)):
        i = int(time * sr)
        beat = k % 8
        if beat in (0, 4) or (beat == 5 and rng.random() < 0.4):
            _add(x, kick, i)
        if beat in (2, 6):
            _add(x, 0.8 * snare, i)
        _add(x, rng.uniform(0.25, 0.45) * hat, i)
    return x


def bird_chirps(rng, n, sr):
    """Songbird: phrases of quick high-pitched frequency sweeps."""
    x = np.zeros(n)
    top = 0.42 * sr
    time = rng.uniform(0, 0.3)
    while time < n / sr:
        f_a, f_b = rng.uniform(2200, min(5000, top)), rng.uniform(2500, min(6500, top))
        for _ in range(rng.integers(2, 7)):
            length = int(rng.uniform(0.04, 0.12) * sr)
            shape = np.sin(np.pi * np.linspace(0, 1, length)) ** 2
            sweep = np.linspace(f_a, f_b, length) + rng.uniform(-200, 200)
            phase = _phase(sweep, sr)
            _add(x, np.sin(phase) * shape, int(time * sr))
            time += length / sr + rng.uniform(0.03, 0.12)
        time += rng.uniform(0.3, 0.9)
    return x


def clock_ticking(rng, n, sr):
    """Mechanical clock: short sharp ticks alternating in pitch (tick-tock)."""
    period = rng.choice([0.5, 1.0]) * rng.uniform(0.97, 1.03)
    f_tick = rng.uniform(2500, 4000)
    length = int(0.02 * sr)
    t = _t(length, sr)
    x = 0.003 * _band(rng.standard_normal(n), sr, 200, 2000)
    for k, onset in enumerate(_onsets(rng, n, sr, period)):
        f = f_tick if k % 2 == 0 else f_tick * rng.uniform(0.7, 0.8)
        click = np.sin(2 * np.pi * f * t) * np.exp(-t / 0.002) + 0.3 * rng.standard_normal(length) * np.exp(-t / 0.001)
        _add(x, click, onset)
    return x


def engine_hum(rng, n, sr):
    """Idling engine: low harmonic drone with firing-rate pulsation and rumble."""
    f0 = rng.uniform(25, 55) * (1 + 0.08 * (_smooth_random(rng, n, sr, 0.5) - 0.5))
    phase = _phase(f0, sr)
    x = sum(np.sin(k * phase + rng.uniform(0, 6)) / k ** 0.8 for k in range(1, 16) if 55 * k < 0.45 * sr)
    rumble = _band(rng.standard_normal(n), sr, high=rng.uniform(300, 600))
    x = x * (1 + 0.3 * np.sin(phase / 2)) + 0.8 * rumble * (1 + 0.5 * np.sin(phase))
    return _band(x, sr, high=1200)


def rain(rng, n, sr):
    """Rain: broadband hiss with dense random droplet impacts."""
    hiss = _band(rng.standard_normal(n), sr, 600, 7000) * 0.4
    drops = np.zeros(n)
    idx = _poisson_onsets(rng, n, rng.uniform(150, 500), sr)
    drops[idx] = rng.uniform(-1, 1, len(idx)) ** 3
    drops = _band(drops, sr, low=1500) * 6
    return hiss * (0.8 + 0.2 * _smooth_random(rng, n, sr, 1)) + drops


def wind(rng, n, sr):
    """Wind: low rumbling noise in slow gusts with a drifting howl."""
    gust = _smooth_random(rng, n, sr, rng.uniform(0.5, 1.5)) ** 2
    rumble = _band(rng.standard_normal(n), sr, high=rng.uniform(250, 500), order=3)
    howl_centre = rng.uniform(300, 700)
    howl = _band(rng.standard_normal(n), sr, howl_centre * 0.85, howl_centre * 1.15)
    return (rumble + 0.8 * howl * gust) * (0.3 + gust)


def applause(rng, n, sr):
    """Applause: a crowd's dense, overlapping hand claps."""
    x = np.zeros(n)
    length = int(0.015 * sr)
    t = _t(length, sr)
    for low in rng.uniform(700, 1500, size=4):  # four groups of clappers with their own timbre
        kernel = _band(rng.standard_normal(length), sr, low, low * 2.5) * np.exp(-t / 0.004)
        impulses = np.zeros(n)
        onsets = _poisson_onsets(rng, n, rng.uniform(10, 22), sr)
        impulses[onsets] = rng.uniform(0.3, 1.0, len(onsets))
        x += signal.fftconvolve(impulses, kernel)[:n]
    swell = np.minimum(1, _t(n, sr) / rng.uniform(0.2, 0.8))
    return x * swell


def water_drips(rng, n, sr):
    """Water dripping: sparse drops, each a short tone gliding upwards (a plink)."""
    x = 0.002 * rng.standard_normal(n)
    for onset in _onsets(rng, n, sr, rng.uniform(0.25, 0.6), jitter=0.15):
        length = int(0.08 * sr)
        f0 = rng.uniform(700, 1600)
        sweep = f0 * (1 + rng.uniform(0.6, 1.5) * (1 - np.exp(-_t(length, sr) / 0.01)))
        attack = np.minimum(1, _t(length, sr) / 0.001)
        drop = np.sin(_phase(sweep, sr)) * _decay(length, sr, rng.uniform(0.012, 0.03)) * attack
        _add(x, drop * rng.uniform(0.5, 1.0), onset)
    return x


def alarm_beeps(rng, n, sr):
    """Electronic alarm: a high square-ish tone beeping on and off regularly."""
    f = rng.uniform(1800, 3200)
    t = _t(n, sr)
    tone = sum(np.sin(2 * np.pi * k * f * t) / k for k in (1, 3, 5) if k * f < 0.45 * sr)  # square-ish
    on, off = rng.uniform(0.06, 0.18), rng.uniform(0.06, 0.2)
    group = rng.integers(1, 5)
    period = group * (on + off) + rng.uniform(0.2, 0.5)
    phase = (t + rng.uniform(0, period)) % period
    gate = (phase < group * (on + off)) & ((phase % (on + off)) < on)
    return tone * _soft_gate(gate, sr)


_VOWELS = np.array([  # F1, F2, F3 in Hz: a, e, i, o, u, ae, er
    [730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010], [570, 840, 2410],
    [300, 870, 2240], [660, 1720, 2410], [490, 1350, 1690],
])


def _formant_filter(x, sr, formants, bandwidth=80.0):
    y = np.zeros_like(x)
    for k, f in enumerate(formants):
        r = np.exp(-np.pi * bandwidth * (1 + k) / sr)
        w = 2 * np.pi * min(f, 0.45 * sr) / sr
        y += signal.lfilter([1 - r], [1, -2 * r * np.cos(w), r * r], x) / (1 + k)
    return y


def speech(rng, n, sr):
    """Babbled speech: syllables of voiced vowels (formants) and fricative consonants,
    with an intonation contour and pauses between words."""
    f0_base = rng.uniform(95, 230)
    x = np.zeros(n)
    pos = int(rng.uniform(0, 0.15) * sr)
    while pos < n:
        for _ in range(rng.integers(1, 4)):  # syllables of one word
            length = int(rng.uniform(0.12, 0.28) * sr)
            t = _t(length, sr)
            f0 = f0_base * (1 + 0.15 * np.sin(np.pi * t / t[-1] + rng.uniform(-1, 1))) * rng.uniform(0.9, 1.1)
            pulses = signal.sawtooth(_phase(f0, sr)) + 0.1 * rng.standard_normal(length)
            vowel = _formant_filter(pulses, sr, _VOWELS[rng.integers(len(_VOWELS))])
            vowel *= np.sin(np.pi * np.linspace(0, 1, length)) ** 0.5
            if rng.random() < 0.5:  # a consonant before the vowel
                clen = int(rng.uniform(0.03, 0.08) * sr)
                lo = rng.uniform(1800, 3500)
                cons = _band(rng.standard_normal(clen), sr, lo, lo * 2) * np.hanning(clen) * 0.25
                _add(x, cons, pos)
                pos += clen
            _add(x, vowel, pos)
            pos += length
        pos += int(rng.uniform(0.08, 0.35) * sr)  # pause between words
    return x


def footsteps(rng, n, sr):
    """Footsteps: a walker's regular heel thumps with a shoe scuff."""
    thump_env, scuff_env = np.zeros(n), np.zeros(n)
    thump_len, scuff_len = int(0.08 * sr), int(0.1 * sr)
    for onset in _onsets(rng, n, sr, rng.uniform(0.45, 0.65), jitter=0.04):
        _add(thump_env, _decay(thump_len, sr, 0.02) * rng.uniform(0.7, 1.0), onset)
        _add(scuff_env, np.hanning(scuff_len), onset + int(0.02 * sr))
    thumps = _band(rng.standard_normal(n) * thump_env, sr, 60, 350) * 4
    scuffs = _band(rng.standard_normal(n) * scuff_env, sr, 1500, 4500) * 0.25
    return thumps + scuffs + 0.002 * rng.standard_normal(n)


def helicopter(rng, n, sr):
    """Helicopter: rapid blade slaps over a turbine whine and rumble."""
    rate = rng.uniform(12, 22)
    envelope = np.zeros(n)
    length = int(0.04 * sr)
    decay = _decay(length, sr, 0.008)
    for onset in _onsets(rng, n, sr, 1 / rate, jitter=0.02):
        _add(envelope, decay, onset)
    slaps = _band(rng.standard_normal(n) * envelope, sr, 80, 900)
    whine = 0.05 * np.sin(2 * np.pi * rng.uniform(1500, 2800) * _t(n, sr))
    rumble = 0.3 * _band(rng.standard_normal(n), sr, high=150)
    return slaps + whine + rumble


def crickets(rng, n, sr):
    """Crickets: a steady high carrier in fast pulse trains (chirps)."""
    f = rng.uniform(min(3800, 0.36 * sr), min(5200, 0.42 * sr))
    pulse_rate = rng.uniform(25, 45)
    t = _t(n, sr)
    pulses = np.clip(np.sin(2 * np.pi * pulse_rate * t), 0, None) ** 2
    chirp_period, chirp_len = rng.uniform(0.35, 0.7), rng.uniform(0.12, 0.3)
    gate = ((t + rng.uniform(0, chirp_period)) % chirp_period) < chirp_len
    return np.sin(2 * np.pi * f * t) * pulses * _soft_gate(gate, sr, 0.01) + 0.005 * rng.standard_normal(n)


#: Synthesiser of each class, by class name.
SYNTHS: Dict[str, Synth] = {
    f.__name__: f
    for f in (siren, telephone_ring, church_bell, plucked_guitar, flute, drum_kit, bird_chirps,
              clock_ticking, engine_hum, rain, wind, applause, water_drips, alarm_beeps, speech,
              footsteps, helicopter, crickets)
}


def synthesize(name: str, rng: np.random.Generator, num_samples: int, sample_rate: int) -> np.ndarray:
    """One new instance of a class: float64 mono, faded in/out, peak 1.

    Args:
        name: a key of :data:`SYNTHS`.
        rng: generator drawing this instance's parameters.
        num_samples: length.
        sample_rate: rate in Hz (16 kHz or more keeps every class below Nyquist).
    """
    clip = np.asarray(SYNTHS[name](rng, num_samples, sample_rate), dtype=np.float64)[:num_samples]
    return _normalize(clip, sample_rate)
