"""Distributed runs: 2 CPU processes (gloo) through the CLI give the single-process results; batch sharing, data
loader workers and launcher settings in-process."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import run_cli

from audiogen.errors import ConfigError

# A deterministic model whose loss is a mean over items of equal length (0.1 s crops of longer files): the mean of the
# two ranks' losses is the loss of the global batch, and DDP's averaged gradient is its gradient. (The spectral terms
# split too, but the gradients of log magnitudes of near-empty bins amplify float32 reduction-order differences to
# ~1e-4 of the gradient norm: they are left out so the comparison can be tight.)
AE = ["STRIDES=[4, 4]", "CHANNELS=[8, 16]", "LATENT_SIZE=4", "train.batch_size=4", "train.crop_seconds=0.1",
      "train.val_every=3", "train.log_every=1", "train.accelerator='cpu'", "spectral_loss.scales=[]"]
# A deterministic prior (LSTM, no latent variables) on crops of equal length.
PRIOR = ["priors.sequence.model=@priors.lstm()", "priors.lstm.input_size=16", "priors.lstm.hidden_size=16",
         "priors.lstm.context_size=16", "MIXTURE=2", "train_prior.crop_frames=32", "train.max_steps=4",
         "train.batch_size=4", "train.log_every=1", "train.accelerator='cpu'"]
# Float32 sums over a batch split in two and all-reduced differ from one sum in the last bits (~1e-7 relative);
# four Adam steps carry that through without growing it much (measured: <= 2e-7 on losses, 1e-6 on grad norms).
RTOL = 1e-5


def _binds(items: list[str]) -> list[str]:
    return [a for b in items for a in ("--bind", b)]


def _metrics(run: Path, version: int = 0) -> dict[str, list[float]]:
    rows = list(csv.DictReader(open(run / "logs" / f"version_{version}" / "metrics.csv")))
    cols = {k for r in rows for k in r if k.startswith(("train/", "valid/")) and r[k]}
    return {k: [float(r[k]) for r in rows if r.get(k)] for k in sorted(cols)}


def _equal_length_copies(corpus: Path, out: Path) -> Path:
    """The validation files cut to one length: whole-file batches then need no padding (which the loss counts)."""
    files = [corpus / f for f in (corpus / "valid.txt").read_text().split()]
    clips = [sf.read(f)[0] for f in files]
    n = min(len(c) for c in clips)
    out.mkdir()
    for f, c in zip(files, clips):
        sf.write(out / f.name, c[:n], 16000)
    return out


@pytest.mark.slow
def test_ddp_training_matches_one_process_and_resumes_mid_epoch(tmp_path, corpus):
    """6 files in global batches of 4: an epoch is a batch of 4 (2 per rank) and one of 2 (1 per rank). The
    2-process run stops after step 3, in the middle of the second epoch, and resumes to step 4."""
    from audiogen.workflows.train import train

    valid = _equal_length_copies(corpus, tmp_path / "valid")
    train([str(corpus)], tmp_path / "one", ["pipelines/conv_ae.gin"], AE + ["train.max_steps=4"],
          valid=[str(valid)], progress=False)
    two = tmp_path / "two"
    run_cli("train", "--gin", "pipelines/conv_ae.gin", *_binds(AE + ["train.devices=2", "train.max_steps=3"]),
            corpus, "--valid", valid, "-o", two, "--no-progress")
    proc = run_cli("train", "--bind", "train.max_steps=4", corpus, "--valid", valid, "-o", two,
                   "--no-progress")  # resumed: train.devices=2 and the rest from the saved config
    assert proc.stdout.count("wrote") == 1 and proc.stderr.count("resuming from") == 1  # rank 0 reports
    one, first, rest = _metrics(tmp_path / "one"), _metrics(two, 0), _metrics(two, 1)
    assert len(one["train/loss"]) == 4 and len(first["train/loss"]) == 3 and len(rest["train/loss"]) == 1
    for k in ("train/loss", "train/wave_l1", "train/grad_norm"):
        np.testing.assert_allclose(first[k] + rest[k], one[k], rtol=RTOL, err_msg=k)
    # validation at step 3: 2 files, one per rank, reduced over the ranks = the mean over both files
    np.testing.assert_allclose(first["valid/loss"], one["valid/loss"], rtol=RTOL)
    # rank 0 alone writes the run folder; the final weights are those of the single-process run
    assert (two / "operative_config.gin").is_file()
    assert sorted(p.name for p in (two / "logs").iterdir()) == ["tensorboard", "version_0", "version_1"]
    a = torch.load(tmp_path / "one" / "model.ckpt", weights_only=True)["state_dict"]
    b = torch.load(two / "model.ckpt", weights_only=True)
    assert b["audiogen"]["global_step"] == 4 and len(b["audiogen_rng"]["ranks"]) == 2
    for k in a:
        torch.testing.assert_close(b["state_dict"][k], a[k], rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_ddp_prior_training_matches_one_process(tmp_path):
    from audiogen.synth import write_stroke_corpus
    from audiogen.workflows.train_prior import train_prior

    write_stroke_corpus(tmp_path / "strokes", n=8, seed=0)
    train_prior(str(tmp_path / "strokes"), tmp_path / "one", ["pipelines/vrnn_strokes.gin"], PRIOR, progress=False)
    run_cli("train-prior", "--gin", "pipelines/vrnn_strokes.gin", *_binds(PRIOR + ["train.devices=2"]),
            tmp_path / "strokes", "-o", tmp_path / "two", "--no-progress")
    assert (tmp_path / "two" / "model.ckpt").is_file()
    one, two = _metrics(tmp_path / "one"), _metrics(tmp_path / "two")
    assert len(one["train/loss"]) == 4
    np.testing.assert_allclose(two["train/loss"], one["train/loss"], rtol=RTOL)


@pytest.mark.slow
def test_ddp_encode_writes_the_single_process_dataset(tmp_path, corpus, tiny_run):
    from audiogen.cli import cli
    from audiogen.latents.dataset import LatentDataset, RunningStats

    args = ["encode", "--run", str(tiny_run), str(corpus), "--bind", "encode.shard_mb=0.0005", "--no-progress"]
    cli.main(args=args + ["-o", str(tmp_path / "one")], standalone_mode=False)
    proc = run_cli(*args, "--bind", "encode.devices=2", "-o", tmp_path / "two")
    assert proc.stdout.count("encoded 6 files") == 1  # rank 0 reports
    assert not (tmp_path / "two.partial").exists()
    one, two = (json.loads((tmp_path / d / "meta.json").read_text()) for d in ("one", "two"))
    sources = [e["source"] for e in two["files"]]
    assert len(sources) == len(set(sources)) == 6 and sources == [e["source"] for e in one["files"]]
    assert len(two["shards"]) == 6  # several shards, so both ranks encoded some
    for k in ("files", "shards", "stats", "failed", "total_frames"):
        assert two[k] == one[k], k
    for name in [s["name"] for s in one["shards"]]:  # shards planned before encoding: the same bytes
        assert (tmp_path / "two" / "shards" / name).read_bytes() == (tmp_path / "one" / "shards" / name).read_bytes()
    ds = LatentDataset(tmp_path / "two")
    direct = RunningStats.of(np.concatenate([ds.sequence(i) for i in range(len(ds))]))
    np.testing.assert_allclose(two["stats"]["mean"], direct.mean, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(two["stats"]["std"], direct.std, rtol=1e-6)


def test_every_rank_gets_its_share_of_the_same_global_batches():
    from audiogen.training.loaders import ResumableBatches

    lengths = list(np.random.default_rng(0).integers(100, 1000, size=23))  # last batch: 3 items, 2 + 1
    single = ResumableBatches(lengths, 4, shuffle=True, seed=3)
    single.set_epoch(2)
    ranks = []
    for r in range(2):
        s = ResumableBatches(lengths, 4, shuffle=True, seed=3)
        s.ranks = (r, 2)
        s.set_epoch(2)
        ranks.append(list(s))
    assert len(ranks[0]) == len(ranks[1]) == len(single)  # every rank takes every step
    for g, a, b in zip(single, *ranks):
        assert sorted(a + b) == sorted(g) and not set(a) & set(b)
    # a mid-epoch resume skips the same global batches on every rank
    s = ResumableBatches(lengths, 4, shuffle=True, seed=3)
    s.set_epoch(2)
    s.ranks, s.skip = (1, 2), 3
    assert list(s) == ranks[1][3:]
    # a last batch with fewer items than ranks is shared by repeating it, so that no rank idles in a step
    s = ResumableBatches([5, 6, 7], 2, shuffle=False)
    s.ranks = (1, 2)
    assert list(s) == [[1], [2]]


def test_loader_workers_yield_every_item_once_per_epoch(corpus):
    from audiogen.audio.io import expand_inputs
    from audiogen.settings import audio_settings, train_settings
    from audiogen.training.loaders import EpochCallback, audio_loader

    files = expand_inputs([corpus])
    epochs = {}
    for workers in (0, 2):
        loader = audio_loader(files, audio_settings(), train_settings(crop_seconds=0.1, batch_size=4, num_workers=workers),
                         hop=16, train=True)
        seen = []
        for epoch in range(2):
            from types import SimpleNamespace

            EpochCallback().on_train_epoch_start(SimpleNamespace(train_dataloader=loader, current_epoch=epoch), None)
            batches = [(b["index"].tolist(), b["audio"]) for b in loader]
            assert sorted(i for idx, _ in batches for i in idx) == list(range(len(files)))
            seen.append(batches)
        epochs[workers] = seen
    for (i0, a0), (i2, a2) in zip(sum(epochs[0], []), sum(epochs[2], [])):
        assert i0 == i2 and torch.equal(a0, a2)  # same batches, same crops, whatever the number of workers


def test_global_batch_must_split_over_the_processes(tmp_path, corpus):
    from audiogen.workflows.train import train

    with pytest.raises(ConfigError, match=r"train.batch_size=3 .*2 processes") as e:
        train([str(corpus / "train.txt")], tmp_path / "r", ["pipelines/conv_ae.gin"],
              AE + ["train.devices=2", "train.batch_size=3"], progress=False)
    assert "train.batch_size=4" in str(e.value)
    assert not (tmp_path / "r").exists()


def test_launcher_environment_sets_the_shape(monkeypatch):
    from audiogen.distributed import resolve_shape

    assert resolve_shape(None, None, "train") == (1, 1)
    assert resolve_shape(2, None, "train") == (2, 1)
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    monkeypatch.setenv("WORLD_SIZE", "8")
    assert resolve_shape(None, None, "train") == (4, 2)
    with pytest.raises(ConfigError, match="does not match"):
        resolve_shape(2, None, "train")
    for k in ("TORCHELASTIC_RUN_ID", "LOCAL_WORLD_SIZE", "WORLD_SIZE"):
        monkeypatch.delenv(k)
    monkeypatch.setenv("SLURM_NTASKS", "16")
    monkeypatch.setenv("SLURM_NNODES", "2")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    assert resolve_shape(8, 2, "encode") == (8, 2)
    monkeypatch.setenv("SLURM_JOB_NAME", "interactive")  # processes started by hand: not SLURM's
    assert resolve_shape(None, None, "encode") == (1, 1)


def test_spectral_loss_of_a_batch_is_the_mean_of_its_shares():
    """What DDP averages: the loss of each rank's share. The autoencoder loss must not depend on the split."""
    from audiogen.objectives.spectral import MultiScaleSpectralLoss

    loss = MultiScaleSpectralLoss()
    g = torch.Generator().manual_seed(0)
    recon, target = torch.randn(4, 1, 2048, generator=g), torch.randn(4, 1, 2048, generator=g) * 0.1
    whole = loss(recon, target)
    halves = [loss(recon[i::2], target[i::2]) for i in range(2)]
    for k in whole:
        torch.testing.assert_close(whole[k], (halves[0][k] + halves[1][k]) / 2, rtol=1e-5, atol=1e-6)


def _agree_on_two_ranks(rank: int, store: str, queue) -> None:
    import torch.distributed as dist

    from audiogen.distributed import Ranks
    from audiogen.latents.encode import _agree

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    ranks = Ranks(rank, 2, group=dist.new_group(backend="gloo"))

    def work():
        if rank == 1:
            raise RuntimeError("kernel size can't be greater than actual input size")
        return "done"

    try:
        _agree(ranks, work, everyone=True)
        queue.put((rank, "no error"))
    except Exception as exc:
        queue.put((rank, f"{type(exc).__name__}: {exc}"))
    dist.destroy_process_group()


def test_an_encoder_error_on_one_rank_is_raised_on_every_rank(tmp_path):
    """Not only AudiogenErrors: a RuntimeError on rank 1 reaches rank 0 with its message (rank 0 used to be left in
    the all-gather, then fail on the lost connection) and is not a clean error (finished shards are kept)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_agree_on_two_ranks, args=(r, str(tmp_path / "store"), queue)) for r in (0, 1)]
    for p in procs:
        p.start()
    got = dict(queue.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert got[1] == "RuntimeError: kernel size can't be greater than actual input size"
    assert got[0] == "RuntimeError: rank 1 of the encode failed: RuntimeError: kernel size can't be greater than " \
                     "actual input size"
