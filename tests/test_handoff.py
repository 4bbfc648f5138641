"""The two-stage hand-off (encode -> latent dataset -> prior -> sample -> decode) as one checked record
(``audiogen.latents.record``): every stage reads it, and every seam that used to go wrong silently is an error or a
recorded, tested behaviour. Commands run in-process (``run_here``) on tiny models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import run_here, write_tone
from test_rave import CachedPadding1d, FakeRave, _export
from torch import nn

from audiogen.latents.record import LatentRecord

TINY_PRIOR = ["priors.diffwave.residual_layers=2", "priors.diffwave.residual_channels=8",
              "priors.diffwave.dilation_cycle=2", "priors.diffwave.sample_steps=4", "schedules.linear.steps=20",
              "train.max_steps=2", "train.batch_size=2", "train_prior.crop_frames=8", "train.log_every=1",
              "train.val_every=1"]


def _binds(items) -> list[str]:
    return [a for b in items for a in ("--bind", b)]


def _fails(*args) -> str:
    """Run a command expected to fail with a clean error (exit code 2, no traceback); returns its output."""
    import gin
    from click.testing import CliRunner

    from audiogen.cli import cli

    gin.clear_config()
    res = CliRunner().invoke(cli, [str(a) for a in args])
    gin.clear_config()
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output
    return res.output


def _prior(lat: Path, run: Path, *extra: str) -> dict:
    run_here("train-prior", "--gin", "pipelines/diffwave_latents.gin", *_binds(TINY_PRIOR), *extra, lat, "-o", run,
             "--no-progress")
    return torch.load(run / "model.ckpt", map_location="cpu", weights_only=True)


# ------------------------------------------------------------------------------------------------- end to end
def test_two_stage_on_rave_and_conv_ae(shared, tiny_run, corpus, tmp_path):
    """encode -> train-prior (no LATENT_SIZE) -> sample -> decode, with the shared RAVE export (8 dims, hop 512)
    and the Conv1d autoencoder (4 dims, hop 16), and what info/evaluate say about the prior run."""
    ls = shared / "data" / "librispeech-100-mini"
    speech = [ls / p for p in (ls / "train.txt").read_text().split()[:2]]
    rave = shared / "models" / "rave-v2small-librispeech16k.ts"
    cases = {"rave": (["--gin", "pipelines/rave_bridge.gin", "--bind", f"RAVE_MODEL='{rave}'"], speech, 8, 512),
             "conv": (["--run", tiny_run], [corpus / "train.txt"], 4, 16)}
    for name, (autoencoder, inputs, size, hop) in cases.items():
        lat, run, smp, dec = (tmp_path / f"{name}_{k}" for k in ("lat", "prior", "s", "d"))
        run_here("encode", *autoencoder, *inputs, "-o", lat, "--no-progress")
        rec = LatentRecord.from_meta(json.loads((lat / "meta.json").read_text()), lat)
        assert (rec.latent_size, rec.hop) == (size, hop) and rec.autoencoder is not None
        assert rec.autoencoder.components  # which plugin built each component
        ck = _prior(lat, run)  # no --bind LATENT_SIZE: read from the dataset
        prec = LatentRecord.from_prior({**ck, "path": str(run)})
        assert prec.latent_size == size and prec.sample_rate == rec.sample_rate and prec.normalization
        assert prec.autoencoder == rec.autoencoder
        run_here("sample", "--run", run, "-n", "2", "--seconds", "0.5", "-o", smp)
        out = json.loads((smp / "samples.json").read_text())
        assert out["hop"] == hop and "drawn at random" in out["diagnostics"]["reference_audio"]["reference"]
        y, sr = sf.read(smp / "sample_000.wav")
        assert sr == rec.sample_rate and len(y) == rec.frames(0.5) * hop and np.isfinite(y).all()
        run_here("decode", smp / "sample_001.npy", lat, "-o", dec, *(["--run", tiny_run] if name == "conv" else
                                                                      autoencoder))
        assert (dec / "sample_001.wav").exists()
        info = run_here("info", run, "--json").output
        d = json.loads(info)
        assert d["dataset"] == str(lat.resolve()) and d["sample_rate"] == rec.sample_rate and d["hop"] == hop
        assert d["autoencoder"] and d["autoencoder"] != "None"
        ev = run_here("evaluate", "--run", run, lat, "-o", tmp_path / f"{name}_ev").output
        res = json.loads((tmp_path / f"{name}_ev" / "evaluation.json").read_text())
        assert "denoising loss" in ev and len(res["levels"]) >= 4 and all(np.isfinite(r["loss"]) for r in res["levels"])


def test_latent_size_given_and_different_is_refused(tiny_run, corpus, tmp_path):
    lat = tmp_path / "lat"
    run_here("encode", "--run", tiny_run, corpus / "train.txt", "-o", lat, "--no-progress")
    err = _fails("train-prior", "--gin", "pipelines/diffwave_latents.gin", *_binds(TINY_PRIOR),
                 "--bind", "LATENT_SIZE=8", lat, "-o", tmp_path / "p")
    assert "latent size 4" in err and "configured for 8" in err


def test_evaluate_likelihood_prior_in_nats_and_bits(tiny_run, corpus, tmp_path):
    """A diagonal Gaussian prior fitted by hand has a known held-out density: evaluate must report it."""
    lat = tmp_path / "lat"
    run_here("encode", "--run", tiny_run, corpus / "train.txt", "-o", lat, "--no-progress")
    run = tmp_path / "gauss"
    run_here("train-prior", "--gin", "priors/diag_gaussian.gin", "--bind", "pipeline.prior=@priors.diag_gaussian()",
             *_binds(["train.max_steps=3", "train.batch_size=2", "train_prior.crop_frames=8", "train.log_every=1",
                      "train.val_every=1"]), lat, "-o", run, "--no-progress")
    run_here("evaluate", "--run", run, lat, "-o", tmp_path / "ev")
    res = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert "density" in res["score"] and res["bits_per_frame"] == pytest.approx(res["nats_per_frame"] / np.log(2))
    assert res["nats_per_dim"] == pytest.approx(res["nats_per_frame"] / 4)
    # the same number from the prior itself: its log_prob of the normalised data, plus log std (change of variables)
    from audiogen.latents.dataset import LatentDataset
    from audiogen.pipeline import load_pipeline

    ck = torch.load(run / "model.ckpt", map_location="cpu", weights_only=True)
    pipe, _ = load_pipeline({**ck, "path": str(run)})
    norm = ck["audiogen"]["dataset"]["normalization"]
    ds = LatentDataset(lat)
    mean, std = np.array(norm["mean"])[:, None], np.array(norm["std"])[:, None]
    nats, frames = 0.0, 0
    with torch.no_grad():
        for i in range(len(ds)):
            x = torch.from_numpy(((ds.sequence(i).T - mean) / std).astype(np.float32))[None]
            nats -= float(pipe.prior.log_prob(x).log_prob.sum())
            frames += x.shape[-1]
    assert res["nats_per_frame"] == pytest.approx(nats / frames + np.log(std).sum(), rel=1e-4)
    other = tmp_path / "other"  # latents of another autoencoder (8 dims) are refused, naming both sides
    shutil.copytree(lat, other)
    meta = json.loads((other / "meta.json").read_text())
    meta["checkpoint"]["sha256"] = "0" * 64
    (other / "meta.json").write_text(json.dumps(meta))
    err = _fails("evaluate", "--run", run, other)
    assert "different autoencoders" in err and str(other) in err
    err = _fails("train-prior", "--gin", "pipelines/diffwave_latents.gin", *_binds(TINY_PRIOR), lat, "--valid", other,
                 "-o", tmp_path / "p2")
    assert "different autoencoders" in err and "validate on latents" in err


def test_decoder_of_another_latent_size_is_refused(tiny_run, corpus, tmp_path):
    lat = tmp_path / "lat"
    run_here("encode", "--run", tiny_run, corpus / "train.txt", "-o", lat, "--no-progress")
    _prior(lat, tmp_path / "prior")
    from conftest import TINY

    wide = tmp_path / "wide"
    binds = [b for b in TINY if not b.startswith("LATENT_SIZE")] + ["LATENT_SIZE=8"]
    run_here("train", "--gin", "pipelines/conv_ae.gin", *_binds(binds), corpus / "train.txt",
             "--valid", corpus / "valid.txt", "-o", wide,
             "--no-progress")
    err = _fails("sample", "--run", tmp_path / "prior", "-n", "1", "--seconds", "0.2", "--decoder-run", wide,
                 "-o", tmp_path / "s")
    assert "latents of size 4" in err and "takes 8" in err and str(wide) in err



def test_a_prior_whose_autoencoder_moved_names_decoder_run(tiny_run, corpus, tmp_path):
    import shutil

    ae = tmp_path / "ae"
    shutil.copytree(tiny_run, ae)
    lat = tmp_path / "lat"
    run_here("encode", "--run", ae, corpus / "train.txt", "-o", lat, "--no-progress")
    _prior(lat, tmp_path / "prior")
    shutil.rmtree(ae)
    err = _fails("sample", "--run", tmp_path / "prior", "-n", "1", "--seconds", "0.2", "-o", tmp_path / "s")
    assert "no longer exists" in err and "pass --decoder-run" in err and "pass --run" not in err, err

# ------------------------------------------------------------------------------------------------- RAVE seams
class DelayRave(nn.Module):
    """A causal streaming export whose round trip is exact but late: latents are the hops of the signal, and decode
    delays its output through a cached padding by ``delay`` samples, as cached convolutions do."""

    def __init__(self, hop: int = 16, delay: int = 24):
        super().__init__()
        self.sr = 8000
        self.hop = hop
        self.delay = CachedPadding1d(1, delay)
        self.register_buffer("encode_params", torch.tensor([1, 1, hop, hop]))
        self.register_buffer("decode_params", torch.tensor([hop, hop, 1, 1]))

    @torch.jit.export
    def encode(self, x):
        return x.reshape(x.shape[0], -1, self.hop).transpose(1, 2)

    @torch.jit.export
    def decode(self, z):
        y = z.transpose(1, 2).reshape(z.shape[0], 1, -1)
        return self.delay(y)[..., : y.shape[-1]]

    def forward(self, x):
        return self.decode(self.encode(x))


def test_causal_latency_is_measured_compensated_and_recorded(tmp_path):
    from audiogen.decoders.rave import RaveDecoder
    from audiogen.encoders.rave import RaveEncoder

    path = _export(DelayRave(), tmp_path / "delay.ts")
    enc, dec = RaveEncoder(path), RaveDecoder(path)
    assert enc.rave.causal() and enc.describe()["latency"] == 24 and dec.latency == 24
    x = torch.rand(1, 1, 40 * 16) - 0.5
    with torch.no_grad():
        y = dec(enc(x))
        late = RaveDecoder(path, compensate_latency=False)(enc(x))
    assert torch.allclose(y, x, atol=1e-6)  # aligned, and the file's end is not cut
    assert torch.allclose(late[..., 24:], x[..., :-24], atol=1e-6) and not torch.allclose(late, x)
    lat = tmp_path / "lat"
    run_here("encode", "--gin", "pipelines/rave_bridge.gin", "--bind", f"RAVE_MODEL='{path}'",
             write_tone(tmp_path / "in" / "a.wav", 0.3, 8000), "-o", lat, "--no-progress")
    rec = LatentRecord.from_meta(json.loads((lat / "meta.json").read_text()), lat)
    assert rec.autoencoder.latency == 24 and "latency_samples: 24" in run_here("info", lat).output


def test_streaming_export_mean_mode_encodes_are_byte_identical(tmp_path):
    """The documented default ('auto': posterior mean) on a streaming export: two encodes give the same bytes."""
    path = _export(FakeRave(streaming=True), tmp_path / "streaming.ts")
    wavs = [write_tone(tmp_path / "in" / f"{i}.wav", 0.2 + 0.1 * i, 8000, 200.0 * (i + 1)) for i in range(2)]
    shards = []
    for k in range(2):
        out = tmp_path / f"lat{k}"
        run_here("encode", "--gin", "pipelines/rave_bridge.gin", "--bind", f"RAVE_MODEL='{path}'", *wavs, "-o", out,
                 "--no-progress")
        meta = json.loads((out / "meta.json").read_text())
        assert meta["encoder_info"]["encoding_mode"] == "mean" and not meta["encoder_info"]["fell_back_to_sampling"]
        shards.append((out / "shards" / "shard-00000.npy").read_bytes())
    assert shards[0] == shards[1]


def test_changed_rave_model_is_refused(tmp_path):
    path = tmp_path / "model.ts"
    _export(FakeRave(), path)
    lat = tmp_path / "lat"
    run_here("encode", "--gin", "pipelines/rave_bridge.gin", "--bind", f"RAVE_MODEL='{path}'",
             write_tone(tmp_path / "in" / "a.wav", 0.3, 8000), "-o", lat, "--no-progress")
    run_here("decode", lat, "-o", tmp_path / "ok")
    other = FakeRave()
    with torch.no_grad():
        other.latent_mean += 1.0
    _export(other, path)  # another model at the same path
    err = _fails("decode", lat, "-o", tmp_path / "bad")
    assert "has changed since the latents" in err and str(path) in err


# ---------------------------------------------------------------------------------------------------- plugins
def test_plugin_provenance_is_recorded_and_required(tiny_run, corpus, tmp_path):
    """A prior whose noise schedule comes from a plugin records it; without the plugin, loading says which plugin
    (and version) the run needs, not gin's unknown-name error."""
    from audiogen.plugins import get_registry
    from audiogen.schedules import LinearSchedule

    class PluginSchedule(LinearSchedule):
        """A linear schedule provided by a third-party plugin."""

    reg = get_registry()
    reg.plugins["handoff-schedules"] = "0.7"
    reg.add("schedules", "handoff_linear", PluginSchedule, "handoff-schedules")
    lat, run = tmp_path / "lat", tmp_path / "prior"
    try:
        run_here("encode", "--run", tiny_run, corpus / "train.txt", "-o", lat, "--no-progress")
        ck = _prior(lat, run, "--bind", "priors.diffwave.schedule=@schedules.handoff_linear()",
                    "--bind", "schedules.handoff_linear.steps=20")
        assert ck["audiogen"]["built_components"]["schedules.handoff_linear"] == \
            {"plugin": "handoff-schedules", "version": "0.7"}
    finally:
        reg.components["schedules"].pop("handoff_linear", None)
        reg.plugins.pop("handoff-schedules", None)
    err = _fails("sample", "--run", run, "-n", "1", "--seconds", "0.2", "-o", tmp_path / "s")
    assert "needs plugin 'handoff-schedules' (version 0.7)" in err and "schedules.handoff_linear" in err


def test_sample_reference_level_represents_the_dataset(tmp_path):
    """A corpus whose first files are quiet: the reference level for the silent-decode check comes from a seeded
    random subset (stated in samples.json), not from the first n files (which made it warn "13.7 dB louder" about
    samples at the dataset's level). An exact autoencoder (DelayRave) makes decoded levels equal source levels."""
    path = _export(DelayRave(), tmp_path / "exact.ts")
    wavs = []
    for i in range(10):
        w = tmp_path / "in" / f"{i:02d}.wav"
        write_tone(w, 0.3, 8000, 300.0 + 40 * i)
        if i < 3:  # the first three files 40 dB quieter
            x, sr = sf.read(w)
            sf.write(w, 0.01 * x, sr)
        wavs.append(w)
    lat, run = tmp_path / "lat", tmp_path / "prior"
    run_here("encode", "--gin", "pipelines/rave_bridge.gin", "--bind", f"RAVE_MODEL='{path}'", *wavs, "-o", lat,
             "--no-progress")
    _prior(lat, run)
    run_here("sample", "--run", run, "-n", "2", "--seconds", "0.2", "-o", tmp_path / "s")
    ref = json.loads((tmp_path / "s" / "samples.json").read_text())["diagnostics"]["reference_audio"]
    level = 20 * np.log10(np.sqrt(np.mean([np.mean(sf.read(w)[0] ** 2) for w in wavs])))
    assert len(ref["files"]) == 8 and "seed 0" in ref["reference"]
    assert abs(ref["rms_dbfs"] - level) < 2.0, (ref["rms_dbfs"], level)  # the first two files: about -40 dB off


def test_damaged_record_names_the_file(tiny_run, corpus, tmp_path):
    from audiogen.errors import ArtifactError

    lat = tmp_path / "lat"
    run_here("encode", "--run", tiny_run, corpus / "train.txt", "-o", lat, "--no-progress")
    meta = json.loads((lat / "meta.json").read_text())
    for key, value, what in [("hop", "512", "hop"), ("sample_rate", None, "sample_rate"),
                             ("checkpoint", {"path": 3}, "checkpoint")]:
        with pytest.raises(ArtifactError, match=what) as e:
            LatentRecord.from_meta({**meta, key: value}, lat / "meta.json")
        assert str(lat / "meta.json") in str(e.value)
    bad = tmp_path / "bad"
    shutil.copytree(lat, bad)
    (bad / "meta.json").write_text(json.dumps({**meta, "hop": 0}))
    assert "hop" in _fails("decode", bad, "-o", tmp_path / "d")


# ------------------------------------------------------------------------------------------------- review: attacks
def _meta(**over) -> dict:
    """A valid record's meta (a RAVE-encoded dataset of 2 dims), with ``over`` applied."""
    meta = {"sample_rate": 16000, "hop": 512, "latent_size": 2, "dtype": "float32",
            "stats": {"mean": [0.0, 1.0], "std": [1.0, 2.0], "min": [-3.0, -4.0], "max": [3.0, 5.0]},
            "encoder": {"name": "encoders.rave"}, "decoder": {"name": "decoders.rave"}, "checkpoint": None,
            "operative_config": "RAVE_MODEL = 'm.ts'",
            "encoder_info": {"model_path": "m.ts", "model_sha256": "a" * 64, "encoding_mode": "mean", "latency": 0}}
    meta.update(over)
    return meta


@pytest.mark.parametrize("edit, what", [
    (lambda m: m["stats"]["std"].__setitem__(0, -1.0), "std"),             # a std is never negative
    (lambda m: m["stats"]["std"].__setitem__(0, float("nan")), "std"),     # prior checkpoints skip read_meta
    (lambda m: m["stats"]["max"].__setitem__(1, -9.0), "max"),             # max below min
    (lambda m: m["encoder_info"].pop("model_sha256"), "model_sha256"),     # would skip the changed-model check
    (lambda m: m["encoder_info"].__setitem__("model_sha256", 5), "model_sha256"),
    (lambda m: m["encoder_info"].__setitem__("encoding_mode", ["mean"]), "encoding_mode"),
])
def test_edited_record_is_refused(edit, what):
    from audiogen.errors import ArtifactError

    LatentRecord.from_meta(_meta(), "lat/meta.json")  # the unedited record reads
    meta = _meta()
    edit(meta)
    with pytest.raises(ArtifactError, match=what) as e:
        LatentRecord.from_meta(meta, "lat/meta.json")
    assert "lat/meta.json" in str(e.value) and e.value.fix


def test_latents_of_another_kind_of_autoencoder_are_not_the_same_kind():
    """Same size, rate and hop, but one made by a RAVE model file and the other by a trained checkpoint (or by
    another encoder named in a configuration): check_same_kind must not let them pass as alike."""
    from audiogen.errors import ConfigError

    rave = LatentRecord.from_meta(_meta(), "rave")
    conv = LatentRecord.from_meta(_meta(encoder={"name": "encoders.conv1d"}, decoder={"name": "decoders.conv1d"},
                                        checkpoint={"path": "ae.ckpt", "sha256": "b" * 64}, encoder_info={}),
                                  "conv")
    mel = LatentRecord.from_meta(_meta(encoder={"name": "encoders.mel"}, decoder={"name": "decoders.rave"},
                                       encoder_info={}), "mel")
    rave.check_same_kind(LatentRecord.from_meta(_meta(), "rave2"), fix="x")  # alike: passes
    for a, b in ((rave, conv), (conv, rave), (rave, mel)):
        with pytest.raises(ConfigError, match="different autoencoders") as e:
            a.check_same_kind(b, fix="use the same autoencoder")
        assert a.source in str(e.value) and b.source in str(e.value)


def test_decode_checks_every_dataset_it_is_given(tiny_run, corpus, tmp_path):
    """`decode A B` picks its decoder from A's record: B, made by another autoencoder or at another hop, must be
    refused, not decoded with A's decoder (the latent size alone was checked)."""
    lat = tmp_path / "lat"
    run_here("encode", "--run", tiny_run, corpus / "train.txt", "-o", lat, "--no-progress")
    meta = json.loads((lat / "meta.json").read_text())
    for name, over, words in [("other_ae", {"checkpoint": {**meta["checkpoint"], "sha256": "0" * 64}},
                               ["different autoencoders"]),
                              ("other_hop", {"hop": meta["hop"] * 2}, ["hop"])]:
        other = tmp_path / name
        shutil.copytree(lat, other)
        (other / "meta.json").write_text(json.dumps({**meta, **over}))
        for ckpt in ([], ["--run", tiny_run]):
            err = _fails("decode", *ckpt, lat, other, "-o", tmp_path / f"d_{name}")
            assert all(w in err for w in words) and name in err, err
            assert not (tmp_path / f"d_{name}").exists()


def test_resumed_prior_run_keeps_its_dataset(tiny_run, corpus, tmp_path):
    """Re-running train-prior on a run folder resumes it: on latents of another autoencoder (same size) it would
    continue training on data the checkpoint does not describe, with other normalisation statistics."""
    lat, run = tmp_path / "lat", tmp_path / "prior"
    run_here("encode", "--run", tiny_run, corpus / "train.txt", "-o", lat, "--no-progress")
    _prior(lat, run)
    other = tmp_path / "other"
    shutil.copytree(lat, other)
    meta = json.loads((other / "meta.json").read_text())
    meta["checkpoint"]["sha256"] = "0" * 64
    (other / "meta.json").write_text(json.dumps(meta))
    before = (run / "checkpoints" / "last.ckpt").read_bytes()
    err = _fails("train-prior", "--bind", "train.max_steps=3", other, "-o", run, "--no-progress")
    assert "different autoencoders" in err and str(other) in err and "last.ckpt" in err
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == before
    run_here("train-prior", "--bind", "train.max_steps=3", lat, "-o", run, "--no-progress")  # its own data: resumes
    ck = torch.load(run / "model.ckpt", map_location="cpu", weights_only=True)
    assert ck["global_step"] == 3 and ck["audiogen"]["dataset"]["path"] == str(lat.resolve())


def test_decoder_at_another_sample_rate_is_refused(tiny_run, corpus, tmp_path):
    """A Conv1d decoder has no sample_rate of its own (its pipeline's audio.sample_rate is): latents made at
    another rate (same size and hop) were decoded and written at the wrong speed."""
    lat = tmp_path / "lat"
    run_here("encode", "--run", tiny_run, corpus / "train.txt", "-o", lat, "--no-progress")
    meta = json.loads((lat / "meta.json").read_text())
    other = tmp_path / "other_rate"
    shutil.copytree(lat, other)
    rate = meta["sample_rate"] * 2
    (other / "meta.json").write_text(json.dumps({**meta, "sample_rate": rate, "checkpoint": None}))
    err = _fails("decode", "--run", tiny_run, other, "-o", tmp_path / "d")
    assert "sample_rate" in err and str(rate) in err and str(meta["sample_rate"]) in err


def test_record_whose_config_names_another_model_file_is_refused(tmp_path):
    """The sha256 check reads the model path under encoder_info; the decoder is built from the operative config.
    A meta.json whose config names another model file (edited, or a dataset copied with its config changed) would
    decode with that model while the check passed on the recorded one."""
    path, other = tmp_path / "model.ts", tmp_path / "other.ts"
    _export(FakeRave(), path)
    changed = FakeRave()
    with torch.no_grad():
        changed.latent_mean += 1.0
    _export(changed, other)
    lat = tmp_path / "lat"
    run_here("encode", "--gin", "pipelines/rave_bridge.gin", "--bind", f"RAVE_MODEL='{path}'",
             write_tone(tmp_path / "in" / "a.wav", 0.3, 8000), "-o", lat, "--no-progress")
    meta = json.loads((lat / "meta.json").read_text())
    meta["operative_config"] = meta["operative_config"].replace(str(path), str(other))
    (lat / "meta.json").write_text(json.dumps(meta))
    from audiogen.rave import torchscript as rave_model

    loaded = {k[0] for k in rave_model._CACHE}
    err = _fails("decode", lat, "-o", tmp_path / "bad")
    assert str(other) in err and str(path) in err
    # refused before it was loaded: loading TorchScript runs it (its __setstate__, for one)
    assert str(other.resolve()) not in {k[0] for k in rave_model._CACHE} - loaded
    del meta["encoder_info"]  # no model file recorded at all: nothing was checked
    (lat / "meta.json").write_text(json.dumps(meta))
    err = _fails("decode", lat, "-o", tmp_path / "bad")
    assert "records no model file" in err and str(other) in err
    assert str(other.resolve()) not in {k[0] for k in rave_model._CACHE} - loaded


def test_latents_of_unknown_origin_are_not_taken_as_alike():
    """A .npy folder records no autoencoder, rate or hop: evaluating (or validating) a prior trained on encoded
    latents with it would compare nothing and pass."""
    from audiogen.errors import ConfigError

    rave = LatentRecord.from_meta(_meta(), "rave")
    npy = LatentRecord.from_meta({"latent_size": 2, "sample_rate": None, "hop": None,
                                  "stats": _meta()["stats"]}, "seqs")
    npy.check_same_kind(LatentRecord.from_meta({**_meta(), "sample_rate": None, "hop": None, "encoder": None,
                                                "operative_config": "", "encoder_info": {}}, "seqs2"), fix="x")
    for a, b in ((rave, npy), (npy, rave)):
        with pytest.raises(ConfigError, match="records no autoencoder") as e:
            a.check_same_kind(b, fix="encode them with `audiogen encode`")
        assert "seqs" in str(e.value) and "rave" in str(e.value)


def test_check_decoder_compares_hop():
    from types import SimpleNamespace

    from audiogen.errors import ConfigError

    rec = LatentRecord.from_meta(_meta(), "rave")
    rec.check_decoder(SimpleNamespace(latent_size=2, hop=512), "ok", 16000)
    with pytest.raises(ConfigError, match="hop 512.*hop 256"):
        rec.check_decoder(SimpleNamespace(latent_size=2, hop=256), "ae", 16000)
    with pytest.raises(ConfigError, match="sample_rate 16000.*sample_rate 8000"):
        rec.check_decoder(SimpleNamespace(latent_size=2, hop=512), "ae", 8000)


def test_explore_stats_from_latents_of_another_autoencoder_is_refused(tiny_run, corpus, tmp_path):
    """--stats-from sets the trajectory's origin and units: the statistics of another autoencoder's latents (same
    size, hop and rate) are in other units."""
    lat = tmp_path / "lat"
    run_here("encode", "--run", tiny_run, corpus / "train.txt", "-o", lat, "--no-progress")
    other = tmp_path / "other"
    shutil.copytree(lat, other)
    meta = json.loads((other / "meta.json").read_text())
    meta["checkpoint"]["sha256"] = "0" * 64
    (other / "meta.json").write_text(json.dumps(meta))
    args = ["explore", "trajectory", "--run", tiny_run, "--shape", "line", "--seconds", "0.1"]
    run_here(*args, "--stats-from", lat, "-o", tmp_path / "ok")
    err = _fails(*args, "--stats-from", other, "-o", tmp_path / "bad")
    assert "other" in err and "sha256" in err and str(tiny_run) in err
