"""``audiogen export``: nn~ TorchScript files of autoencoder and prior runs, loaded back with torch.jit.load alone.

The real RAVE export in shared/models is the reference for the nn~ conventions; the scripted prior steps are
compared with the Python priors under the same seed; streaming block by block is compared with one long call."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import gin
import numpy as np
import pytest
import torch
from conftest import run_here

from audiogen import config
from audiogen.export_steps import DiffWaveGenerator, RecurrentGenerator, generator_for
from audiogen.pipeline import build_pipeline

warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.jit.script/save are marked deprecated

SEQ = {"vrnn": ["priors.sequence.model=@priors.vrnn()", "priors.vrnn.input_size=8", "priors.vrnn.latent_size=4",
                "priors.vrnn.hidden_size=8", "priors.vrnn.context_size=8"],
       "srnn": ["priors.sequence.model=@priors.srnn()", "priors.srnn.input_size=8", "priors.srnn.latent_size=4",
                "priors.srnn.hidden_size=8", "priors.srnn.context_size=8"],
       "lstm": ["priors.sequence.model=@priors.lstm()", "priors.lstm.input_size=8", "priors.lstm.hidden_size=8",
                "priors.lstm.context_size=8", "priors.lstm.num_layers=2"]}
SEQ["srnn_mixture"] = SEQ["srnn"] + ["priors.sequence.distributions=[@distributions.gaussian_mixture()]",
                                     "distributions.gaussian_mixture.num_components=3"]
TINY_DIFFWAVE = ["priors.diffwave.residual_layers=3", "priors.diffwave.residual_channels=8",
                 "priors.diffwave.dilation_cycle=2", "schedules.linear.steps=20"]


def _prior(gin_file: str, binds: list[str], latent: int = 3):
    gin.clear_config()
    config.parse([gin_file], [f"LATENT_SIZE={latent}", *binds])
    prior = build_pipeline().prior.eval()
    torch.manual_seed(1)
    with torch.no_grad():  # trained-looking weights: the zero-initialised output layers would hide mistakes
        for p in prior.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return prior


@pytest.mark.parametrize("kind", sorted(SEQ))
def test_recurrent_step_equals_the_python_prior_and_streams(kind):
    prior = _prior("pipelines/vrnn_latents.gin", SEQ[kind])
    gen = torch.jit.script(RecurrentGenerator(prior))
    torch.manual_seed(3)
    want = prior.sample(2, 12)
    torch.manual_seed(3)
    got = gen(torch.zeros(2, 3, 12), False, 1.0)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    gen.reset(2)
    torch.manual_seed(4)
    x = torch.randn(2, 3, 12)
    whole = gen(x, True, 1.0)
    for listen in (True, False):  # blocks of 1, 5 and 6 frames equal one call of 12, listening or running free
        gen.reset(2)
        torch.manual_seed(5)
        whole = gen(x, listen, 1.0)
        gen.reset(2)
        torch.manual_seed(5)
        parts = torch.cat([gen(x[..., a:b], listen, 1.0) for a, b in ((0, 1), (1, 6), (6, 12))], -1)
        torch.testing.assert_close(parts, whole, rtol=0, atol=0)
    gen.reset(2)
    torch.manual_seed(5)
    cold = gen(x, True, 0.0)  # temperature 0: no noise, so the same frames whatever the seed
    gen.reset(2)
    torch.manual_seed(6)
    torch.testing.assert_close(gen(x, True, 0.0), cold)


def test_listening_follows_the_input():
    prior = _prior("pipelines/vrnn_latents.gin", SEQ["lstm"])
    gen = torch.jit.script(RecurrentGenerator(prior))
    x = torch.randn(1, 3, 8)
    a = gen(x, True, 0.0)
    gen.reset(1)
    b = gen(x * 3, True, 0.0)
    assert torch.allclose(a[..., 0], b[..., 0]) and not torch.allclose(a[..., 1:], b[..., 1:])


@pytest.mark.parametrize("flatten", [False, True])
def test_diffwave_window_equals_ddim_and_streams(flatten):
    prior = _prior("pipelines/diffwave_latents.gin", TINY_DIFFWAVE + [f"priors.diffwave.flatten={flatten}",
                                                                     "priors.diffwave.batchnorm=True"])
    gen = torch.jit.script(DiffWaveGenerator(prior, window=8, context=2, steps=4))
    torch.manual_seed(7)
    want = prior.sample(1, 8, sampler="ddim", steps=4)
    torch.manual_seed(7)
    got = gen(torch.zeros(1, 3, 8), False, 1.0)  # the first window has no context: plain DDIM
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    x = torch.zeros(1, 3, 20)
    gen.reset(1)
    torch.manual_seed(8)
    whole = gen(x, False, 1.0)
    gen.reset(1)
    torch.manual_seed(8)
    parts = torch.cat([gen(x[..., a:b], False, 1.0) for a, b in ((0, 3), (3, 4), (4, 13), (13, 20))], -1)
    torch.testing.assert_close(parts, whole, rtol=0, atol=0)
    # each later window continues the last frames of the one before: its context is exactly them
    gen.reset(1)
    torch.manual_seed(9)
    first = gen.window_from(torch.zeros(1, 3, 0), 1, 1.0)
    nxt = gen.window_from(first[..., -2:], 1, 1.0)
    assert nxt.shape[-1] == 6 and torch.isfinite(nxt).all()


def test_unsupported_priors_are_refused():
    from audiogen.errors import ConfigError

    gin.clear_config()
    config.parse(["pipelines/vrnn_latents.gin"], ["LATENT_SIZE=3", "priors.sequence.dims=[2, 1]",
                                                  "priors.sequence.distributions=[@distributions.gaussian(), "
                                                  "@distributions.bernoulli()]"] + SEQ["vrnn"][1:])
    with pytest.raises(ConfigError, match="one Gaussian"):
        generator_for(build_pipeline().prior, 8, 2, 4)
    prior = _prior("pipelines/diffwave_latents.gin", TINY_DIFFWAVE)
    with pytest.raises(ConfigError, match="context-frames"):
        generator_for(prior, 8, 8, 4)


def test_autoencoder_export(tiny_run, corpus, tmp_path):
    out = tmp_path / "ae.ts"
    run_here("export", "--run", tiny_run, "-o", out)
    m = torch.jit.load(str(out))
    assert m.get_methods() == ["encode", "decode", "forward"]
    hop = int(m.encode_params[3])
    assert m.encode_params.tolist() == [1, 1, 4, hop] and m.decode_params.tolist() == [4, hop, 1, 1]
    rec = json.loads(m.audiogen_export)
    assert rec["kind"] == "autoencoder" and rec["checkpoint"].endswith("model.ckpt")
    from audiogen.pipeline import load_pipeline

    pipe, _ = load_pipeline(tiny_run)
    x = torch.randn(2, 1, 37 * hop + 5) * 0.1  # not a multiple of the hop
    torch.testing.assert_close(m.encode(x), pipe.encoder(x), rtol=1e-5, atol=1e-6)
    z = pipe.encoder(x)
    torch.testing.assert_close(m.decode(z), pipe.decoder(z), rtol=1e-5, atol=1e-6)
    assert m.forward(x).shape == (2, 1, 38 * hop)
    from click.testing import CliRunner

    from audiogen.cli import cli

    (tmp_path / "a_file").write_text("")
    res = CliRunner().invoke(cli, ["export", "--run", str(tiny_run), "-o", str(tmp_path / "a_file" / "m.ts")])
    assert res.exit_code == 2 and "a_file is a file, not a folder" in res.output and "Traceback" not in res.output


# ---------------------------------------------------------------------------------------------- on RAVE latents
@pytest.fixture(scope="module")
def rave_latents(shared, tmp_path_factory):
    model = sorted((shared / "models").glob("*.ts"))[0]
    ls = shared / "data" / "librispeech-100-mini"
    files = [ls / p for p in (ls / "train.txt").read_text().split()[:3]]
    out = tmp_path_factory.mktemp("export") / "latents"
    run_here("encode", "--gin", "pipelines/rave_bridge.gin", "--bind", f"RAVE_MODEL='{model}'", *files, "-o", out,
             "--no-progress")
    return model, out


def _train(latents, tmp_path, gin_file, binds):
    run = tmp_path / "prior"
    run_here("train-prior", "--gin", gin_file, *[a for b in binds for a in ("--bind", b)], latents, "-o", run,
             "--no-progress")
    return run


def _nn_tilde_interface(m) -> dict:
    """What nn~ reads, per method and attribute."""
    methods = list(m.get_methods())
    attrs = list(m.get_attributes())
    return {"methods": {n: (getattr(m, f"{n}_params").dtype, getattr(m, f"{n}_params").shape,
                            len(getattr(m, f"{n}_input_labels")), len(getattr(m, f"{n}_output_labels")))
                        for n in methods},
            "attributes": {a: (getattr(m, f"{a}_params").tolist(), type(getattr(m, a)).__name__,
                               callable(getattr(m, f"get_{a}")), callable(getattr(m, f"set_{a}")))
                           for a in attrs if a != "none"},
            "first_attribute": attrs[0], "sr": type(m.sr).__name__}


def test_vrnn_prior_on_rave_latents_exports_streams_and_decodes(rave_latents, tmp_path):
    model, latents = rave_latents
    meta = json.loads((latents / "meta.json").read_text())
    D, hop = meta["latent_size"], meta["hop"]
    run = _train(latents, tmp_path, "pipelines/vrnn_latents.gin",
                 [f"LATENT_SIZE={D}", "HIDDEN=16", "DZ=4", "train.max_steps=3", "train.batch_size=2",
                  "train_prior.crop_frames=16"])
    out = tmp_path / "prior.ts"
    run_here("export", "--run", run, "-o", out)
    m = torch.jit.load(str(out))
    rave = torch.jit.load(str(model))
    # the nn~ conventions of the real RAVE export, compared programmatically
    mine, ref = _nn_tilde_interface(m), _nn_tilde_interface(rave)
    assert m.get_methods() == ["encode", "decode", "forward", "prior"]
    for name in ("encode", "decode", "forward"):
        assert mine["methods"][name] == ref["methods"][name]
        assert getattr(m, f"{name}_params").tolist() == getattr(rave, f"{name}_params").tolist()
    assert m.prior_params.tolist() == [D, hop, D, hop]
    assert mine["first_attribute"] == ref["first_attribute"] and mine["sr"] == ref["sr"] and m.sr == rave.sr
    assert {a: v[2:] for a, v in mine["attributes"].items()} == {"temperature": (True, True),
                                                                  "listen": (True, True), "reset": (True, True)}
    # attributes stored and exposed as RAVE's are: a [0.] params buffer, a one-element tuple, get_/set_ methods
    assert {v for v in map(repr, mine["attributes"].values())} == {v for v in map(repr, ref["attributes"].values())}

    # generating through the file equals `audiogen sample`'s latents (same seed), on RAVE's own scale
    frames = 24
    run_here("sample", "--run", run, "-n", "2", "--frames", str(frames), "--seed", "0", "-o", tmp_path / "s")
    want = np.stack([np.load(tmp_path / "s" / f"sample_{i:03d}.npy") for i in range(2)])
    m.set_listen(False)
    m.set_reset(True)
    torch.manual_seed(0)
    got = m.prior(torch.zeros(2, D, frames))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4)
    # streaming: blocks of 4 frames equal one long call, listening to real RAVE latents or running free
    from audiogen.latents.dataset import LatentDataset

    z = LatentDataset(latents)[0]["latents"][None, :, :frames]
    for listen in (True, False):
        m.set_listen(listen)
        m.set_reset(True)
        torch.manual_seed(1)
        whole = m.prior(z)
        m.set_reset(True)
        torch.manual_seed(1)
        parts = torch.cat([m.prior(z[..., i:i + 4]) for i in range(0, frames, 4)], -1)
        torch.testing.assert_close(parts, whole, rtol=0, atol=0)
    assert m.get_reset() is False  # reset is a one-shot
    # decoding through the file: RAVE's decode of the prior's frames, level of `audiogen sample`'s audio
    import soundfile as sf

    torch.manual_seed(2)
    audio = m.decode(got)
    assert audio.shape == (2, 1, frames * hop) and torch.isfinite(audio).all()
    ref_audio = np.concatenate([sf.read(tmp_path / "s" / f"sample_{i:03d}.wav")[0] for i in range(2)])
    db = 20 * np.log10(float(audio.pow(2).mean().sqrt()) + 1e-12)
    ref_db = 20 * np.log10(float(np.sqrt(np.mean(ref_audio ** 2))) + 1e-12)
    assert abs(db - ref_db) < 3.0, (db, ref_db)
    # torch alone: a fresh interpreter that imports nothing of audiogen streams and decodes the file
    code = (f"import sys, torch; m = torch.jit.load({str(out)!r}); m.set_listen(False); "
            f"y = torch.cat([m.prior(torch.zeros(1, {D}, 4)) for _ in range(3)], -1); a = m.decode(y); "
            "assert a.shape[-1] == 12 * int(m.decode_params[1]) and bool(torch.isfinite(a).all()); "
            "assert not [k for k in sys.modules if k.startswith('audiogen')]; print('ok')")
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
    # the RAVE file must be the one that encoded the dataset (its sha256 is in the dataset's meta)
    ck = torch.load(run / "model.ckpt", weights_only=True)
    ck["audiogen"]["dataset"]["meta"]["encoder_info"]["model_sha256"] = "0" * 64
    torch.save(ck, tmp_path / "changed.ckpt")
    from audiogen.errors import ConfigError
    from audiogen.export import build_export

    with pytest.raises(ConfigError, match="has changed since the latents"):
        build_export(tmp_path / "changed.ckpt")
    # encode and forward are the RAVE model's
    x = torch.randn(1, 1, 4 * hop) * 0.1
    torch.manual_seed(3)
    a = m.encode(x)
    torch.manual_seed(3)
    torch.testing.assert_close(a, rave.encode(x))


def test_diffwave_prior_on_rave_latents(rave_latents, tmp_path):
    model, latents = rave_latents
    D = json.loads((latents / "meta.json").read_text())["latent_size"]
    run = _train(latents, tmp_path, "pipelines/diffwave_latents.gin",
                 [f"LATENT_SIZE={D}", *TINY_DIFFWAVE, "train.max_steps=3", "train.batch_size=2",
                  "train_prior.crop_frames=16"])
    out = tmp_path / "dw.ts"
    res = run_here("export", "--run", run, "-o", out, "--ddim-steps", "3")
    assert "prior export" in res.output
    m = torch.jit.load(str(out))
    rec = json.loads(m.audiogen_export)
    assert rec["window_frames"] == 16 and rec["context_frames"] == 4 and rec["ddim_steps"] == 3
    m.set_listen(False)
    torch.manual_seed(0)
    whole = m.prior(torch.zeros(1, D, 40))
    m.set_reset(True)
    torch.manual_seed(0)
    parts = torch.cat([m.prior(torch.zeros(1, D, 8)) for _ in range(5)], -1)
    torch.testing.assert_close(parts, whole, rtol=0, atol=0)
    assert m.decode(whole).shape[-1] == 40 * m.decode_params[1]


def test_refusals_are_one_message(corpus, tmp_path):
    """A temporal VAE run is not exportable, and an unwritable output is an error naming it (exit code 2)."""
    from click.testing import CliRunner

    from audiogen.cli import cli

    run = tmp_path / "vae"
    tiny = ["DZ=4", "HIDDEN=8", "ENCODER_CHANNELS=8", "DECODER_CHANNELS=8", "COMPONENTS=2", "DMOL_PARAMS=6",
            "CONTEXT=8", "DECODER_HIDDEN=[8]", "train.max_steps=1", "train.batch_size=2", "train.crop_seconds=0.2",
            "listen.enabled=False"]
    run_here("train", "--gin", "pipelines/vrnn_speech.gin", *[a for b in tiny for a in ("--bind", b)],
             corpus / "train.txt", "-o", run, "--no-progress")
    res = CliRunner().invoke(cli, ["export", "--run", str(run), "-o", str(tmp_path / "x.ts")])
    assert res.exit_code == 2 and "temporal VAE" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x.ts").exists()


def test_prior_on_a_trained_autoencoder_embeds_its_traced_coders(tiny_run, corpus, tmp_path):
    """A prior over a Conv1d autoencoder's latents: the export carries that autoencoder, traced, and the prior."""
    lat = tmp_path / "lat"
    run_here("encode", "--run", tiny_run, corpus / "train.txt", "-o", lat, "--no-progress")
    run = _train(lat, tmp_path, "pipelines/vrnn_latents.gin",
                 ["LATENT_SIZE=4", "HIDDEN=8", "DZ=4", "train.max_steps=2", "train.batch_size=2",
                  "train_prior.crop_frames=16", "listen.enabled=False"])
    out = tmp_path / "p.ts"
    run_here("export", "--run", run, "-o", out)
    m = torch.jit.load(str(out))
    from audiogen.pipeline import load_pipeline

    pipe, _ = load_pipeline(tiny_run)
    hop = pipe.hop
    assert m.get_methods() == ["encode", "decode", "forward", "prior"]
    assert m.prior_params.tolist() == [4, hop, 4, hop] and m.encode_params.tolist() == [1, 1, 4, hop]
    x = torch.randn(1, 1, 20 * hop) * 0.1
    z = m.encode(x)
    torch.testing.assert_close(z, pipe.encoder(x), rtol=1e-5, atol=1e-6)
    m.set_temperature(0.0)
    y = m.prior(z)
    assert y.shape == z.shape and m.decode(y).shape == (1, 1, 20 * hop)
    assert m.get_temperature() == 0.0 and m.set_temperature(-1.0) == -1  # refused, as msprior refuses it
    rec = json.loads(m.audiogen_export)
    assert rec["kind"] == "prior" and rec["normalized"] and rec["window_frames"] is None
