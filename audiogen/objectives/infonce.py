"""InfoNCE (van den Oord et al. 2018, CPC): predict the features k = 1..K frames ahead from the context now, and
score the true future against negatives by a softmax.

For every valid frame t and step k, ``W_k c_t`` is scored by dot product against the positive ``z_{t+k}`` and
``negatives`` other frames; the loss is the cross-entropy of picking the positive (log(negatives + 1) for a model
that cannot tell them apart), averaged over (t, k) per step and then over steps.

Negative sampling (one set of indices per (sequence b, frame t), shared by all K steps, as in CPC_audio):
``round(negatives * within)`` frames are drawn uniformly from the valid frames of sequence b itself (hard negatives:
same speaker and recording), the rest uniformly from the valid frames of the batch's other sequences (b has none
if the batch holds one sequence: then all are drawn from b). Padded frames (mask False) are never drawn. A negative
from b that is the positive of step k (frame t + k) is removed from step k's softmax, so a candidate set never holds
the positive twice. Positions (t, k) count only if both t and t + k are valid.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from audiogen.errors import ConfigError

CHUNK = 512  # frames scored at once: bounds the gathered negatives when validating on whole files


def sample_negatives(mask: Tensor, n: int, within: float, generator: torch.Generator | None = None) -> Tensor:
    """Indices into the batch's frames flattened as b * L + t, (B, L, n): see the module doc. ``mask`` (B, L) bool."""
    B, L = mask.shape
    n_in = int(round(n * within))
    flat = torch.nonzero(mask.reshape(-1)).flatten()  # valid frames of the batch, sorted by (b, t)
    counts = mask.sum(1)
    starts = torch.cumsum(counts, 0) - counts  # where each sequence's frames begin in `flat`
    out = torch.zeros(B, L, n, dtype=torch.long, device=mask.device)
    for b in range(B):
        nb, others = int(counts[b]), len(flat) - int(counts[b])
        if nb == 0:
            continue  # no valid position in b: nothing of it is scored
        k_in = n if others == 0 else n_in
        own = torch.randint(nb, (L, k_in), generator=generator, device=mask.device) + starts[b]
        u = torch.randint(max(others, 1), (L, n - k_in), generator=generator, device=mask.device)
        u = u + (u >= starts[b]).long() * nb  # skip b's own block: other sequences only
        out[b] = flat[torch.cat([own, u], 1)]
    return out


class InfoNCE(nn.Module):
    """CPC's contrastive objective with bilinear predictors ``W_k`` (k = 1..``prediction_steps``), trained together
    with the encoder (they live in the pipeline, so in its checkpoint). ``feature_size``/``context_size`` must match
    the encoder's z and c channels (shared gin macros). Logs ``loss``, ``acc`` (mean over steps) and ``acc_k{k}``:
    the fraction of positions where the positive scores above every negative."""

    contrastive = True

    def __init__(self, prediction_steps: int = 12, negatives: int = 16, within: float = 0.5,
                 feature_size: int = 256, context_size: int = 256):
        super().__init__()
        if int(prediction_steps) < 1 or int(negatives) < 1 or not 0.0 <= float(within) <= 1.0:
            raise ConfigError(f"infonce needs prediction_steps >= 1, negatives >= 1 and 0 <= within <= 1, got "
                              f"{prediction_steps}, {negatives}, {within}")
        self.steps, self.negatives, self.within = int(prediction_steps), int(negatives), float(within)
        self.feature_size, self.context_size = int(feature_size), int(context_size)
        self.predictors = nn.Linear(self.context_size, self.steps * self.feature_size, bias=False)  # all W_k at once
        nn.init.zeros_(self.predictors.weight)  # all candidates score alike: training starts at chance, log(N + 1)

    def check_encoder(self, encoder) -> None:
        if encoder is None or not hasattr(encoder, "features_and_context"):
            raise ConfigError(f"infonce trains an encoder with features and context (encoders.cpc), got "
                              f"{type(encoder).__name__}", fix="pipeline.encoder = @encoders.cpc()")
        got = (encoder.feature_size, encoder.context_size)
        if got != (self.feature_size, self.context_size):
            raise ConfigError(f"infonce feature_size/context_size {self.feature_size}/{self.context_size} != the "
                              f"encoder's {got[0]}/{got[1]}",
                              fix="bind both from the same macros (CPC_CHANNELS, CPC_CONTEXT in encoders/cpc.gin)")

    def forward(self, encoder, audio: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """``audio`` (B, 1, L * hop) as the encoder sees it; ``mask`` (B, L) True on frames without padding."""
        z, c = encoder.features_and_context(audio)
        return self.score(z, c, mask, sample_negatives(mask, self.negatives, self.within))

    def score(self, z: Tensor, c: Tensor, mask: Tensor, negatives: Tensor) -> dict[str, Tensor]:
        """Loss and accuracies for features z (B, C, L), context c (B, G, L), mask (B, L), negative indices
        (B, L, N) into the flattened frames (``sample_negatives``)."""
        B, C, L = z.shape
        K = self.steps
        zt = z.transpose(1, 2)  # (B, L, C)
        flat = rearrange(z, "b c l -> (b l) c")  # frame b * L + l: the indices sample_negatives draws
        t_all = torch.arange(L, device=z.device)
        own = negatives - (torch.arange(B, device=z.device) * L)[:, None, None]  # frame index if drawn from b
        nll, hits, count = [[] for _ in range(K)], [[] for _ in range(K)], [[] for _ in range(K)]
        for a in range(0, L, CHUNK):  # chunks of positions t
            t = t_all[a: a + CHUNK]
            pred = self.predictors(c[:, :, t].transpose(1, 2)).view(B, len(t), K, C)  # W_k c_t
            neg_scores = torch.einsum("btkc,btnc->btkn", pred, flat[negatives[:, t]])
            for k in range(1, K + 1):
                tk = (t + k).clamp(max=L - 1)
                valid = mask[:, t] & mask[:, tk] & (t + k < L)  # (B, T)
                pos = (pred[:, :, k - 1] * zt[:, tk]).sum(-1)  # (B, T)
                neg = neg_scores[:, :, k - 1].masked_fill(own[:, t] == tk[None, :, None], float("-inf"))
                loss = torch.logsumexp(torch.cat([pos[..., None], neg], -1), -1) - pos  # -log softmax(positive)
                nll[k - 1].append(loss[valid].sum())
                hits[k - 1].append((pos > neg.amax(-1))[valid].sum())
                count[k - 1].append(valid.sum())
        nll, hits, count = ([torch.stack(v).sum() for v in x] for x in (nll, hits, count))
        scored = [k for k in range(K) if count[k] > 0]
        if not scored:
            raise ConfigError(f"no frame has a valid frame 1..{K} steps ahead: sequences of {L} frames are too short "
                              f"for infonce.prediction_steps={K}",
                              fix="raise train.crop_seconds (at least prediction_steps + 1 frames) or lower "
                                  "infonce.prediction_steps")
        acc = {k: hits[k].float() / count[k] for k in scored}
        logs = {"loss": torch.stack([nll[k] / count[k] for k in scored]).mean(),
                "acc": torch.stack(list(acc.values())).mean()}
        logs.update({f"acc_k{k + 1}": v for k, v in acc.items()})
        return logs
