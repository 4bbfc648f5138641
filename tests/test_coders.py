"""The component contracts, exercised on the built-in Conv1d coders and the diagonal Gaussian prior."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiogen.contracts import ContractError, Encoder, check_decoder, check_encoder, check_prior
from audiogen.decoders.conv1d import Conv1dDecoder
from audiogen.encoders.conv1d import Conv1dEncoder
from audiogen.latents.encode import encode_array
from audiogen.priors.gaussian import DiagGaussianPrior


@pytest.mark.parametrize("strides,overlap,bands", [([4, 4, 4], 2, 1), ([5, 3], 1, 1), ([2, 8], 3, 1), ([7], 2, 1),
                                                   ([4], 2, 16), ([3, 2], 1, 4)])
def test_conv1d_coders_meet_the_contract(strides, overlap, bands):
    torch.manual_seed(0)
    enc = Conv1dEncoder(strides=strides, channels=8, latent_size=3, kernel_overlap=overlap, bands=bands)
    dec = Conv1dDecoder(strides=strides, channels=8, latent_size=3, kernel_overlap=overlap, bands=bands)
    assert enc.hop == dec.hop == bands * int(np.prod(strides))
    check_encoder(enc)
    y = check_decoder(dec)
    assert y.abs().max() <= 1  # audio output is tanh-bounded


def test_filter_bank_reconstructs_speech_and_splits_it_into_bands():
    """The PQMF bank is near-perfect on real audio (what a bands > 1 coder's output goes through), and its bands
    are bands: a tone lands in the one whose frequency range holds it."""
    from audiogen.pqmf import PQMF

    t = np.arange(16000) / 16000
    rng = np.random.default_rng(0)
    x = torch.tensor(np.sin(2 * np.pi * 150 * t * (1 + 2 * t)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
                     + 0.05 * rng.standard_normal(16000), dtype=torch.float32)[None, None]
    for bands in (2, 4, 8, 16):
        bank = PQMF(bands)
        y = bank.synthesis(bank.analysis(x))
        inner = slice(2 * bank.margin, -2 * bank.margin)  # at the ends the bands beyond the signal are missing
        snr = 10 * torch.log10((x[..., inner] ** 2).sum() / ((y - x)[..., inner] ** 2).sum())
        assert y.shape == x.shape and snr > 55, (bands, snr)
        for band in (0, bands // 2, bands - 1):
            tone = torch.sin(2 * np.pi * torch.tensor(t) * (band + 0.5) * 8000 / bands).float()[None, None]
            energy = (bank.analysis(tone)[0, :, 100:-100] ** 2).mean(-1)
            assert int(energy.argmax()) == band and energy[band] > 0.99 * energy.sum()


def test_bands_need_a_power_of_two_and_audio_output():
    from audiogen.errors import ConfigError

    with pytest.raises(ConfigError, match="power of 2"):
        Conv1dEncoder(strides=[4], channels=4, latent_size=2, bands=3)
    with pytest.raises(ConfigError, match="out_channels"):
        Conv1dDecoder(strides=[4], channels=4, latent_size=2, bands=4, out_channels=30)


def test_decoder_with_distribution_parameters_is_unbounded():
    dec = Conv1dDecoder(strides=[4], channels=8, latent_size=3, out_channels=30)
    y = check_decoder(dec)
    assert y.shape[1] == 30


def test_check_encoder_catches_a_wrong_hop():
    class Liar(Conv1dEncoder):
        pass

    enc = Liar(strides=[4], channels=4, latent_size=2)
    enc.hop = 8  # declares 8, produces 4
    with pytest.raises(ContractError, match="expected"):
        check_encoder(enc)


@pytest.mark.parametrize("num_samples,bands", [(4000, 1), (4096, 1), (4097, 1), (12345, 1), (12345, 8)])
def test_chunked_encoding_equals_whole_file(num_samples, bands):
    torch.manual_seed(0)
    enc = Conv1dEncoder(strides=[4, 4], channels=[8, 8], latent_size=4, bands=bands).eval()
    x = np.random.default_rng(0).uniform(-0.5, 0.5, num_samples).astype(np.float32)
    read = lambda a, b: x[a:b]  # noqa: E731
    whole = encode_array(enc, read, num_samples, chunk=10**9)
    chunked = encode_array(enc, read, num_samples, chunk=1000)  # many chunks, each with context
    assert whole.shape == (enc.num_frames(num_samples), 4)
    np.testing.assert_allclose(chunked, whole, atol=1e-5)


def test_receptive_field_is_not_underestimated():
    """Changing an input sample farther than the receptive field must not change the first frame."""
    torch.manual_seed(0)
    enc = Conv1dEncoder(strides=[4, 2], channels=[4, 4], latent_size=2).eval()
    x = torch.zeros(1, 1, 4096)
    base = enc(x)[0, :, 0]
    far = x.clone()
    far[..., enc.receptive_field + enc.hop:] = 1.0
    assert torch.allclose(enc(far)[0, :, 0], base)
    near = x.clone()
    near[..., enc.receptive_field // 2] = 1.0
    assert not torch.allclose(enc(near)[0, :, 0], base)


@pytest.mark.parametrize("strides,overlap,bands", [([4, 4, 4], 2, 1), ([5, 3], 1, 1), ([2, 8], 3, 1), ([7], 2, 1),
                                                   ([4], 2, 16), ([3, 2], 1, 4)])
def test_receptive_field_is_exact(strides, overlap, bands):
    """No sample farther than receptive_field from a frame changes it, and one within two samples of that distance
    does (the margins of chunked and windowed encoding are no wider than needed)."""
    torch.manual_seed(0)
    enc = Conv1dEncoder(strides=strides, channels=4, latent_size=2, kernel_overlap=overlap, bands=bands).eval()
    rf, hop, j = enc.receptive_field, enc.hop, 50
    x = torch.rand(1, 1, 100 * hop) * 0.2 - 0.1
    with torch.no_grad():
        base = enc(x)[0, :, j]

        def changed(pos: int) -> bool:  # a large change: at the edge of the reach, a path's weights are tiny
            x2 = x.clone()  # (a filter bank's taps taper to 1e-5 at its edges: larger still)
            x2[..., pos] += 100.0 if bands == 1 else 1e7
            return not torch.equal(enc(x2)[0, :, j], base)

        first, last = j * hop, (j + 1) * hop - 1  # the frame's own samples
        assert any(changed(first - rf + d) or changed(last + rf - d) for d in range(3))  # tight
        assert not changed(first - rf - 1) and not changed(last + rf + 1)


def test_diag_gaussian_prior_meets_the_contract_and_fits():
    prior = DiagGaussianPrior(latent_size=3)
    check_prior(prior)
    x = torch.randn(64, 3, 20) * torch.tensor([0.5, 2.0, 1.0])[:, None] + torch.tensor([1.0, -1.0, 0.0])[:, None]
    opt = torch.optim.Adam(prior.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        out = prior.log_prob(x)
        (-out.log_prob.sum() / out.frames.sum()).backward()
        opt.step()
    assert torch.allclose(prior.mean, torch.tensor([1.0, -1.0, 0.0]), atol=0.1)
    assert torch.allclose(prior.std(), torch.tensor([0.5, 2.0, 1.0]), rtol=0.1)
    bpf = prior.log_prob(x).bits_per_frame()
    # exact differential entropy of the generating Gaussian, in bits per frame
    h = sum(0.5 * np.log2(2 * np.pi * np.e * s**2) for s in (0.5, 2.0, 1.0))
    assert abs(bpf - h) < 0.1


def test_encoder_base_defaults():
    enc = Conv1dEncoder(strides=[4], channels=4, latent_size=2)
    assert isinstance(enc, Encoder)
    assert enc.level_hops == [4] and enc.level_sizes == [2]
    assert enc.num_frames(9) == 3


def test_filter_bank_coders_trace_for_export_at_any_length():
    """``audiogen export`` traces the coders: a traced filter bank must not freeze the length it was traced at."""
    torch.manual_seed(0)
    enc = Conv1dEncoder(strides=[2, 2], channels=8, latent_size=3, bands=8).eval()
    dec = Conv1dDecoder(strides=[2, 2], channels=8, latent_size=3, bands=8).eval()
    with torch.no_grad():
        enc_t = torch.jit.trace(enc, torch.randn(1, 1, 32 * enc.hop))
        dec_t = torch.jit.trace(dec, torch.randn(1, 3, 32))
        x = torch.randn(2, 1, 45 * enc.hop) * 0.1  # another length (the export pads to the hop itself)
        torch.testing.assert_close(enc_t(x), enc(x))
        z = enc(x)
        assert dec_t(z).shape == (2, 1, 45 * enc.hop)
        torch.testing.assert_close(dec_t(z), dec(z))
