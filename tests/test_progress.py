"""Long commands show progress on stderr, and --no-progress silences it (stdout keeps only the results)."""

from __future__ import annotations

from conftest import run_here


def test_decode_and_reconstruct_show_progress_on_stderr(tiny_run, corpus, tmp_path):
    lat = tmp_path / "lat"
    run_here("encode", "--run", tiny_run, corpus / "valid.txt", "-o", lat, "--no-progress")
    for cmd, args in (("decode", [lat]), ("reconstruct", ["--run", tiny_run, corpus / "valid.txt"])):
        shown = run_here(cmd, *args, "-o", tmp_path / f"{cmd}_a")
        assert f"{cmd}:" in shown.stderr and "file" in shown.stderr and f"{cmd}:" not in shown.stdout
        quiet = run_here(cmd, *args, "-o", tmp_path / f"{cmd}_b", "--no-progress")
        assert quiet.stderr == "" and quiet.stdout.startswith("wrote")


def test_training_bar_goes_to_stderr_and_counts_the_runs_steps(corpus, tmp_path):
    """One bar over train.max_steps (Lightning's restarts every epoch: every few steps on a small corpus)."""
    from conftest import TINY

    binds = [a for b in TINY + ["listen.enabled=False", "train.max_steps=7"] for a in ("--bind", b)]
    res = run_here("train", "--gin", "pipelines/conv_ae.gin", *binds, corpus / "train.txt", "-o",
                   tmp_path / "run")
    assert "Step (epoch 0)" in res.stderr and "7/7" in res.stderr and "Step" not in res.stdout
    assert "Step (epoch 1)" in res.stderr  # 7 steps of batch 2 run past the first epoch: the same bar goes on
