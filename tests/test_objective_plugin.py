"""Objectives and annealing schedules are plugin kinds like the others: a plugin adds one of each through the hooks
the built-ins use, and both train through the real pipeline; breaking their contracts is caught."""

from __future__ import annotations

import csv

import pytest
import torch
from conftest import run_in_process, tiny_binds
from test_cwvae import tiny_cw_binds
from test_plugins import fake_plugin, load

from audiogen import config, contracts, hookspecs
from audiogen.contracts import ContractError, check_anneal, check_objective
from audiogen.plugins import KINDS, get_registry, reserved_names

# The whole plugin module (docs/plugins.md quotes it).
PLUGIN = '''
import torch

from audiogen import hookimpl


class WaveL1(torch.nn.Module):
    """L1 between waveforms; padded samples (mask False) cost nothing."""

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = weight

    def forward(self, recon, target, mask=None):
        err = (recon - target).abs()
        m = torch.ones_like(err) if mask is None else mask.unsqueeze(1).to(err.dtype)
        l1 = (err * m).sum() / m.sum().clamp_min(1)
        return {"loss": self.weight * l1, "wave_l1": l1}


class Ramp:
    """0 at step 0, then linearly to ``end`` at ``steps`` (a KL warm-up)."""

    def __init__(self, end: float = 1.0, steps: int = 100):
        self.end, self.steps = float(end), max(1, int(steps))

    def __call__(self, step: int) -> float:
        return self.end * min(1.0, step / self.steps)


@hookimpl
def register_objectives(register):
    register("wave_l1", WaveL1)  # gin: pipeline.objective = @objectives.wave_l1()


@hookimpl
def register_anneal(register):
    register("ramp", Ramp)  # gin: elbo.beta = @anneal.ramp()
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    site = fake_plugin(tmp_path / "site", "audiogen-losses", "losses", PLUGIN)
    return load(monkeypatch, site, "losses", use=True)


def test_kinds_come_from_the_hookspecs():
    assert KINDS == tuple(n.removeprefix("register_") for n in vars(hookspecs)
                          if n.startswith("register_") and n.removeprefix("register_") in hookspecs.KINDS)
    assert {"objectives", "anneal"} <= set(KINDS)
    reg = get_registry()
    assert reg.names("objectives") == ["elbo", "infonce", "spectral_loss"]
    assert reg.names("anneal") == ["constant", "cosine", "linear"]
    assert all(reg.components[k][n].plugin == "audiogen" for k in ("objectives", "anneal") for n in reg.names(k))


def test_reserved_names_are_own_settings_and_builtin_objectives():
    assert {"audio", "train", "train_prior", "encode", "listen", "pipeline", "elbo", "infonce",
            "spectral_loss"} == set(reserved_names())
    assert "elbo" not in reserved_names("objectives")  # there the precedence rule keeps the built-in


def test_a_plugin_encoder_named_like_a_builtin_objective_is_refused(tmp_path, monkeypatch):
    code = PLUGIN.replace('register("wave_l1", WaveL1)', 'register("wave_l1", WaveL1)\n\n\n'
                          '@hookimpl\ndef register_encoders(register):\n    register("elbo", WaveL1)')
    reg = load(monkeypatch, fake_plugin(tmp_path / "site", "audiogen-bad", "bad", code), "bad")
    [f] = reg.failures
    assert f.plugin == "bad" and "'elbo' is reserved" in f.error


def test_builtin_objectives_and_schedules_pass_their_checkers():
    from audiogen.encoders.cpc import CPCEncoder
    from audiogen.objectives import anneal
    from audiogen.objectives.elbo import ELBO
    from audiogen.objectives.infonce import InfoNCE
    from audiogen.objectives.spectral import MultiScaleSpectralLoss

    assert contracts.objective_form(MultiScaleSpectralLoss()) == "reconstruction"
    assert contracts.objective_form(ELBO()) == "elbo"
    assert contracts.objective_form(InfoNCE()) == "contrastive"
    for objective in (MultiScaleSpectralLoss, ELBO, ELBO(beta=anneal.linear(steps=10), free_nats=2.0)):
        assert torch.isfinite(check_objective(objective))
    infonce = InfoNCE(prediction_steps=2, negatives=4, feature_size=8, context_size=8)
    assert torch.isfinite(check_objective(infonce, encoder=CPCEncoder(channels=8, context_size=8)))
    assert check_anneal(anneal.linear) == [0.0, 1e-4, 1e-3, 0.1, 1.0]
    assert check_anneal(anneal.cosine(start=4.0, hold=1, steps=1))[-1] == 0.0


def test_checkers_catch_broken_objectives_and_schedules():
    class CountsPadding(torch.nn.Module):
        def forward(self, recon, target, mask=None):
            return {"loss": (recon - target).abs().mean()}  # the mask is ignored

    class Detached(torch.nn.Module):
        def forward(self, recon, target, mask=None):
            return {"loss": (recon - target).abs().mean().detach()}

    class NoLoss:
        def __call__(self, out, step):
            return {"elbo": out["rec"].sum()}

    with pytest.raises(ContractError, match="padded samples"):
        check_objective(CountsPadding())
    with pytest.raises(ContractError, match="no gradient"):
        check_objective(Detached())
    with pytest.raises(ContractError, match="holding 'loss'"):
        check_objective(NoLoss())
    with pytest.raises(ContractError, match="not finite"):
        check_anneal(lambda step: float("nan"))
    with pytest.raises(ContractError, match="real number"):
        check_anneal(lambda step: "1.0")


def test_a_plugin_objective_trains_an_autoencoder(plugin, tmp_path, corpus):
    assert plugin.components["objectives"]["wave_l1"].plugin == "losses"
    check_objective(plugin.components["objectives"]["wave_l1"].factory)
    check_anneal(plugin.components["anneal"]["ramp"].factory)
    run = tmp_path / "run"
    run_in_process("train", "--gin", "pipelines/conv_ae.gin", *tiny_binds(), "--bind",
                   "pipeline.objective = @objectives.wave_l1()", "--bind", "objectives.wave_l1.weight = 2.0",
                   corpus / "train.txt", "-o", run, "--no-progress")
    rows = list(csv.DictReader(open(run / "logs" / "version_0" / "metrics.csv")))
    l1 = [float(r["train/wave_l1"]) for r in rows if r.get("train/wave_l1")]
    loss = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert len(l1) == 2 and loss == pytest.approx([2 * v for v in l1])  # its logs, its weight: it trained
    ck = torch.load(run / "model.ckpt", weights_only=True)["audiogen"]
    assert ck["built_components"]["objectives.wave_l1"] == {"plugin": "losses", "version": "0.3"}
    assert "objectives.wave_l1.weight = 2.0" in ck["operative_config"]


def test_a_plugin_annealing_schedule_weights_the_elbo(plugin, tmp_path, corpus):
    run = tmp_path / "run"
    run_in_process("train", "--gin", "pipelines/cwvae_l1_speech.gin",
                   *tiny_cw_binds(["elbo.beta = @anneal.ramp()", "anneal.ramp.steps = 4"]),
                   corpus / "train.txt", "-o", run, "--no-progress")
    rows = list(csv.DictReader(open(run / "logs" / "version_0" / "metrics.csv")))
    beta = [float(r["train/beta"]) for r in rows if r.get("train/beta")]
    assert beta == [0.0, 0.25]  # Ramp(steps=4) at steps 0 and 1


def test_a_plugin_objective_that_breaks_its_contract_is_named_before_training(tmp_path, monkeypatch, corpus):
    code = (PLUGIN.replace("l1 = (err * m).sum() / m.sum().clamp_min(1)", "l1 = err.mean()  # counts padding")
            .replace('register("wave_l1"', 'register("padded_l1"').replace('register("ramp"', 'register("ramp2"'))
    load(monkeypatch, fake_plugin(tmp_path / "site", "audiogen-padded", "padded", code), "padded", use=True)
    res = run_in_process("train", "--gin", "pipelines/conv_ae.gin", *tiny_binds(), "--bind",
                         "pipeline.objective = @objectives.padded_l1()", corpus / "train.txt",
                         "-o", tmp_path / "run", "--no-progress", check=False)
    assert res.returncode == 2, res.stderr
    assert ("objective objectives.padded_l1 from plugin 'padded' 0.3 breaks the objective contract" in res.stderr
            and "padded samples" in res.stderr and "Traceback" not in res.stderr), res.stderr


def test_stored_configs_with_the_short_objective_names_still_load():
    """Runs made before objectives were a kind stored ``elbo.beta`` and ``@elbo()``: they stay valid."""
    old = ("pipeline.objective = @elbo()\nelbo.beta = @beta/anneal.linear()\nbeta/anneal.linear.steps = 10\n"
           "elbo.free_nats = 1.0\n")
    config.check_stored(old, "an old checkpoint")
    config.parse([], [], base=old)
    objective = config.query("pipeline.objective")
    assert objective.selector == "elbo"
    import gin

    from audiogen.objectives.elbo import ELBO

    built = gin.get_configurable("elbo")()
    assert isinstance(built, ELBO) and built.beta(5) == pytest.approx(5e-1) and built.free_nats(0) == 1.0
