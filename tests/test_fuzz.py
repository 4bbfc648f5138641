"""Fuzzed bad input (hypothesis): audio files, input coding, latent datasets and .npy sequence folders.

Every case ends in a correct result or one of audiogen's own errors naming the file, never a raw numpy/torch/
soundfile exception, a hang (each example has a deadline) or output outside the documented range.
"""

from __future__ import annotations

import io
import json
import struct
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from audiogen.audio.coding import LinearPCM, MuLaw
from audiogen.audio.io import (
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    frames_at_rate,
    load_audio,
    probe,
)
from audiogen.errors import AudiogenError
from audiogen.latents.dataset import FORMAT, VERSION, LatentDataset, RunningStats
from audiogen.latents.sequences import open_sequences

FUZZ = settings(max_examples=40, deadline=timedelta(seconds=5), derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _fresh(tmp_path: Path) -> Path:
    """A new folder per hypothesis example (tmp_path is shared by all examples of a test)."""
    return Path(tempfile.mkdtemp(dir=tmp_path))


def _clean_or_error(path: Path, fn):
    """fn() either returns, or raises an AudiogenError that names ``path``."""
    try:
        return fn()
    except AudiogenError as exc:
        assert path.name in str(exc), f"error does not name {path}: {exc}"
        return None


def _check_audio(x, expected_len: int | None = None) -> None:
    assert isinstance(x, np.ndarray) and x.dtype == np.float32 and x.ndim == 1 and len(x) > 0
    assert np.isfinite(x).all() and np.abs(x).max(initial=0) <= 1.0
    if expected_len is not None:
        assert len(x) == expected_len


def _load_all_ways(path: Path) -> None:
    info = _clean_or_error(path, lambda: probe(path))
    if info is None:
        return
    assert MIN_SAMPLE_RATE <= info.sample_rate <= MAX_SAMPLE_RATE and info.frames > 0 and info.channels > 0
    for sr in (None, 16000):
        x = _clean_or_error(path, lambda sr=sr: load_audio(path, sr, info=info))
        if x is not None:
            _check_audio(x, info.frames if sr is None else frames_at_rate(info.frames, info.sample_rate, sr))
    x = _clean_or_error(path, lambda: load_audio(path, 16000, offset=3, frames=50, info=info))
    if x is not None:
        _check_audio(x, 50)


# ----------------------------------------------------------------------------------------------------- audio
@FUZZ
@given(data=st.binary(max_size=4096), ext=st.sampled_from([".wav", ".flac", ".ogg", ".aiff", ".mp3"]),
       magic=st.sampled_from([b"", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"fLaC", b"OggS", b"FORM"]))
def test_random_bytes(tmp_path, data, ext, magic):
    p = tmp_path / f"noise{ext}"
    p.write_bytes(magic + data)
    _load_all_ways(p)


def _real_file(fmt: str, subtype: str, n: int, channels: int, sr: int) -> bytes:
    rng = np.random.default_rng(n)
    x = np.clip(rng.normal(scale=0.3, size=(n, channels)), -1, 1)
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


@FUZZ
@given(kind=st.sampled_from([("WAV", "PCM_16"), ("WAV", "PCM_24"), ("WAV", "PCM_U8"), ("WAV", "FLOAT"),
                             ("WAV", "DOUBLE"), ("FLAC", "PCM_16"), ("FLAC", "PCM_24")]),
       n=st.integers(1, 3000), channels=st.integers(1, 3), sr=st.sampled_from([8000, 16000, 44100, 48000]),
       keep=st.floats(0, 1), flip=st.lists(st.integers(0, 10**6), max_size=4))
def test_truncated_and_corrupted_real_files(tmp_path, kind, n, channels, sr, keep, flip):
    data = bytearray(_real_file(*kind, n, channels, sr))
    data = data[: int(len(data) * keep)]
    for pos in flip:  # flipped bytes anywhere, header included
        if data:
            data[pos % len(data)] ^= 0xFF
    p = tmp_path / ("cut.wav" if kind[0] == "WAV" else "cut.flac")
    p.write_bytes(bytes(data))
    _load_all_ways(p)


def _wav(channels: int, sr: int, bits: int, fmt: int, payload: bytes, datasize: int | None) -> bytes:
    block = (channels * bits // 8) & 0xFFFF
    head = struct.pack("<HHIIHH", fmt, channels, sr, (sr * block) & 0xFFFFFFFF, block, bits)
    body = b"WAVEfmt " + struct.pack("<I", 16) + head + b"data"
    body += struct.pack("<I", len(payload) if datasize is None else datasize) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


@FUZZ
@given(channels=st.integers(0, 0xFFFF), sr=st.one_of(st.integers(0, 0xFFFFFFFF), st.sampled_from([1, 8000, 16000])),
       bits=st.sampled_from([0, 1, 7, 8, 16, 24, 32, 64, 0xFFFF]), fmt=st.sampled_from([0, 1, 3, 0xFFFE, 0xFFFF]),
       payload=st.binary(max_size=2048), datasize=st.one_of(st.none(), st.integers(0, 0xFFFFFFFF)))
def test_wav_headers_with_wrong_fields(tmp_path, channels, sr, bits, fmt, payload, datasize):
    """Sizes claiming gigabytes, zero or 65535 channels, 0 Hz or 4 GHz rates, odd sample widths."""
    p = tmp_path / "lies.wav"
    p.write_bytes(_wav(channels, sr, bits, fmt, payload, datasize))
    _load_all_ways(p)


@FUZZ
@given(x=hnp.arrays(np.float64, st.integers(1, 400), elements=st.floats(allow_nan=True, allow_infinity=True,
                                                                        width=64)),
       subtype=st.sampled_from(["FLOAT", "DOUBLE"]))
def test_float_samples_with_nan_inf_and_huge_values(tmp_path, x, subtype):
    """Policy: non-finite samples (and doubles beyond float32) are an error naming the file and the count;
    finite ones load clipped to [-1, 1]."""
    p = tmp_path / "float.wav"
    sf.write(p, x, 16000, subtype=subtype)
    stored = sf.read(p, dtype="float32")[0]
    bad = int((~np.isfinite(stored)).sum())
    if bad:
        with pytest.raises(AudiogenError) as err:
            load_audio(p, 16000)
        assert "float.wav" in str(err.value) and f"{bad} in frames" in str(err.value)
    else:
        y = load_audio(p, 16000)
        _check_audio(y, len(x))
        np.testing.assert_array_equal(y, np.clip(stored, -1, 1))


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "PCM_U8", "FLOAT", "DOUBLE"])
@pytest.mark.parametrize("n", [0, 1, 2])
def test_zero_one_and_two_sample_files(tmp_path, subtype, n):
    for sr in (8000, 16000, 48000):
        p = tmp_path / f"short{sr}.wav"
        sf.write(p, np.full(n, 0.25), sr, subtype=subtype)
        target = frames_at_rate(n, sr, 16000)
        if target == 0:  # nothing at 16 kHz: a clean refusal, not a crash in resampling or an encoder
            with pytest.raises(AudiogenError, match=p.name):
                load_audio(p, 16000)
        else:
            _check_audio(load_audio(p, 16000), target)


# --------------------------------------------------------------------------------------------------- coding
CODINGS = [MuLaw(8), MuLaw(16), LinearPCM(8), LinearPCM(16), MuLaw(2), LinearPCM(3)]


@FUZZ
@given(x=hnp.arrays(st.sampled_from([np.float16, np.float32, np.float64]), hnp.array_shapes(max_dims=3, max_side=20),
                    elements=st.floats(allow_nan=True, allow_infinity=True, width=16)),
       c=st.sampled_from(CODINGS), torch_input=st.booleans())
def test_coding_range_and_round_trip(x, c, torch_input):
    """Documented clamp: out-of-range and inf clip to +-1, NaN codes as 0; indices always valid; decode in [-1, 1];
    in-range values round-trip to within one bin."""
    inp = torch.from_numpy(x.copy()) if torch_input else x
    k = c.quantize(inp)
    assert k.shape == x.shape and k.dtype == torch.long
    assert k.numel() == 0 or (int(k.min()) >= 0 and int(k.max()) < c.num_bins)
    y = c.encode(inp)
    assert torch.isfinite(y).all() and (y.abs() <= 1).all()
    back = c.decode(y, dtype=torch.float64)
    assert torch.isfinite(back).all() and (back.abs() <= 1).all()
    clean = torch.nan_to_num(torch.from_numpy(x.astype(np.float64)), nan=0.0).clamp(-1, 1)
    assert torch.equal(k, c.quantize(clean))  # NaN -> 0 and the clamp are exactly what is documented
    step = (c.dequantize(torch.arange(1, c.num_bins), torch.float64)
            - c.dequantize(torch.arange(c.num_bins - 1), torch.float64)).max()
    assert k.numel() == 0 or (back - clean).abs().max() <= step


@pytest.mark.parametrize("bad", [np.array([1, 2], np.int16), np.array([1 + 2j]), np.array(["a"]), np.array([None]),
                                 np.array([True])])
def test_coding_refuses_non_float_values(bad):
    for c in (MuLaw(8), LinearPCM(16)):
        with pytest.raises(TypeError, match="input coding needs"):
            c.encode(bad)
        with pytest.raises(TypeError, match="input coding needs"):
            c.decode(bad)


# ------------------------------------------------------------------------------------------- latent datasets
def _write_dataset(path: Path, lengths=(7, 3, 12, 5), c: int = 3, per_shard: int = 2) -> dict:
    """A small latent dataset in the encode format, written directly (no model needed)."""
    rng = np.random.default_rng(0)
    (path / "shards").mkdir(parents=True)
    files, shards, stats = [], [], RunningStats.empty(c)
    for k in range(0, len(lengths), per_shard):
        arrays = [rng.normal(size=(n, c)).astype(np.float32) for n in lengths[k: k + per_shard]]
        data = np.concatenate(arrays)
        name = f"shard-{len(shards):05d}.npy"
        np.save(path / "shards" / name, data)
        off = 0
        for a in arrays:
            files.append({"source": f"/audio/f{len(files)}.wav", "duration": 1.0, "samples": 16000,
                          "length": len(a), "shard": len(shards), "offset": off, "source_sample_rate": 16000})
            off += len(a)
        shards.append({"name": name, "frames": len(data)})
        stats = stats.merge(RunningStats.of(data))
    meta = {"format": FORMAT, "version": VERSION, "sample_rate": 16000, "hop": 160, "latent_size": c,
            "dtype": "float32", "stats": stats.to_json(), "shards": shards, "files": files, "failed": []}
    (path / "meta.json").write_text(json.dumps(meta))
    return meta


def _read_everything(path: Path, crop=None) -> None:
    def go():
        ds = LatentDataset(path, crop=crop, normalize=True)
        for i in range(len(ds)):
            item = ds[i]
            x = item["latents"]
            assert x.dtype == torch.float32 and x.shape == (ds.latent_size, item["length"])
            assert torch.isfinite(x).all()
        return ds
    _clean_or_error(path / "meta.json", go) if not (path / "shards").exists() else _clean_any(path, go)


def _clean_any(path: Path, fn) -> None:
    """Errors name the dataset folder, its meta.json or the shard concerned."""
    try:
        fn()
    except AudiogenError as exc:
        assert str(path) in str(exc), exc


def test_written_dataset_reads_back(tmp_path):
    meta = _write_dataset(tmp_path / "lat")
    ds = LatentDataset(tmp_path / "lat")
    assert len(ds) == 4 and [ds[i]["length"] for i in range(4)] == [f["length"] for f in meta["files"]]


@FUZZ
@given(data=st.binary(max_size=2000))
def test_meta_json_of_random_bytes(tmp_path, data):
    (tmp_path / "lat").mkdir(exist_ok=True)
    (tmp_path / "lat" / "meta.json").write_bytes(data)
    with pytest.raises(AudiogenError, match="meta.json"):
        LatentDataset(tmp_path / "lat")


JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                max_size=3), max_leaves=6)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@FUZZ
@given(choice=st.integers(0, 10**6), value=JSON, delete=st.booleans(), crop=st.sampled_from([None, 4]))
def test_meta_json_with_wrong_types_and_missing_keys(tmp_path, choice, value, delete, crop):
    """One field of a real meta.json replaced by random JSON (or deleted): it reads correctly, or fails cleanly."""
    lat = _fresh(tmp_path) / "lat"
    meta = _write_dataset(lat)
    paths = [p for p in _paths(meta) if p]
    where = paths[choice % len(paths)]
    parent = meta
    for key in where[:-1]:
        parent = parent[key]
    if delete:
        del parent[where[-1]]
    else:
        parent[where[-1]] = value
    (lat / "meta.json").write_text(json.dumps(meta))
    _read_everything(lat, crop)


@FUZZ
@given(keep=st.floats(0, 1), flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=6),
       dtype=st.sampled_from(["float32", "float16", "float64", "int16", "bool", "complex64", "uint8"]))
def test_truncated_corrupted_and_wrong_dtype_shards(tmp_path, keep, flips, dtype):
    lat = _fresh(tmp_path) / "lat"
    _write_dataset(lat)
    shard = lat / "shards" / "shard-00001.npy"
    arr = np.load(shard)
    np.save(shard, arr.astype(dtype))
    data = bytearray(shard.read_bytes())
    data = data[: max(int(len(data) * keep), 0)] if keep < 0.95 else data
    for pos, x in flips:
        if data:
            data[pos % len(data)] ^= x
    shard.write_bytes(bytes(data))
    _read_everything(lat)


# ---------------------------------------------------------------------------------------------- .npy folders
@FUZZ
@given(arrays=st.lists(hnp.arrays(st.sampled_from([np.float32, np.float64, np.float16, np.int16, np.uint8, np.bool_,
                                                   np.complex64]),
                                  hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)),
                       min_size=1, max_size=3),
       nan_at=st.one_of(st.none(), st.integers(0, 100)), junk=st.one_of(st.none(), st.binary(max_size=200)))
def test_npy_sequence_folders(tmp_path, arrays, nan_at, junk):
    d = _fresh(tmp_path)
    for i, a in enumerate(arrays):
        a = a.copy()
        if nan_at is not None and a.dtype.kind in "fc" and a.size:
            a.flat[nan_at % a.size] = np.nan
        np.save(d / f"s{i}.npy", a)
    if junk is not None:
        (d / "zz.npy").write_bytes(junk)

    def go():
        ds = open_sequences(d, normalize=True)
        assert all(a.dtype.kind in "iuf" for a in arrays), "complex or bool data must be refused, not cast"
        for i in range(len(ds)):
            x = ds[i]["latents"]
            assert x.dtype == torch.float32 and torch.isfinite(x).all() and x.shape[0] == ds.latent_size
    try:
        go()
    except AudiogenError as exc:
        assert str(d) in str(exc), exc
