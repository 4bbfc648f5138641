"""Clockwork VAE, ELBO objective and annealing, segmented evaluation, and the train/evaluate/sample commands."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import run_in_process

from audiogen import config
from audiogen.contracts import check_encoder
from audiogen.encoders.conv1d import Conv1dEncoder
from audiogen.errors import ConfigError
from audiogen.objectives.anneal import constant, cosine, linear
from audiogen.objectives.elbo import ELBO
from audiogen.pipeline import build_pipeline
from audiogen.priors.temporal.cwvae import ClockworkVAE
from audiogen.workflows.evaluate import probe_margins, score_file

TINY_CW = ["DZ=4", "HIDDEN=8", "ENCODER_CHANNELS=8", "DECODER_CHANNELS=8", "COMPONENTS=2", "DMOL_PARAMS=6"]


def tiny_cw_binds(extra=()) -> list[str]:
    out = []
    for b in TINY_CW + ["train.max_steps=2", "train.batch_size=2", "train.crop_seconds=0.1", "train.val_every=2",
                        "train.log_every=1", *extra]:
        out += ["--bind", b]
    return out


def tiny_pipeline(levels: int = 2, extra=()):
    config.parse([f"pipelines/cwvae_l{levels}_speech.gin"], TINY_CW + list(extra))
    torch.manual_seed(0)
    return build_pipeline().eval()


def test_ladder_encoder_returns_one_level_per_clock():
    enc = Conv1dEncoder(strides=[4, 4, 2, 2], channels=4, latent_size=3, levels=3)
    assert enc.level_hops == [16, 32, 64]
    check_encoder(enc, num_samples=1000)


def test_stack_ladder_gives_raw_frames_of_each_level():
    from audiogen.encoders.stack import StackEncoder

    enc = StackEncoder(stack=4, levels=3, ratio=2)
    assert enc.level_hops == [4, 8, 16] and enc.level_sizes == [4, 8, 16]
    check_encoder(enc, num_samples=1000)
    x = torch.arange(40.0)[None, None]
    levels = enc.encode_levels(x)
    assert [lv.shape[-1] for lv in levels] == [10, 5, 3]  # ceil(40 / hop), zero-padded like level 1
    assert levels[1][0, :, 2].tolist() == list(range(16, 24))  # level 2, frame 2: samples 16..23 unchanged
    assert levels[2][0, :, 2].tolist() == [32.0 + i for i in range(8)] + [0.0] * 8
    torch.testing.assert_close(levels[0], enc(x))


def test_levels_tick_at_their_own_clock_and_the_model_is_causal_in_latent_space():
    torch.manual_seed(0)
    m = ClockworkVAE(levels=3, ratio=2, latent_size=3, hidden_size=5, input_size=4, context_size=6).eval()
    enc = [torch.randn(2, 4, 16), torch.randn(2, 4, 8), torch.randn(2, 4, 4)]
    out = m(enc, sample=False)
    assert out.context.shape == (2, 6, 16)
    assert [k.shape[-1] for k in out.kl] == [16, 8, 4]  # one KL term per tick of each level
    assert all(bool((k >= -1e-6).all()) for k in out.kl)
    # perturbing level-1 evidence at frame 9 changes nothing before frame 9
    enc2 = [e.clone() for e in enc]
    enc2[0][..., 9] += 3.0
    out2 = m(enc2, sample=False)
    assert torch.allclose(out.context[..., :9], out2.context[..., :9])
    assert not torch.allclose(out.context[..., 9:], out2.context[..., 9:])
    # level-3 evidence for its second tick (level-1 frames 4..7) leaves frames 0..3 alone
    enc3 = [e.clone() for e in enc]
    enc3[2][..., 1] += 3.0
    out3 = m(enc3, sample=False)
    assert torch.allclose(out.context[..., :4], out3.context[..., :4])
    assert not torch.allclose(out.context[..., 4:8], out3.context[..., 4:8])
    ctx, _ = m.generate(3, 10)
    assert ctx.shape == (3, 6, 10)


def test_precision_weighted_posterior_runs():
    torch.manual_seed(0)
    m = ClockworkVAE(levels=2, ratio=2, latent_size=3, hidden_size=5, input_size=4, context_size=6,
                     precision_weighted=True)
    out = m([torch.randn(2, 4, 8), torch.randn(2, 4, 4)])
    assert all(bool((k >= -1e-6).all()) for k in out.kl)
    sum(k.sum() for k in out.kl).backward()


def test_schedules():
    assert constant(2.0)(10**6) == 2.0
    lin = linear(0.0, 1.0, steps=100, hold=10)
    assert lin(5) == 0.0 and lin(60) == pytest.approx(0.5) and lin(1000) == 1.0
    cos = cosine(4.0, 0.0, hold=100, steps=100)
    assert cos(50) == 4.0 and cos(150) == pytest.approx(2.0) and cos(200) == 0.0 and cos(125) > 2.0


def _terms(kl1, kl2):
    """Fake score output with known KL: 2 sequences, level 1 has 4 steps of D=2, level 2 has 2 steps of D=1."""
    return {"rec": torch.tensor([-100.0, -100.0]), "kl": [kl1, kl2],
            "level_masks": [torch.ones(2, 4, dtype=torch.bool), torch.ones(2, 2, dtype=torch.bool)],
            "samples": torch.tensor([64, 64]), "level_strides": [1, 2]}


def test_free_nats_semantics():
    kl1 = torch.full((2, 2, 4), 0.25)  # 0.5 nats per level-1 step
    kl2 = torch.full((2, 1, 2), 3.0)  # 3 nats per level-2 step
    plain = ELBO()(_terms(kl1, kl2), 0)
    n = 128
    assert plain["loss"].item() == pytest.approx((200 + 4 + 12) / n)
    # total: per level, max(0, KL per step - fn) x steps
    total = ELBO(free_nats=1.0, free_nats_mode="total")(_terms(kl1, kl2), 0)
    assert total["loss"].item() == pytest.approx((200 + 0 + (3 - 1) * 4) / n)
    # elementwise: each element floored at fn * stride / D
    elem = ELBO(free_nats=1.0, free_nats_mode="elementwise")(_terms(kl1, kl2), 0)
    assert elem["loss"].item() == pytest.approx((200 + 0.5 * 16 + 3.0 * 4) / n)
    # the reported ELBO is the bound (beta 1, no free nats) in bits per sample
    assert total["elbo"].item() == pytest.approx((200 + 16) / n / math.log(2))
    annealed = ELBO(beta=linear(0.0, 1.0, steps=10))(_terms(kl1, kl2), 5)
    assert annealed["loss"].item() == pytest.approx((200 + 0.5 * 16) / n)
    with pytest.raises(ValueError, match="free_nats_mode"):
        ELBO(free_nats_mode="bogus")


@pytest.mark.parametrize("levels", [1, 2, 3, "2_frames"])
def test_segmented_scoring_equals_whole_file(levels):
    pipe = tiny_pipeline(levels, ["DECODER_HIDDEN=[8]"] if levels == "2_frames" else [])
    x = torch.rand(9000) * 0.4 - 0.2
    margins = probe_margins(pipe)
    whole = score_file(pipe, x, None, None, sample=False)
    seg = score_file(pipe, x, 4 * pipe.frame_hop, margins, sample=False)
    assert torch.allclose(whole["rec"], seg["rec"], rtol=1e-5)
    for a, b in zip(whole["kl"], seg["kl"]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)
    direct = pipe.score(x[None, None], sample=False)
    assert torch.allclose(direct["rec"], whole["rec"], rtol=1e-5)


def test_importance_weighted_bound_is_tighter_on_the_same_samples():
    pipe = tiny_pipeline(2)
    torch.manual_seed(1)
    r = score_file(pipe, torch.rand(3000) * 0.4 - 0.2, None, None, chains=8)
    logw = r["rec"] - r["log_ratio"]
    assert torch.logsumexp(logw, 0) - math.log(8) >= logw.mean()


def test_pipeline_checks_name_both_numbers():
    with pytest.raises(ConfigError, match="out_channels 5 != .* num_params 6"):
        tiny_pipeline(2, ["decoders.conv1d.out_channels = 5"])
    with pytest.raises(ConfigError, match="encoder levels"):
        tiny_pipeline(2, ["encoders.conv1d.levels = 1"])


def test_bernoulli_output_for_audio_is_refused():
    with pytest.raises(ConfigError, match="binary data"):
        tiny_pipeline(2, ["pipeline.distribution = @distributions.bernoulli()", "decoders.conv1d.out_channels = 1"])


def test_train_evaluate_sample_reconstruct(tmp_path, corpus):
    run = tmp_path / "run"
    run_in_process("train", "--gin", "pipelines/cwvae_l2_speech.gin", *tiny_cw_binds(), corpus / "train.txt",
                   "--valid", corpus / "valid.txt", "-o", run, "--no-progress")
    import csv

    rows = list(csv.DictReader(open(run / "logs" / "version_0" / "metrics.csv")))
    cols = rows[0].keys()
    for c in ("train/elbo", "train/rec", "train/kl_z1", "train/kl_z2", "train/active_z1", "valid/elbo"):
        assert c in cols
    assert list((run / "logs" / "tensorboard").glob("events.out.tfevents.*"))  # TensorBoard
    ev = tmp_path / "eval"
    proc = run_in_process("evaluate", "--run", run, corpus / "valid.txt", "--iw", "2", "--segment-seconds", "0.2",
                          "-o", ev, "--no-progress")
    assert "negative ELBO" in proc.stdout
    res = json.loads((ev / "evaluation.json").read_text())
    assert res["files"] == 2 and 14 < res["bits_per_frame"] < 20
    assert res["bits_per_frame"] == pytest.approx(
        res["reconstruction_bits_per_frame"] + sum(res["kl_bits_per_frame"].values()), rel=1e-6)
    assert set(res["active_units"]) == {"z1", "z2"} and res["quantisation"].startswith("mulaw16")
    assert "flac" in res["flac_source"].lower()
    run_in_process("sample", "--run", run, "-n", "2", "--seconds", "0.3", "-o", tmp_path / "samples")
    meta = json.loads((tmp_path / "samples" / "samples.json").read_text())
    assert meta["files"] == ["sample_000.wav", "sample_001.wav"] and "priors.cwvae" in meta["operative_config"]
    import soundfile as sf

    info = sf.info(tmp_path / "samples" / "sample_000.wav")
    assert info.frames == 4800 and info.samplerate == 16000
    assert (tmp_path / "samples" / "samples.png").read_bytes()[:4] == b"\x89PNG"
    # --overwrite with fewer samples: the folder holds this run's outputs only, no stale sample_001
    run_in_process("sample", "--run", run, "-n", "1", "--seconds", "0.3", "-o", tmp_path / "samples", "--overwrite")
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["sample_000.wav", "samples.json",
                                                                        "samples.png"]
    run_in_process("reconstruct", "--run", run, corpus / "valid.txt", "-o", tmp_path / "rec")
    assert len(list((tmp_path / "rec").glob("*.wav"))) == 2


def test_generation_runs_each_level_only_as_long_as_needed(monkeypatch):
    from audiogen.priors.temporal import cwvae

    steps = []
    real = cwvae.RSSMCell.run

    def counting(self, embed, context, *a, **k):
        steps.append((embed if embed is not None else context).shape[1])
        return real(self, embed, context, *a, **k)

    monkeypatch.setattr(cwvae.RSSMCell, "run", counting)
    m = ClockworkVAE(levels=3, ratio=2, latent_size=3, hidden_size=[5, 6, 7], input_size=4, context_size=6)
    ctx, state = m.generate(2, 8)
    assert ctx.shape == (2, 6, 8)
    assert steps == [2, 4, 8]  # top level first; 8 level-1 frames need 4 and 2 steps above
    out = m([torch.randn(2, 4, 8), torch.randn(2, 4, 4), torch.randn(2, 4, 2)])  # per-level hidden sizes
    assert out.context.shape == (2, 6, 8)


def test_encode_and_decode_refuse_a_temporal_vae(tmp_path, corpus):
    run = tmp_path / "run"
    run_in_process("train", "--gin", "pipelines/cwvae_l1_speech.gin", *tiny_cw_binds(), corpus / "train.txt",
                   "-o", run, "--no-progress")
    proc = run_in_process("encode", "--run", run, corpus, "-o", tmp_path / "lat", check=False)
    assert proc.returncode == 2 and "temporal VAE" in proc.stderr
    import numpy as np

    np.save(tmp_path / "z.npy", np.zeros((8, 4), np.float32))
    proc = run_in_process("decode", "--run", run, tmp_path / "z.npy", "-o", tmp_path / "o", check=False)
    assert proc.returncode == 2 and "distribution parameters" in proc.stderr
