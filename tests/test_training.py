"""`audiogen train`: artifacts, resume, weights_only checkpoints, divergence guard, quickstart."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import torch
from conftest import run_cli, run_in_process, tiny_binds

from audiogen import __version__
from audiogen.artifacts import load_checkpoint


def test_run_folder_holds_checkpoint_config_and_logs(tiny_run):
    assert (tiny_run / "model.ckpt").is_file() and (tiny_run / "checkpoints" / "last.ckpt").is_file()
    ck = torch.load(tiny_run / "model.ckpt", map_location="cpu", weights_only=True)  # must not need pickle
    meta = ck["audiogen"]
    assert meta["format"] == "audiogen.checkpoint" and meta["global_step"] == 2
    assert meta["components"]["decoder"] == {"name": "decoders.conv1d", "plugin": "audiogen",
                                             "version": __version__}
    assert meta["sample_rate"] == 16000 and meta["hop"] == 16 and meta["latent_size"] == 4
    assert "LATENT_SIZE = 4" in meta["operative_config"]
    trained_on = meta["trained_on"]  # scripts/gpu_check.py checks "cuda" on a GPU machine
    assert {k: trained_on[k] for k in ("device", "name", "processes")} == {"device": "cpu", "name": "cpu",
                                                                          "processes": 1}
    assert 1 <= trained_on["threads"] <= (os.cpu_count() or 1)
    assert (tiny_run / "operative_config.gin").read_text() == meta["operative_config"]
    rows = list(csv.DictReader(open(tiny_run / "logs" / "version_0" / "metrics.csv")))
    assert any(r.get("train/loss") for r in rows) and any(r.get("valid/loss") for r in rows)


@pytest.mark.slow
def test_rerun_resumes_from_last_checkpoint_with_saved_config(tmp_path, corpus):
    run = tmp_path / "run"
    args = ["train", "--gin", "pipelines/conv_ae.gin", *tiny_binds(), corpus / "train.txt", "-o", run,
            "--no-progress"]
    run_cli(*args)
    first = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert first["global_step"] == 2
    # same folder, more steps: continues (step 2 -> 5) with the saved architecture even without --gin
    run_cli("train", "--bind", "train.max_steps=5", corpus / "train.txt", "-o", run, "--no-progress")
    again = load_checkpoint(run / "model.ckpt")
    assert again["audiogen"]["global_step"] == 5
    assert "LATENT_SIZE = 4" in again["audiogen"]["operative_config"]
    assert "train.max_steps = 5" in again["audiogen"]["operative_config"]


def test_divergence_stops_with_a_clear_message(tmp_path, corpus):
    run = tmp_path / "run"
    proc = run_in_process("train", "--gin", "pipelines/conv_ae.gin", *tiny_binds(), "--bind", "train.max_steps=6",
                          "--bind", "train.lr=1e30", "--bind", "train.grad_clip=None", corpus / "train.txt",
                          "-o", run, "--no-progress", check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "likely causes" in proc.stderr and "train.lr" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_quickstart_runs_the_cli_commands_it_prints(tmp_path):
    proc = run_cli("quickstart", "-o", tmp_path / "qs", "--max-steps", "3", "--bind", "train.val_every=3")
    out = proc.stdout
    for cmd in ("$ audiogen train --gin pipelines/conv_ae.gin", "$ audiogen encode --run", "$ audiogen decode"):
        assert cmd in out
    summary = json.loads((tmp_path / "qs" / "summary.json").read_text())
    assert summary["files"] == 24 and summary["latent_size"] == 16
    png = (tmp_path / "qs" / "comparison.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000
    assert len(list((tmp_path / "qs" / "decoded").glob("*.wav"))) == 24
    # the degraded copies that give the distance its scale, scored on the same files
    assert set(summary["anchors"]) == {"8-bit mu-law", "4 kHz band"}
    assert all(0 < a["mean_spectral_distance_db"] < 10 for a in summary["anchors"].values())
    assert "What the figures mean" in (tmp_path / "qs" / "summary.md").read_text()


def test_spectral_distance_is_zero_for_a_copy_and_grows_with_degradation():
    from audiogen.workflows.quickstart import anchors, spectral_distance_db

    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    x[4000:6000] = 0.01 * rng.standard_normal(2000)  # a quiet passage
    assert spectral_distance_db(x, x.copy()) == 0
    degraded = anchors(x, 16000)
    coarse = np.round(x * 8) / 8  # 17 uniform levels: much coarser than 8-bit mu-law
    assert 0 < spectral_distance_db(x, degraded["8-bit mu-law"]) < spectral_distance_db(x, coarse)
    assert spectral_distance_db(x, degraded["4 kHz band"]) > 0


def _train_in_process(out, gin_files, bindings, corpus, overwrite=False):
    from audiogen.workflows.train import train

    return train([str(corpus / "train.txt")], out, gin_files, bindings, progress=False, overwrite=overwrite)


def test_interrupted_training_resumes_exactly(tmp_path, corpus):
    """Stop mid-epoch at step 5, resume to 7: the weights equal those of an uninterrupted 7-step run.

    A stochastic model (posterior sampling) checks that the RNG state is restored; with 4 training files and
    batch 3 an epoch has 2 batches, so step 5 stops in the middle of the third epoch."""
    gin_files = ["pipelines/cwvae_l1_speech.gin"]
    b = ["DZ=4", "HIDDEN=8", "ENCODER_CHANNELS=8", "DECODER_CHANNELS=8", "COMPONENTS=2", "DMOL_PARAMS=6",
         "train.batch_size=3", "train.crop_seconds=0.1", "train.log_every=1"]
    _train_in_process(tmp_path / "full", gin_files, b + ["train.max_steps=7", "train.val_every=100"], corpus)
    _train_in_process(tmp_path / "part", gin_files, b + ["train.max_steps=5", "train.val_every=5"], corpus)
    assert load_checkpoint(tmp_path / "part" / "checkpoints" / "last.ckpt")["global_step"] == 5
    _train_in_process(tmp_path / "part", [], ["train.max_steps=7"], corpus)
    full = load_checkpoint(tmp_path / "full" / "model.ckpt")["state_dict"]
    part = load_checkpoint(tmp_path / "part" / "model.ckpt")["state_dict"]
    assert full.keys() == part.keys()
    for k in full:
        assert torch.equal(full[k], part[k]), k
    # both parts of the interrupted run keep their metrics
    assert len(list((tmp_path / "part" / "logs").glob("version_*/metrics.csv"))) == 2


def test_each_epoch_gets_new_crops_and_order(corpus):
    from types import SimpleNamespace

    from audiogen.audio.io import expand_inputs
    from audiogen.settings import audio_settings, train_settings
    from audiogen.training.loaders import EpochCallback, audio_loader

    loader = audio_loader(expand_inputs([corpus / "train.txt"]), audio_settings(), train_settings(crop_seconds=0.1),
                     hop=16, train=True)
    starts = [loader.dataset.crop_start(i) for i in range(len(loader.dataset))]
    first = [b["index"].tolist() for b in loader]
    EpochCallback().on_train_epoch_start(SimpleNamespace(train_dataloader=loader, current_epoch=1), None)
    assert loader.dataset.epoch == 1 and loader.batch_sampler.epoch == 1
    assert [loader.dataset.crop_start(i) for i in range(len(loader.dataset))] != starts
    second = [b["index"].tolist() for b in loader]
    assert sorted(sum(first, [])) == sorted(sum(second, []))


def test_bad_settings_are_clear_errors(tmp_path, corpus):
    proc = run_in_process("train", "--gin", "pipelines/conv_ae.gin", *tiny_binds(), "--bind",
                          "audio.channels='stereo'", corpus / "train.txt", "-o", tmp_path / "r", check=False)
    assert proc.returncode == 2 and "audio.channels" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_in_process("train", "--gin", "pipelines/conv_ae.gin", *tiny_binds(), "--bind", "train.batch_size=0",
                          corpus / "train.txt", "-o", tmp_path / "r2", check=False)
    assert proc.returncode == 2 and "train.batch_size" in proc.stderr


def test_resuming_with_another_architecture_is_a_clear_error(tmp_path, corpus):
    run = tmp_path / "run"
    run_in_process("train", "--gin", "pipelines/conv_ae.gin", *tiny_binds(), corpus / "train.txt", "-o",
                   run, "--no-progress")
    proc = run_in_process("train", "--bind", "LATENT_SIZE=6", "--bind", "train.max_steps=4", corpus / "train.txt",
                          "-o", run, "--no-progress", check=False)
    assert proc.returncode == 2 and "another architecture" in proc.stderr and "Traceback" not in proc.stderr
    assert "--overwrite" in proc.stderr  # the way to reuse the folder for the new model


def test_overwrite_starts_over_with_the_new_config_and_never_follows_links(tmp_path, corpus):
    """Without --overwrite a re-run resumes; with it the folder's entries are deleted (links unlinked, their
    targets outside the folder kept) and a model of another size trains from step 0."""
    run, outside = tmp_path / "run", tmp_path / "outside"
    gin = ["pipelines/conv_ae.gin"]
    _train_in_process(run, gin, [*TINY_STEPS, "train.max_steps=2"], corpus)
    _train_in_process(run, [], ["train.max_steps=3"], corpus)  # resumes: 2 -> 3 with the saved LATENT_SIZE=4
    resumed = load_checkpoint(run / "model.ckpt")["audiogen"]
    assert resumed["global_step"] == 3 and "LATENT_SIZE = 4" in resumed["operative_config"]
    assert len(list((run / "logs").glob("version_*"))) == 2

    outside.mkdir()
    (outside / "keep.wav").write_bytes(b"user data")
    (run / "data").symlink_to(outside, target_is_directory=True)  # a link to a folder, at the top
    (run / "index" / "audio").symlink_to(outside)  # and one inside a folder that rmtree removes
    (run / "notes.txt").symlink_to(outside / "keep.wav")  # a link to a file
    big = [*TINY_STEPS, "LATENT_SIZE=6", "train.max_steps=2"]
    _train_in_process(run, gin, big, corpus, overwrite=True)
    fresh = load_checkpoint(run / "model.ckpt")["audiogen"]
    assert fresh["global_step"] == 2 and "LATENT_SIZE = 6" in fresh["operative_config"]
    assert [p.name for p in (run / "logs").glob("version_*")] == ["version_0"]  # the old run's logs went with it
    rows = list(csv.DictReader(open(run / "logs" / "version_0" / "metrics.csv")))
    assert min(int(r["step"]) for r in rows) == 0
    assert not any(p.is_symlink() for p in run.rglob("*"))
    assert (outside / "keep.wav").read_bytes() == b"user data"


def test_cosine_lr_schedule_ends_at_a_tenth_and_is_refused_when_misspelled(tmp_path, corpus):
    b = [*TINY_STEPS, "train.max_steps=4", "train.lr=2e-3", "train.lr_schedule='cosine'"]
    _train_in_process(tmp_path / "cos", ["pipelines/conv_ae.gin"], b, corpus)
    ckpt = load_checkpoint(tmp_path / "cos" / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 4
    assert ckpt["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(2e-4)
    assert ckpt["lr_schedulers"][0]["last_epoch"] == 4  # stored, so a resumed run continues the curve
    proc = run_in_process("train", "--gin", "pipelines/conv_ae.gin", *tiny_binds(), "--bind",
                          "train.lr_schedule='cosin'", corpus / "train.txt", "-o", tmp_path / "r",
                          check=False)
    assert proc.returncode == 2 and "train.lr_schedule" in proc.stderr and "Traceback" not in proc.stderr


TINY_STEPS = ["STRIDES=[4, 4]", "CHANNELS=[8, 16]", "LATENT_SIZE=4", "train.batch_size=2", "train.crop_seconds=0.1",
              "train.val_every=100", "train.log_every=1"]
