"""Latent datasets through the CLI: encode -> meta -> LatentDataset -> decode, resume, info."""

from __future__ import annotations

import json
import math
import subprocess
import time
from pathlib import Path

import click
import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import audiogen_exe, run_cli, run_in_process

from audiogen import __version__
from audiogen.latents.dataset import LatentDataset, RunningStats, collate_latents, read_meta


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, corpus, tiny_run) -> Path:
    out = tmp_path_factory.mktemp("lat") / "latents"
    run_in_process("encode", "--run", tiny_run / "model.ckpt", corpus, "-o", out, "--no-progress")
    return out


def test_meta_records_what_made_the_dataset(dataset, corpus, tiny_run):
    meta = read_meta(dataset)
    assert meta["format"] == "audiogen.latents" and meta["version"] == 1
    assert meta["encoder"] == {"name": "encoders.conv1d", "plugin": "audiogen", "version": __version__}
    assert meta["decoder"]["name"] == "decoders.conv1d"
    assert meta["checkpoint"]["path"] == str((tiny_run / "model.ckpt").resolve())
    assert len(meta["checkpoint"]["sha256"]) == 64
    assert "LATENT_SIZE = 4" in meta["operative_config"]
    assert meta["sample_rate"] == 16000 and meta["hop"] == 16 and meta["latent_size"] == 4
    assert meta["dtype"] == "float32"
    assert len(meta["stats"]["mean"]) == 4 and len(meta["stats"]["std"]) == 4
    wavs = sorted(corpus.glob("*.wav"))
    assert [Path(f["source"]).name for f in meta["files"]] == [w.name for w in wavs]
    for f in meta["files"]:
        n = sf.info(f["source"]).frames
        assert f["samples"] == n and f["length"] == math.ceil(n / 16)
        assert f["duration"] == pytest.approx(n / 16000)
    assert not list(dataset.parent.glob("*.partial"))


def test_stats_match_the_stored_latents(dataset):
    ds = LatentDataset(dataset)
    allz = np.concatenate([ds.sequence(i) for i in range(len(ds))]).astype(np.float64)
    np.testing.assert_allclose(ds.meta["stats"]["mean"], allz.mean(0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ds.meta["stats"]["std"], allz.std(0), rtol=1e-5, atol=1e-7)
    assert ds.meta["total_frames"] == len(allz)


def test_running_stats_merge_is_exact():
    rng = np.random.default_rng(0)
    parts = [rng.normal(3, 2, (n, 5)) for n in (1, 7, 100, 3)]
    merged = RunningStats.empty(5)
    for p in parts:
        merged = merged.merge(RunningStats.of(p))
    whole = np.concatenate(parts)
    np.testing.assert_allclose(merged.mean, whole.mean(0))
    np.testing.assert_allclose(merged.std, whole.std(0))
    np.testing.assert_allclose(merged.min, whole.min(0))


def test_dataset_crops_normalisation_and_collate(dataset):
    ds = LatentDataset(dataset, crop=10, normalize=True, seed=3)
    item = ds[0]
    assert item["latents"].shape == (4, 10) and item["length"] == 10
    assert torch.equal(ds[0]["latents"], item["latents"])  # same seed and epoch -> same crop
    raw = LatentDataset(dataset)
    x = torch.from_numpy(raw.sequence(1).T.copy())
    assert torch.allclose(raw.denormalize(raw.normalize(x)), x, atol=1e-6)
    z = raw.normalize(torch.from_numpy(np.concatenate([raw.sequence(i) for i in range(len(raw))]).T.copy()))
    assert torch.allclose(z.mean(1), torch.zeros(4), atol=1e-4)
    assert torch.allclose(z.std(1, unbiased=False), torch.ones(4), atol=1e-3)
    batch = collate_latents([raw[0], raw[1]])
    assert batch["mask"].sum(1).tolist() == [raw.files[0]["length"], raw.files[1]["length"]]


def test_decode_dataset_and_npy(dataset, tmp_path, corpus):
    out = tmp_path / "dec"
    run_in_process("decode", dataset, "-o", out)
    meta = read_meta(dataset)
    for f in meta["files"]:
        wav = out / (Path(f["source"]).stem + ".wav")
        info = sf.info(wav)
        assert info.samplerate == 16000 and info.frames == f["samples"]  # back at the source's length
    # .npy (C, L) and .safetensors latents decode with an explicit checkpoint
    z = LatentDataset(dataset).sequence(0).T.copy()
    np.save(tmp_path / "one.npy", z)
    from safetensors.numpy import save_file

    save_file({"latents": z}, str(tmp_path / "two.safetensors"))
    run_in_process("decode", "--run", meta["checkpoint"]["path"], tmp_path / "one.npy", tmp_path / "two.safetensors",
                   "-o", tmp_path / "dec2")
    a, _ = sf.read(tmp_path / "dec2" / "one.wav")
    b, _ = sf.read(out / (Path(meta["files"][0]["source"]).stem + ".wav"))
    np.testing.assert_allclose(a[: len(b)], b, atol=1e-4)
    assert (tmp_path / "dec2" / "two.wav").exists()


def test_decode_refuses_a_changed_checkpoint(dataset, tmp_path):
    import shutil

    copy = tmp_path / "lat"
    shutil.copytree(dataset, copy)
    meta = json.loads((copy / "meta.json").read_text())
    meta["checkpoint"]["sha256"] = "0" * 64  # as if the run had been trained further after encoding
    (copy / "meta.json").write_text(json.dumps(meta))
    proc = run_in_process("decode", copy, "-o", tmp_path / "o", check=False)
    assert proc.returncode == 2 and "has changed" in proc.stderr and "--run" in proc.stderr


def test_decode_rejects_wrong_latent_size(dataset, tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((7, 20), np.float32))
    meta = read_meta(dataset)
    proc = run_in_process("decode", "--run", meta["checkpoint"]["path"], tmp_path / "bad.npy", "-o", tmp_path / "o",
                          check=False)
    assert proc.returncode == 2 and "(7, 20)" in proc.stderr and "latent_size 4" in proc.stderr


def test_info_describes_dataset_and_checkpoint(dataset, tiny_run):
    d = json.loads(run_in_process("info", dataset, "--json").stdout)
    assert d["kind"] == "latent dataset" and d["latent_size"] == 4 and d["hop"] == 16
    c = json.loads(run_in_process("info", tiny_run / "model.ckpt", "--json").stdout)
    assert c["components"]["encoder"]["name"] == "encoders.conv1d" and c["global_step"] == 2
    assert "conv1d" in run_in_process("info", tiny_run).stdout


def test_existing_dataset_needs_overwrite(dataset, corpus, tiny_run):
    proc = run_in_process("encode", "--run", tiny_run, corpus, "-o", dataset, check=False)
    assert proc.returncode == 2 and "--overwrite" in proc.stderr


def _shard_bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((path / "shards").glob("shard-*.npy"))}


def _meta_without_time(path: Path) -> dict:
    m = read_meta(path)
    m.pop("created_by")
    return m


def test_interrupted_encode_resumes_to_identical_dataset(tmp_path, corpus, tiny_run, monkeypatch):
    """Interrupt an encode mid-way (after some shards are finished), re-run: same shards, same meta."""
    from audiogen.cli import cli

    args = ["encode", "--run", str(tiny_run), str(corpus), "--bind", "encode.shard_mb = 0.0001", "--no-progress"]
    cli.main(args=args + ["-o", str(tmp_path / "ref")], standalone_mode=False)

    import audiogen.latents.encode as enc

    real, calls = enc.load_audio, {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # like Ctrl-C in the middle of the fourth file
        return real(*a, **k)

    monkeypatch.setattr(enc, "load_audio", flaky)
    with pytest.raises(click.exceptions.Abort):  # click's answer to KeyboardInterrupt
        cli.main(args=args + ["-o", str(tmp_path / "out")], standalone_mode=False)
    partial = tmp_path / "out.partial"
    assert partial.is_dir() and not (tmp_path / "out").exists()
    assert len(list((partial / "shards").glob("*.json"))) == 3
    with pytest.raises(Exception, match="incomplete"):
        read_meta(tmp_path / "out")
    monkeypatch.setattr(enc, "load_audio", real)
    calls["n"] = 0
    cli.main(args=args + ["-o", str(tmp_path / "out")], standalone_mode=False)
    assert not partial.exists()
    assert _shard_bytes(tmp_path / "out") == _shard_bytes(tmp_path / "ref")
    assert _meta_without_time(tmp_path / "out") == _meta_without_time(tmp_path / "ref")


@pytest.mark.slow
def test_kill_9_during_encode_then_resume(tmp_path, corpus, tiny_run):
    """A real SIGKILL: the re-run finishes the job and equals an uninterrupted encode."""
    from audiogen.synth import write_corpus

    big = tmp_path / "big"
    write_corpus(big, n_speakers=4, utterances_per_speaker=10, seconds=(2.0, 3.0), seed=5)
    common = ["encode", "--run", str(tiny_run), str(big), "--bind", "encode.shard_mb = 0.001", "--no-progress"]
    run_cli(*common, "-o", tmp_path / "ref")
    proc = subprocess.Popen(audiogen_exe() + common + ["-o", str(tmp_path / "out")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shards = tmp_path / "out.partial" / "shards"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(shards.glob("*.json"))) < 2 and proc.poll() is None:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    run_cli(*common, "-o", tmp_path / "out")
    assert _shard_bytes(tmp_path / "out") == _shard_bytes(tmp_path / "ref")
    assert _meta_without_time(tmp_path / "out") == _meta_without_time(tmp_path / "ref")


def test_second_encode_on_the_same_output_is_refused(tmp_path, corpus, tiny_run):
    partial = tmp_path / "out.partial"
    partial.mkdir()
    (partial / "lock").write_text(str(__import__("os").getpid()))  # a live process holds it
    proc = run_cli("encode", "--run", tiny_run, corpus, "-o", tmp_path / "out", check=False)
    assert proc.returncode == 2 and "another encode" in proc.stderr
    assert (partial / "lock").exists()  # the holder's lock is untouched


def test_stale_lock_from_a_dead_process_is_taken_over(tmp_path, corpus, tiny_run):
    partial = tmp_path / "out.partial"
    partial.mkdir()
    (partial / "lock").write_text("999999999")
    run_in_process("encode", "--run", tiny_run, corpus, "-o", tmp_path / "out", "--no-progress")
    assert (tmp_path / "out" / "meta.json").exists() and not partial.exists()


# ------------------------------------------------------------------------------- windowed, batched encoding
def _whole_file_latents(encoder, path: Path) -> np.ndarray:
    x, _ = sf.read(path, dtype="float32")
    with torch.inference_mode():
        return encoder(torch.from_numpy(x)[None, None])[0].T.numpy()


def _noise_files(folder: Path, lengths: list[int], seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, n in enumerate(lengths):
        files.append(folder / f"f{i:02d}.wav")
        sf.write(files[-1], (rng.standard_normal(n) * 0.2).clip(-1, 1).astype(np.float32), 16000, subtype="FLOAT")
    return files


def test_windowed_encode_equals_whole_file_encoding(tmp_path, tiny_run):
    """Windows of several sizes, batched across files, long files read in blocks: every file's frames equal its
    whole-file forward (float summation order aside)."""
    from audiogen.latents.windows import WindowShapes
    from audiogen.pipeline import load_pipeline

    enc = load_pipeline(tiny_run)[0].encoder.eval()
    batch_seconds, chunk_seconds = 0.05, 0.2  # windows of <= 800 samples; files over 3200 samples read in blocks
    shapes = WindowShapes(enc.hop, enc.receptive_field, int(batch_seconds * 16000))
    assert len(shapes.sizes) > 3 and max(shapes.batch.values()) > 1
    smallest = shapes.sizes[-1]
    lengths = [1, smallest // 2, smallest, smallest + 1, shapes.sizes[0], 2 * shapes.sizes[0] + 7, 3000, 3201,
               9999, 16000]
    assert shapes.plan(math.ceil(lengths[1] / enc.hop) * enc.hop) is None  # shorter than a window: encoded whole
    files = _noise_files(tmp_path / "in", lengths)
    lst = tmp_path / "files.txt"
    lst.write_text("".join(f"{f}\n" for f in files))
    run_in_process("encode", "--run", tiny_run, lst, "-o", tmp_path / "out", "--no-progress",
                   "--bind", f"encode.batch_seconds={batch_seconds}", "--bind", f"encode.chunk_seconds={chunk_seconds}")
    ds = LatentDataset(tmp_path / "out")
    assert [Path(e["source"]).name for e in ds.meta["files"]] == [f.name for f in files]
    for i, f in enumerate(files):
        want = _whole_file_latents(enc, f)
        assert ds.sequence(i).shape == want.shape == (math.ceil(lengths[i] / enc.hop), enc.latent_size)
        np.testing.assert_allclose(ds.sequence(i), want, rtol=0, atol=1e-5, err_msg=f"{lengths[i]} samples")


def test_window_plans_tile_every_length_with_full_margins():
    from audiogen.latents.windows import WindowShapes

    for hop, context, call in ((16, 100, 1000), (64, 449, 16000), (512, 4865, 192000)):
        shapes = WindowShapes(hop, context, call)
        c = shapes.margin
        assert c >= context and c % hop == 0 and all(w % hop == 0 for w in shapes.sizes)
        for n in range(hop, 1500 * hop, hop):
            plan = shapes.plan(n)
            if plan is None:  # only files shorter than two of the smallest windows less their margins
                assert n < 2 * (shapes.sizes[-1] - c), (hop, n)
                continue
            assert plan[0].first == 0 and plan[-1].stop == n // hop
            for a, b in zip(plan, plan[1:]):
                assert a.stop == b.first  # kept frames tile the file
            for w in plan:
                assert w.size in shapes.batch and 0 <= w.start and w.start + w.size <= n
                # real input on each side of the kept frames, unless that side is an end of the file
                assert w.start == 0 or w.first * hop - w.start >= c
                assert w.start + w.size == n or w.start + w.size - w.stop * hop >= c


def test_batcher_shares_calls_across_files():
    from audiogen.latents.windows import WindowBatcher, WindowShapes

    class Mean(torch.nn.Module):  # frame t = mean of its hop: no context needed, any batch
        hop, latent_size = 4, 1

        def forward(self, x):
            return x.reshape(x.shape[0], 1, -1, 4).mean(-1)

    shapes = WindowShapes(4, 0, 64)
    batcher = WindowBatcher(Mean(), shapes)
    rng = np.random.default_rng(0)
    signals = [rng.standard_normal(n).astype(np.float32) for n in (36, 100, 64, 240)]
    windows = 0
    for key, x in enumerate(signals):
        plan = shapes.plan(len(x))
        batcher.add_file(key, len(x) // 4, len(plan))
        for w in plan:
            batcher.add(key, w, x[w.start: w.start + w.size])
        windows += len(plan)
    batcher.flush()
    assert sorted(batcher.done) == [0, 1, 2, 3] and batcher.calls < windows
    for key, x in enumerate(signals):
        np.testing.assert_allclose(batcher.take(key)[:, 0], x.reshape(-1, 4).mean(-1), rtol=1e-6)
