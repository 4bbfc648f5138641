"""The synthetic example corpus (audiogen.synth) and the diagnostic plots (audiogen.plots)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf

from audiogen.plots import log_spectrogram, plot_comparison, plot_latents, plot_spectrograms
from audiogen.synth import Speaker, make_speakers, synthesize_utterance, write_corpus

SR = 16000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _estimate_f0(x: np.ndarray, sample_rate: int) -> float:
    """Median autocorrelation pitch over the loudest (hence voiced) 40 ms frames.

    Low-passing and centre clipping (the classic Sondhi recipe) flatten the formant ringing,
    which otherwise makes the autocorrelation peak at a formant period instead of the pitch.
    """
    spec = np.fft.rfft(x.astype(np.float64))
    spec[np.fft.rfftfreq(len(x), 1 / sample_rate) > 900] = 0
    x = np.fft.irfft(spec, len(x))
    frame = int(0.04 * sample_rate)
    frames = np.lib.stride_tricks.sliding_window_view(x, frame)[::frame // 2]
    energy = (frames**2).sum(axis=1)
    loud = frames[energy >= np.quantile(energy, 0.8)]
    lo, hi = int(sample_rate / 400), int(sample_rate / 60)
    estimates = []
    for f in loud:
        f = f - f.mean()
        f = np.sign(f) * np.maximum(np.abs(f) - 0.3 * np.abs(f).max(), 0.0)
        ac = np.correlate(f, f, mode="full")[frame - 1:]
        estimates.append(sample_rate / (lo + int(np.argmax(ac[lo:hi]))))
    return float(np.median(estimates))


def test_same_seed_same_audio_and_different_seed_differs():
    spk = Speaker("s", 140.0, 1.0, 0.1)
    a = synthesize_utterance(np.random.default_rng(7), SR, 1.0, spk)
    b = synthesize_utterance(np.random.default_rng(7), SR, 1.0, spk)
    c = synthesize_utterance(np.random.default_rng(8), SR, 1.0, spk)
    assert a.dtype == np.float32 and a.shape == (SR,)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("seconds,sample_rate", [(0.05, 16000), (1.3, 16000), (2.0, 8000),
                                                 (1.0, 44100)])
def test_peak_in_range_and_finite(seconds, sample_rate):
    for seed in range(3):
        spk = make_speakers(3, np.random.default_rng(seed))[seed]
        x = synthesize_utterance(np.random.default_rng(seed), sample_rate, seconds, spk)
        assert x.shape == (round(seconds * sample_rate),)
        assert np.all(np.isfinite(x))
        assert 0.5 < np.abs(x).max() <= 0.9


def test_speakers_are_distinct_and_pitch_order_is_audible():
    speakers = make_speakers(4, np.random.default_rng(0))
    assert len({s.name for s in speakers}) == 4
    f0s = [s.f0_hz for s in speakers]
    assert f0s == sorted(f0s) and 90 <= f0s[0] and f0s[-1] <= 240
    assert all(0.85 <= s.formant_scale <= 1.2 for s in speakers)

    measured = [_estimate_f0(synthesize_utterance(np.random.default_rng(1), SR, 2.0, s), SR)
                for s in speakers]
    assert measured == sorted(measured), (f0s, measured)
    for nominal, est in zip(f0s, measured):
        assert abs(np.log(est / nominal)) < np.log(1.25), (nominal, est)


def test_energy_is_mostly_below_4khz():
    spk = Speaker("s", 120.0, 1.0, 0.1)
    x = synthesize_utterance(np.random.default_rng(3), SR, 3.0, spk).astype(np.float64)
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    assert power[freqs < 4000].sum() / power.sum() > 0.8
    # Formants: the long-term spectrum has peaks, not a flat or monotone shape.
    freqs_s, _, db = log_spectrogram(x, SR)
    band = (freqs_s > 200) & (freqs_s < 3500)
    profile = db[band].mean(axis=1)
    assert profile.max() - profile.min() > 15


def test_ten_seconds_runs():
    x = synthesize_utterance(np.random.default_rng(0), SR, 10.0, Speaker("s", 200.0, 1.1, 0.2))
    assert len(x) == 10 * SR


def test_write_corpus_lists_labels_and_determinism(tmp_path):
    a = write_corpus(tmp_path / "a", n_speakers=3, utterances_per_speaker=3, seconds=(0.3, 0.6),
                     seed=5)
    b = write_corpus(tmp_path / "b", n_speakers=3, utterances_per_speaker=3, seconds=(0.3, 0.6),
                     seed=5)
    assert [p.name for p in a] == [f"spk0{s}_{k}.wav" for s in range(3) for k in range(3)]
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes()
    for name in ("train.txt", "valid.txt", "labels.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert not list((tmp_path / "a").glob(".*tmp"))  # no temp files left behind

    root = tmp_path / "a"
    train = (root / "train.txt").read_text().split()
    valid = (root / "valid.txt").read_text().split()
    assert sorted(train + valid) == sorted(p.name for p in a)
    assert valid == ["spk00_2.wav", "spk01_2.wav", "spk02_2.wav"]
    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["path"] for r in rows] == [p.name for p in a]
    for r in rows:
        assert r["path"].startswith(r["speaker"] + "_")
        assert r["split"] == ("valid" if r["path"] in valid else "train")

    info = sf.info(str(a[0]))
    assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
    assert 0.3 <= info.duration <= 0.6

    c = write_corpus(tmp_path / "c", n_speakers=3, utterances_per_speaker=3, seconds=(0.3, 0.6),
                     seed=6)
    assert a[0].read_bytes() != c[0].read_bytes()


def test_write_corpus_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        write_corpus(tmp_path, utterances_per_speaker=1)
    with pytest.raises(ValueError):
        write_corpus(tmp_path, seconds=(2.0, 1.0))


def test_log_spectrogram_shapes_and_peak():
    t = np.arange(SR) / SR
    freqs, times, db = log_spectrogram(np.sin(2 * np.pi * 1000 * t), SR, n_fft=512, hop=128)
    assert db.shape == (257, len(times)) and len(times) == SR // 128 + 1
    assert abs(freqs[np.argmax(db[:, len(times) // 2])] - 1000) < SR / 512
    assert log_spectrogram(np.zeros(10), SR)[2].shape[1] == 1  # shorter than one window


def _assert_png(path, min_bytes=10_000):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert min_bytes < len(data) < 5_000_000


def test_plots_write_pngs(tmp_path):
    rng = np.random.default_rng(0)
    x = synthesize_utterance(rng, SR, 0.8, Speaker("s", 150.0, 1.0, 0.1))
    y = np.convolve(x, np.ones(4) / 4, mode="same")  # a crude low-pass "reconstruction"
    out = plot_comparison(tmp_path / "sub" / "cmp.png", [("a", x, y), ("b", x[None], x[:5000])],
                          SR)
    assert out == tmp_path / "sub" / "cmp.png"
    _assert_png(out)
    _assert_png(plot_spectrograms(tmp_path / "s.png", [("x", x), ("y", y)], SR))
    _assert_png(plot_latents(tmp_path / "z.png", [("z", rng.standard_normal((8, 40))),
                                                  ("flat", np.zeros(40))], hop=320,
                             sample_rate=SR))
    assert not list(tmp_path.rglob("*.tmp"))
    with pytest.raises(ValueError):
        plot_comparison(tmp_path / "none.png", [], SR)
