"""``audiogen evaluate --run PRIOR_RUN LATENTS``: held-out score of a prior on a latent dataset.

Likelihood priors: the negative log density of the latents (or its bound), in nats and bits per frame and per
dimension. These are *densities* of continuous latents (they can be negative), of the latents as stored: a prior
trained on normalised latents has log|std| per dimension added back (the change of variables), so priors trained
with and without normalisation compare. Diffusion priors (no likelihood): the denoising loss at evenly spaced noise
levels, each sequence scored at every level with the same noise (seeded).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from audiogen import quality
from audiogen.latents.dataset import collate_latents
from audiogen.latents.record import LatentRecord
from audiogen.latents.sequences import open_sequences

log = logging.getLogger("audiogen")
LN2 = math.log(2)
LEVELS = 8  # noise levels at which a diffusion prior's denoising loss is reported
QUALITY_SAMPLES = 8  # sequences sampled for the Fréchet distances (bounded cost; 0 leaves them out)
QUALITY_FRAMES = 64  # frames per sampled sequence and per held-out crop


@torch.no_grad()
def evaluate_prior(ck: dict, data: str, seed: int = 0, batch_size: int = 8, levels: int = LEVELS,
                   quality_samples: int = QUALITY_SAMPLES) -> dict:
    from audiogen.pipeline import load_pipeline

    rec = LatentRecord.from_prior(ck)
    pipe, _ = load_pipeline(ck)
    prior = pipe.prior
    ds = open_sequences(data, normalize=rec.normalization is not None)
    held = ds.record
    rec.check_same_kind(held, fix=f"evaluate on latents encoded like the prior's training data ({rec.dataset_path})")
    if rec.normalization is not None:  # scored with the training statistics, as the prior saw its data
        ds.mean = np.asarray(rec.normalization["mean"], np.float32)
        ds.std = np.asarray(rec.normalization["std"], np.float32)
    batches = [collate_latents([ds[i] for i in range(s, min(s + batch_size, len(ds)))])
               for s in range(0, len(ds), batch_size)]
    c = rec.latent_size
    frames = int(sum(int(b["mask"].sum()) for b in batches))
    out = {"kind": "prior evaluation", "checkpoint": ck["path"], "global_step": ck["audiogen"].get("global_step"),
           "data": str(data), "files": len(ds), "frames": frames, "latent_size": c,
           "prior": (ck["audiogen"].get("components") or {}).get("prior"), "trained_on": rec.dataset_path,
           "normalized": rec.normalization is not None, "seed": seed}
    if quality_samples > 0:
        with torch.random.fork_rng(devices=[]):  # the scores below draw from the global generator as they did
            out["quality"] = sample_quality(prior, rec, data, quality_samples, QUALITY_FRAMES, seed)
    if prior.has_likelihood:
        nats, is_bound = 0.0, False
        for b in batches:
            o = prior.log_prob(b["latents"], b["mask"])
            nats -= float(o.log_prob.sum())
            is_bound = is_bound or o.is_bound
        if rec.normalization is not None:  # density of x = density of (x - m) / s divided by prod(s), per frame
            nats += frames * float(np.log(ds.std.astype(np.float64)).sum())
        per_frame = nats / max(frames, 1)
        out.update(score="negative log density of the latents" + (" (upper bound)" if is_bound else ""),
                   is_bound=is_bound, nats_per_frame=per_frame, bits_per_frame=per_frame / LN2,
                   nats_per_dim=per_frame / c, bits_per_dim=per_frame / c / LN2)
        return out
    steps = prior.num_steps
    ts = sorted({round(k * (steps - 1) / max(levels - 1, 1)) for k in range(levels)})
    rows = []
    for t in ts:
        g = torch.Generator().manual_seed(seed)
        total, count = 0.0, 0
        for b in batches:
            x = b["latents"]
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
                loss = prior.training_loss(x, b["mask"], t=torch.full((x.shape[0],), t, dtype=torch.long))
            total += float(loss["loss"]) * int(b["mask"].sum())
            count += int(b["mask"].sum())
        rows.append({"step": t, "loss": total / max(count, 1)})
    out.update(score=f"denoising loss ({getattr(prior, 'loss', 'l2')}) per noise level (diffusion: no likelihood)",
               levels=rows, mean_loss=float(np.mean([r["loss"] for r in rows])))
    return out


def sample_quality(prior, rec: LatentRecord, data: str, n: int, frames: int, seed: int) -> dict:
    """Fréchet distances of n sampled sequences against two halves of n held-out crops each (one for the distance,
    one for the floor): latent windows always, log-mel of decoded audio when the record names a decodable
    autoencoder. Cost: n samples and 2n crops decoded."""
    from audiogen.workflows.sample import audio_diagnostics, generate, latent_diagnostics

    dec = None
    if rec.decodable:
        from audiogen.errors import ArtifactError, ConfigError
        from audiogen.latents.decode import decoder_pipeline

        try:
            dec = decoder_pipeline(rec, None).decoder
        except (ArtifactError, ConfigError) as exc:  # moved or changed since: the likelihood still stands
            log.warning("no log-mel distance (the autoencoder does not load): %s", str(exc).splitlines()[0])
    z = generate(prior, rec, n, frames, seed)
    ds = open_sequences(data)
    held = quality.held_out(ds, n, frames, seed, dec)
    audio = None if dec is None else [dec(torch.from_numpy(zi)[None])[0, 0].numpy() for zi in z]
    out = {**quality.measure(z, held, audio, rec.sample_rate, seed),
           "latents": latent_diagnostics(z, ds.record.stats),  # per-dimension moments vs the held-out data's
           "latents_vs_training": latent_diagnostics(z, rec.stats)}  # and vs the data the prior learned
    if audio is not None:
        out.update(audio=audio_diagnostics(audio, rec.sample_rate),
                   reference_audio=audio_diagnostics(held["halves"][0]["audio"], rec.sample_rate))
    return {**out, "compared_with": f"{n} sampled sequences of {frames} frames vs two halves of {held['crops']} "
                                    f"crops of {frames} frames from disjoint files of {data} (drawn at random, seed "
                                    f"{seed}; averaged over {len(held['splits'])} splits of those files)", "files": held["files"]}


def markdown(result: dict) -> str:
    head = f"prior {result['checkpoint']} on {result['data']} ({result['files']} files, {result['frames']} frames)"
    tail = ["", quality.summary(result["quality"])] if "quality" in result else []
    if "levels" in result:
        lines = [head, "", "| noise step | denoising loss |", "| --- | --- |"]
        lines += [f"| {r['step']} | {r['loss']:.4f} |" for r in result["levels"]]
        return "\n".join(lines + [f"| mean | {result['mean_loss']:.4f} |"] + tail)
    le = "<= " if result["is_bound"] else ""
    return "\n".join([head, "", f"{result['score']}:", "| nats/frame | bits/frame | nats/dim | bits/dim |",
                      "| --- | --- | --- | --- |",
                      f"| {le}{result['nats_per_frame']:.4f} | {le}{result['bits_per_frame']:.4f} | "
                      f"{le}{result['nats_per_dim']:.4f} | {le}{result['bits_per_dim']:.4f} |", *tail])
