"""``audiogen evaluate``: exact likelihood bounds of whole files in bits per frame (the paper's eq. 11).

bits per frame = (sum over files of -log2 p(x)) / (sum over files of their number of audio samples), where p is
the model's probability mass of the audio quantised by the pipeline's input coding (e.g. 16-bit mu-law): every
sample is one frame. For a VAE, -log p(x) is replaced by the negative ELBO (an upper bound, "<=" in tables) or by
the importance-weighted bound with K samples.

Long files are scored in segments with the latent model's state carried across. The encoder sees real audio
margins around each segment and the decoder runs with a lag of its receptive field, so segmenting changes
nothing but memory (tested against whole-file scoring). Encoders without a finite receptive field
(``receptive_field = None``, e.g. CPC's GRU context) are run on whole files.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from audiogen.errors import ConfigError

LN2 = math.log(2)


@dataclass(frozen=True)
class Margins:
    encoder: int  # samples of context on each side of a segment (a multiple of the slowest hop)
    decoder: int  # level-1 frames of context on each side for the decoder


@torch.no_grad()
def probe_margins(pipe, probes: int = 2) -> Margins:
    """Measure receptive fields by perturbing one input position and seeing which outputs change."""
    enc, dec, top = pipe.encoder, pipe.decoder, pipe.frame_hop
    g = torch.Generator().manual_seed(0)
    n = 16 * top
    reach = 0
    for _ in range(probes):
        x = torch.rand(1, 1, n, generator=g) * 0.2 - 0.1
        p = n // 2 + 1
        x2 = x.clone()
        x2[..., p] += 0.5
        for a, b, hop in zip(enc.encode_levels(x), enc.encode_levels(x2), enc.level_hops):
            changed = torch.nonzero((a - b).abs().amax(1)[0] > 0).flatten()
            if len(changed):
                reach = max(reach, p - int(changed[0]) * hop, (int(changed[-1]) + 1) * hop - p)
    encoder = math.ceil((reach + 1) / top) * top
    frames = 64
    z = torch.randn(1, dec.latent_size, frames, generator=g)
    z2 = z.clone()
    z2[..., frames // 2] += 1.0
    changed = torch.nonzero((dec(z) - dec(z2)).abs().amax(1)[0] > 0).flatten()
    lo, hi = int(changed[0]) // dec.hop, int(changed[-1]) // dec.hop
    decoder = max(frames // 2 - lo, hi - frames // 2) + 1
    if decoder >= frames // 2 - 1 or encoder >= n // 2:
        raise ConfigError("the encoder's or decoder's receptive field is too large to probe (e.g. a global norm "
                          "such as encoders.tasnet.norm = 'gln' makes every frame depend on the whole file), so "
                          "files cannot be scored in segments", fix="evaluate whole files: --segment-seconds 0")
    return Margins(encoder, decoder)


@torch.no_grad()
def score_file(pipe, x: torch.Tensor, segment: int | None, margins: Margins | None, chains: int = 1,
               sample: bool = True) -> dict:
    """Score one waveform (T,) in [-1, 1] with ``chains`` posterior samples; nats, summed over the file."""
    T = x.shape[-1]
    H, hop = pipe.frame_hop, pipe.hop
    Tp = T + (-T) % H
    y = pipe.coding.encode(torch.nn.functional.pad(x, (0, Tp - T))).to(torch.float32)
    y = y.view(1, 1, Tp).expand(chains, 1, Tp)
    if not segment or segment >= Tp or margins is None:
        segment, margins = Tp, Margins(0, 0)
    segment = max(H, segment // H * H)
    L = pipe.latent_model
    hops = pipe.encoder.level_hops
    n_levels = len(L.latent_sizes)  # 0 for deterministic autoregressive models: their score is exact
    totals = {"rec": torch.zeros(chains), "kl": [torch.zeros(chains) for _ in range(n_levels)],
              "log_ratio": torch.zeros(chains)}
    post_sum = [torch.zeros(d) for d in L.latent_sizes]
    post_sq = [torch.zeros(d) for d in L.latent_sizes]
    post_n = [0] * n_levels
    total_frames = Tp // hop
    buf, buf_start, decoded = None, 0, 0
    state = None
    for a in range(0, Tp, segment):
        b = min(a + segment, Tp)
        s0, s1 = max(0, a - margins.encoder), min(Tp, b + margins.encoder)
        levels = pipe.encoder.encode_levels(y[..., s0:s1])
        enc = [lv[..., (a - s0) // h: (b - s0) // h] for lv, h in zip(levels, hops)]
        out = L(enc, state=state, sample=sample)
        state = out.state
        for i, h in enumerate(hops[:n_levels]):
            valid = (torch.arange(a // h, b // h) * h < T).float()  # steps that start inside the file
            totals["kl"][i] += (out.kl[i] * valid).sum((1, 2))
            if out.log_ratio is not None:
                totals["log_ratio"] += (out.log_ratio[i] * valid).sum((1, 2))
            m = out.posterior_mean[i][0][:, valid.bool()]
            post_sum[i] += m.sum(1)
            post_sq[i] += m.pow(2).sum(1)
            post_n[i] += m.shape[1]
        buf = out.context if buf is None else torch.cat([buf, out.context], -1)
        upto = total_frames if b == Tp else b // hop - margins.decoder
        if upto > decoded:
            c0 = max(buf_start, decoded - margins.decoder)
            c1 = min(buf_start + buf.shape[-1], upto + margins.decoder)
            params = pipe.decoder(buf[..., c0 - buf_start: c1 - buf_start])
            params = params[..., (decoded - c0) * hop: (upto - c0) * hop]
            target = y[..., decoded * hop: upto * hop]
            lp = pipe.distribution.log_prob(params, target)[:, 0]
            valid = (torch.arange(decoded * hop, upto * hop) < T).float()
            totals["rec"] += (lp * valid).sum(1)
            decoded = upto
            keep = max(0, decoded - margins.decoder) - buf_start
            buf, buf_start = buf[..., keep:], buf_start + keep
    return {"samples": T, **totals, "post_sum": post_sum, "post_sq": post_sq, "post_n": post_n}


def flac_bits_per_sample(paths: list[Path], sample_rate: int) -> tuple[float | None, str]:
    """FLAC -8 bits per sample of the same audio, frames only; (None, reason) when it cannot be measured."""
    exe = shutil.which("flac")
    if exe:
        from audiogen.audio.io import load_audio, save_audio

        total_bits, total = 0, 0
        with tempfile.TemporaryDirectory() as tmp:
            for p in paths:
                x = load_audio(p, sample_rate)
                wav = save_audio(Path(tmp) / "x.wav", x, sample_rate)
                proc = subprocess.run([exe, "-8", "--silent", "--no-padding", "--no-seektable", "-c", str(wav)],
                                      capture_output=True)
                if proc.returncode != 0:
                    return None, f"flac failed on {p}: {proc.stderr.decode(errors='replace').strip()[:200]}"
                enc = proc.stdout
                total_bits += 8 * (len(enc) - _flac_header_bytes(enc))
                total += len(x)
        return total_bits / total, "flac -8 on the evaluated audio (frames only)"
    return None, "the `flac` command is not installed, so no FLAC figure (apt-get install flac)"


def _flac_header_bytes(data: bytes) -> int:
    """Bytes before the first audio frame: 'fLaC' plus the metadata blocks."""
    pos, last = 4, False
    while not last and pos + 4 <= len(data):
        last = bool(data[pos] & 0x80)
        pos += 4 + int.from_bytes(data[pos + 1: pos + 4], "big")
    return pos


def score_files(pipe, files: list[Path], sample_rate: int, segment_seconds: float = 10.0, iw_samples: int = 1,
             seed: int = 0, progress: bool = True, channels: str = "downmix", resample: bool = True) -> dict:
    """Bits per frame over ``files`` (whole files), with per-level KL and active units; see the module doc."""
    from tqdm.auto import tqdm

    from audiogen.audio.io import load_audio

    if pipe.latent_model is None or pipe.distribution is None:
        raise ConfigError("evaluate scores likelihoods: the pipeline needs a latent model and a distribution",
                          fix="evaluate a temporal VAE checkpoint (e.g. trained with pipelines/cwvae_l2_speech.gin)")
    torch.manual_seed(seed)
    segment = int(segment_seconds * sample_rate) if segment_seconds else None
    if segment and getattr(pipe.encoder, "receptive_field", 0) is None:
        segment = None  # an encoder that reads the whole past (CPC's GRU): segments would change the score
        segment_seconds = 0
    margins = probe_margins(pipe) if segment else None
    sizes = pipe.latent_model.latent_sizes
    n_levels = len(sizes)
    agg = {"nelbo": 0.0, "rec": 0.0, "kl": [0.0] * n_levels, "iw": 0.0, "samples": 0}
    post = [[torch.zeros(d), torch.zeros(d), 0] for d in sizes]
    per_file = []
    for f in tqdm(files, desc="evaluate", disable=not progress, leave=False):
        x = torch.from_numpy(load_audio(f, sample_rate, channels=channels, resample=resample))
        r = score_file(pipe, x, segment, margins, chains=max(1, iw_samples))
        kl = [k.mean().item() for k in r["kl"]]
        rec = r["rec"].mean().item()
        nelbo = -rec + sum(kl)
        iw = None
        if iw_samples > 1:
            logw = r["rec"] - r["log_ratio"]
            iw = -(torch.logsumexp(logw, 0) - math.log(iw_samples)).item()
            agg["iw"] += iw
        agg["nelbo"] += nelbo
        agg["rec"] += -rec
        agg["kl"] = [a + k for a, k in zip(agg["kl"], kl)]
        agg["samples"] += r["samples"]
        for p, s, q, cnt in zip(post, r["post_sum"], r["post_sq"], r["post_n"]):
            p[0] += s
            p[1] += q
            p[2] += cnt
        row = {"file": str(f), "samples": r["samples"], "bits_per_frame": nelbo / LN2 / r["samples"]}
        if iw is not None:
            row["iw_bits_per_frame"] = iw / LN2 / r["samples"]
        per_file.append(row)
    n = agg["samples"]
    active = []
    for s, q, cnt in post:
        mean = s / max(cnt, 1)
        var = q / max(cnt, 1) - mean.pow(2)
        active.append(int((var > 0.01).sum()))
    coding = pipe.coding
    result = {
        "quantisation": f"{coding.name} ({coding.num_bins} levels) at {sample_rate} Hz; one frame = one audio sample",
        "files": len(files), "frames": n, "seconds": n / sample_rate,
        "bits_per_frame": agg["nelbo"] / LN2 / n,
        "bound": _bound_text(getattr(pipe.distribution, "is_discrete", True), exact=n_levels == 0),
        "reconstruction_bits_per_frame": agg["rec"] / LN2 / n,
        "kl_bits_per_frame": {f"z{i + 1}": k / LN2 / n for i, k in enumerate(agg["kl"])},
        "active_units": {f"z{i + 1}": {"active": a, "of": len(p[0])} for i, (a, p) in enumerate(zip(active, post))},
        "uniform_bits_per_frame": float(math.log2(coding.num_bins)),
        "segment_seconds": segment_seconds, "margins": margins.__dict__ if margins else None,
    }
    if iw_samples > 1:
        result["iw_samples"] = iw_samples
        result["iw_bits_per_frame"] = agg["iw"] / LN2 / n
    result["dead_levels"] = [k for k, v in result["active_units"].items() if v["active"] == 0]
    result["per_file"] = per_file
    return result


def _bound_text(discrete: bool, exact: bool) -> str:
    what = "exact -log2 p (no latent variables)" if exact else "negative ELBO (upper bound on -log2 p)"
    if discrete:
        return what
    return (f"{what.split(' (')[0]} on a density: not a probability of the quantised audio, not comparable with "
            f"the uniform or FLAC figures")


def flac_from_manifest(files: list[Path]) -> tuple[float | None, str]:
    """FLAC -8 frame bits from a manifest.csv beside the files (as ../shared ships), if every file is listed."""
    import csv

    rows = {}
    for folder in {p.parent for p in files} | {p.parent.parent for p in files}:
        m = folder / "manifest.csv"
        if m.exists():
            with open(m) as fh:
                for r in csv.DictReader(fh):
                    if r.get("flac8_frame_bytes"):
                        rows[r["relpath"]] = (int(r["flac8_frame_bytes"]), int(r["frames"]))
    if files and all(p.name in rows for p in files):
        bits = sum(rows[p.name][0] * 8 for p in files)
        return bits / sum(rows[p.name][1] for p in files), "manifest.csv beside the data (flac -8, frames only)"
    return None, "no manifest.csv lists these files"


def markdown(result: dict, flac: tuple[float | None, str]) -> str:
    discrete = "density" not in result["bound"]
    exact = result["bound"].startswith("exact")
    label = "-log2 p (exact)" if exact else "negative ELBO (<= -log2 p)"
    lines = ["| metric | bits per frame |", "|---|---|",
             f"| {label} | {result['bits_per_frame']:.3f} |" if discrete else
             f"| {label} on a density (not comparable) | {result['bits_per_frame']:.3f} |"]
    if "iw_bits_per_frame" in result:
        lines.append(f"| importance-weighted bound, K={result['iw_samples']} | {result['iw_bits_per_frame']:.3f} |")
    lines.append(f"| reconstruction | {result['reconstruction_bits_per_frame']:.3f} |")
    for k, v in result["kl_bits_per_frame"].items():
        au = result["active_units"][k]
        lines.append(f"| KL {k} ({au['active']}/{au['of']} active units) | {v:.3f} |")
    value, source = flac
    if discrete:
        lines.append(f"| uniform over {result['quantisation'].split(' ')[0]} | "
                     f"{result['uniform_bits_per_frame']:.3f} |")
        lines.append(f"| FLAC -8 | {value:.3f} |" if value is not None else f"| FLAC -8 | n/a ({source}) |")
    head = (f"{result['files']} files, {result['seconds']:.1f} s, {result['frames']} frames; "
            f"quantisation: {result['quantisation']}.")
    if value is not None:
        head += f" FLAC source: {source}."
    if result["dead_levels"]:
        head += f" Dead levels: {', '.join(result['dead_levels'])}."
    return head + "\n\n" + "\n".join(lines) + "\n"


def evaluate(run: Path, data: Sequence[str], out: Path | None = None, gin_files: Sequence[str] = (),
             bindings: Sequence[str] = (), iw_samples: int = 1, segment_seconds: float = 10.0, seed: int = 0,
             quality_samples: int | None = None, overwrite: bool = False, progress: bool = True) -> tuple[dict, str]:
    """``audiogen evaluate``: the result and its markdown table, written to ``out`` (evaluation.json and .md) when
    given. A prior run (``train-prior``) is scored on one latent dataset (``evaluate_prior``); a pipeline on audio."""
    from audiogen.artifacts import atomic_write_json, atomic_write_text, check_output, load_checkpoint
    from audiogen.audio.io import expand_inputs
    from audiogen.pipeline import load_pipeline
    from audiogen.settings import audio_settings

    if out is not None:
        check_output(out, overwrite, data, runs=[run], markers=("evaluation.json",))
    ck = load_checkpoint(run)
    if ck["audiogen"].get("kind") == "prior":
        from audiogen.workflows import evaluate_prior

        if len(data) != 1 or gin_files or bindings:
            raise ConfigError(f"{run} is a prior: evaluate it on one latent dataset, without --gin/--bind",
                              fix=f"audiogen evaluate --run {run} LATENTS")
        result = evaluate_prior.evaluate_prior(ck, data[0], seed=seed, quality_samples=(
            evaluate_prior.QUALITY_SAMPLES if quality_samples is None else quality_samples))
        table = evaluate_prior.markdown(result)
    else:
        files = expand_inputs(list(data))
        pipe, ck = load_pipeline(ck, gin_files, bindings)
        audio = audio_settings()
        sr = audio.sample_rate
        result = score_files(pipe, files, sr, segment_seconds=segment_seconds, iw_samples=iw_samples, seed=seed,
                             progress=progress, channels=audio.channels, resample=audio.resample)
        flac = flac_bits_per_sample(files, sr)
        if flac[0] is None:
            manifest = flac_from_manifest(files)
            flac = manifest if manifest[0] is not None else (None, f"{flac[1]}; {manifest[1]}")
        result["flac_bits_per_sample"], result["flac_source"] = flac
        result["checkpoint"], result["global_step"] = ck["path"], ck["audiogen"].get("global_step")
        table = markdown(result, flac)
    if out is not None:
        atomic_write_json(out / "evaluation.json", result)
        atomic_write_text(out / "evaluation.md", table)
    return result, table
