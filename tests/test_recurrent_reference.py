"""The recurrent latent models (VRNN, SRNN, CW-VAE) against figures frozen from their step-by-step implementation.

The cells compute their input projections for all steps at once and defer weight gradients to one matmul per
layer (audiogen.priors.temporal.steps); these tests pin the ELBO terms and gradients of seeded tiny models (float64, with
sampling) to the values the plain per-step loop gave before that rewrite (commit f9d7930), and the parameter
names, so old checkpoints keep loading.
"""

from __future__ import annotations

import pytest
import torch

from audiogen import config
from audiogen.pipeline import build_pipeline
from audiogen.priors.temporal.steps import StepLinear

SMALL = ["DZ=4", "HIDDEN=12", "CONTEXT=12", "STACK=8", "DECODER_HIDDEN=[16]", "COMPONENTS=2", "DMOL_PARAMS=6"]
CW = ["DZ=4", "HIDDEN=8", "ENCODER_CHANNELS=8", "DECODER_CHANNELS=8", "COMPONENTS=2", "DMOL_PARAMS=6"]
CASES = {
    "vrnn": ("pipelines/vrnn_speech.gin", SMALL),
    "vrnn_plain": ("pipelines/vrnn_speech.gin", SMALL + ["priors.vrnn.residual_posterior=False"]),
    "srnn": ("pipelines/srnn_speech.gin", SMALL),
    "srnn_filtering": ("pipelines/srnn_speech.gin", SMALL + ["priors.srnn.inference='filtering'"]),
    "srnn_plain": ("pipelines/srnn_speech.gin", SMALL + ["priors.srnn.residual_posterior=False"]),
    "cwvae": ("pipelines/cwvae_l2_speech.gin", CW),
    "cwvae_pw": ("pipelines/cwvae_l2_speech.gin", CW + ["priors.cwvae.precision_weighted=True"]),
}

# Computed with the per-step implementation at f9d7930 (scripts: this file's figures()), float64.
FROZEN = {
    "vrnn": [-42383.37903557248, 105.55211459954413, 2949.492672672815, 539.2116069052024],
    "vrnn_plain": [-42384.78553337704, 151.38118950409884, 3916.116126344924, -0.2979537357534241],
    "srnn": [-42387.21865665994, 58.79199436963595, 1497.0810746459845, -111.43367449063462],
    "srnn_filtering": [-42390.08270877169, 113.2485203390117, 2080.786889056878, -858.6782563985728],
    "srnn_plain": [-42389.59697754993, 291.8453807218205, 5936.281756500836, -817.533871794378],
    "cwvae": [-42517.39942133587, 37.1699216206484, 564.4950116224095, -27.868909536014836],
    "cwvae_pw": [-42517.43025217994, 39.047112228246874, 250.44578420568496, -21.774463332932697],
}
KEYS = {  # the latent model's state_dict names at f9d7930: checkpoints written then must keep loading
    "vrnn": [
        "out.bias", "out.weight", "phi_x.0.bias", "phi_x.0.weight", "phi_x.2.bias", "phi_x.2.weight", "phi_z.0.bias",
        "phi_z.0.weight", "phi_z.2.bias", "phi_z.2.weight", "posterior.0.bias", "posterior.0.weight",
        "posterior.2.bias", "posterior.2.weight", "prior.0.bias", "prior.0.weight", "prior.2.bias", "prior.2.weight",
        "rnn.bias_hh", "rnn.bias_ih", "rnn.weight_hh", "rnn.weight_ih",
    ],
    "srnn": [
        "backward_rnn.bias_hh_l0", "backward_rnn.bias_ih_l0", "backward_rnn.weight_hh_l0",
        "backward_rnn.weight_ih_l0", "forward_rnn.bias_hh_l0", "forward_rnn.bias_ih_l0", "forward_rnn.weight_hh_l0",
        "forward_rnn.weight_ih_l0", "out.bias", "out.weight", "phi_x.0.bias", "phi_x.0.weight", "phi_x.2.bias",
        "phi_x.2.weight", "posterior.0.bias", "posterior.0.weight", "posterior.2.bias", "posterior.2.weight",
        "prior.0.bias", "prior.0.weight", "prior.2.bias", "prior.2.weight",
    ],
    "srnn_filtering": [
        "forward_rnn.bias_hh_l0", "forward_rnn.bias_ih_l0", "forward_rnn.weight_hh_l0", "forward_rnn.weight_ih_l0",
        "out.bias", "out.weight", "phi_x.0.bias", "phi_x.0.weight", "phi_x.2.bias", "phi_x.2.weight",
        "posterior.0.bias", "posterior.0.weight", "posterior.2.bias", "posterior.2.weight", "prior.0.bias",
        "prior.0.weight", "prior.2.bias", "prior.2.weight",
    ],
    "cwvae": [
        "cells.0.gru.bias_hh", "cells.0.gru.bias_ih", "cells.0.gru.weight_hh", "cells.0.gru.weight_ih",
        "cells.0.in_ctx.weight", "cells.0.in_z.bias", "cells.0.in_z.weight", "cells.0.post_e.bias",
        "cells.0.post_e.weight", "cells.0.post_h.weight", "cells.0.post_out.1.bias", "cells.0.post_out.1.weight",
        "cells.0.prior.0.bias", "cells.0.prior.0.weight", "cells.0.prior.2.bias", "cells.0.prior.2.weight",
        "cells.1.gru.bias_hh", "cells.1.gru.bias_ih", "cells.1.gru.weight_hh", "cells.1.gru.weight_ih",
        "cells.1.in_z.bias", "cells.1.in_z.weight", "cells.1.post_e.bias", "cells.1.post_e.weight",
        "cells.1.post_h.weight", "cells.1.post_out.1.bias", "cells.1.post_out.1.weight", "cells.1.prior.0.bias",
        "cells.1.prior.0.weight", "cells.1.prior.2.bias", "cells.1.prior.2.weight", "out.bias", "out.weight",
        "up.0.bias", "up.0.weight",
    ],
}


def figures(name: str) -> tuple[list[float], list[str]]:
    """(rec, kl, latent-model gradient norm and a fixed projection of it) of a seeded tiny model, and its keys."""
    cfg, binds = CASES[name]
    config.parse([cfg], binds)
    torch.manual_seed(0)
    pipe = build_pipeline().double()
    g = torch.Generator().manual_seed(1)
    x = ((torch.rand(2, 1, 2048, generator=g) * 2 - 1) * 0.3).double()
    mask = torch.ones(2, 2048, dtype=torch.bool)
    mask[1, 1500:] = False
    torch.manual_seed(2)
    out = pipe.score(x, mask)
    rec, kl = out["rec"].sum(), sum(k.sum() for k in out["kl"])
    (kl - rec).backward()
    params = sorted(pipe.latent_model.named_parameters())
    norm = sum(p.grad.norm() for _, p in params)
    proj = sum((p.grad * torch.cos(torch.arange(p.numel(), dtype=p.dtype)).view_as(p)).sum() for _, p in params)
    return [float(v.detach()) for v in (rec, kl, norm, proj)], sorted(pipe.latent_model.state_dict())


@pytest.mark.parametrize("name", CASES)
def test_elbo_terms_and_gradients_match_the_step_by_step_implementation(name):
    got, keys = figures(name)
    torch.testing.assert_close(torch.tensor(got), torch.tensor(FROZEN[name]), rtol=1e-6, atol=1e-6)
    assert keys == KEYS[{"vrnn_plain": "vrnn", "srnn_plain": "srnn", "cwvae_pw": "cwvae"}.get(name, name)]


def test_step_linear_gives_autograds_gradients_for_a_recurrence():
    torch.manual_seed(0)
    w, b = torch.randn(6, 6, dtype=torch.float64, requires_grad=True), torch.randn(3, dtype=torch.float64,
                                                                                  requires_grad=True)
    h0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)

    def run(step):
        h, hs = h0, []
        for _ in range(7):
            h = torch.tanh(step(h))
            hs.append(h)
        return (torch.stack(hs) ** 2).sum()

    weight = w[:3, 1:4]  # a view of a parameter: its gradient reaches w through autograd as usual
    run(lambda h: torch.nn.functional.linear(h, weight, b)).backward()
    ref = [t.grad.clone() for t in (w, b, h0)]
    for t in (w, b, h0):
        t.grad = None
    run(StepLinear(weight, b)).backward()
    for r, t in zip(ref, (w, b, h0)):
        torch.testing.assert_close(t.grad, r)
    with torch.no_grad():  # plain F.linear: no token, no graph
        step = StepLinear(weight, b)
        assert step.token is None and not step(h0).requires_grad
