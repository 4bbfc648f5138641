"""Every shipped pipeline config, built at tiny size and run through its whole path on real speech (../shared)."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import run_here

from audiogen import config

PIPELINES = sorted(n for n in config.available_configs() if n.startswith("pipelines/") and "_base" not in n)
# Shrinks any shipped pipeline: conv autoencoders by their STRIDES/CHANNELS/LATENT_SIZE macros, temporal VAEs by
# DZ/HIDDEN/channels/components. Unused macros are harmless to gin.
TINY = {
    "autoencoder": ["STRIDES=[4, 4]", "CHANNELS=[8, 8]", "LATENT_SIZE=4"],
    "temporal_vae": ["DZ=4", "HIDDEN=8", "ENCODER_CHANNELS=8", "DECODER_CHANNELS=8", "COMPONENTS=2",
                     "DMOL_PARAMS=6", "CONTEXT=8", "DECODER_HIDDEN=[8]", "CHANNELS=8", "priors.wavenet.layers=3",
                     "priors.wavenet.blocks=1", "CPC_CHANNELS=8", "CPC_CONTEXT=8"],
    "prior": ["DZ=4", "HIDDEN=8", "MIXTURE=2", "train_prior.crop_frames=32", "LATENT_SIZE=3",
              "priors.diffwave.residual_layers=2", "priors.diffwave.residual_channels=4",
              "priors.diffwave.dilation_cycle=2", "priors.diffwave.sample_steps=4"],
}
# Pipelines around a pretrained model file have nothing to train: the macro names the file, found in ../shared.
PRETRAINED = {"pipelines/rave_bridge.gin": ("RAVE_MODEL", "models/*.ts")}
STEPS = ["train.max_steps=2", "train.batch_size=2", "train.crop_seconds=0.2", "train.val_every=2",
         "train.log_every=1", "listen.items=1", "listen.seconds=0.2"]  # every pipeline's listening, kept cheap


def _binds(items):
    return [a for b in items for a in ("--bind", b)]


def _kind(pipeline: str) -> str:
    config.parse([pipeline])
    if config.query("pipeline.latent_model") is not None:
        return "temporal_vae"
    return "prior" if config.query("pipeline.prior") is not None else "autoencoder"


def test_every_pipeline_is_covered():
    shipped = sorted((config.packaged_config_dir() / "pipelines").glob("*.gin"))
    assert len(shipped) > 10, shipped
    runnable = {f"pipelines/{p.name}" for p in shipped if "_base" not in p.name}
    assert runnable <= set(PIPELINES)
    # a shared body (*_base.gin) is not run alone: it is covered through the pipelines that include it
    bodies = [p.name for p in shipped if "_base" in p.name]
    texts = [p.read_text() for p in shipped if "_base" not in p.name]
    assert all(any(f"include 'pipelines/{b}'" in t for t in texts) for b in bodies), bodies


@pytest.fixture(scope="module")
def speech(shared, tmp_path_factory):
    """The three shortest LibriSpeech test utterances, as a list file."""
    ls = shared / "data" / "librispeech-100-mini"
    test = set((ls / "test.txt").read_text().split())
    with open(ls / "manifest.csv") as f:
        rows = sorted((int(r["frames"]), "audio/" + r["relpath"]) for r in csv.DictReader(f)
                      if "audio/" + r["relpath"] in test)
    lst = tmp_path_factory.mktemp("speech") / "short.txt"
    lst.write_text("\n".join(str(ls / p) for _, p in rows[:3]) + "\n")
    return lst


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_pipeline_end_to_end(pipeline, speech, shared, tmp_path):
    if pipeline in PRETRAINED:
        macro, pattern = PRETRAINED[pipeline]
        model = min(shared.glob(pattern))
        run_here("encode", "--gin", pipeline, *_binds([f"{macro}='{model}'"]), speech, "-o", tmp_path / "lat",
                "--no-progress")
        run_here("decode", tmp_path / "lat", "-o", tmp_path / "dec")
        assert len(list((tmp_path / "dec").glob("*.wav"))) == 3
        return
    kind = _kind(pipeline)
    run = tmp_path / "run"
    if kind == "prior":  # priors over sequences: trained on a generated .npy corpus (no audio path)
        from audiogen.synth import write_stroke_corpus

        write_stroke_corpus(tmp_path / "seq", n=6)
        run_here("train-prior", "--gin", pipeline, *_binds(TINY[kind] + STEPS), tmp_path / "seq", "-o", run,
                 "--no-progress")
        run_here("sample", "--run", run, "-n", "1", "--frames", "10", "-o", tmp_path / "s")
        assert (tmp_path / "s" / "sample_000.npy").exists()
        return
    run_here("train", "--gin", pipeline, *_binds(TINY[kind] + STEPS), speech, "-o", run, "--no-progress")
    if kind == "autoencoder":
        run_here("encode", "--run", run, speech, "-o", tmp_path / "lat", "--no-progress")
        run_here("decode", tmp_path / "lat", "-o", tmp_path / "dec")
        assert len(list((tmp_path / "dec").glob("*.wav"))) == 3
    else:
        run_here("evaluate", "--run", run, speech, "-o", tmp_path / "ev", "--no-progress")
        res = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
        assert res["files"] == 3 and 10 < res["bits_per_frame"] < 20
        assert res["flac_bits_per_sample"] is not None  # from the manifest beside the data, or flac itself
        run_here("sample", "--run", run, "-n", "1", "--seconds", "0.5", "-o", tmp_path / "s")
        assert (tmp_path / "s" / "sample_000.wav").exists()
