"""CPC encoder, InfoNCE pretraining through `audiogen train`, and the pretrained encoder inside a Clockwork VAE."""

from __future__ import annotations

import csv
import math
import shutil

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import run_in_process

from audiogen import config
from audiogen.artifacts import load_checkpoint, sha256_file, strip_prefix
from audiogen.contracts import check_decoder, check_encoder
from audiogen.decoders.dense import DenseDecoder
from audiogen.encoders.cpc import CPCEncoder
from audiogen.errors import ConfigError
from audiogen.objectives.infonce import InfoNCE, sample_negatives
from audiogen.pipeline import build_pipeline, load_pipeline

SIZE = ["CPC_CHANNELS=12", "CPC_CONTEXT=12"]
PRETRAIN = SIZE + ["PREDICTION_STEPS=4", "infonce.negatives=8", "train.max_steps=50", "train.batch_size=4",
                   "train.crop_seconds=0.32", "train.lr=3e-3", "train.log_every=1", "train.val_every=50"]
CW = SIZE + ["DZ=4", "HIDDEN=8", "DECODER_CHANNELS=8", "COMPONENTS=2", "DMOL_PARAMS=6", "train.max_steps=3",
             "train.batch_size=2", "train.crop_seconds=0.16", "train.val_every=3", "train.log_every=1"]


def binds(items) -> list[str]:
    return [a for b in items for a in ("--bind", b)]


@pytest.fixture(scope="module")
def glides(tmp_path_factory):
    """A slow swell (2-6 Hz) under a tone gliding in pitch, different in every file: the next frames are predictable
    from the past, and frames of other files or other moments look different, so negatives can be told apart."""
    d = tmp_path_factory.mktemp("glides")
    rng = np.random.default_rng(0)
    sr, names = 16000, []
    for i in range(8):
        t = np.arange(sr) / sr
        f = rng.uniform(150, 600) * np.exp(rng.uniform(-1.2, 1.2) * t)
        x = 0.4 * np.sin(2 * np.pi * rng.uniform(2, 6) * t + rng.uniform(0, 2 * np.pi)) \
            + 0.2 * np.sin(2 * np.pi * np.cumsum(f) / sr)
        sf.write(d / f"g{i}.wav", x.astype(np.float32), sr, subtype="PCM_16")
        names.append(str(d / f"g{i}.wav"))
    (d / "train.txt").write_text("\n".join(names[:6]) + "\n")
    (d / "valid.txt").write_text("\n".join(names[6:]) + "\n")
    return d


@pytest.fixture(scope="module")
def pretrained(glides, tmp_path_factory):
    run = tmp_path_factory.mktemp("cpc")
    run_in_process("train", "--gin", "encoders/cpc_pretrain.gin", *binds(PRETRAIN), glides / "train.txt",
                   "--valid", glides / "valid.txt", "-o", run, "--no-progress")
    return run


def metrics(run):
    with open(run / "logs" / "version_0" / "metrics.csv") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------------------------------------------ encoder
def test_encoder_contract_hop_and_levels():
    enc = CPCEncoder(channels=8, context_size=6)  # pretraining form: one level, the context itself
    assert (enc.hop, enc.latent_size, enc.level_hops) == (160, 6, [160])
    check_encoder(enc, num_samples=160 * 9 + 7)
    ladder = CPCEncoder(channels=[4, 4, 8, 8, 8], context_size=6, latent_size=5, levels=2, ratio=4)
    assert ladder.level_hops == [160, 640] and ladder.level_sizes == [5, 5]
    check_encoder(ladder, num_samples=640 * 3 + 11)
    z, c = ladder.features_and_context(torch.zeros(2, 1, 1600))
    assert z.shape == (2, 8, 10) and c.shape == (2, 6, 10)
    feats = CPCEncoder(channels=8, context_size=6, output="features", latent_size=3)
    assert check_encoder(feats).shape[1] == 3
    with pytest.raises(ConfigError, match="output"):
        CPCEncoder(output="both")


def test_frames_only_read_their_own_past():
    """Features and context of frame t depend on samples up to the end of frame t, never on later ones (so the
    padding at the end of a batch leaves every real frame unchanged)."""
    torch.manual_seed(0)
    enc = CPCEncoder(channels=8, context_size=6).eval()
    x = torch.rand(1, 1, 1600) - 0.5
    x2 = x.clone()
    x2[..., 800:] = 0.9  # frames 5.. change
    with torch.no_grad():
        (z, c), (z2, c2) = enc.features_and_context(x), enc.features_and_context(x2)
    assert torch.equal(z[..., :5], z2[..., :5]) and torch.equal(c[..., :5], c2[..., :5])
    assert not torch.allclose(c[..., 5:], c2[..., 5:])
    assert enc.receptive_field is None  # the GRU reads the whole past: files are encoded whole


# ------------------------------------------------------------------------------------------------------ InfoNCE
def direct_infonce(obj, z, c, mask, negatives, exclude=True):
    """The definition, one (b, t, k) at a time."""
    B, C, L = z.shape
    flat = z.transpose(1, 2).reshape(B * L, C)
    W = obj.predictors.weight.view(obj.steps, C, -1)
    losses, accs = [], []
    for k in range(1, obj.steps + 1):
        ls, hit = [], []
        for b in range(B):
            for t in range(L - k):
                if not (mask[b, t] and mask[b, t + k]):
                    continue
                pred = W[k - 1] @ c[b, :, t]
                negs = [flat[j] for j in negatives[b, t].tolist() if not exclude or j != b * L + t + k]
                logits = torch.stack([pred @ z[b, :, t + k]] + [pred @ n for n in negs])
                ls.append(-torch.log_softmax(logits, 0)[0])
                hit.append(float(logits[0] > logits[1:].max()))
        if ls:
            losses.append(torch.stack(ls).mean())
            accs.append(sum(hit) / len(hit))
    return torch.stack(losses).mean(), accs


def test_infonce_equals_the_definition_and_excludes_positives_and_padding():
    torch.manual_seed(0)
    B, C, G, L, K = 2, 3, 2, 6, 2
    obj = InfoNCE(prediction_steps=K, negatives=3, feature_size=C, context_size=G)
    z, c = torch.randn(B, C, L), torch.randn(B, G, L)
    mask = torch.ones(B, L, dtype=torch.bool)
    mask[1, 4:] = False  # sequence 1 is padded after 4 frames
    neg = sample_negatives(mask, 3, 0.67, torch.Generator().manual_seed(1))
    neg[0, 0] = torch.tensor([1, 2, 7])  # frame 1 and 2 of b=0: the positives of t=0 for k=1 and k=2
    out = obj.score(z, c, mask, neg)
    loss, accs = direct_infonce(obj, z, c, mask, neg)
    assert torch.allclose(out["loss"], loss, atol=1e-6)
    assert [round(float(out[f"acc_k{k}"]), 6) for k in (1, 2)] == [round(a, 6) for a in accs]
    assert math.isclose(float(out["acc"]), sum(accs) / 2, rel_tol=1e-6)
    assert not torch.allclose(direct_infonce(obj, z, c, mask, neg, exclude=False)[0], loss)  # the exclusion matters
    # padded frames never matter: changing them changes nothing
    z3 = z.clone()
    z3[1, :, 4:] = 100.0
    assert torch.allclose(obj.score(z3, c, mask, neg)["loss"], out["loss"])
    out["loss"].backward()
    assert obj.predictors.weight.grad is not None


def test_infonce_is_log_n_plus_1_when_candidates_are_alike():
    obj = InfoNCE(prediction_steps=3, negatives=7, feature_size=4, context_size=4)
    mask = torch.ones(3, 20, dtype=torch.bool)
    z = torch.ones(3, 4, 20)  # every frame the same: the positive cannot be told apart
    # negatives from other sequences only: no collision with the positive is removed, all 8 candidates count
    out = obj.score(z, torch.randn(3, 4, 20), mask, sample_negatives(mask, 7, 0.0))
    assert math.isclose(out["loss"].item(), math.log(8), rel_tol=1e-5)
    assert float(out["acc"]) == 0.0  # ties are not hits


def test_negatives_come_from_valid_frames_within_and_across_sequences():
    g = torch.Generator().manual_seed(0)
    B, L, N = 4, 30, 10
    mask = torch.ones(B, L, dtype=torch.bool)
    mask[1, 12:] = False
    mask[3, 5:] = False
    for _ in range(20):
        idx = sample_negatives(mask, N, 0.4, g)
        b_of, t_of = idx // L, idx % L
        assert bool(mask[b_of, t_of].all())  # never a padded frame
        own = b_of == torch.arange(B)[:, None, None]
        assert bool(own[..., :4].all()) and not bool(own[..., 4:].any())  # 4 within, 6 across
    single = sample_negatives(mask[:1], N, 0.4, g)
    assert bool((single // L == 0).all())  # one sequence: all from itself
    spread = sample_negatives(mask, 2000, 0.5, g)[0, 0]
    assert set((spread % L)[:1000].tolist()) == set(range(L))  # uniform over the own sequence's frames


def test_infonce_sizes_must_match_the_encoder():
    config.parse(["encoders/cpc_pretrain.gin"], ["CPC_CHANNELS=8", "infonce.feature_size=9"])
    with pytest.raises(ConfigError, match="feature_size"):
        build_pipeline()


# --------------------------------------------------------------------------------------------------- pretraining
def test_pretraining_through_the_cli_learns_and_loads(pretrained):
    rows = metrics(pretrained)
    acc = [float(r["train/acc"]) for r in rows if r.get("train/acc")]
    assert len(acc) >= 45
    first, last = np.mean(acc[:5]), np.mean(acc[-10:])
    assert last > first + 0.15 and last > 2 / 9, (first, last)  # chance is 1/9
    assert all(r.get("train/acc_k4") for r in rows if r.get("train/acc"))
    valid = [float(r["valid/acc"]) for r in rows if r.get("valid/acc")]
    assert valid and valid[-1] > 2 / 9
    assert (pretrained / "model.ckpt").is_file() and (pretrained / "checkpoints" / "last.ckpt").is_file()
    # the probe recipe: the encoder-only pipeline, fed coded audio, gives the context at hop 160
    pipe, ckpt = load_pipeline(pretrained / "model.ckpt")
    assert pipe.decoder is None and pipe.coding.name == "mulaw16"
    assert ckpt["audiogen"]["encoder_info"]["pretrained"] is None
    x = torch.rand(2, 1, 3200) - 0.5
    with torch.no_grad():
        [context] = pipe.encoder.encode_levels(pipe.coding.encode(x).float())
    assert context.shape == (2, 12, 20)
    assert set(ckpt["state_dict"]) >= {"pipeline.objective.predictors.weight", "pipeline.encoder.body.gru.weight_hh_l0"}


# ------------------------------------------------------------------------------------------ inside the CW-VAE
def _body(state: dict) -> dict:
    return strip_prefix(state, "pipeline.encoder.body.")


def _initial_pipeline(extra):
    """The pipeline exactly as `audiogen train` built it before the first step (same config, same seed)."""
    config.parse(["pipelines/cwvae_cpc_speech.gin"], CW + extra)
    L.seed_everything(0, verbose=False)
    return build_pipeline()


@pytest.mark.parametrize("freeze", [True, False])
def test_cwvae_trains_on_the_pretrained_encoder_frozen_or_fine_tuned(freeze, pretrained, glides, tmp_path):
    ckpt_file = tmp_path / "cpc.ckpt"  # a copy, deleted once the CW-VAE is trained
    shutil.copy(pretrained / "model.ckpt", ckpt_file)
    extra = [f"CPC_CHECKPOINT='{ckpt_file}'", f"CPC_FREEZE={freeze}"]
    run_in_process("train", "--gin", "pipelines/cwvae_cpc_speech.gin", *binds(CW + extra), glides / "train.txt",
                   "-o", tmp_path / "run", "--no-progress")
    trained = load_checkpoint(tmp_path / "run")
    source = _body(load_checkpoint(ckpt_file)["state_dict"])
    body = _body(trained["state_dict"])
    same = [torch.equal(body[k], source[k]) for k in source]
    assert all(same) if freeze else not any(same)
    init = _initial_pipeline(extra).state_dict()
    heads = [k for k in init if k.startswith("encoder.heads.") or k.startswith("encoder.downs.")]
    assert heads and all(not torch.equal(init[k], trained["state_dict"]["pipeline." + k]) for k in heads)
    info = trained["audiogen"]["encoder_info"]
    assert info["freeze"] is freeze and info["pretrained"]["sha256"] == sha256_file(ckpt_file)
    assert info["pretrained"]["path"] == str(ckpt_file.resolve()) and info["pretrained"]["coding"] == "mulaw16"
    if freeze:
        ckpt_file.unlink()  # the CW-VAE checkpoint holds the encoder's weights: it loads without the file
        pipe, _ = load_pipeline(tmp_path / "run")
        assert torch.equal(pipe.encoder.body.gru.weight_hh_l0, source["gru.weight_hh_l0"])
        config.parse(["pipelines/cwvae_cpc_speech.gin"], CW + extra)
        with pytest.raises(ConfigError, match=f"{ckpt_file}.*does not exist"):
            build_pipeline()  # training again does need it


def test_wrong_checkpoints_are_refused_naming_the_file(pretrained, tiny_run):
    config.parse(["pipelines/cwvae_cpc_speech.gin"], CW + [f"CPC_CHECKPOINT='{tiny_run}'"])
    with pytest.raises(ConfigError, match=f"{tiny_run / 'model.ckpt'} is not a CPC checkpoint.*encoders.conv1d"):
        build_pipeline()
    config.parse(["pipelines/cwvae_cpc_speech.gin"], CW + [f"CPC_CHECKPOINT='{pretrained}'", "CPC_CHANNELS=16"])
    with pytest.raises(ConfigError, match=r"(?s)other sizes \(channels=\[12, 12, 12, 12, 12\] there.*"
                                          r"--bind 'encoders.cpc.channels=\[12, 12, 12, 12, 12\]'"):
        build_pipeline()


def test_dense_decoder_alternative_builds_and_trains():
    dense = ["pipeline.decoder = @decoders.dense()", "decoders.dense.hop = 160", "decoders.dense.latent_size = %HIDDEN",
             "decoders.dense.out_channels = %DMOL_PARAMS", "decoders.dense.hidden = [16]"]
    config.parse(["pipelines/cwvae_cpc_speech.gin"], CW + dense)
    pipe = build_pipeline()
    assert isinstance(pipe.decoder, DenseDecoder) and pipe.decoder.hop == 160
    check_decoder(pipe.decoder)
    x = torch.rand(2, 1, 2560) - 0.5
    out = pipe.training_loss(x, torch.ones(2, 2560, dtype=torch.bool), 0)
    out["loss"].backward()
    assert math.isfinite(float(out["loss"])) and pipe.decoder.net[0].weight.grad is not None
    assert all(p.grad is None for p in pipe.encoder.body.parameters())  # frozen by default
