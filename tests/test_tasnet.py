"""Conv-TasNet encoder and decoder: contracts, ladder levels, exact receptive field, gLN vs cLN, a tiny CW-VAE."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from audiogen import config
from audiogen.contracts import check_decoder, check_encoder
from audiogen.decoders.tasnet import TasNetDecoder
from audiogen.encoders.tasnet import TasNetEncoder
from audiogen.errors import ConfigError
from audiogen.latents.encode import encode_array
from audiogen.pipeline import build_pipeline
from audiogen.tasnet.blocks import DepthwiseConv
from audiogen.workflows.evaluate import probe_margins, score_file

TINY = ["DZ=4", "HIDDEN=8", "ENCODER_CHANNELS=8", "DECODER_CHANNELS=8", "COMPONENTS=2", "DMOL_PARAMS=6"]


def tiny_pipeline(extra=()):
    config.parse(["pipelines/cwvae_tasnet_speech.gin"], TINY + list(extra))
    torch.manual_seed(0)
    return build_pipeline()


@pytest.mark.parametrize("strides,norm", [([4, 4, 4], "cln"), ([5, 3], "gln"), ([7], "cln")])
def test_coders_meet_the_contract(strides, norm):
    torch.manual_seed(0)
    enc = TasNetEncoder(strides=strides, channels=8, latent_size=3, norm=norm)
    dec = TasNetDecoder(strides=strides, channels=8, latent_size=3, norm=norm)
    assert enc.hop == dec.hop == int(np.prod(strides))
    check_encoder(enc)
    assert check_decoder(dec).abs().max() <= 1  # audio output is tanh-bounded
    params = check_decoder(TasNetDecoder(strides=strides, channels=8, latent_size=3, out_channels=30, norm=norm))
    assert params.shape[1] == 30 and params.abs().max() > 1e-3


def test_ladder_levels_and_the_first_level_matches_forward():
    torch.manual_seed(0)
    enc = TasNetEncoder(strides=[4, 4, 2, 2], channels=[4, 6, 8, 8], latent_size=3, levels=3).eval()
    assert enc.level_hops == [16, 32, 64] and enc.level_sizes == [3, 3, 3] and enc.hop == 16
    check_encoder(enc, num_samples=1000)
    x = torch.rand(2, 1, 1000) * 0.4 - 0.2
    with torch.no_grad():
        levels, first = enc.encode_levels(x), enc(x)
    assert [lv.shape for lv in levels] == [(2, 3, 63), (2, 3, 32), (2, 3, 16)]
    # encode_levels pads to the top hop, forward to level 1's: frames out of reach of the padding agree exactly
    k = (1000 - enc.receptive_field) // enc.hop
    assert torch.equal(levels[0][..., :k], first[..., :k])
    # the paper's layout: stacked stages give hops 64 and 512 from one pass
    assert TasNetEncoder(strides=[4, 4, 4, 8], channels=4, latent_size=2, levels=2).level_hops == [64, 512]


@pytest.mark.parametrize("kernel_size,dilation", [(3, 1), (3, 4), (5, 2), (1, 1)])
def test_channel_last_depthwise_conv_equals_torch_conv1d(kernel_size, dilation):
    torch.manual_seed(0)
    dw = DepthwiseConv(6, kernel_size, dilation)
    x = torch.randn(2, 50, 6)  # (B, T, C)
    ref = F.conv1d(x.transpose(1, 2), dw.weight.T[:, None, :], dw.bias, padding=dw.padding, dilation=dilation,
                   groups=6).transpose(1, 2)
    torch.testing.assert_close(dw(x), ref)


def test_blocks_per_stage_and_dilations():
    enc = TasNetEncoder(strides=[4], channels=4, latent_size=2, blocks_per_stage=3)
    assert [b.dilation for b in enc.stages[0][0].blocks] == [1, 2, 4]
    enc = TasNetEncoder(strides=[4], channels=4, latent_size=2, dilations=[1, 3])
    assert [b.dilation for b in enc.stages[0][0].blocks] == [1, 3]
    wide = TasNetEncoder(strides=[4], channels=4, latent_size=2, dilations=[1, 3, 9])
    assert wide.receptive_field > enc.receptive_field


@pytest.mark.parametrize("strides,kernel_overlap", [([4, 2], 2), ([3, 5], 1), ([2, 4], 3)])
def test_receptive_field_is_exact(strides, kernel_overlap):
    """A sample receptive_field away from a frame changes it; one sample farther, on either side, does not."""
    torch.manual_seed(0)
    enc = TasNetEncoder(strides=strides, channels=[4, 6], latent_size=2, kernel_overlap=kernel_overlap,
                        dilations=[1, 2, 4]).eval()
    rf, hop, j = enc.receptive_field, enc.hop, 200
    x = torch.rand(1, 1, 400 * hop) * 0.2 - 0.1
    with torch.no_grad():
        base = enc(x)[0, :, j]

        def changed(pos: int) -> bool:
            x2 = x.clone()
            x2[..., pos] += 1.0
            return not torch.equal(enc(x2)[0, :, j], base)

        first, last = j * hop, (j + 1) * hop - 1  # the frame's own samples
        assert changed(first - rf) or changed(last + rf)  # the bound is reached on one side
        assert not changed(first - rf - 1) and not changed(last + rf + 1)


@pytest.mark.parametrize("num_samples", [4000, 4097, 12345])
def test_chunked_encoding_equals_whole_file(num_samples):
    torch.manual_seed(0)
    enc = TasNetEncoder(strides=[4, 4], channels=[8, 8], latent_size=4).eval()
    x = np.random.default_rng(0).uniform(-0.5, 0.5, num_samples).astype(np.float32)
    read = lambda a, b: x[a:b]  # noqa: E731
    whole = encode_array(enc, read, num_samples, chunk=10**9)
    chunked = encode_array(enc, read, num_samples, chunk=1000)  # many chunks, each with receptive_field context
    assert whole.shape == (enc.num_frames(num_samples), 4)
    np.testing.assert_allclose(chunked, whole, atol=1e-5)


def test_gln_frames_depend_on_the_whole_input_cln_frames_do_not():
    x = torch.rand(1, 1, 8192) * 0.2 - 0.1
    far = x.clone()
    far[..., -100:] += 0.5  # thousands of samples past frame 0's receptive field
    for norm in ("cln", "gln"):
        torch.manual_seed(0)
        enc = TasNetEncoder(strides=[4, 4], channels=4, latent_size=2, norm=norm).eval()
        dec = TasNetDecoder(strides=[4, 4], channels=4, latent_size=2, norm=norm).eval()
        z = torch.randn(1, 2, 64)
        z2 = z.clone()
        z2[..., -1] += 1.0
        with torch.no_grad():
            enc_moved = not torch.equal(enc(x)[..., 0], enc(far)[..., 0])
            dec_moved = not torch.equal(dec(z)[..., :16], dec(z2)[..., :16])
        assert enc_moved == dec_moved == (norm == "gln")
        assert (enc.receptive_field is None) == (norm == "gln")
    # with no receptive field, encode_array encodes the file whole, so chunking cannot change the result
    xs = x[0, 0].numpy()
    read = lambda a, b: xs[a:b]  # noqa: E731
    np.testing.assert_array_equal(encode_array(enc, read, 8192, chunk=1024), encode_array(enc, read, 8192, 10**9))


@pytest.mark.parametrize("kwargs,message", [
    ({"norm": "batch"}, "norm must be one of 'cln', 'gln', got 'batch'"),
    ({"kernel_size": 4}, "kernel_size must be a positive odd integer"),
    ({"dilations": []}, "dilations must be a non-empty list"),
    ({"blocks_per_stage": 3, "dilations": [1, 2]}, "blocks_per_stage=3 but dilations has 2 entries"),
    ({"blocks_per_stage": 0}, "blocks_per_stage must be >= 1"),
    ({"levels": 3}, r"encoders.tasnet.levels=3 needs at least as many strides, got \[4, 4\]"),
    ({"channels": [8, 8, 8]}, "channels has 3 entries but there are 2 stages"),
    ({"expansion": 0}, "expansion must be >= 1"),
    ({"strides": [4, 0]}, "strides must be positive integers"),
])
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TasNetEncoder(**{"strides": [4, 4], "channels": 8, "latent_size": 2, **kwargs})
    kwargs.pop("levels", None)
    if kwargs:
        with pytest.raises(ValueError, match=message.replace("encoders", "decoders")):
            TasNetDecoder(**{"strides": [4, 4], "channels": 8, "latent_size": 2, **kwargs})


def test_a_bad_binding_is_a_config_error_naming_the_value():
    with pytest.raises(ConfigError, match="cannot build the pipeline.*'batch'"):
        tiny_pipeline(["TASNET_NORM='batch'"])


def test_segmented_scoring_equals_whole_file_with_cln():
    pipe = tiny_pipeline().eval()
    assert type(pipe.encoder) is TasNetEncoder and type(pipe.decoder) is TasNetDecoder
    x = torch.rand(9000) * 0.4 - 0.2
    whole = score_file(pipe, x, None, None, sample=False)
    seg = score_file(pipe, x, 4 * pipe.frame_hop, probe_margins(pipe), sample=False)
    assert torch.allclose(whole["rec"], seg["rec"], rtol=1e-5)
    for a, b in zip(whole["kl"], seg["kl"]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)
    gln = tiny_pipeline(["TASNET_NORM='gln'"]).eval()
    with pytest.raises(ConfigError, match="(?s)'gln'.*--segment-seconds 0"):
        probe_margins(gln)


def test_tiny_cwvae_with_tasnet_coders_learns():
    from audiogen.synth import make_speakers, synthesize_utterance

    pipe = tiny_pipeline()
    assert pipe.encoder.level_hops == [64, 512]
    rng = np.random.default_rng(0)
    speakers = make_speakers(2, rng)
    x = torch.from_numpy(np.stack([synthesize_utterance(rng, 16000, 2048 / 16000, s) for s in speakers]))[:, None]
    mask = torch.ones(2, 2048, dtype=torch.bool)
    opt = torch.optim.Adam(pipe.parameters(), lr=3e-3)
    losses = []
    for step in range(20):
        opt.zero_grad()
        loss = pipe.training_loss(x, mask, step)["loss"]
        loss.backward()
        if step == 0:  # the loss reaches every block of both coders
            for coder in (pipe.encoder, pipe.decoder):
                assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in coder.parameters())
        opt.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.2, losses  # nats per sample
