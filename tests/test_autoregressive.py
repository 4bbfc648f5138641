"""VRNN, SRNN, LSTM and WaveNet: causality, exact incremental computation, segmented scoring, sampling."""

from __future__ import annotations

import pytest
import torch

from audiogen import config
from audiogen.errors import ConfigError
from audiogen.pipeline import build_pipeline
from audiogen.workflows.evaluate import probe_margins, score_file

STACK = 8
MODELS = {
    "vrnn": ["priors.vrnn.latent_size=4", "priors.vrnn.hidden_size=12", "priors.vrnn.context_size=12",
             f"priors.vrnn.input_size={STACK}"],
    "srnn": ["priors.srnn.latent_size=4", "priors.srnn.hidden_size=12", "priors.srnn.context_size=12",
             f"priors.srnn.input_size={STACK}", "priors.srnn.inference='filtering'"],
    "srnn_smoothing": ["priors.srnn.latent_size=4", "priors.srnn.hidden_size=12", "priors.srnn.context_size=12",
                       f"priors.srnn.input_size={STACK}"],
    "srnn_bounded": ["priors.srnn.latent_size=4", "priors.srnn.hidden_size=12", "priors.srnn.context_size=12",
                     f"priors.srnn.input_size={STACK}", "priors.srnn.inference='filtering'",
                     "priors.srnn.prior_mean_bound=0.5"],
    "lstm": ["priors.lstm.hidden_size=12", "priors.lstm.context_size=12", f"priors.lstm.input_size={STACK}"],
    "wavenet": ["priors.wavenet.channels=6", "priors.wavenet.layers=3", "priors.wavenet.blocks=2",
                "priors.wavenet.context_size=12", f"priors.wavenet.input_size={STACK}"],
}


def build(name: str, encoder: str = "stack", extra=()):
    lm = name.split("_")[0]
    config.parse(["distributions/dmol16.gin"], [
        f"pipeline.latent_model=@priors.{lm}()", "pipeline.coding=@codings.mulaw()", "pipeline.objective=@elbo()",
        f"pipeline.encoder=@encoders.{encoder}()", f"encoders.stack.stack={STACK}",
        "pipeline.decoder=@decoders.dense()", f"decoders.dense.hop={STACK}", "decoders.dense.latent_size=12",
        "decoders.dense.out_channels=6", "decoders.dense.hidden=[16]", "COMPONENTS=2", *MODELS[name], *extra])
    torch.manual_seed(0)
    return build_pipeline().eval()


def audio(n=1, T=STACK * 40, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, T, generator=g) * 2 - 1) * 0.3


@pytest.mark.parametrize("name", MODELS)
def test_prediction_of_a_frame_never_reads_that_frame(name):
    """Change frame t: the generative path (everything the model predicts frames < t from, and for deterministic
    models frame t's own prediction) is unchanged: frame t does not leak into its own likelihood."""
    pipe = build(name)
    y = pipe.coding.encode(audio()).float()
    t = 20
    y2 = y.clone()
    y2[..., t * STACK: (t + 1) * STACK] = -y2[..., t * STACK: (t + 1) * STACK]
    a = pipe.latent_model([pipe.encoder(y)], sample=False)
    b = pipe.latent_model([pipe.encoder(y2)], sample=False)
    upto = t + 1 if name in ("lstm", "wavenet") else t
    if name == "srnn_smoothing":  # the smoothing posterior reads the future (allowed for q); the prior path doesn't
        upto = 0
    assert torch.equal(a.context[..., :upto], b.context[..., :upto])
    assert not torch.equal(a.context, b.context)


@pytest.mark.parametrize("name", ["lstm", "wavenet"])
def test_step_by_step_equals_one_pass(name):
    pipe = build(name)
    enc = pipe.encoder(pipe.coding.encode(audio(2)).float())
    full = pipe.latent_model([enc]).context
    prev, state, steps = torch.zeros(2, STACK), None, []
    for t in range(enc.shape[-1]):
        c, state = pipe.latent_model.step(prev, state)
        steps.append(c)
        prev = enc[..., t]
    torch.testing.assert_close(torch.stack(steps, -1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["vrnn", "srnn", "srnn_bounded", "lstm", "wavenet"])
def test_segmented_scoring_equals_whole_file(name):
    """State carried across segments (incl. the last frame for the next prediction) gives the whole-file score."""
    pipe = build(name)
    x = audio(T=STACK * 50 + 3)[0, 0]
    whole = score_file(pipe, x, None, None, sample=False)
    margins = probe_margins(pipe)
    assert margins.encoder <= STACK and margins.decoder == 1  # frame-local encoder and decoder
    seg = score_file(pipe, x, STACK * 7, margins, sample=False)
    torch.testing.assert_close(seg["rec"], whole["rec"], rtol=1e-4, atol=1e-2)
    for a, b in zip(seg["kl"], whole["kl"]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-3)
    assert len(whole["kl"]) == (0 if name in ("lstm", "wavenet") else 1)


@pytest.mark.parametrize("name", MODELS)
def test_generation_gives_audio_on_the_grid(name):
    pipe = build(name)
    torch.manual_seed(0)
    y = pipe.generate(2, STACK * 5 + 3)
    assert y.shape == (2, 1, STACK * 5 + 3) and torch.isfinite(y).all() and y.abs().max() <= 1
    grid = pipe.coding.encode(y)  # decoded values re-encode to themselves: they lie on the coding's grid
    assert torch.allclose(pipe.coding.decode(grid).float(), y, atol=1e-6)


def test_training_reduces_the_loss():
    pipe = build("lstm").train()
    x = audio(2)
    opt = torch.optim.Adam(pipe.parameters(), 3e-3)
    mask = torch.ones(2, x.shape[-1], dtype=torch.bool)
    losses = []
    for step in range(60):
        loss = pipe.training_loss(x, mask, step)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 1.0  # nats per sample


def test_autoregressive_models_refuse_a_look_ahead_encoder():
    with pytest.raises(ConfigError, match="not frame-local") as e:
        build("vrnn", encoder="conv1d", extra=["encoders.conv1d.strides=[8]", "encoders.conv1d.channels=[4]",
                                               f"encoders.conv1d.latent_size={STACK}"])
    assert "encoders.stack" in str(e.value)


def test_a_bounded_srnn_prior_keeps_its_sampled_chain_in_bounds():
    """prior_mean_bound soft-clips the prior's mean, in training (forward) and sampling (step) alike."""
    from audiogen.priors.temporal.srnn import SRNN

    torch.manual_seed(0)
    m = SRNN(input_size=3, latent_size=4, hidden_size=8, context_size=8, prior_mean_bound=0.5)
    with torch.no_grad():
        for p in m.prior.parameters():  # a prior whose raw mean is far outside the bound
            p.mul_(50)
        state, prev = None, torch.randn(2, 3)
        for _ in range(20):
            _, state = m.step(prev * 10, state, temperature=0.0)  # noiseless: z is the prior mean
            assert state["z"].abs().max() <= 0.5
        out = m([torch.randn(2, 3, 6)], sample=False)
        assert out.kl[0].shape == (2, 4, 6) and torch.isfinite(out.kl[0]).all()
