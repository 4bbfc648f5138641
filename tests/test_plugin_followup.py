"""What a plugin author found testing the kit from the docs alone (issue 15 follow-up): each case reproduced."""

from __future__ import annotations

import json
import re

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
    for args in (("sample", "--run", ckpt, "-n", "1", "--seconds", "0.1", "-o", tmp_path / "s"),
                 ("evaluate", "--run", ckpt, audiogen_latents)):
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
        res = run_in_process("sample", "--run", ckpt, "-n", "1", "--seconds", "0.1", "-o", tmp_path / "s" / ckpt.name)
        assert "made with priors.cc_gauss from plugin 'cc' 0.3; plugin 'cc' 0.4 provides it now" in res.stderr, \
            res.output
        assert json.loads((tmp_path / "s" / ckpt.name / "samples.json").read_text())


def test_prior_run_says_an_installed_plugin_was_left_out_by_the_env(plugin_prior_run, monkeypatch, tmp_path):
    load(monkeypatch, plugin_prior_run / "site", "", use=True)  # installed, AUDIOGEN_PLUGINS empty
    res = run_in_process("sample", "--run", plugin_prior_run / "run", "-n", "1", "--seconds", "0.1",
                         "-o", tmp_path / "s", check=False)
    assert res.exit_code == 2
    assert "that plugin is installed but not loaded (AUDIOGEN_PLUGINS='' does not list it)" in res.stderr, res.output
    assert "add 'cc' to AUDIOGEN_PLUGINS" in res.stderr


# ------------------------------------------------------------- python -m audiogen.plugin_template never destroys work
def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_template_tool_never_overwrites_an_authors_plugin_unless_asked(tmp_path, capsys):
    from audiogen.plugin_template import MARKER
    from audiogen.plugin_template.__main__ import main

    with pytest.raises(SystemExit) as ex:
        main(["--help"])
    assert ex.value.code == 0 and "--overwrite" in capsys.readouterr().out
    pkg = tmp_path / "mine"
    pkg.mkdir()  # an empty folder is fine
    assert main(["mine", str(pkg)]) == 0 and (pkg / "audiogen_mine" / "plugin.py").is_file()
    # the author's work: a version bump, a dependency, an edited prior, an extra hook, their README
    pyproject = re.sub(r'(?m)^version = "[^"]+"$', 'version = "0.2.0"', (pkg / "pyproject.toml").read_text()).replace(
        'dependencies = ["audiogen"]', 'dependencies = ["audiogen", "numpy"]')
    (pkg / "pyproject.toml").write_text(pyproject)
    prior = pkg / "audiogen_mine" / "gru_prior.py"
    prior.write_text(prior.read_text() + "\n# my edit\n")
    plugin = pkg / "audiogen_mine" / "plugin.py"
    plugin.write_text(plugin.read_text() + f"\n{MARKER}\n# my hook\n")
    (pkg / "README.md").write_text("mine\n")
    before = _snapshot(pkg)
    capsys.readouterr()
    for argv in (["mine", str(pkg)], ["mnie", str(pkg), "--overwrite"], ["Mine", str(pkg), "--overwrite"]):
        assert main(argv) == 2, argv  # refused: no flag, a typo (would write audiogen_mnie), a bad name
    err = capsys.readouterr().err
    assert "already holds plugin 'mine': nothing written" in err and "is plugin 'mine'" in err and "lower_snake" in err
    assert main(["mine", str(pkg), "--diff"]) == 0
    out = capsys.readouterr().out
    assert "-# my edit" in out and '-version = "0.2.0"' in out and "never rewritten" in out
    assert main(["mine", str(pkg), "--check"]) == 1
    assert _snapshot(pkg) == before  # nothing written by any of these
    assert main(["mine", str(pkg), "--overwrite"]) == 0
    after = _snapshot(pkg)
    assert "# my edit" not in after["audiogen_mine/gru_prior.py"]  # the template's file, asked for
    assert after["pyproject.toml"] == pyproject and after["README.md"] == "mine\n"  # the author's, kept
    assert after["audiogen_mine/plugin.py"].endswith(f"{MARKER}\n# my hook\n")
    assert main(["mine", str(pkg), "--overwrite"]) == 0 and capsys.readouterr().out.endswith("in step with the template\n")


def test_example_plugin_is_checked_in_sync_by_the_template_tool():
    from pathlib import Path

    from audiogen.plugin_template.__main__ import main

    assert main(["example", str(Path(__file__).parents[1] / "plugins" / "audiogen-example"), "--check"]) == 0


# ------------------------------------------------------------------------------- plugin commands cannot replace ours
COMMANDS = """
    import click
    from audiogen import hookimpl

    @hookimpl
    def register_commands(cli):
        @cli.command("sample")
        def fake_sample():
            '''{who}'s sample.'''

        @cli.command("{who}_tool")
        def tool():
            '''{who}'s own command.'''

        @cli.command("shared_tool")
        def shared():
            '''{who}'s shared command.'''
"""


def test_a_plugin_command_cannot_replace_a_builtin_command(tmp_path, monkeypatch, caplog):
    import click

    from audiogen import plugins
    from audiogen.cli import cli

    site = fake_plugin(tmp_path / "site", "audiogen-cmda", "cmda", COMMANDS.replace("{who}", "cmda"))
    fake_plugin(site, "audiogen-cmdb", "cmdb", COMMANDS.replace("{who}", "cmdb"))
    reg = load(monkeypatch, site, "cmda,cmdb", use=True)
    group = click.Group("audiogen", commands=dict(cli.commands))
    plugins.register_commands(group)
    assert group.commands["sample"] is cli.commands["sample"]  # the built-in stays
    assert "cmda_tool" in group.commands and "cmdb_tool" in group.commands  # their other commands load
    assert "shared_tool" not in group.commands  # two plugins, one name: neither
    msgs = [r.getMessage() for r in caplog.records]
    for who in ("cmda", "cmdb"):
        assert any(f"plugin '{who}' registers command 'sample', a command built into audiogen" in m for m in msgs), msgs
    assert any("command 'shared_tool' is added by both plugin 'cmda' and plugin 'cmdb'" in m for m in msgs), msgs
    assert len(reg.conflicts) == 3


# ------------------------------------------------------------------- train-prior checks a plugin's schedule as well
SCHEDULES = """
    from dataclasses import dataclass

    import torch
    from audiogen import hookimpl
    from audiogen.schedules import validate_betas

    @dataclass
    class F32:
        '''float32 betas.'''
        steps: int = 20
        def __call__(self):
            return torch.linspace(1e-4, 0.05, self.steps)

    @dataclass
    class Rand:
        '''Different betas on each call.'''
        steps: int = 20
        def __call__(self):
            return torch.rand(self.steps, dtype=torch.float64) * 0.05 + 1e-4

    def as_list(steps: int = 20):
        '''A function returning a list, not a schedule object.'''
        return [1e-4 + i * 1e-3 for i in range(steps)]

    @dataclass
    class Big:
        '''Betas reaching 1.0, checked with validate_betas.'''
        steps: int = 20
        def __call__(self):
            return validate_betas(torch.linspace(1e-4, 1.0, self.steps, dtype=torch.float64), "schedules.sc_big")

    @hookimpl
    def register_schedules(register):
        register("sc_f32", F32)
        register("sc_rand", Rand)
        register("sc_list", as_list)
        register("sc_big", Big)
"""


def test_train_prior_names_the_plugin_whose_schedule_breaks_its_contract(tmp_path, monkeypatch, audiogen_latents):
    load(monkeypatch, fake_plugin(tmp_path / "site", "audiogen-sc", "sc", SCHEDULES), "sc", use=True)
    for name, rule in (("sc_f32", "must return float64 betas"), ("sc_rand", "different betas on a second call"),
                       ("sc_list", "list is not callable"), ("sc_big", "is not strictly between 0 and 1")):
        res = run_in_process("train-prior", "--gin", "pipelines/diffwave_latents.gin", "--bind",
                             f"priors.diffwave.schedule = @schedules.{name}()", audiogen_latents, "-o", tmp_path / name,
                             "--no-progress", check=False)
        assert res.exit_code == 2, res.output
        assert f"schedule schedules.{name} from plugin 'sc' 0.3 breaks the schedule contract" in res.stderr, res.output
        assert rule in res.stderr and "Traceback" not in res.output and "In call to configurable" not in res.output
        assert not (tmp_path / name / "model.ckpt").exists()


# ------------------------------------------------------------------------- the latent size comes from the data
def test_latent_size_errors_name_the_binding_to_remove(audiogen_latents, tmp_path):
    for args, fix in ((["--gin", "priors/diag_gaussian.gin", "--bind", "pipeline.prior=@priors.diag_gaussian()",
                        "--bind", "LATENT_SIZE=8"], "leave LATENT_SIZE out"),
                      (["--bind", "pipeline.prior=@priors.diag_gaussian()", "--bind",
                        "priors.diag_gaussian.latent_size=8"],
                       "priors.diag_gaussian.latent_size is bound to 8 in gin: remove that binding")):
        res = run_in_process("train-prior", *args, audiogen_latents, "-o", tmp_path / "p", check=False)
        assert res.exit_code == 2 and "latent size 4 but the prior is configured for 8" in res.stderr, res.output
        assert fix in res.stderr, res.output


def test_a_prior_bound_without_latent_size_gets_the_datasets(plugin_prior_run):
    """The fixture's run bound only ``pipeline.prior = @priors.cc_gauss()`` (no LATENT_SIZE, no latent_size)."""
    ck = torch.load(plugin_prior_run / "run" / "model.ckpt", weights_only=True)
    assert ck["audiogen"]["latent_size"] == 4 and "priors.cc_gauss.latent_size = 4" in ck["audiogen"]["operative_config"]


# ----------------------------------------------------------- errors say which installed plugins did not load
def test_errors_mention_plugins_that_were_skipped_or_left_out(tmp_path, monkeypatch, audiogen_latents):
    site = fake_plugin(tmp_path / "site", "audiogen-typohook", "typohook",
                       GAUSS.replace("register_priors", "register_prior").replace("cc_gauss", "typo_gauss"))
    gin_dir = tmp_path / "gin"
    (gin_dir / "ginplug").mkdir(parents=True)
    (gin_dir / "ginplug" / "prior.gin").write_text("pipeline.prior = @priors.diag_gaussian()\n")
    fake_plugin(site, "audiogen-ginplug", "ginplug", f"""
        from audiogen import hookimpl

        @hookimpl
        def register_config_dirs(register):
            register({str(gin_dir)!r})
    """)
    load(monkeypatch, site, "typohook", use=True)  # ginplug installed but not listed; typohook fails to load
    res = run_in_process("train-prior", "--bind", "pipeline.prior = @priors.typo_gauss()", audiogen_latents,
                         "-o", tmp_path / "a", check=False)
    assert res.exit_code == 2 and "unknown name 'priors.typo_gauss'" in res.stderr, res.output
    assert "note: plugin 'typohook' failed to load at hook validation" in res.stderr, res.output
    assert "'ginplug' not loaded: AUDIOGEN_PLUGINS='typohook' does not list it" in res.stderr
    # the load-time warning is in this command's stderr too, though plugins loaded before it (once per process)
    assert "audiogen: WARNING: plugin 'typohook' failed at hook validation and is skipped" in res.stderr, res.output
    res = run_in_process("train-prior", "--gin", "ginplug/prior.gin", audiogen_latents, "-o", tmp_path / "b",
                         check=False)
    assert res.exit_code == 2 and "no gin file 'ginplug/prior.gin'" in res.stderr
    assert ("plugin 'ginplug' is installed but not loaded (AUDIOGEN_PLUGINS='typohook' does not list it): its gin "
            "files are found only when it loads") in res.stderr, res.output


# -------------------------------------------------------------- the diffusion warning names the schedule in use
GEOMETRIC = """
    from dataclasses import dataclass

    import torch
    from audiogen import hookimpl
    from audiogen.schedules import validate_betas

    @dataclass
    class Geometric:
        '''Betas rising geometrically.'''
        steps: int = 20
        def __call__(self):
            return validate_betas(torch.logspace(-4, -2, self.steps, dtype=torch.float64), "schedules.geo")

    @hookimpl
    def register_schedules(register):
        register("geo", Geometric)
"""


@pytest.mark.parametrize("schedule, fix", [("geo", "more than schedules.geo.steps = 20"),
                                           ("linear", "schedules.linear.steps = 200")])
def test_diffusion_warning_names_the_schedule_in_use(tmp_path, monkeypatch, schedule, fix):
    from audiogen import config
    from audiogen.pipeline import build_pipeline

    load(monkeypatch, fake_plugin(tmp_path / "site", "audiogen-geo", "geo", GEOMETRIC), "geo", use=True)
    config.parse([], ["pipeline.prior = @priors.diffwave()", f"priors.diffwave.schedule = @schedules.{schedule}()",
                      f"schedules.{schedule}.steps = 20", "priors.diffwave.residual_layers = 1",
                      "priors.diffwave.residual_channels = 4", "priors.diffwave.latent_size = 2"])
    [warning] = build_pipeline().prior.config_warnings()
    assert f"the noise schedule schedules.{schedule} ends at alpha-bar" in warning and fix in warning, warning
    if schedule == "geo":
        assert "schedules.linear" not in warning


# ------------------------------------------------------------------ check_prior: every trainable parameter trains
def test_check_prior_catches_a_partly_detached_prior():
    from audiogen.contracts import ContractError, check_prior
    from audiogen.priors.gaussian import DiagGaussianPrior

    class DetachedStd(DiagGaussianPrior):
        def std(self):
            return super().std().detach()

    with pytest.raises(ContractError, match=r"parameter log_std of DetachedStd receives no gradient.*requires_grad_"):
        check_prior(DetachedStd(latent_size=3))
    frozen = DetachedStd(latent_size=3)
    frozen.log_std.requires_grad_(False)  # declared frozen: fine
    check_prior(frozen)


# ------------------------------------------------------------------------------------------------ `audiogen plugins`
def test_plugins_listing_keeps_columns_and_describes_every_builtin(tmp_path, monkeypatch):
    long = GAUSS.replace('register("cc_gauss", Cc)', 'register("a_rather_long_prior_name_indeed", Cc)')
    load(monkeypatch, fake_plugin(tmp_path / "site", "audiogen-l", "l", long, version="1"), "l", use=True)
    rows = [ln for ln in run_in_process("plugins").stdout.splitlines() if ln.startswith("  ") and ln.strip() != "(none)"]
    starts = {(m.start(1), m.start(2)) for ln in rows
              for m in [re.match(r"  \S+\s+(\S+ \S+)\s+(\S)", ln)]}
    assert len(starts) == 1, rows  # plugin and description columns start at the same place on every row
    assert any("a_rather_long_prior_name_indeed" in ln and " l 1 " in ln for ln in rows)
    for name in ("lstm", "sequence", "srnn", "vrnn", "wavenet"):
        [row] = [ln for ln in rows if ln.split()[0] == name]
        assert len(row.split()) > 3, row  # a description follows "audiogen VERSION"


def test_stored_config_refusal_mentions_plugins_left_out(plugin_prior_run, monkeypatch, tmp_path):
    """A record without provenance (edited, or made by another tool): the allow-list refuses the plugin's name,
    and says which installed plugin did not load."""
    ck = torch.load(plugin_prior_run / "run" / "model.ckpt", weights_only=True)
    del ck["audiogen"]["built_components"], ck["audiogen"]["components"]
    torch.save(ck, tmp_path / "bare.ckpt")
    load(monkeypatch, plugin_prior_run / "site", "", use=True)
    res = run_in_process("sample", "--run", tmp_path / "bare.ckpt", "-n", "1", "--seconds", "0.1", "-o", tmp_path / "s",
                         check=False)
    assert res.exit_code == 2 and "binds 'priors.cc_gauss'" in res.stderr, res.output
    assert "installed plugin 'cc' not loaded: AUDIOGEN_PLUGINS='' does not list it" in res.stderr, res.output
