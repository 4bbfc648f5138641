"""Noise schedules (gin schedules.*), the DiffWave latent prior (priors.diffwave) and its samplers."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from audiogen import config
from audiogen.errors import ConfigError
from audiogen.plugins import get_registry
from audiogen.priors.diffwave import (
    DIFFWAVE_FAST_BETAS,
    DiffWavePrior,
    MaskedBatchNorm1d,
    ResidualBlock,
    StepEmbedding,
)
from audiogen.schedules import (
    CosineSchedule,
    ExplicitSchedule,
    LinearSchedule,
    ScaledLinearSchedule,
    alpha_bars,
    fractional_steps,
    validate_betas,
)

torch.set_num_threads(1)

SCHEDULES = {
    "linear": LinearSchedule(),
    "scaled_linear": ScaledLinearSchedule(steps=60),
    "cosine": CosineSchedule(steps=40),
    "explicit": ExplicitSchedule(betas=[0.01, 0.05, 0.1, 0.2, 0.3, 0.4]),
}


def tiny(**kw) -> DiffWavePrior:
    args = {"latent_size": 3, "residual_layers": 3, "residual_channels": 8, "dilation_cycle": 2}
    return DiffWavePrior(**{**args, **kw})


def fast_betas_at(train_betas, positions) -> torch.Tensor:
    """Betas of a short schedule whose alpha-bars sit at fractional training steps ``positions`` (sqrt(alpha-bar)
    interpolated linearly between neighbouring steps, as DiffWave's fast sampling assumes)."""
    root = alpha_bars(train_betas).sqrt()
    pos = torch.as_tensor(positions, dtype=torch.float64)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=len(root) - 1)
    a = (root[lo] + (root[hi] - root[lo]) * (pos - lo)) ** 2
    return 1 - a / torch.cat([torch.ones(1, dtype=torch.float64), a[:-1]])


def batch(b=3, c=3, length=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, length, generator=g)
    mask = torch.ones(b, length, dtype=torch.bool)
    mask[0, 6:] = False
    mask[1, 8:] = False
    return x, mask


# ---- schedules


def test_schedules_are_registered_plugins_and_gin_configurable():
    assert get_registry().names("schedules") == ["cosine", "explicit", "linear", "scaled_linear"]
    config.parse(["priors/diffwave.gin", "schedules/cosine.gin"],
                 ["LATENT_SIZE=3", "priors.diffwave.residual_layers=2", "schedules.cosine.steps=30"])
    prior = get_registry().get("priors", "diffwave").factory()
    assert prior.audiogen_component == "priors.diffwave" and prior.num_steps == 30
    # the shipped config is DiffWave's base model (the prior's defaults: the gin file does not restate them)
    config.parse(["priors/diffwave.gin"], ["LATENT_SIZE=3"])
    base = get_registry().get("priors", "diffwave").factory()
    assert (base.net.layers, base.net.channels, base.loss, base.num_steps) == (30, 64, "l1", 50)
    assert [b.dilation for b in base.net.blocks][9:12] == [512, 1, 2]  # dilation cycle 10
    assert torch.allclose(prior.betas, CosineSchedule(steps=30)())
    config.parse(["priors/diffwave.gin"], ["LATENT_SIZE=3", "priors.diffwave.schedule = @schedules.explicit()",
                                           "schedules.explicit.betas = [0.1, 0.2]"])
    assert get_registry().get("priors", "diffwave").factory().betas.tolist() == [0.1, 0.2]
    config.parse(["priors/diffwave.gin"], ["LATENT_SIZE=3", "priors.diffwave.schedule = @schedules.linear",
                                           "schedules.linear.steps = 7"])  # the factory, not a schedule: accepted
    assert get_registry().get("priors", "diffwave").factory().num_steps == 7


@pytest.mark.parametrize("name", SCHEDULES)
def test_every_schedule_gives_valid_float64_betas(name):
    b = SCHEDULES[name]()
    assert b.dtype == torch.float64 and b.ndim == 1 and len(b) > 1
    assert bool(((b > 0) & (b < 1)).all())
    assert 0 < float(alpha_bars(b)[-1]) < float(alpha_bars(b)[0]) < 1


def test_linear_is_diffwaves_schedule():
    b = LinearSchedule()()
    assert len(b) == 50 and float(b[0]) == 1e-4 and math.isclose(float(b[-1]), 0.05)
    assert torch.allclose(b.diff(), torch.full((49,), (0.05 - 1e-4) / 49, dtype=torch.float64))


def test_scaled_linear_is_linear_in_sqrt_space():
    b = ScaledLinearSchedule()()
    assert len(b) == 1000
    assert math.isclose(float(b[0]), 0.00085) and math.isclose(float(b[-1]), 0.012)
    step = (math.sqrt(0.012) - math.sqrt(0.00085)) / 999
    assert torch.allclose(b.sqrt().diff(), torch.full((999,), step, dtype=torch.float64))
    assert not torch.allclose(b.diff(), b.diff()[:1].expand(999))  # not linear in beta itself


def test_cosine_follows_the_alpha_bar_formula_and_clips():
    steps, s = 100, 0.008
    b = CosineSchedule(steps=steps, s=s)()

    def f(t):
        return math.cos((t / steps + s) / (1 + s) * math.pi / 2) ** 2

    abar = alpha_bars(b)
    for t in (1, 10, 50, 90, 98):  # alpha-bar after t steps is f(t) / f(0)
        assert math.isclose(float(abar[t - 1]), f(t) / f(0), rel_tol=1e-9)
    assert float(b.max()) == 0.999 and float(b[-1]) == 0.999  # f(T) = 0 would make the last beta 1
    assert float(CosineSchedule(steps=10, max_beta=0.5)().max()) == 0.5


def test_explicit_schedule_and_validation_errors_name_the_value_and_the_fix():
    assert ExplicitSchedule(betas=[0.1, 0.2])().tolist() == [0.1, 0.2]
    with pytest.raises(ConfigError) as e:
        ExplicitSchedule(betas=[0.1, 1.5, 0.2])()
    assert "beta[1] = 1.5" in str(e.value) and "fix:" in str(e.value) and "schedules.explicit" in str(e.value)
    for bad in ([0.1, 0.0], [-0.1], [float("nan")]):
        with pytest.raises(ConfigError, match="not strictly between 0 and 1"):
            ExplicitSchedule(betas=bad)()
    with pytest.raises(ConfigError, match="non-empty"):
        ExplicitSchedule(betas=[])()
    with pytest.raises(ConfigError, match="schedules.linear: beta"):
        LinearSchedule(beta_end=1.2)()
    with pytest.raises(ConfigError, match="steps = 0"):
        LinearSchedule(steps=0)
    with pytest.raises(ConfigError, match="beta_start"):
        ScaledLinearSchedule(beta_start=-1e-3)
    with pytest.raises(ConfigError, match="underflows"):
        validate_betas([0.999] * 200)


# ---- fast sampling's step mapping


def test_fast_steps_land_where_alpha_bar_matches():
    """DiffWave's fast schedule placed on its training schedule: interpolating sqrt(alpha-bar) of the training
    schedule at the fractional steps gives back the fast schedule's alpha-bars."""
    train = LinearSchedule()()
    fast = torch.tensor(DIFFWAVE_FAST_BETAS, dtype=torch.float64)
    steps = fractional_steps(train, fast)
    assert len(steps) == 6 and bool((steps.diff() > 0).all()) and float(steps[0]) == 0.0
    root = alpha_bars(train).sqrt()
    lo = steps.floor().long()
    interp = root[lo] + (root[(lo + 1).clamp(max=49)] - root[lo]) * (steps - lo)
    assert torch.allclose(interp**2, alpha_bars(fast), rtol=0, atol=1e-12)
    # and a schedule built at known fractional positions maps back to them
    pos = [0.0, 3.25, 11.5, 30.75, 49.0]
    assert torch.allclose(fractional_steps(train, fast_betas_at(train, pos)), torch.tensor(pos, dtype=torch.float64))


def test_fast_steps_outside_the_training_range_are_a_clear_error():
    with pytest.raises(ConfigError, match="fast sampling step 5 has alpha-bar"):
        fractional_steps(LinearSchedule(beta_end=0.02)(), torch.tensor(DIFFWAVE_FAST_BETAS, dtype=torch.float64))
    with pytest.raises(ConfigError, match="fast_betas"):
        tiny(schedule=LinearSchedule(beta_end=0.02), sampler="fast")


def test_step_embedding_interpolates_between_table_rows():
    emb = StepEmbedding(20)
    assert emb.table.shape == (20, 128)
    ints = torch.tensor([0, 3, 19])
    assert torch.equal(emb.lookup(ints), emb.table[ints])
    assert torch.allclose(emb.lookup(ints.float()), emb.table[ints])
    assert torch.allclose(emb(ints.float()), emb(ints))
    mid = emb.lookup(torch.tensor([3.25]))
    assert torch.allclose(mid, 0.75 * emb.table[3:4] + 0.25 * emb.table[4:5])
    assert not emb.table.requires_grad and "table" not in emb.state_dict()  # derived, not checkpointed


# ---- the prior


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("sampler", ["ancestral", "fast", "ddim"])
def test_every_sampler_with_every_schedule_gives_finite_samples(schedule, sampler):
    betas = SCHEDULES[schedule]()
    fast = fast_betas_at(betas, [0.0, 0.4 * len(betas), 0.7 * len(betas) + 0.5, len(betas) - 1.0])
    for flatten in (False, True):
        for cond_channels in (0, 2):
            torch.manual_seed(0)
            prior = tiny(schedule=betas, fast_betas=fast, flatten=flatten, cond_channels=cond_channels,
                         sample_steps=7)
            cond = torch.randn(2, 2, 5) if cond_channels else None
            s = prior.sample(2, 5, cond=cond, sampler=sampler)
            assert s.shape == (2, 3, 5) and bool(torch.isfinite(s).all()), (flatten, cond_channels)


def test_flatten_interleaves_frames_and_round_trips():
    prior = tiny(flatten=True)
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 4)
    flat = prior._to_net(x)
    assert flat.shape == (2, 1, 12)
    assert flat[0, 0, :6].tolist() == [0, 4, 8, 1, 5, 9]  # frame 0's three channels, then frame 1's
    assert torch.equal(prior._from_net(flat, 4), x)
    assert prior.in_channels == 1 and tiny().in_channels == 3


@pytest.mark.parametrize("flatten,cond_channels,batchnorm", [(False, 0, True), (True, 2, True), (False, 2, False)])
def test_masked_frames_do_not_change_the_loss(flatten, cond_channels, batchnorm):
    torch.manual_seed(0)
    prior = tiny(flatten=flatten, cond_channels=cond_channels, batchnorm=batchnorm)
    torch.nn.init.normal_(prior.net.out.weight, std=0.1)  # the zero-initialised output ignores its input
    x, mask = batch()
    cond = torch.randn(3, cond_channels, 10) if cond_channels else None
    x2 = x.clone()
    x2[~mask[:, None].expand_as(x)] = 100.0
    cond2 = None
    if cond is not None:
        cond2 = cond.clone()
        cond2[~mask[:, None].expand_as(cond)] = -50.0

    def loss(xx, cc, m=mask):
        torch.manual_seed(1)
        return prior.training_loss(xx, m, cc)["loss"]

    base = loss(x, cond)
    assert torch.allclose(base, loss(x2, cond2), atol=1e-6)
    x3 = x.clone()
    x3[0, :, 2] += 1.0  # a real frame does matter
    assert not torch.allclose(base, loss(x3, cond))
    full = torch.ones_like(mask)
    assert torch.allclose(loss(x, cond, full), loss(x, cond, None))


def test_batchnorm_statistics_skip_padded_frames():
    torch.manual_seed(0)
    masked, plain = MaskedBatchNorm1d(4), torch.nn.BatchNorm1d(4)
    x = torch.randn(2, 4, 7)
    mask = torch.tensor([[True] * 7, [True] * 3 + [False] * 4])
    y = masked(x, mask[:, None])
    real = torch.cat([x[0], x[1, :, :3]], 1)[None]  # the ten real frames as one sequence
    ref = plain(real)
    assert torch.allclose(y[0], ref[0, :, :7], atol=1e-5) and torch.allclose(y[1, :, :3], ref[0, :, 7:], atol=1e-5)
    assert torch.allclose(masked.running_mean, plain.running_mean) and torch.allclose(masked.running_var,
                                                                                        plain.running_var)


def test_loss_options_and_logs():
    x, mask = batch()
    torch.manual_seed(0)
    out = tiny(loss="l2").training_loss(x, mask)
    assert set(out) == {"loss", "loss_l1", "loss_l2"} and out["loss"].requires_grad
    assert torch.equal(out["loss"].detach(), out["loss_l2"])
    with pytest.raises(ConfigError, match="'l3'"):
        tiny(loss="l3")


def test_a_tiny_model_overfits_a_fixed_batch():
    """Behaviour, not just shapes: 100 Adam steps on four fixed sequences cut the denoising loss substantially
    (evaluated on the same fixed draws of steps and noise before and after)."""
    torch.manual_seed(0)
    prior = DiffWavePrior(latent_size=2, residual_layers=4, residual_channels=32, dilation_cycle=3)
    g = torch.Generator().manual_seed(1)
    x = (torch.randint(0, 2, (4, 2, 1), generator=g) * 2 - 1).float().expand(4, 2, 16) * 1.5

    def held_out_loss():
        prior.eval()
        torch.manual_seed(123)
        with torch.no_grad():
            value = sum(float(prior.training_loss(x)["loss"]) for _ in range(20)) / 20
        prior.train()
        return value

    before = held_out_loss()
    opt = torch.optim.Adam(prior.parameters(), lr=2e-3)
    for _ in range(100):
        opt.zero_grad()
        prior.training_loss(x)["loss"].backward()
        opt.step()
    after = held_out_loss()
    assert before > 0.75  # a zero-initialised output predicts no noise: E|N(0, 1)| = 0.80
    assert after < 0.7 * before, (before, after)


def test_batchnorm_uses_batch_statistics_in_training_and_running_statistics_in_eval():
    torch.manual_seed(0)
    prior = tiny(batchnorm=True)
    opt = torch.optim.Adam(prior.parameters(), lr=1e-2)
    x, _ = batch(b=4)
    for _ in range(5):
        opt.zero_grad()
        prior.training_loss(x)["loss"].backward()
        opt.step()
    norm = prior.net.blocks[0].norm
    assert int(norm.num_batches_tracked) == 5 and not torch.allclose(norm.running_mean, torch.zeros(8))
    xt, t = torch.randn(4, 3, 10), torch.tensor([10])
    prior.train()
    with torch.no_grad():
        train_out = prior.net(xt, t)
        train_alone = prior.net(xt[:1], t)
    prior.eval()
    with torch.no_grad():
        eval_out = prior.net(xt, t)
        eval_alone = prior.net(xt[:1], t)
    assert not torch.allclose(train_out, eval_out, atol=1e-4)
    assert not torch.allclose(train_out[:1], train_alone, atol=1e-4)  # batch statistics: depends on the batch
    assert torch.allclose(eval_out[:1], eval_alone, atol=1e-5)  # running statistics: it does not

    seen = []
    prior.net.register_forward_pre_hook(lambda mod, args: seen.append(mod.training))
    for mode in (True, False):
        prior.train(mode)
        prior.sample(2, 6, sampler="fast")
        assert prior.training is mode and all(m.training is mode for m in prior.modules())
        assert seen and not any(seen)  # every network call while sampling ran in eval mode
        seen.clear()


def test_ema_weights_are_checkpointed_updated_and_used_for_sampling():
    torch.manual_seed(0)
    prior = tiny(ema=0.9, batchnorm=True)
    names = {n for n, _ in prior.named_parameters()}
    assert not any(n.startswith("ema_net.") for n in names)  # the optimiser never sees them
    sd = prior.state_dict()
    assert "ema_updates" in sd and {f"ema_net.{k}" for k in prior.net.state_dict()} <= set(sd)

    opt = torch.optim.Adam(prior.parameters(), lr=1e-2)
    x, mask = batch()
    before = {k: v.clone() for k, v in prior.ema_net.state_dict().items()}
    opt.zero_grad()
    prior.training_loss(x, mask)["loss"].backward()
    opt.step()
    prior.update_ema()
    decay = min(0.9, 2 / 11)  # warm-up at the first update
    w = "blocks.0.dilated.weight"
    expected = decay * before[w] + (1 - decay) * prior.net.state_dict()[w]
    assert torch.allclose(prior.ema_net.state_dict()[w], expected, atol=1e-6)
    for _ in range(4):
        opt.zero_grad()
        prior.training_loss(x, mask)["loss"].backward()
        opt.step()
        prior.update_ema()
    assert int(prior.ema_updates) == 5
    assert not torch.allclose(prior.ema_net.state_dict()[w], prior.net.state_dict()[w])

    def draw(p, **kw):
        return p.sample(2, 6, generator=torch.Generator().manual_seed(3), **kw)

    with_ema = draw(prior)
    assert not torch.allclose(with_ema, draw(prior, use_ema=False))
    plain = tiny(batchnorm=True)  # no EMA, with the averaged weights as its live weights
    plain.net.load_state_dict(prior.ema_net.state_dict())
    assert torch.allclose(with_ema, draw(plain), atol=1e-6)
    restored = tiny(ema=0.9, batchnorm=True)  # a checkpoint round trip keeps them
    restored.load_state_dict(prior.state_dict())
    assert torch.allclose(with_ema, draw(restored), atol=1e-6)
    tiny().update_ema()  # a no-op without EMA, so training loops can always call it


def test_conditioning_changes_samples_and_its_scale_is_logged_and_checked(caplog):
    torch.manual_seed(0)
    prior = tiny(cond_channels=2)
    x, mask = batch()
    cond = torch.randn(3, 2, 10)
    out = prior.training_loss(x, mask, cond)
    assert 0.1 < float(out["cond_scale"]) < 10 and float(out["cond_scale_min"]) <= float(out["cond_scale"])
    torch.nn.init.normal_(prior.net.out.weight, std=0.1)  # the zero-initialised output ignores its input
    g = torch.Generator
    a = prior.sample(2, 6, cond=torch.randn(2, 2, 6), generator=g().manual_seed(0))
    b = prior.sample(2, 6, cond=torch.randn(2, 2, 6), generator=g().manual_seed(0))
    assert not torch.allclose(a, b)
    with caplog.at_level(logging.WARNING, logger="audiogen"):
        prior.training_loss(x, mask, cond * 1e-5)
        prior.training_loss(x, mask, cond * 1e-5)
    warnings = [r for r in caplog.records if "conditioner" in r.getMessage()]
    assert len(warnings) == 1  # once
    with pytest.raises(ValueError, match="pass cond"):
        prior.training_loss(x, mask)
    with pytest.raises(ValueError, match="unconditional"):
        tiny().sample(1, 4, cond=torch.randn(1, 2, 4))
    with pytest.raises(ValueError, match=r"cond must be \(1, 2, 4\)"):
        prior.sample(1, 4, cond=torch.randn(1, 2, 5))


def test_no_likelihood_and_sampler_arguments():
    prior = tiny()
    assert DiffWavePrior.has_likelihood is False
    with pytest.raises(NotImplementedError, match="no exact likelihood"):
        prior.log_prob(*batch())
    with pytest.raises(ValueError, match="ddim sampler only"):
        prior.sample(1, 4, sampler="ancestral", steps=10)
    with pytest.raises(ConfigError, match="unknown sampler"):
        prior.sample(1, 4, sampler="euler")
    with pytest.raises(ConfigError, match="sample_steps"):
        tiny(sample_steps=0)
    g = torch.Generator
    a = prior.sample(2, 4, sampler="ddim", steps=5, generator=g().manual_seed(0))
    assert torch.equal(a, prior.sample(2, 4, sampler="ddim", steps=5, generator=g().manual_seed(0)))
    with pytest.raises(ValueError, match=r"expected latents \(B, 3, L\)"):
        prior.training_loss(torch.randn(2, 4, 5))


def test_outer_taps_beyond_the_sequence_are_skipped_exactly():
    torch.manual_seed(0)
    block = ResidualBlock(4, dilation=8, batchnorm=False)
    x, step = torch.randn(2, 4, 6), torch.randn(1, 4, 1)
    h, skip = block(x, step, None, None, None)  # dilation 8 >= length 6: centre tap only
    y = block.dilated(x + step)  # the full dilated conv
    gate, filt = y.chunk(2, 1)
    res, skip_ref = block.out(torch.sigmoid(gate) * torch.tanh(filt)).chunk(2, 1)
    assert torch.allclose(h, (x + res) / math.sqrt(2), atol=1e-6) and torch.allclose(skip, skip_ref, atol=1e-6)


@pytest.mark.parametrize("layers", [1, 3])
def test_network_gradients_are_exact(layers):
    """The forward accumulates sums in place to save memory traffic: autograd must still be exact."""
    torch.manual_seed(0)
    prior = tiny(residual_layers=layers, cond_channels=2).double()
    torch.nn.init.normal_(prior.net.out.weight)
    x = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    cond = torch.randn(2, 2, 5, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([3, 7])
    assert torch.autograd.gradcheck(lambda x, c: prior.net(x, t, c, track_cond=True), (x, cond))


def test_clip_reproduces_diffwaves_clamp():
    torch.manual_seed(0)
    prior = DiffWavePrior(latent_size=2, residual_layers=2, residual_channels=4, dilation_cycle=2,
                          schedule=LinearSchedule(steps=5), sample_steps=3, clip=0.5)
    z = prior.sample(3, 16)
    assert z.abs().max() <= 0.5 and (z.abs() == 0.5).any()
