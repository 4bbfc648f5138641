"""Contrastive Predictive Coding encoder (van den Oord et al. 2018): strided conv features z_t, GRU context c_t.

Pretrained with InfoNCE (``audiogen.objectives.infonce``, ``gin/encoders/cpc_pretrain.gin``), then used as the encoder
of a temporal VAE, frozen or fine-tuned (``gin/pipelines/cwvae_cpc_speech.gin``).
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiogen.contracts import Encoder
from audiogen.encoders.cpc_checkpoint import load_body
from audiogen.errors import ConfigError
from audiogen.layers import as_list, check_strides

log = logging.getLogger("audiogen")
OUTPUTS = ("context", "features")


class ChannelNorm(nn.Module):
    """LayerNorm over channels at every frame: no batch statistics, so train and eval mode compute the same thing
    (a frozen body stays exactly fixed) and a frame never depends on other sequences of the batch."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class CausalConv(nn.Module):
    """Conv1d that maps L samples to L / stride, left-padded by kernel - stride: output t reads inputs up to the end
    of its own stride window, so padding at the end of a sequence never reaches earlier frames."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int):
        super().__init__()
        if kernel < stride:
            raise ValueError(f"kernel {kernel} < stride {stride}: samples between windows would be skipped")
        self.pad = kernel - stride
        self.conv = nn.Conv1d(c_in, c_out, kernel, stride=stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (self.pad, 0)))


class CPCBody(nn.Module):
    """The part that InfoNCE pretrains: conv feature encoder (audio -> z, hop = product of strides) and GRU (z -> c)."""

    def __init__(self, channels, strides, kernels, context_size: int):
        super().__init__()
        layers, c_in = [], 1
        for c, s, k in zip(channels, strides, kernels):
            layers += [CausalConv(c_in, c, k, s), ChannelNorm(c), nn.ReLU()]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.gru = nn.GRU(c_in, context_size, batch_first=True)

    def forward(self, audio: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 1, T) with T a multiple of the hop -> z (B, C, L), c (B, G, L)."""
        z = self.features(audio)
        c, _ = self.gru(z.transpose(1, 2))
        return z, c.transpose(1, 2)


class CPCEncoder(Encoder):
    """CPC feature encoder + GRU context network, with per-level heads for temporal VAEs.

    ``channels`` (int or one per conv layer), ``strides``, ``kernels``: the conv feature encoder (paper: 512,
    [5, 4, 2, 2, 2], [10, 8, 4, 4, 4]; hop 160 = 10 ms at 16 kHz); ``context_size``: GRU units (paper 256).
    ``output``: ``'context'`` (c_t, which summarises the past) or ``'features'`` (z_t, local) is what the heads read.
    ``latent_size``: channels of each level's output, via a 1x1 conv head; None outputs the representation itself
    (no heads, one level: what pretraining and probes use). ``levels``/``ratio``: a ladder for hierarchical models;
    level l + 1 is a trainable causal strided conv (stride ``ratio``) over level l's representation.
    ``pretrained``: a run folder or .ckpt with a CPC encoder (from ``encoders/cpc_pretrain.gin``); its conv + GRU
    weights are loaded. ``freeze``: keep those weights fixed (no gradients, eval mode); the heads still train.
    Input: what the pipeline feeds its encoder, i.e. coded audio (16-bit mu-law grid values in the pipelines here).
    """

    def __init__(self, channels=256, strides=(5, 4, 2, 2, 2), kernels=(10, 8, 4, 4, 4), context_size: int = 256,
                 output: str = "context", latent_size: int | None = None, levels: int = 1, ratio: int = 8,
                 pretrained: str | None = None, freeze: bool = False):
        super().__init__()
        strides = check_strides(strides)
        channels = [int(c) for c in as_list(channels, len(strides), "channels")]
        kernels = [int(k) for k in as_list(kernels, len(strides), "kernels")]
        if output not in OUTPUTS:
            raise ConfigError(f"encoders.cpc.output must be one of {', '.join(OUTPUTS)}, got {output!r}",
                              fix="--bind \"encoders.cpc.output='context'\"")
        if int(levels) < 1 or int(ratio) < 1:
            raise ValueError(f"encoders.cpc: levels and ratio must be >= 1, got {levels} and {ratio}")
        self.architecture = {"channels": channels, "strides": strides, "kernels": kernels,
                             "context_size": int(context_size)}
        self.body = CPCBody(channels, strides, kernels, int(context_size))
        self.output, self.freeze, self.num_levels, self.ratio = output, bool(freeze), int(levels), int(ratio)
        self.hop = math.prod(strides)
        self.feature_size, self.context_size = channels[-1], int(context_size)
        rep = self.context_size if output == "context" else self.feature_size
        self.latent_size = rep if latent_size is None else int(latent_size)
        # level l + 1 from level l: causal strided conv, ratio frames per step (reads its own and the previous step)
        self.downs = nn.ModuleList(nn.Sequential(CausalConv(rep, rep, 2 * self.ratio, self.ratio), nn.LeakyReLU(0.2))
                                   for _ in range(self.num_levels - 1))
        self.heads = nn.ModuleList(nn.Identity() if latent_size is None else nn.Conv1d(rep, self.latent_size, 1)
                                   for _ in range(self.num_levels))
        # The GRU sees the whole past: chunked encoding would differ, so files are encoded (and scored) whole.
        self.receptive_field = None
        self.pretrained_info = load_body(pretrained, self.body, self.architecture) if pretrained else None
        self.pretrained = self.pretrained_info is not None
        if self.pretrained and self.pretrained_info.get("sample_rate"):
            self.sample_rate = int(self.pretrained_info["sample_rate"])
        elif not self.pretrained and latent_size is not None:
            log.warning("encoders.cpc.pretrained is not set: the CPC encoder is randomly initialised, not "
                        "pretrained%s (pretrain with `audiogen train --gin encoders/cpc_pretrain.gin` and bind "
                        "CPC_CHECKPOINT)", ", and frozen" if self.freeze else "")
        if self.freeze:
            self.body.requires_grad_(False)
            self.body.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze:  # Lightning calls .train() on the whole model: the frozen body must stay in eval mode
            self.body.eval()
        return self

    @property
    def level_hops(self) -> list[int]:
        return [self.hop * self.ratio**i for i in range(self.num_levels)]

    @property
    def level_sizes(self) -> list[int]:
        return [self.latent_size] * self.num_levels

    def features_and_context(self, audio: Tensor) -> tuple[Tensor, Tensor]:
        """z (B, feature_size, L) and c (B, context_size, L), L = ceil(T / hop); what InfoNCE trains on."""
        pad = (-audio.shape[-1]) % self.hop
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            return self.body(F.pad(audio, (0, pad)) if pad else audio)

    def _run(self, audio: Tensor, levels: int) -> list[Tensor]:
        n = audio.shape[-1]
        top = self.level_hops[levels - 1]
        pad = (-n) % top
        z, c = self.features_and_context(F.pad(audio, (0, pad)) if pad else audio)
        h = c if self.output == "context" else z
        outs = []
        for i in range(levels):
            if i:
                h = self.downs[i - 1](h)
            outs.append(self.heads[i](h)[..., : math.ceil(n / self.level_hops[i])])
        return outs

    def forward(self, audio: Tensor) -> Tensor:
        return self._run(audio, 1)[0]

    def encode_levels(self, audio: Tensor) -> list[Tensor]:
        return self._run(audio, self.num_levels)

    def describe(self) -> dict:
        """Recorded in the provenance of checkpoints made with this encoder (and in latent datasets)."""
        return {"architecture": self.architecture, "output": self.output, "freeze": self.freeze,
                "levels": self.num_levels, "ratio": self.ratio, "latent_size": self.latent_size,
                "pretrained": self.pretrained_info}
