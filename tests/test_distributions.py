"""Output distributions: masses sum to one over the grid for any parameters, exact grid samples, stable gradients."""

from __future__ import annotations

import itertools
import math

import gin
import pytest
import torch
import torch.nn.functional as F

from audiogen.audio.coding import MuLaw
from audiogen.contracts import OutputDistribution
from audiogen.distributions import (
    Bernoulli,
    Categorical,
    DiscretizedLaplaceMixture,
    DiscretizedLogistic,
    DiscretizedLogisticMixture,
    Gaussian,
    GaussianMixture,
)
from audiogen.distributions.discretized import DiscretizedMixture

NAMES = ["dmol", "discretized_logistic", "discretized_laplace_mixture", "gaussian", "gaussian_mixture",
         "categorical", "bernoulli"]


def discretized(kind: str, bits: int, **kw) -> DiscretizedMixture:
    if kind == "logistic":
        return DiscretizedLogistic(bits=bits, **kw)
    cls = DiscretizedLogisticMixture if kind == "dmol" else DiscretizedLaplaceMixture
    return cls(num_components=3, bits=bits, **kw)


def make_params(dist: DiscretizedMixture, logits, means, log_scales, length: int) -> torch.Tensor:
    """(S, P, length) from per-set lists of K values, constant along time."""
    parts = [torch.tensor(means), torch.tensor(log_scales)]
    if dist.has_logits:
        parts.insert(0, torch.tensor(logits))
    p = torch.cat([x.reshape(-1, dist.num_components) for x in parts], dim=1).float()
    return p[:, :, None].expand(-1, -1, length).contiguous()


# Parameter sets (K = 3): ordinary, tiny scales (clamped), huge scales, means on and beyond the grid edges.
SETS = [
    ([0.0, 0.0, 0.0], [0.0, 0.3, -0.7], [-3.0, -4.0, -2.0]),
    ([2.0, -1.0, 0.5], [0.123, -0.5, 0.99], [-9.0, -9.0, -9.0]),
    ([0.0, 5.0, -5.0], [0.2501, -0.0003, 0.7], [-20.0, -30.0, -12.0]),
    ([1.0, 1.0, 1.0], [0.0, 0.5, -0.5], [3.0, 8.0, 20.0]),
    ([0.0, 0.0, 0.0], [1.5, -3.0, 100.0], [-5.0, 0.0, -20.0]),
    ([-4.0, 0.0, 4.0], [-1.0, 1.0, 1.0], [-20.0, -1.0, -20.0]),
    ([30.0, -30.0, 0.0], [-0.9, 0.9, 0.0], [-2.0, -6.0, 1.0]),
]


def grid_log_probs(dist: DiscretizedMixture, sets=SETS) -> torch.Tensor:
    """log P(every grid value) for each parameter set, (S, 2**bits)."""
    grid = MuLaw(dist.bits).grid()
    k = dist.num_components
    params = make_params(dist, [s[0][:k] for s in sets], [s[1][:k] for s in sets],
                         [s[2][:k] for s in sets], grid.numel())
    target = grid.view(1, 1, -1).expand(len(sets), 1, -1)
    return dist.log_prob(params, target)[:, 0]


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("kind", ["dmol", "logistic", "laplace"])
def test_masses_sum_to_one_over_the_grid(kind, bits):
    dist = discretized(kind, bits)
    assert dist.num_bins == 2 ** bits and dist.bits == bits
    lp = grid_log_probs(dist)
    assert torch.isfinite(lp).all(), "log-probs must be finite on every bin, the extreme ones included"
    assert (lp <= 1e-6).all()
    torch.testing.assert_close(torch.logsumexp(lp, dim=1), torch.zeros(len(SETS)), rtol=0, atol=1e-4)


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("kind", ["dmol", "logistic", "laplace"])
def test_tiny_scales_put_the_mass_on_the_bin_of_the_mean(kind, bits):
    # -9 is narrower than an 8-bit bin but wider than a 16-bit one: go lower for 16 bits.
    dist = discretized(kind, bits, min_log_scale=-9.0 if bits == 8 else -16.0)
    n, h = dist.num_bins, 1.0 / (dist.num_bins - 1)
    grid = MuLaw(bits).grid(dtype=torch.float64)
    cases = [(7, 0.0), (n // 2, 0.3 * h), (n - 10, -0.4 * h), (0, 0.0), (n - 1, 0.0)]
    sets = [([0.0] * 3, [float(grid[k] + off)] * 3, [-40.0] * 3) for k, off in cases]
    sets += [([0.0] * 3, [5.0] * 3, [-40.0] * 3), ([0.0] * 3, [-1.2] * 3, [-40.0] * 3)]  # beyond the ends
    lp = grid_log_probs(dist, sets)
    assert torch.isfinite(lp).all()
    for row, k in enumerate([k for k, _ in cases] + [n - 1, 0]):
        assert lp[row, k] > -1e-5, (row, k, float(lp[row, k]))
        assert lp[row].argmax() == k


@pytest.mark.parametrize("bits", [8, 16])
def test_fused_dmol_matches_the_autograd_reference(bits):
    dist = DiscretizedLogisticMixture(num_components=4, bits=bits)
    g = torch.Generator().manual_seed(bits)
    params = torch.randn(3, 12, 700, generator=g, dtype=torch.float64) * 3
    params[:, 8:] -= 4  # log scales around -4, down to the clamp
    k = torch.randint(0, dist.num_bins, (3, 1, 700), generator=g)
    k[0, 0, :50], k[0, 0, 50:100] = 0, dist.num_bins - 1  # the open edge bins
    target = dist.coding.to_model(k, dtype=torch.float64)

    def run(fn, dtype):
        p = params.to(dtype).requires_grad_()
        lp = fn(p, target.to(dtype))
        return lp.detach().double(), torch.autograd.grad(lp.sum(), p)[0].double()

    fused, g_fused = run(dist.log_prob, torch.float64)
    ref, g_ref = run(lambda p, t: DiscretizedMixture.log_prob(dist, p, t), torch.float64)
    torch.testing.assert_close(fused, ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(g_fused, g_ref, rtol=1e-10, atol=1e-10)
    # float32 against float64, relative: far tails have log-probs of -1e5 and beyond. A float32 edge is placed
    # to ~1e-7 |y - mu|, which is up to ~1% of a 16-bit bin's width when |y - mu| ~ 2 (8-bit bins: 256x wider).
    lp32, g32 = run(dist.log_prob, torch.float32)

    def rel(a, b):
        return float(((a - b).abs() / (1 + b.abs())).max())

    assert rel(lp32, fused) < (1e-5 if bits == 8 else 3e-3)
    assert rel(g32, g_fused) < (1e-3 if bits == 8 else 5e-2)


def test_single_threaded_chunked_path_matches(monkeypatch):
    """One CPU thread runs the fused kernel over cache-sized chunks of time; chunk edges must not show."""
    from audiogen.distributions import logistic_kernel

    dist = DiscretizedLogisticMixture(num_components=3, bits=16)
    params = torch.randn(2, 9, 1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    target = MuLaw(16).grid(dtype=torch.float64)[torch.randint(0, 65536, (2, 1, 1000))]
    results = []
    for threads, chunk in [(torch.get_num_threads(), logistic_kernel.CPU_CHUNK), (1, 6 * 7)]:  # 7 steps per chunk
        monkeypatch.setattr(logistic_kernel, "CPU_CHUNK", chunk)
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            p = params.clone().requires_grad_()
            lp = dist.log_prob(p, target)
            results.append((lp.detach(), torch.autograd.grad((lp * torch.linspace(0, 1, 1000)).sum(), p)[0]))
        finally:
            torch.set_num_threads(before)
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["dmol", "logistic", "laplace"])
def test_samples_are_exact_grid_values(kind):
    dist = discretized(kind, 16)
    grid = MuLaw(16).grid()
    params = torch.randn(2, dist.num_params, 5000, generator=torch.Generator().manual_seed(0)) * 2
    s = dist.sample(params, generator=torch.Generator().manual_seed(1))
    assert s.shape == (2, 1, 5000) and s.dtype == torch.float32
    assert torch.isin(s, grid).all()
    assert {-1.0, 1.0} <= set(s.unique().tolist())  # means beyond the ends land on the edge bins


def chi_square(counts: torch.Tensor, probs: torch.Tensor) -> float:
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


def coarse(p: torch.Tensor, edges: list[int]) -> torch.Tensor:
    return torch.stack([p[a:b].sum() for a, b in itertools.pairwise(edges)])


@pytest.mark.parametrize("kind", ["dmol", "laplace"])
def test_sample_histogram_matches_the_masses(kind):
    dist = discretized(kind, 8)
    n, length = dist.num_bins, 40000
    sets = [([0.5, 0.0, -1.0], [-0.3, 0.2, 0.95], [-2.5, -3.5, -2.0])]
    probs = grid_log_probs(dist, sets)[0].double().exp()
    params = make_params(dist, *[[x] for x in sets[0]], length)
    s = dist.sample(params, generator=torch.Generator().manual_seed(3))
    counts = torch.bincount(dist.coding.from_model(s).flatten(), minlength=n).double()
    edges = [0, 60, 90, 110, 125, 140, 160, 220, 250, 256]  # 9 coarse bins, each with plenty of mass
    # 8 degrees of freedom: P(chi2 > 40) ~ 1e-5, so this fails only for a wrong sampler.
    assert chi_square(coarse(counts, edges), coarse(probs, edges)) < 40
    exact_mean = float((probs * MuLaw(8).grid(dtype=torch.float64)).sum())
    assert abs(float(s.double().mean()) - exact_mean) < 0.01


def test_mean_is_the_mixture_mean_clipped():
    dist = DiscretizedLogisticMixture(num_components=2, bits=8)
    params = torch.tensor([0.0, math.log(3.0), 0.2, 0.6, -3.0, -3.0]).view(1, 6, 1).repeat(1, 1, 2)
    params[0, 2:4, 1] = torch.tensor([3.0, 5.0])  # mean beyond the grid: clipped to 1
    torch.testing.assert_close(dist.mean(params), torch.tensor([[[0.25 * 0.2 + 0.75 * 0.6, 1.0]]]))
    single = DiscretizedLogistic(bits=8)
    assert single.num_params == 2
    torch.testing.assert_close(single.mean(torch.tensor([[[0.3], [-2.0]]])), torch.tensor([[[0.3]]]))


def test_one_component_mixture_equals_discretized_logistic():
    mix, single = DiscretizedLogisticMixture(1, bits=8), DiscretizedLogistic(bits=8)
    assert mix.num_params == 3
    p = torch.randn(2, 2, 300)
    target = MuLaw(8).grid()[torch.randint(0, 256, (2, 1, 300))]
    mixed = mix.log_prob(torch.cat([torch.randn(2, 1, 300), p], dim=1), target)
    torch.testing.assert_close(mixed, single.log_prob(p, target))


@pytest.mark.parametrize("bits", [8, 16])
def test_categorical(bits):
    dist = Categorical(bits=bits)
    n = 2 ** bits
    assert dist.num_params == n == dist.num_bins and dist.bits == bits
    logits = torch.randn(1, n, 1, generator=torch.Generator().manual_seed(0)) * 2
    grid = MuLaw(bits).grid()
    lp = dist.log_prob(logits.expand(1, n, n) if bits == 8 else logits.expand(1, n, 64),
                       grid.view(1, 1, -1) if bits == 8 else grid[:64].view(1, 1, -1))
    torch.testing.assert_close(lp[0, 0], torch.log_softmax(logits[0, :, 0], 0)[: lp.shape[-1]])
    if bits == 8:
        torch.testing.assert_close(torch.logsumexp(lp[0, 0], 0), torch.tensor(0.0), rtol=0, atol=1e-5)
        # off-grid targets map to the nearest grid point
        off = grid[[3, 100]] + torch.tensor([0.4, -0.4]) / (n - 1)
        torch.testing.assert_close(dist.log_prob(logits.expand(1, n, 2), off.view(1, 1, 2))[0, 0], lp[0, 0, [3, 100]])


def test_categorical_sampling_frequencies_match_softmax():
    dist = Categorical(bits=8)
    logits = torch.zeros(1, 256, 1)
    logits[0, [10, 128, 200, 255], 0] = torch.tensor([4.0, 5.0, 3.0, 4.5])
    s = dist.sample(logits.expand(1, 256, 30000), generator=torch.Generator().manual_seed(0))
    grid = MuLaw(8).grid()
    assert torch.isin(s, grid).all()
    counts = torch.bincount(dist.coding.from_model(s).flatten(), minlength=256).double()
    probs = torch.softmax(logits[0, :, 0].double(), 0)
    edges = [0, 10, 11, 128, 129, 200, 201, 255, 256]
    assert chi_square(coarse(counts, edges), coarse(probs, edges)) < 40
    torch.testing.assert_close(dist.mean(logits), (probs * grid.double()).sum().float().view(1, 1, 1))


def test_gaussian_matches_torch_and_floors_the_std():
    dist = Gaussian(min_std=1e-3)
    assert dist.num_params == 2
    mean, x = torch.randn(2, 1, 50), torch.randn(2, 1, 50)
    log_std = torch.empty(2, 1, 50).uniform_(-3, 1)
    expected = torch.distributions.Normal(mean, log_std.exp()).log_prob(x)
    torch.testing.assert_close(dist.log_prob(torch.cat([mean, log_std], 1), x), expected)
    tiny = torch.full_like(log_std, -20.0)  # below min_std: scored with min_std
    x = mean + 1e-3 * torch.randn(2, 1, 50)
    expected = torch.distributions.Normal(mean, 1e-3).log_prob(x)
    torch.testing.assert_close(dist.log_prob(torch.cat([mean, tiny], 1), x), expected)
    torch.testing.assert_close(dist.mean(torch.cat([mean, tiny], 1)), mean)
    s = dist.sample(torch.cat([torch.full_like(mean, 0.5), torch.full_like(mean, -1.0)], 1).repeat(1, 1, 400),
                    generator=torch.Generator().manual_seed(0))
    assert abs(float(s.mean()) - 0.5) < 0.03 and abs(float(s.std()) - math.exp(-1.0)) < 0.03


def test_gaussian_mixture_matches_manual_logsumexp():
    dist = GaussianMixture(num_components=4, min_std=1e-3)
    assert dist.num_params == 12
    p, x = torch.randn(3, 12, 40), torch.randn(3, 1, 40)
    logits, means, log_stds = p.split(4, 1)
    comp = torch.distributions.Normal(means, log_stds.clamp_min(math.log(1e-3)).exp()).log_prob(x)
    expected = torch.logsumexp(torch.log_softmax(logits, 1) + comp, 1, keepdim=True)
    torch.testing.assert_close(dist.log_prob(p, x), expected)
    torch.testing.assert_close(dist.mean(p), (torch.softmax(logits, 1) * means).sum(1, keepdim=True))
    assert dist.sample(p, generator=torch.Generator().manual_seed(0)).shape == (3, 1, 40)


def test_bernoulli_matches_bce_with_logits():
    dist = Bernoulli()
    logits = torch.randn(2, 1, 100) * 5
    target = (torch.rand(2, 1, 100) < 0.5).float()
    expected = -F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    torch.testing.assert_close(dist.log_prob(logits, target), expected)
    torch.testing.assert_close(dist.mean(logits), torch.sigmoid(logits))
    s = dist.sample(torch.full((1, 1, 20000), 1.0), generator=torch.Generator().manual_seed(0))
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    assert abs(float(s.mean()) - torch.sigmoid(torch.tensor(1.0)).item()) < 0.02


EXTREME = [-100.0, -30.0, -20.0, -1.0, 0.0, 1e-3, 1.0, 20.0, 30.0, 100.0]


@pytest.mark.parametrize("name", NAMES)
def test_gradients_are_finite_for_extreme_parameters(name):
    from audiogen.plugins import get_registry

    dist = get_registry().get("distributions", name).factory()
    values = torch.tensor(EXTREME)
    p = values[torch.randint(0, len(EXTREME), (4, dist.num_params, 600), generator=torch.Generator().manual_seed(0))]
    p.requires_grad_()
    if name == "bernoulli":
        target = (torch.rand(4, 1, 600) < 0.5).float()
    else:
        grid = MuLaw(dist.bits).grid() if hasattr(dist, "bits") else torch.linspace(-1, 1, 601)
        target = grid[torch.randint(0, len(grid), (4, 1, 600))]
        target[0, 0, :10], target[0, 0, 10:20] = -1.0, 1.0
    lp = dist.log_prob(p, target)
    assert lp.shape == (4, 1, 600) and not torch.isnan(lp).any()
    if name not in ("gaussian", "gaussian_mixture"):  # masses: finite and at most 1
        assert torch.isfinite(lp).all() and (lp <= 1e-6).all()
    (grad,) = torch.autograd.grad(lp.sum(), p)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("name", NAMES)
def test_registered_and_built_by_name(name):
    from audiogen.plugins import get_registry

    comp = get_registry().get("distributions", name)
    assert comp.gin_name == f"distributions.{name}" and comp.plugin == "audiogen"
    dist = comp.factory()
    assert isinstance(dist, OutputDistribution) and not list(dist.parameters())
    assert isinstance(dist.num_params, int) and dist.num_params >= 1
    assert dist.audiogen_component == f"distributions.{name}"
    assert dist.is_binary == (name == "bernoulli") and dist.is_discrete == ("gaussian" not in name)
    params = torch.zeros(2, dist.num_params, 7)
    target = torch.zeros(2, 1, 7)
    assert dist.log_prob(params, target).shape == (2, 1, 7)
    assert dist.sample(params).shape == (2, 1, 7)
    assert dist.mean(params).shape == (2, 1, 7)


def test_built_through_gin():
    from audiogen import config
    from audiogen.plugins import get_registry

    try:
        config.parse([], ["distributions.dmol.num_components = 3", "distributions.dmol.bits = 8"])
        dist = get_registry().get("distributions", "dmol").factory()
        assert dist.num_params == 9 and dist.num_bins == 256
    finally:
        gin.clear_config()
    assert get_registry().get("distributions", "dmol").factory().num_params == 30  # defaults: K = 10


def test_wrong_shapes_name_expected_and_got():
    dist = DiscretizedLogisticMixture(num_components=3)
    with pytest.raises(ValueError, match=r"9 channels.*got 7"):
        dist.log_prob(torch.zeros(1, 7, 5), torch.zeros(1, 1, 5))
    with pytest.raises(ValueError, match=r"target must be \(B, 1, T\)"):
        dist.log_prob(torch.zeros(1, 9, 5), torch.zeros(1, 1, 4))
    with pytest.raises(ValueError, match="2 channels"):
        Gaussian().sample(torch.zeros(1, 3, 5))
    with pytest.raises(ValueError, match="256 channels"):
        Categorical(8).mean(torch.zeros(256, 5))
