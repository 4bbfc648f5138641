"""A tiny speech-like corpus, synthesised from a seed.

The quickstart, the doctests and the fast tests need audio that looks like speech to a model
(harmonic voiced stretches with moving formants, noisy fricatives, pauses, several speakers)
without shipping or downloading any data. This module makes such audio with a classic
source-filter model in pure numpy:

* source: a Rosenberg glottal pulse train whose pitch follows a declining, wandering contour
  with per-cycle jitter and shimmer, plus breath noise gated by the glottal flow;
* filter: a cascade of four formant resonators (Klatt-style, unity gain at DC) whose
  frequencies glide between vowel targets, then lip radiation (a first difference);
* segments: syllables with rise/fall envelopes, separated by fricative bursts (high-passed,
  band-shaped noise), stop closures and short pauses.

The result sounds like robotic babble and costs a few tens of milliseconds per second of audio.

>>> import numpy as np
>>> from audiogen.synth import Speaker, synthesize_utterance
>>> x = synthesize_utterance(np.random.default_rng(0), 16000, 0.2, Speaker("spk00", 120.0, 1.0, 0.1))
>>> x.shape, x.dtype
((3200,), dtype('float32'))
>>> bool(0.5 < np.abs(x).max() <= 0.9)
True
>>> bool(np.array_equal(x, synthesize_utterance(np.random.default_rng(0), 16000, 0.2,
...                                              Speaker("spk00", 120.0, 1.0, 0.1))))
True
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from audiogen.artifacts import atomic_write_bytes

__all__ = ["Speaker", "make_speakers", "synthesize_utterance", "write_corpus", "VOWELS"]

# F1-F3 targets (Hz) for an adult male voice; speakers scale them by `formant_scale`.
VOWELS: dict[str, tuple[float, float, float]] = {
    "a": (730.0, 1090.0, 2440.0),
    "i": (270.0, 2290.0, 3010.0),
    "u": (300.0, 870.0, 2240.0),
    "e": (400.0, 2000.0, 2550.0),
    "o": (450.0, 800.0, 2600.0),
}
_F4_HZ = 3400.0  # roughly constant across vowels; adds the "presence" of a voice
_BANDWIDTHS_HZ = (70.0, 90.0, 140.0, 200.0)
_BLOCK_SECONDS = 0.005  # coefficient update rate of the time-varying filters
_PEAK_RANGE = (0.6, 0.9)  # utterances vary in level, never beyond 0.9 full scale


@dataclass(frozen=True)
class Speaker:
    """Voice parameters: mean pitch, vocal-tract size (formant scale) and breath noise (0..1)."""

    name: str
    f0_hz: float
    formant_scale: float
    breathiness: float


def make_speakers(n: int, rng: np.random.Generator) -> list[Speaker]:
    """`n` clearly distinct speakers named spk00, spk01, ... in order of increasing pitch.

    Pitch spans 90-240 Hz and formant scale 0.85-1.2 together (higher voices tend to come
    with shorter vocal tracts); the jitter on both is small enough to keep the order.
    """
    if n < 1:
        raise ValueError(f"need at least one speaker, got n={n}")
    pos = np.linspace(0.0, 1.0, n) if n > 1 else np.array([0.5])
    spacing = 1.0 / max(n - 1, 1)
    pos = np.clip(pos + rng.uniform(-0.2, 0.2, n) * spacing, 0.0, 1.0)
    speakers = []
    for i, p in enumerate(pos):
        f0 = 90.0 * (240.0 / 90.0) ** float(p)  # even spacing on a log (musical) scale
        scale = 0.85 + 0.35 * float(np.clip(p + rng.uniform(-0.1, 0.1), 0.0, 1.0))
        speakers.append(Speaker(f"spk{i:02d}", round(f0, 2), round(scale, 3),
                                round(float(rng.uniform(0.02, 0.3)), 3)))
    return speakers


# --- filters ---------------------------------------------------------------------------------

def _resonate(x: np.ndarray, freqs: np.ndarray, bandwidths: np.ndarray | float,
              sample_rate: int, block: int) -> np.ndarray:
    """Two-pole resonator y[n] = A x[n] + B y[n-1] + C y[n-2], coefficients fixed per block.

    A python loop per sample is far too slow, so the real two-pole filter is split into a
    complex one-pole pair (y = 2 Re w, w[n] = c x[n] + p w[n-1]). Within a block the one-pole
    recursion has a closed form (a scaled cumulative sum), computed for all blocks at once;
    only the single complex state carried from block to block needs a (short) loop.
    """
    n = len(x)
    nb = -(-n // block)
    xb = np.zeros(nb * block)
    xb[:n] = x
    xb = xb.reshape(nb, block)
    freqs = np.broadcast_to(np.asarray(freqs, dtype=np.float64), (nb,))
    bws = np.broadcast_to(np.asarray(bandwidths, dtype=np.float64), (nb,))
    # |p|^-block must stay far from overflow in the cumulative sum below.
    if np.max(bws) * block / sample_rate * math.pi > 300.0:
        raise ValueError("resonator bandwidth too wide for the block length")

    r = np.exp(-math.pi * bws / sample_rate)
    p = r * np.exp(2j * math.pi * freqs / sample_rate)
    gain = 1.0 - 2.0 * r * np.cos(2 * math.pi * freqs / sample_rate) + r * r  # unity DC gain
    c = gain * p / (p - np.conj(p))
    log_p = np.log(p)[:, None]
    k = np.arange(block)[None, :]
    zero_state = c[:, None] * np.exp(log_p * k) * np.cumsum(xb * np.exp(-log_p * k), axis=1)

    # State entering each block: s_b = w_b[last] = zero_state_b[last] + p_b^block * s_{b-1}.
    ends = zero_state[:, -1].tolist()
    decay = np.exp(log_p[:, 0] * block).tolist()
    incoming = [0j] * nb
    state = 0j
    for b in range(nb):
        incoming[b] = state
        state = ends[b] + decay[b] * state
    w = zero_state + np.exp(log_p * (k + 1)) * np.asarray(incoming)[:, None]
    return 2.0 * w.real.reshape(-1)[:n]


def _block_values(track: np.ndarray, block: int) -> np.ndarray:
    """Per-sample control track -> one value per block (taken at the block centre)."""
    nb = -(-len(track) // block)
    return track[np.minimum(np.arange(nb) * block + block // 2, len(track) - 1)]


def _smooth(track: np.ndarray, width: int) -> np.ndarray:
    """Moving average (edge-padded) to round off the corners of piecewise-linear tracks."""
    if width < 2:
        return track
    padded = np.pad(track, (width // 2, width - 1 - width // 2), mode="edge")
    csum = np.concatenate([[0.0], np.cumsum(padded)])
    return (csum[width:] - csum[:-width]) / width


def _wander(rng: np.random.Generator, n: int, knot_every: int, sd: float) -> np.ndarray:
    """Slow random movement: random knots joined by cosine interpolation."""
    knots = rng.normal(0.0, sd, n // max(knot_every, 1) + 2)
    t = np.arange(n) / max(knot_every, 1)
    i = t.astype(np.int64)
    frac = 0.5 - 0.5 * np.cos(math.pi * (t - i))
    return knots[i] * (1.0 - frac) + knots[i + 1] * frac


# --- source ----------------------------------------------------------------------------------

def _rosenberg(phase: np.ndarray, open_q: float, close_q: float) -> np.ndarray:
    """Rosenberg glottal flow for a phase in [0, 1): cosine opening, quarter-cosine closing.

    The abrupt closure (a slope discontinuity) gives the harmonics that a smooth pulse lacks.
    """
    g = np.zeros_like(phase)
    opening = phase < open_q
    g[opening] = 0.5 - 0.5 * np.cos(math.pi * phase[opening] / open_q)
    closing = (phase >= open_q) & (phase < open_q + close_q)
    g[closing] = np.cos(0.5 * math.pi * (phase[closing] - open_q) / close_q)
    return g


def _syllable_envelope(m: int) -> np.ndarray:
    """Quick rise, slower fall: u^0.6 (1-u)^0.9 normalised to a peak of 1."""
    u = (np.arange(m) + 0.5) / m
    a, b = 0.6, 0.9
    env = u**a * (1.0 - u) ** b
    return env / ((a / (a + b)) ** a * (b / (a + b)) ** b)


@dataclass
class _Plan:
    syllables: list[tuple[int, int, str, float]]  # start, end, vowel, amplitude
    noises: list[tuple[int, int, float, float]]  # start, end, centre Hz, amplitude


def _plan(rng: np.random.Generator, n: int, sample_rate: int) -> _Plan:
    """Lay out syllables, fricatives, stop closures and pauses along the utterance."""
    ms = sample_rate / 1000.0
    cursor = int(min(rng.uniform(30, 120) * ms, 0.15 * n))
    end = n - int(min(rng.uniform(60, 150) * ms, 0.15 * n))
    plan = _Plan([], [])
    until_pause = int(rng.integers(3, 7))
    while cursor < end:
        onset = rng.random()
        if plan.syllables and onset < 0.35:  # fricative: /s/-like high, /sh/-like lower
            dur = int(rng.uniform(50, 130) * ms)
            plan.noises.append((cursor, min(cursor + dur, end), rng.uniform(2500, 6000),
                                rng.uniform(0.25, 0.5)))
            cursor += dur
        elif plan.syllables and onset < 0.6:  # stop: closure silence, then a short burst
            cursor += int(rng.uniform(30, 70) * ms)
            dur = int(rng.uniform(8, 20) * ms)
            plan.noises.append((cursor, min(cursor + dur, end), rng.uniform(1500, 4000),
                                rng.uniform(0.3, 0.6)))
            cursor += dur
        remaining = end - cursor
        if plan.syllables and remaining < 60 * ms:
            break
        dur = max(1, min(int(rng.uniform(120, 280) * ms), remaining))
        vowel = str(rng.choice(list(VOWELS)))
        plan.syllables.append((cursor, cursor + dur, vowel, rng.uniform(0.6, 1.0)))
        cursor += dur
        until_pause -= 1
        if until_pause == 0:
            cursor += int(rng.uniform(120, 250) * ms)
            until_pause = int(rng.integers(3, 7))
    return plan


# --- synthesis -------------------------------------------------------------------------------

def _normalised(x: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Scale to unit RMS over the active region, so that mixing levels are relative."""
    rms = math.sqrt(float(np.mean(x[active] ** 2))) if np.any(active) else 0.0
    return x / rms if rms > 0 else x


def synthesize_utterance(rng: np.random.Generator, sample_rate: int, seconds: float,
                         speaker: Speaker) -> np.ndarray:
    """One babble utterance of `seconds` seconds, mono float32 with a peak of 0.6-0.9."""
    n = int(round(seconds * sample_rate))
    if n < 1 or sample_rate < 4000:
        raise ValueError(f"need seconds > 0 and sample_rate >= 4000, got {seconds}, {sample_rate}")
    block = max(1, int(round(_BLOCK_SECONDS * sample_rate)))
    plan = _plan(rng, n, sample_rate)

    # Amplitude envelopes and formant targets (knots at syllable centres, then glides).
    voiced_env = np.zeros(n)
    centres, targets = [], []
    for start, stop, vowel, amp in plan.syllables:
        voiced_env[start:stop] += amp * _syllable_envelope(stop - start)
        centres.append(0.5 * (start + stop))
        targets.append(VOWELS[vowel])
    targets_arr = np.asarray(targets) * speaker.formant_scale
    t = np.arange(n)
    smooth_w = int(0.04 * sample_rate)
    formants = [_smooth(np.interp(t, centres, targets_arr[:, j]), smooth_w) for j in range(3)]
    formants.append(np.full(n, _F4_HZ * speaker.formant_scale))

    # Pitch: declination over the utterance, slow wandering, syllable accents, jitter.
    f0 = speaker.f0_hz * np.exp(np.linspace(0.1, -0.1, n)
                                + _wander(rng, n, int(0.2 * sample_rate), 0.05))
    accent = np.zeros(n)
    for start, stop, _, _ in plan.syllables:
        accent[start:stop] = rng.normal(0.0, 0.04)
    f0 *= np.exp(_smooth(accent, int(0.06 * sample_rate)))
    period = max(1, int(sample_rate / speaker.f0_hz))
    f0 *= 1.0 + np.repeat(rng.normal(0.0, 0.01, n // period + 1), period)[:n]
    f0 = np.clip(f0, 40.0, sample_rate / 8.0)
    phase = np.cumsum(f0 / sample_rate)
    cycle = phase.astype(np.int64)
    shimmer = 1.0 + rng.normal(0.0, 0.05, cycle[-1] + 1)[cycle]
    open_q = 0.4 + 0.15 * speaker.breathiness  # breathy voices keep the glottis open longer
    flow = _rosenberg(phase - cycle, open_q, 0.16)
    breath = speaker.breathiness * rng.standard_normal(n) * (0.15 + flow)
    source = (flow * shimmer + breath) * voiced_env

    voiced = source
    for j, track in enumerate(formants):
        fb = _block_values(track, block)
        if fb.max() >= 0.45 * sample_rate:  # formant above Nyquist at low rates: leave it out
            continue
        voiced = _resonate(voiced, fb, _BANDWIDTHS_HZ[j] * speaker.formant_scale,
                           sample_rate, block)
    voiced = np.diff(voiced, prepend=0.0)  # lip radiation
    out = _normalised(voiced, voiced_env > 0.5 * voiced_env.max())

    # Fricatives and bursts: high-passed noise shaped by a broad resonance.
    noise_out = np.zeros(n)
    for start, stop, centre, amp in plan.noises:
        m = stop - start
        if m < 2:
            continue
        env = np.sin(math.pi * (np.arange(m) + 0.5) / m) ** 0.5
        hiss = np.diff(rng.standard_normal(m + 1))
        centre = min(centre * speaker.formant_scale, 0.4 * sample_rate)
        hiss = _resonate(hiss, centre, 0.3 * centre, sample_rate, block)
        hiss = np.diff(hiss, prepend=0.0)
        noise_out[start:stop] = amp * env * _normalised(hiss, np.ones(m, dtype=bool))
    out = out + noise_out

    # A faint noise floor (real recordings are never digitally silent) and short fades.
    out += 1e-3 * rng.standard_normal(n)
    fade = min(int(0.005 * sample_rate), n // 2)
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade)
        out[:fade] *= ramp
        out[n - fade:] *= ramp[::-1]
    peak = float(np.max(np.abs(out)))
    level = rng.uniform(*_PEAK_RANGE)
    out = out * (level / peak) if peak > 0 else out
    return np.clip(out, -0.9, 0.9).astype(np.float32)


# --- corpus ----------------------------------------------------------------------------------

def _wav_bytes(x: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM WAV; quantised here so the bytes do not depend on libsndfile's rounding."""
    pcm = np.clip(np.round(x.astype(np.float64) * 32767.0), -32767, 32767).astype(np.int16)
    buf = io.BytesIO()
    sf.write(buf, pcm, sample_rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def write_corpus(out_dir: str | os.PathLike, n_speakers: int = 4, utterances_per_speaker: int = 6,
                 seconds: tuple[float, float] | float = (1.5, 3.0), sample_rate: int = 16000,
                 seed: int = 0) -> list[Path]:
    """Write `<speaker>_<k>.wav` files plus train.txt, valid.txt and labels.csv to `out_dir`.

    The last utterance of each speaker goes to valid, the rest to train; list files hold paths
    relative to `out_dir`. Every utterance has its own random stream keyed by (seed, speaker,
    index), so the same arguments always give byte-identical files.
    """
    if utterances_per_speaker < 2:
        raise ValueError("need at least 2 utterances per speaker (one goes to valid)")
    lo, hi = (seconds, seconds) if isinstance(seconds, (int, float)) else seconds
    if not 0 < lo <= hi:
        raise ValueError(f"seconds must be positive with min <= max, got {seconds}")
    out = Path(out_dir)
    speaker_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    speakers = make_speakers(n_speakers, speaker_rng)
    paths: list[Path] = []
    rows: list[tuple[str, str, str]] = []
    for s, speaker in enumerate(speakers):
        for k in range(utterances_per_speaker):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, s, k)))
            x = synthesize_utterance(rng, sample_rate, float(rng.uniform(lo, hi)), speaker)
            name = f"{speaker.name}_{k}.wav"
            atomic_write_bytes(out / name, _wav_bytes(x, sample_rate))
            paths.append(out / name)
            rows.append((name, speaker.name, "valid" if k == utterances_per_speaker - 1 else "train"))

    for split in ("train", "valid"):
        text = "".join(f"{name}\n" for name, _, sp in rows if sp == split)
        atomic_write_bytes(out / f"{split}.txt", text.encode())
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("path", "speaker", "split"))
    writer.writerows(rows)
    atomic_write_bytes(out / "labels.csv", buf.getvalue().encode())
    return paths


def strokes(rng: np.random.Generator, letters: int = 4, points: int = 24) -> np.ndarray:
    """One handwriting-like sequence (T, 3) of pen offsets (dx, dy) and a pen-up flag, as in the online
    handwriting setups of the VRNN/SRNN papers: each 'letter' is a parametric loop or arc (a cycloid-like curve
    drifting right, with its own size, slant and number of loops), written in one stroke, then the pen lifts
    and moves to the next letter."""
    seq = []
    x0 = 0.0
    for _ in range(letters):
        loops = int(rng.integers(1, 3))
        r, slant, width = rng.uniform(0.6, 1.4), rng.uniform(-0.3, 0.3), rng.uniform(0.8, 1.6)
        t = np.linspace(0, 2 * np.pi * loops, points)
        x = x0 + width * t / (2 * np.pi) + 0.5 * r * np.sin(t + rng.uniform(0, np.pi))
        y = r * (1 - np.cos(t)) * (1 if rng.random() < 0.5 else -1)
        x = x + slant * y
        pts = np.stack([x, y], 1) + rng.normal(0, 0.02, (points, 2))
        pen = np.zeros(points)
        pen[-1] = 1.0  # lift after the letter
        seq.append(np.concatenate([pts, pen[:, None]], 1))
        x0 = x[-1] + rng.uniform(0.3, 0.8)
    arr = np.concatenate(seq)
    d = np.diff(arr[:, :2], axis=0, prepend=arr[:1, :2])
    return np.concatenate([d, arr[:, 2:]], 1).astype(np.float32)


def write_stroke_corpus(folder, n: int = 64, seed: int = 0) -> list:
    """``n`` stroke sequences as ``strokes_NNN.npy`` (T, 3) arrays (lengths vary with the number of letters)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        p = folder / f"strokes_{i:03d}.npy"
        np.save(p, strokes(rng, letters=int(rng.integers(2, 6))))
        paths.append(p)
    return paths
