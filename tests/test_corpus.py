"""Corpus scale: manifests open without probing, `audiogen index`, streaming statistics that stay exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import run_in_process, write_tone

from audiogen.audio.dataset import AudioDataset
from audiogen.audio.io import expand_inputs, index_inputs, probe
from audiogen.audio.manifest import read_manifest, write_manifest
from audiogen.errors import AudioFileError
from audiogen.latents.dataset import RunningStats


def test_index_command_writes_a_manifest_that_opens_without_probing(tmp_path, corpus):
    out = tmp_path / "lists" / "manifest.csv"
    proc = run_in_process("index", corpus, "-o", out)
    assert "indexed 6 files" in proc.stdout
    rows = read_manifest(out)
    files = expand_inputs(corpus)
    assert [r.path for r in rows] == files and expand_inputs(out) == files
    for r in rows:
        assert r == probe(r.path)
    a = AudioDataset(index_inputs(out), 16000, crop=2000, seed=1)
    b = AudioDataset(files, 16000, crop=2000, seed=1)
    assert a.lengths == b.lengths and a.file_frames == b.file_frames
    for i in range(len(a)):
        assert torch.equal(a[i]["audio"], b[i]["audio"])


def test_manifest_rows_are_trusted_without_touching_the_files(tmp_path):
    infos = index_inputs([write_tone(tmp_path / "real.wav", seconds=0.2)])
    fake = [type(infos[0])(path=tmp_path / "corpus" / f"f{i:05d}.flac", sample_rate=16000, frames=16000 + i,
                           channels=1, subtype="PCM_16") for i in range(2000)]
    manifest = write_manifest(tmp_path / "m.csv", infos + fake)  # only the first row is checked to exist
    ds = AudioDataset(index_inputs(manifest), 8000)  # 2000 files that do not exist: nothing is opened
    assert len(ds) == 2001 and ds.file_frames[1] == 8000 and ds.infos[0] == infos[0]
    assert ds[0]["audio"].shape[-1] == 1600
    with pytest.raises(AudioFileError, match="f00000.flac"):  # reading one is the first time it is touched
        ds[1]


def test_librispeech_style_columns(shared, tmp_path):
    """relpath/sr/ch columns are read; its paths are relative to audio/, so a copy beside the audio is used."""
    src = shared / "data" / "librispeech-100-mini"
    lines = (src / "manifest.csv").read_text().splitlines()
    audio = src / "audio"
    copy = tmp_path / "manifest.csv"
    copy.write_text("\n".join([lines[0]] + [f"{audio}/{ln}" for ln in lines[1:]]) + "\n")
    infos = index_inputs(copy)
    assert len(infos) == len(lines) - 1 == 251
    for info in infos[:3]:
        assert info == probe(info.path)
    with pytest.raises(AudioFileError, match="relative to the manifest's folder"):
        index_inputs(src / "manifest.csv")  # as shipped: its first file is not beside it


@pytest.mark.parametrize("row, words", [
    ("a.wav,ten,16000,1,PCM_16", ["line 2", "integers"]),
    ("missing.wav,10,16000,1,PCM_16", ["missing.wav", "does not exist"]),
    ("a.wav,0,16000,1,PCM_16", ["line 2", "must be positive"]),
    ("a.wav,100", ["line 2", "columns"]),
    ('"a.wav,100,16000,1,PCM_16', ["line"]),
])
def test_bad_manifest_rows_name_the_line(tmp_path, row, words):
    m = tmp_path / "m.csv"
    m.write_text("path,frames,sample_rate,channels,subtype\n" + row + "\n")
    with pytest.raises(AudioFileError) as err:
        index_inputs(m)
    assert str(m) in str(err.value) and all(w in str(err.value) for w in words)


def test_running_stats_merge_is_stable_with_a_large_offset():
    """1e4 + N(0, 1) in float32 chunks: a naive sum-of-squares variance loses every digit; the merge keeps them."""
    rng = np.random.default_rng(0)
    chunks = [(1e4 + rng.normal(size=(int(rng.integers(1, 3000)), 3))).astype(np.float32) for _ in range(200)]
    stats = RunningStats.empty(3)
    for c in chunks:
        stats = stats.merge(RunningStats.of(c))
    ref = np.concatenate(chunks).astype(np.float64)
    assert stats.count == len(ref)
    np.testing.assert_allclose(stats.mean, ref.mean(0), rtol=1e-13)
    np.testing.assert_allclose(stats.std, ref.std(0), rtol=1e-10)
    np.testing.assert_array_equal(stats.min, ref.min(0))
    np.testing.assert_array_equal(stats.max, ref.max(0))
    # the same data through E[x^2] - E[x]^2 in float32 is off by orders of magnitude: the test can fail
    naive = np.sqrt(np.maximum((ref.astype(np.float32) ** 2).mean(0) - ref.astype(np.float32).mean(0) ** 2, 0))
    assert np.abs(naive - ref.std(0)).max() > 0.1
