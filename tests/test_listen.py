"""Listening while training: audio and spectrogram images in the run's TensorBoard events (read back here with
tensorboardX's own protobuf classes), bounded, seeded, switchable, and without disturbing the training."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import soundfile as sf
import torch
from conftest import TINY, run_here

from audiogen.listen import spectrogram_image


def read_events(folder: Path) -> list:
    """Every summary value in the TFRecord event files under ``folder``: (step, tag, value)."""
    from tensorboardX.proto.event_pb2 import Event

    out = []
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos + 12 <= len(data):
            (n,) = struct.unpack("<Q", data[pos: pos + 8])
            ev = Event.FromString(data[pos + 12: pos + 12 + n])  # length, its crc, record, its crc
            pos += 12 + n + 4
            for v in ev.summary.value:
                out.append((ev.step, v.tag, v))
    return out


def _binds(items):
    return [a for b in items for a in ("--bind", b)]


LISTEN = ["listen.items=2", "listen.seconds=0.25", "train.val_every=2"]


def test_train_logs_audio_and_spectrograms(corpus, tmp_path, caplog):
    run = tmp_path / "run"
    caplog.set_level("INFO", logger="audiogen")
    run_here("train", "--gin", "pipelines/conv_ae.gin", *_binds(TINY + LISTEN + ["train.max_steps=3"]),
                   corpus / "train.txt", "--valid", corpus / "valid.txt", "-o", run, "--no-progress")
    assert f"tensorboard --logdir {run / 'logs' / 'tensorboard'}" in caplog.text  # how to open it
    events = read_events(run / "logs" / "tensorboard")
    audio = [(s, t, v) for s, t, v in events if v.HasField("audio")]
    images = [(s, t, v) for s, t, v in events if v.HasField("image")]
    # steps 2 (every val_every) and 3 (the end); originals once; 2 items
    assert sorted({s for s, t, _ in audio if t.startswith("listen/reconstruction")}) == [2, 3]
    assert len([t for s, t, _ in audio if s == 2 and t.startswith("listen/reconstruction")]) == 2
    assert len([t for _, t, _ in audio if t.startswith("listen/original")]) == 2
    assert len(images) == len(audio)
    for _, _, v in audio:
        y, sr = sf.read(io.BytesIO(v.audio.encoded_audio_string))
        assert sr == 16000 and 0 < len(y) <= 0.25 * 16000 and abs(y).max() > 0
    assert images[0][2].image.height > 10 and images[0][2].image.width > 1
    assert all(t.startswith("spectrogram/") for _, t, _ in images)


TINY_VRNN = ["DZ=4", "HIDDEN=8", "ENCODER_CHANNELS=8", "DECODER_CHANNELS=8", "COMPONENTS=2", "DMOL_PARAMS=6",
             "CONTEXT=8", "DECODER_HIDDEN=[8]", "CHANNELS=8", "train.max_steps=3", "train.batch_size=2",
             "train.crop_seconds=0.2", "train.val_every=2", "listen.items=1", "listen.seconds=0.2"]


def test_listening_is_switchable_and_leaves_training_unchanged(corpus, tmp_path):
    """A temporal VAE draws posterior noise at every step: listening at step 2 (samples drawn with the listening
    seed) must leave step 3's noise, hence the final weights, as they are without listening."""
    runs = {}
    for enabled in (True, False):
        run = tmp_path / f"run_{enabled}"
        run_here("train", "--gin", "pipelines/vrnn_speech.gin", *_binds(TINY_VRNN + [f"listen.enabled={enabled}"]),
                 corpus / "train.txt", "--valid", corpus / "valid.txt", "-o", run, "--no-progress")
        runs[enabled] = run
    tags = {t for _, t, _ in read_events(runs[True] / "logs")}
    assert {"listen/sample_0", "spectrogram/sample_0"} <= tags and any(t.startswith("listen/recon") for t in tags)
    assert not any(t.startswith(("listen/", "spectrogram/")) for _, t, _ in read_events(runs[False] / "logs"))
    a, b = (torch.load(runs[e] / "model.ckpt", weights_only=True)["state_dict"] for e in (True, False))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_train_prior_logs_decoded_samples(tiny_run, corpus, tmp_path):
    lat = tmp_path / "lat"
    run_here("encode", "--run", tiny_run, corpus / "train.txt", "-o", lat, "--no-progress")
    run = tmp_path / "prior"
    binds = ["priors.diffwave.residual_layers=2", "priors.diffwave.residual_channels=8",
             "priors.diffwave.dilation_cycle=2", "train.max_steps=2", "train.batch_size=2",
             "train_prior.crop_frames=16", "LATENT_SIZE=4", *LISTEN]
    run_here("train-prior", "--gin", "pipelines/diffwave_latents.gin", *_binds(binds), lat, "-o", run,
             "--no-progress")
    audio = [(s, t, v) for s, t, v in read_events(run / "logs") if v.HasField("audio")]
    assert sorted(t for _, t, _ in audio) == ["listen/sample_0", "listen/sample_1"]
    y, sr = sf.read(io.BytesIO(audio[0][2].audio.encoded_audio_string))
    assert sr == 16000 and 0 < len(y) <= 0.25 * 16000
    # decoding needed the autoencoder's config; the prior's checkpoint still records the prior's own
    cfg = torch.load(run / "model.ckpt", weights_only=True)["audiogen"]["operative_config"]
    assert "priors.diffwave" in cfg and "encoders.conv1d" not in cfg


def test_spectrogram_image_is_bounded():
    img = spectrogram_image(torch.randn(8000).numpy() * 0.1, 16000)
    assert img.dtype.name == "uint8" and img.ndim == 3 and img.shape[2] == 3 and img.shape[0] == 257


def test_train_prior_trains_when_the_autoencoder_is_gone(tiny_run, corpus, tmp_path, caplog):
    """Listening is an extra: a dataset whose autoencoder checkpoint moved still trains a prior (with a warning)."""
    import shutil

    ae = tmp_path / "ae"
    shutil.copytree(tiny_run, ae)
    lat = tmp_path / "lat"
    run_here("encode", "--run", ae, corpus / "train.txt", "-o", lat, "--no-progress")
    shutil.rmtree(ae)
    binds = ["priors.diffwave.residual_layers=2", "priors.diffwave.residual_channels=8",
             "priors.diffwave.dilation_cycle=2", "train.max_steps=2", "train.batch_size=2",
             "train_prior.crop_frames=16", *LISTEN]
    with caplog.at_level("WARNING", logger="audiogen"):
        run_here("train-prior", "--gin", "pipelines/diffwave_latents.gin", *_binds(binds), lat, "-o",
                 tmp_path / "prior", "--no-progress")
    assert (tmp_path / "prior" / "model.ckpt").is_file()
    assert "listen: cannot decode samples" in caplog.text and "no longer exists" in caplog.text
