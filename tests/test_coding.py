"""Input codings: exact bin round-trips, the shared model grid, and the mu-law / PCM formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from audiogen.audio import InputCoding, LinearPCM, MuLaw

CODINGS = [MuLaw(8), MuLaw(16), LinearPCM(8), LinearPCM(16)]
IDS = [c.name for c in CODINGS]


@pytest.mark.parametrize("coding", CODINGS, ids=IDS)
def test_every_bin_round_trips(coding: InputCoding):
    k = torch.arange(coding.num_bins)
    assert coding.num_bins == 2 ** coding.bits
    x = coding.dequantize(k)
    assert x.dtype == torch.float32
    assert torch.equal(coding.quantize(x), k)
    assert torch.all(torch.diff(x.double()) > 0)  # monotone levels
    assert x.abs().max() <= 1.0


@pytest.mark.parametrize("coding", CODINGS, ids=IDS)
def test_model_grid(coding: InputCoding):
    g = coding.grid().double()
    n = coding.num_bins
    assert g.shape == (n,) and g[0] == -1 and g[-1] == 1
    torch.testing.assert_close(torch.diff(g), torch.full((n - 1,), 2 / (n - 1), dtype=torch.float64),
                               rtol=0, atol=1e-6)
    k = torch.arange(n)
    assert torch.equal(coding.from_model(coding.to_model(k)), k)
    # Nearest grid point: a nudge smaller than the half-width keeps the bin.
    half = 1 / (n - 1)
    y = coding.to_model(k, dtype=torch.float64)
    assert torch.equal(coding.from_model(y + 0.49 * half), k)
    assert torch.equal(coding.from_model(y - 0.49 * half), k)
    # encode/decode conveniences
    x = coding.dequantize(k)
    assert torch.equal(coding.encode(x), coding.to_model(k))
    assert torch.equal(coding.decode(coding.to_model(k)), x)


@pytest.mark.parametrize("coding", CODINGS, ids=IDS)
def test_quantize_monotone_and_shape(coding: InputCoding):
    x = torch.linspace(-1.2, 1.2, 20001)
    k = coding.quantize(x)
    assert k.dtype == torch.long and torch.all(torch.diff(k) >= 0)
    assert k[0] == 0 and k[-1] == coding.num_bins - 1
    arr = np.random.default_rng(0).uniform(-1, 1, (3, 4, 5)).astype(np.float32)
    assert coding.quantize(arr).shape == (3, 4, 5)
    assert coding.encode(arr).shape == (3, 4, 5)


@pytest.mark.parametrize("bits", [8, 16])
def test_mulaw_formula(bits):
    c = MuLaw(bits)
    mu = 2 ** bits - 1
    x = np.linspace(-1, 1, 1001)
    f = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    np.testing.assert_allclose(c.compress(x).numpy(), f, rtol=0, atol=1e-12)
    expected = np.clip(np.round((f + 1) / 2 * mu), 0, mu)
    np.testing.assert_array_equal(c.quantize(x).numpy(), expected)
    y = np.linspace(-1, 1, 1001)
    inv = np.sign(y) * ((1 + mu) ** np.abs(y) - 1) / mu
    np.testing.assert_allclose(c.expand(y).numpy(), inv, rtol=1e-12, atol=1e-15)
    # dequantize(k) = F^-1(y_k): the model grid is the companded domain
    k = torch.arange(0, mu + 1, max(1, mu // 300))
    np.testing.assert_allclose(c.dequantize(k, dtype=torch.float64).numpy(),
                               c.expand(c.to_model(k, dtype=torch.float64)).numpy(), rtol=0, atol=0)


@pytest.mark.parametrize("bits", [8, 16])
def test_mulaw_error_bound(bits):
    c = MuLaw(bits)
    x = torch.from_numpy(np.random.default_rng(bits).uniform(-1, 1, 200_000))
    x = torch.cat([x, torch.linspace(-1, 1, 10_001, dtype=torch.float64)])
    k = c.quantize(x)
    xhat = c.decode(c.encode(x, dtype=torch.float64), dtype=torch.float64)
    # The bin of level k spans F^-1(y_k -+ h); the error is at most the larger half of it.
    h = 1 / c.mu
    y = c.to_model(k, dtype=torch.float64)
    upper = c.expand((y + h).clamp(max=1)) - xhat
    lower = xhat - c.expand((y - h).clamp(min=-1))
    bound = torch.maximum(upper, lower)
    assert torch.all((x - xhat).abs() <= bound + 1e-12)


def test_linear_pcm16_round_trips_int16():
    c = LinearPCM(16)
    ints = np.arange(-32768, 32768, dtype=np.int64)
    x = (ints.astype(np.int16) / 32768.0).astype(np.float32)
    k = c.quantize(x)
    assert torch.equal(k, torch.from_numpy(ints + 32768))
    np.testing.assert_array_equal(c.dequantize(k).numpy(), x)
    assert c.quantize(np.array([1.0]))[0] == 65535  # full scale clips to the top code


def test_linear_pcm8_formula():
    c = LinearPCM(8)
    x = np.linspace(-1, 1, 513)
    expected = np.clip(np.round(x * 128), -128, 127) + 128
    np.testing.assert_array_equal(c.quantize(x).numpy(), expected)
    np.testing.assert_array_equal(c.dequantize(torch.tensor([0, 128, 255])).numpy(), [-1.0, 0.0, 127 / 128])


@pytest.mark.parametrize("bad", [0, 1, 17, 32, 8.0, "8", True])
def test_bad_bits(bad):
    for cls in (MuLaw, LinearPCM):
        with pytest.raises(ValueError, match="bits"):
            cls(bad)


def test_other_bits_allowed_and_names():
    assert MuLaw(4).num_bins == 16 and LinearPCM(2).num_bins == 4
    assert MuLaw(8).name == "mulaw8" and LinearPCM(16).name == "pcm16"


@settings(max_examples=150, deadline=None)
@given(
    arrays(np.float64, st.integers(0, 64), elements=st.floats(allow_nan=False, allow_infinity=False)),
    st.sampled_from(CODINGS),
)
def test_indices_always_in_range(x, coding):
    k = coding.quantize(x)
    assert k.shape == x.shape and k.dtype == torch.long
    assert torch.all((k >= 0) & (k < coding.num_bins))
    y = coding.encode(x)
    assert torch.all(y.abs() <= 1)
    j = coding.from_model(x)
    assert torch.all((j >= 0) & (j < coding.num_bins))
