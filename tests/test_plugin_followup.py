"""What a plugin author found testing the kit from the docs alone (issue 15 follow-up): each case reproduced."""

from __future__ import annotations

import json

import pytest
import torch
from test_plugins import fake_plugin, load

from audiogen.testing import run_cli as run_in_process

GAUSS = """
    from audiogen import hookimpl
    from audiogen.priors.gaussian import DiagGaussianPrior

    class Cc(DiagGaussianPrior):
        '''A plugin prior.'''

    @hookimpl
    def register_priors(register):
        register("cc_gauss", Cc)
"""


@pytest.fixture(scope="module")
def plugin_prior_run(tmp_path_factory, audiogen_latents):
    """A prior run made with plugin 'cc' 0.3 (module-scoped: trained once)."""
    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("cc")
    site = fake_plugin(tmp / "site", "audiogen-cc", "cc", GAUSS)
    try:
        load(mp, site, "cc", use=True)
        run_in_process("train-prior", "--bind", "pipeline.prior = @priors.cc_gauss()", "--bind", "train.max_steps=1",
                       audiogen_latents, "-o", tmp / "run", "--no-progress")
    finally:
        mp.undo()
    return tmp


def _without_built_components(run, out):
    """The checkpoint as runs made before ``built_components`` existed stored it (only ``components``)."""
    ck = torch.load(run / "model.ckpt", weights_only=True)
    del ck["audiogen"]["built_components"]
    torch.save(ck, out)
    return out


@pytest.mark.parametrize("old", [False, True], ids=["new", "no_built_components"])
def test_prior_run_names_the_missing_plugin_before_reading_its_config(plugin_prior_run, audiogen_latents,
                                                                      monkeypatch, tmp_path, old):
    run = plugin_prior_run / "run"
    ckpt = _without_built_components(run, tmp_path / "old.ckpt") if old else run / "model.ckpt"
    load(monkeypatch, tmp_path, "", use=True)  # the plugin is not loaded
    for args in (("sample", ckpt, "-n", "1", "--seconds", "0.1", "-o", tmp_path / "s"),
                 ("evaluate", ckpt, "--data", audiogen_latents)):
        res = run_in_process(*args, check=False)
        assert res.exit_code == 2, res.output
        assert "needs plugin 'cc' (version 0.3) for priors.cc_gauss; that plugin is not installed" in res.stderr, \
            res.output
        assert "operative config" not in res.output
    info = run_in_process("info", ckpt).stdout
    assert "plugin 'cc' 0.3 is not installed" in info, info


def test_prior_run_made_with_another_plugin_version_warns(plugin_prior_run, monkeypatch, tmp_path):
    v2 = fake_plugin(tmp_path / "site2", "audiogen-cc", "cc", GAUSS, version="0.4")
    monkeypatch.syspath_prepend(str(plugin_prior_run / "site"))
    for ckpt in (plugin_prior_run / "run" / "model.ckpt",
                 _without_built_components(plugin_prior_run / "run", tmp_path / "old.ckpt")):
        load(monkeypatch, v2, "cc", use=True)
        res = run_in_process("sample", ckpt, "-n", "1", "--seconds", "0.1", "-o", tmp_path / "s" / ckpt.name)
        assert "made with priors.cc_gauss from plugin 'cc' 0.3; plugin 'cc' 0.4 provides it now" in res.stderr, \
            res.output
        assert json.loads((tmp_path / "s" / ckpt.name / "samples.json").read_text())


def test_prior_run_says_an_installed_plugin_was_left_out_by_the_env(plugin_prior_run, monkeypatch, tmp_path):
    load(monkeypatch, plugin_prior_run / "site", "", use=True)  # installed, AUDIOGEN_PLUGINS empty
    res = run_in_process("sample", plugin_prior_run / "run", "-n", "1", "--seconds", "0.1", "-o", tmp_path / "s",
                         check=False)
    assert res.exit_code == 2
    assert "that plugin is installed but not loaded (AUDIOGEN_PLUGINS='' does not list it)" in res.stderr, res.output
    assert "add 'cc' to AUDIOGEN_PLUGINS" in res.stderr
