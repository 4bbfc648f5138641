"""Audio I/O, input expansion, dataset and batching. All audio is synthesised in tmp_path."""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from audiogen.audio import (
    AudioDataset,
    AudioInfo,
    LengthGroupedBatchSampler,
    collate_audio,
    expand_inputs,
    frames_at_rate,
    load_audio,
    probe,
    resample,
    save_audio,
)
from audiogen.errors import AudioFileError


def tone(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path, x, sr, **kw):
    sf.write(str(path), x, sr, **kw)
    return path


def peak_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)])


# --- loading -------------------------------------------------------------------------------

@pytest.mark.parametrize("ext,subtype,tol", [
    ("wav", "PCM_16", 1e-4), ("flac", "PCM_24", 1e-5), ("ogg", "VORBIS", None), ("mp3", "MPEG_LAYER_III", None),
])
def test_load_formats(tmp_path, ext, subtype, tol):
    x = tone(440, 16000, 1.0)
    path = write(tmp_path / f"a.{ext}", x, 16000, subtype=subtype)
    info = probe(path)
    assert isinstance(info, AudioInfo) and info.sample_rate == 16000 and info.channels == 1
    assert info.duration == pytest.approx(info.frames / 16000)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1 and np.abs(y).max() <= 1.0
    if tol is not None:  # lossless
        np.testing.assert_allclose(y, x, atol=tol)
    else:  # lossy codecs may add encoder delay/padding; the tone must survive
        assert abs(len(y) - len(x)) < 3000
        assert abs(peak_hz(y, 16000) - 440) < 5


def test_resample_length_and_pitch(tmp_path):
    path = write(tmp_path / "t.wav", tone(1000, 8000, 1.0), 8000, subtype="FLOAT")
    y = load_audio(path, 16000)
    assert abs(len(y) - 16000) <= 1
    assert abs(peak_hz(y, 16000) - 1000) < 2
    assert len(y) == frames_at_rate(8000, 8000, 16000)
    # Direct function: identity and float32 out
    x = tone(1000, 8000, 0.5)
    assert resample(x, 8000, 8000) is not None and np.array_equal(resample(x, 8000, 8000), x)
    z = resample(x.astype(np.float64), 8000, 16000)
    assert z.dtype == np.float32 and abs(len(z) - 2 * len(x)) <= 1


def test_downmix_and_channel_error(tmp_path):
    left, right = tone(440, 16000, 0.2), tone(660, 16000, 0.2)
    path = write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    y = load_audio(path)
    np.testing.assert_allclose(y, (left + right) / 2, atol=1e-6)
    with pytest.raises(AudioFileError) as err:
        load_audio(path, channels="error")
    msg = str(err.value)
    assert "stereo.wav" in msg and "2 channels" in msg and "audio.channels='downmix'" in msg


def test_rate_mismatch_without_resampling(tmp_path):
    path = write(tmp_path / "r22.wav", tone(440, 22050, 0.1), 22050)
    with pytest.raises(AudioFileError) as err:
        load_audio(path, 16000, resample=False)
    msg = str(err.value)
    assert "r22.wav" in msg and "22050" in msg and "16000" in msg and "fix" in msg
    assert len(load_audio(path, 22050, resample=False)) == 2205


def test_nonfinite_float_file(tmp_path):
    x = tone(440, 8000, 0.1)
    x[10] = np.nan
    path = write(tmp_path / "nan.wav", x, 8000, subtype="FLOAT")
    with pytest.raises(AudioFileError, match="nan.wav.*NaN"):
        load_audio(path)


# --- broken inputs -------------------------------------------------------------------------

def _bad_inputs(tmp_path):
    cases = {}
    cases["missing"] = tmp_path / "missing.wav"
    (tmp_path / "adir.wav").mkdir()
    cases["directory"] = tmp_path / "adir.wav"
    (tmp_path / "empty.wav").write_bytes(b"")
    cases["empty"] = tmp_path / "empty.wav"
    (tmp_path / "noise.wav").write_bytes(np.random.default_rng(0).bytes(4000))
    cases["random bytes"] = tmp_path / "noise.wav"
    write(tmp_path / "zero.wav", np.zeros(0, np.float32), 16000)
    cases["zero frames"] = tmp_path / "zero.wav"
    return cases


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "random bytes", "zero frames"])
def test_bad_files_raise_audio_file_error(tmp_path, case):
    path = _bad_inputs(tmp_path)[case]
    for call in (probe, load_audio):
        with pytest.raises(AudioFileError) as err:
            call(path)
        assert path.name in str(err.value)
        assert err.value.fix


def test_zero_frames_message(tmp_path):
    path = write(tmp_path / "zero.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioFileError, match="contains no samples"):
        probe(path)


@pytest.mark.parametrize("ext,subtype", [
    ("wav", "PCM_16"), ("wav", "FLOAT"), ("flac", "PCM_16"), ("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III"),
])
@pytest.mark.parametrize("keep", [0.5, 0.1])
def test_truncated_files(tmp_path, ext, subtype, keep):
    x = tone(440, 16000, 2.0)
    full = write(tmp_path / f"full.{ext}", x, 16000, subtype=subtype)
    data = full.read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[: int(len(data) * keep)])
    # Whole read, resampled read and crop read: each is either a clean error or a correct prefix.
    calls = [dict(), dict(sample_rate=8000), dict(offset=len(x) // 2, frames=1000)]
    for kw in calls:
        try:
            y = load_audio(cut, **kw)
        except AudioFileError as err:
            assert "cut." in str(err)
            continue
        assert y.dtype == np.float32 and np.all(np.isfinite(y))
        if kw == {} and ext in ("wav", "flac"):
            assert 0 < len(y) < len(x)
            np.testing.assert_allclose(y, x[: len(y)], atol=1e-4)
        elif "frames" in kw:
            assert len(y) == 1000


# --- crops ---------------------------------------------------------------------------------

def test_crop_exact_length_and_matches_full_read(tmp_path):
    rng = np.random.default_rng(1)
    x = np.convolve(0.3 * rng.standard_normal(44100), np.ones(8) / 8, "same").astype(np.float32)
    path = write(tmp_path / "n.wav", x, 44100, subtype="FLOAT")
    full = load_audio(path, 16000)
    for offset in (0, 7, 5000, len(full) - 100):
        crop = load_audio(path, 16000, offset=offset, frames=400)
        assert crop.shape == (400,)
        ref = np.zeros(400, np.float32)
        ref[: len(full[offset:offset + 400])] = full[offset:offset + 400]
        np.testing.assert_allclose(crop, ref, atol=1e-5)
    # Same-rate crop is a plain slice, padded past the end.
    same = load_audio(path, offset=len(x) - 10, frames=30)
    np.testing.assert_array_equal(same[:10], x[-10:])
    assert not same[10:].any()


def test_dataset_crops_reproducible(tmp_path):
    files = [write(tmp_path / f"f{i}.wav", tone(200 + 50 * i, 8000, 1.0 + i), 8000, subtype="FLOAT")
             for i in range(3)]
    short = write(tmp_path / "short.wav", tone(300, 8000, 0.05), 8000)
    ds = AudioDataset(files + [short], sample_rate=16000, crop=4000, seed=3)
    assert ds.lengths == [4000, 4000, 4000, 800]
    item = ds[1]
    assert item["audio"].shape == (1, 4000) and item["length"] == 4000 and item["index"] == 1
    again = AudioDataset(files + [short], sample_rate=16000, crop=4000, seed=3)
    assert torch.equal(again[1]["audio"], item["audio"])
    ds.set_epoch(1)
    starts_e1 = [ds.crop_start(i) for i in range(3)]
    ds.set_epoch(0)
    starts_e0 = [ds.crop_start(i) for i in range(3)]
    assert starts_e0 != starts_e1
    assert ds[3]["length"] == 800 and ds[3]["audio"].shape == (1, 800)
    whole = AudioDataset(files, sample_rate=8000)
    assert whole.lengths == [8000, 16000, 24000] and whole[2]["length"] == 24000


def test_dataset_errors_at_construction(tmp_path):
    good = write(tmp_path / "g.wav", tone(300, 8000, 0.1), 8000)
    with pytest.raises(AudioFileError, match="missing.wav"):
        AudioDataset([good, tmp_path / "missing.wav"], sample_rate=8000)
    with pytest.raises(AudioFileError, match="g.wav"):
        AudioDataset([good], sample_rate=16000, resample=False)
    with pytest.raises(AudioFileError, match="min_frames"):
        AudioDataset([good], sample_rate=8000, min_frames=1000)


# --- expand_inputs -------------------------------------------------------------------------

def test_expand_inputs_dirs_and_lists(tmp_path):
    sub = tmp_path / "data" / "sub"
    sub.mkdir(parents=True)
    a = write(tmp_path / "data" / "b.wav", tone(440, 8000, 0.1), 8000)
    b = write(sub / "a.flac", tone(440, 8000, 0.1), 8000)
    (tmp_path / "data" / "notes.md").write_text("not audio")
    assert expand_inputs(tmp_path / "data") == [a.resolve(), b.resolve()]

    lst = tmp_path / "lists" / "files.txt"
    lst.parent.mkdir()
    lst.write_text("# comment\n\n../data/sub/a.flac\n  ../data/b.wav  \n../data/b.wav\n")
    assert expand_inputs([lst]) == [b.resolve(), a.resolve()]

    csv_file = tmp_path / "lists" / "meta.csv"
    csv_file.write_text("speaker,path\nx,../data/b.wav\ny,../data/sub/a.flac\n")
    assert expand_inputs(str(csv_file)) == [a.resolve(), b.resolve()]
    headerless = tmp_path / "lists" / "plain.csv"
    headerless.write_text("../data/b.wav,1\n")
    assert expand_inputs(headerless) == [a.resolve()]

    # Mixed inputs keep order and drop duplicates.
    assert expand_inputs([b, tmp_path / "data"]) == [b.resolve(), a.resolve()]
    assert all(p.is_absolute() for p in expand_inputs([lst]))


def test_expand_inputs_errors(tmp_path):
    lst = tmp_path / "files.lst"
    lst.write_text("one.wav\n\nmissing.wav\n")
    write(tmp_path / "one.wav", tone(440, 8000, 0.1), 8000)
    with pytest.raises(AudioFileError) as err:
        expand_inputs(lst)
    msg = str(err.value)
    assert "missing.wav" in msg and "files.lst" in msg and "line 3" in msg
    with pytest.raises(AudioFileError, match="nothere"):
        expand_inputs([tmp_path / "nothere"])
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(AudioFileError, match="no audio files found.*empty_dir.*\\.flac"):
        expand_inputs(tmp_path / "empty_dir")


# --- save_audio ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["out.wav", "deep/dir/out.flac", "noext", "out.ogg"])
def test_save_audio_atomic(tmp_path, name):
    x = tone(440, 16000, 0.2, amp=1.5)  # clipped on write
    out = save_audio(tmp_path / name, x, 16000)
    assert out.exists()
    leftovers = [p for p in out.parent.iterdir() if p != out]
    assert leftovers == [] or all(p.is_dir() for p in leftovers)
    y = load_audio(out)
    assert abs(len(y) - len(x)) < 3000 and np.abs(y).max() <= 1.0
    if out.suffix in (".wav", ".flac"):
        np.testing.assert_allclose(y, np.clip(x, -1, 1), atol=1e-4)


def test_save_audio_failure_leaves_no_temp(tmp_path):
    with pytest.raises(ValueError):
        save_audio(tmp_path / "bad.wav", np.array([0.0, np.nan]), 8000)
    with pytest.raises(RuntimeError):  # soundfile.LibsndfileError: the sample rate is refused by libsndfile
        save_audio(tmp_path / "bad.wav", np.zeros(10), sample_rate=0)
    assert os.listdir(tmp_path) == []


# --- collation and batching ----------------------------------------------------------------

def test_collate_masks():
    items = [{"audio": torch.ones(1, n), "length": n, "index": i} for i, n in enumerate([3, 7, 5])]
    batch = collate_audio(items)
    assert batch["audio"].shape == (3, 1, 7)
    assert batch["lengths"].tolist() == [3, 7, 5] and batch["index"].tolist() == [0, 1, 2]
    assert batch["mask"].dtype == torch.bool
    assert batch["mask"].sum(1).tolist() == [3, 7, 5]
    assert torch.equal(batch["audio"][:, 0] != 0, batch["mask"])
    padded = functools.partial(collate_audio, multiple_of=4)(items)
    assert padded["audio"].shape[-1] == 8 and padded["mask"].shape == (3, 8)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n,bs,mult", [(1000, 8, 50), (103, 10, 2), (5, 8, 1)])
def test_batch_sampler_covers_every_index(seed, n, bs, mult):
    lengths = np.random.default_rng(seed).integers(100, 10000, n).tolist()
    sampler = LengthGroupedBatchSampler(lengths, bs, seed=seed, group_size_multiplier=mult)
    epochs = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(n))
        assert all(len(b) <= bs for b in batches)
        epochs.append(batches)
    assert epochs[0] != epochs[1] or n <= bs
    sampler.set_epoch(0)
    assert list(sampler) == epochs[0]  # deterministic per (seed, epoch)

    dropped = LengthGroupedBatchSampler(lengths, bs, seed=seed, drop_last=True, group_size_multiplier=mult)
    batches = list(dropped)
    assert len(batches) == len(dropped) == n // bs and all(len(b) == bs for b in batches)
    assert len({i for b in batches for i in b}) == (n // bs) * bs


def test_batch_sampler_groups_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(100, 10000, 2000)
    sampler = LengthGroupedBatchSampler(lengths.tolist(), 16, seed=0)
    spread = np.mean([np.ptp(lengths[b]) for b in sampler])
    random_batches = rng.permutation(len(lengths)).reshape(-1, 16)
    random_spread = np.mean([np.ptp(lengths[b]) for b in random_batches])
    assert spread < 0.1 * random_spread

    ordered = list(LengthGroupedBatchSampler(lengths.tolist(), 16, shuffle=False))
    flat = [i for b in ordered for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert np.all(np.diff(lengths[flat]) >= 0)


def test_dataloader_end_to_end(tmp_path):
    files = [write(tmp_path / f"f{i}.wav", tone(300, 8000, 0.05 * (i + 1)), 8000) for i in range(6)]
    ds = AudioDataset(files, sample_rate=8000, crop=1000)
    sampler = LengthGroupedBatchSampler(ds.lengths, batch_size=4, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler,
                                         collate_fn=functools.partial(collate_audio, multiple_of=64))
    seen = []
    for batch in loader:
        assert batch["audio"].shape[-1] % 64 == 0
        assert batch["lengths"].tolist() == [ds.lengths[i] for i in batch["index"].tolist()]
        seen += batch["index"].tolist()
    assert sorted(seen) == list(range(6))
