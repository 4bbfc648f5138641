"""Plugin loading: built-ins through the hooks, broken plugins isolated, duplicates refused, restriction by env."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from conftest import run_cli, run_here, run_in_process

from audiogen import __version__
from audiogen.plugins import KINDS, get_registry


def fake_plugin(root: Path, dist: str, ep_name: str, code: str, version: str = "0.3") -> Path:
    """Install a plugin the way pip would leave it: a module plus a dist-info with an entry point."""
    root.mkdir(parents=True, exist_ok=True)
    module = f"{dist.replace('-', '_')}_mod"
    (root / f"{module}.py").write_text(textwrap.dedent(code))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[audiogen]\n{ep_name} = {module}\n")
    return root


GOOD = """
    from audiogen import hookimpl
    from audiogen.encoders.conv1d import Conv1dEncoder

    class Wide(Conv1dEncoder):
        '''A wider conv1d encoder.'''

    @hookimpl
    def register_encoders(register):
        register("wide_conv", Wide)
"""


def test_builtins_register_through_hooks():
    reg = get_registry()
    assert reg.plugins["audiogen"]
    assert reg.get("encoders", "conv1d").plugin == "audiogen"
    assert reg.get("decoders", "conv1d").gin_name == "decoders.conv1d"
    assert set(reg.components) == set(KINDS)
    assert {"mulaw", "linear"} <= set(reg.names("codings"))


def test_unknown_component_suggests_close_names():
    import pytest

    from audiogen.errors import PluginError

    with pytest.raises(PluginError, match="conv1d"):
        get_registry().get("encoders", "conv1dd")


def test_plugins_command_lists_components_with_plugin_and_version():
    out = run_in_process("plugins").stdout
    assert "encoders:" in out and "conv1d" in out and f"audiogen {__version__}" in out
    data = json.loads(run_in_process("plugins", "--json").stdout)
    assert data["components"]["decoders"]["conv1d"] == {"plugin": "audiogen", "version": __version__,
                                                        "gin": "decoders.conv1d"}


def test_third_party_plugin_loads_and_is_restricted_by_env(tmp_path):
    site = fake_plugin(tmp_path / "site", "audiogen-wide", "wide", GOOD)
    env = {"PYTHONPATH": str(site)}
    data = json.loads(run_cli("plugins", "--json", env={**env, "AUDIOGEN_PLUGINS": None}).stdout)  # unset: all
    assert data["components"]["encoders"]["wide_conv"]["plugin"] == "wide"
    assert data["components"]["encoders"]["wide_conv"]["version"] == "0.3"
    hidden = json.loads(run_cli("plugins", "--json", env={**env, "AUDIOGEN_PLUGINS": ""}).stdout)
    assert "wide_conv" not in hidden["components"]["encoders"]
    assert "conv1d" in hidden["components"]["encoders"]  # built-ins always load
    kept = json.loads(run_cli("plugins", "--json", env={**env, "AUDIOGEN_PLUGINS": "wide"}).stdout)
    assert "wide_conv" in kept["components"]["encoders"]


def test_broken_plugins_warn_once_and_cli_keeps_working(tmp_path):
    site = tmp_path / "site"
    fake_plugin(site, "audiogen-broken-import", "broken_import", "raise ImportError('needs libfoo')\n")
    fake_plugin(site, "audiogen-broken-hook", "broken_hook", """
        from audiogen import hookimpl

        @hookimpl
        def register_decoders(register):
            raise RuntimeError('bad registration')
    """)
    fake_plugin(site, "audiogen-wide", "wide", GOOD)
    env = {"PYTHONPATH": str(site), "AUDIOGEN_PLUGINS": "broken_import,broken_hook,wide"}
    proc = run_cli("plugins", env=env)
    assert proc.returncode == 0
    assert "wide_conv" in proc.stdout  # the healthy plugin still works
    warnings = [ln for ln in proc.stderr.splitlines() if "WARNING" in ln]
    assert len([w for w in warnings if "broken_import" in w]) == 1, proc.stderr
    assert len([w for w in warnings if "broken_hook" in w]) == 1, proc.stderr
    assert "needs libfoo" in proc.stderr and "bad registration" in proc.stderr
    # and commands that build components still work
    run_cli("configs", env=env)


def test_a_plugin_failing_half_way_is_skipped_whole(tmp_path):
    site = fake_plugin(tmp_path / "site", "audiogen-half", "half", GOOD + """
    @hookimpl
    def register_decoders(register):
        raise RuntimeError('second hook fails')
""")
    proc = run_cli("plugins", "--json", env={"PYTHONPATH": str(site), "AUDIOGEN_PLUGINS": "half"})
    data = json.loads(proc.stdout)
    assert "wide_conv" not in data["components"]["encoders"]  # its successful first hook is rolled back
    assert "half" not in data["plugins"]
    assert [f["plugin"] for f in data["failures"]] == ["half"]


# ------------------------------------------------------------------------------- in-process: loading and precedence
def load(monkeypatch, site: Path, plugins: str, use: bool = False):
    """Build a registry with ``site`` importable and AUDIOGEN_PLUGINS=plugins; ``use`` makes it the CLI's."""
    import importlib

    from audiogen import plugins as plugins_mod

    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("AUDIOGEN_PLUGINS", plugins)
    importlib.invalidate_caches()
    state = plugins_mod.build_registry()
    if use:
        monkeypatch.setattr(plugins_mod, "_STATE", state)
    return state[0]


def test_misspelled_hook_is_reported_with_the_closest_name(tmp_path, monkeypatch, caplog):
    site = fake_plugin(tmp_path / "site", "audiogen-typo", "typo", GOOD.replace("register_encoders", "register_encoder"))
    reg = load(monkeypatch, site, "typo")
    assert "typo" not in reg.plugins  # not shown as loaded while registering nothing
    [f] = reg.failures
    assert (f.plugin, f.stage) == ("typo", "hook validation")
    assert "'register_encoder' is not an audiogen hook" in f.error and "did you mean 'register_encoders'" in f.error
    assert "register_encoders" in caplog.text


def test_hook_argument_with_another_name_is_not_an_import_failure(tmp_path, monkeypatch):
    site = fake_plugin(tmp_path / "site", "audiogen-argname", "argname", GOOD.replace(
        "def register_encoders(register):\n        register(", "def register_encoders(reg):\n        reg("))
    [f] = load(monkeypatch, site, "argname").failures
    assert f.stage == "hook validation", f
    assert "register_encoders(reg)" in f.error and "register_encoders(register)" in f.error and "'reg'" in f.error


def test_hook_without_hookimpl_marker_is_reported(tmp_path, monkeypatch):
    site = fake_plugin(tmp_path / "site", "audiogen-unmarked", "unmarked", GOOD.replace("    @hookimpl\n", ""))
    [f] = load(monkeypatch, site, "unmarked").failures
    assert "'register_encoders' is not marked @hookimpl" in f.error


def test_component_names_must_be_lower_snake(tmp_path, monkeypatch):
    site = fake_plugin(tmp_path / "site", "audiogen-camel", "camel", GOOD.replace('"wide_conv"', '"WideConv"'))
    reg = load(monkeypatch, site, "camel")
    [f] = reg.failures
    assert f.stage == "register_encoders" and "'WideConv'" in f.error and "'wide_conv'" in f.error
    assert "WideConv" not in reg.components["encoders"]


def test_a_builtin_name_cannot_be_shadowed(tmp_path, monkeypatch, caplog):
    code = GOOD.replace('register("wide_conv", Wide)', 'register("conv1d", Wide)\n        register("wide_too", Wide)')
    site = fake_plugin(tmp_path / "site", "audiogen-shadow", "shadow", code)
    reg = load(monkeypatch, site, "shadow")
    assert reg.get("encoders", "conv1d").plugin == "audiogen"  # the built-in stays
    assert reg.get("encoders", "wide_too").plugin == "shadow"  # the plugin's other components still load
    assert not reg.failures and not reg.clashes
    warning = next(r.getMessage() for r in caplog.records if "conv1d" in r.getMessage())
    assert "plugin 'shadow'" in warning and "built into audiogen" in warning


def test_two_plugins_with_one_name_fail_only_where_it_is_used(tmp_path, monkeypatch):
    import pytest

    from audiogen import config
    from audiogen.errors import PluginError

    site = tmp_path / "site"
    fake_plugin(site, "audiogen-dup-a", "dup_a", GOOD.replace("wide_conv", "dup_conv"))
    fake_plugin(site, "audiogen-dup-b", "dup_b", GOOD.replace("wide_conv", "dup_conv").replace(
        'register("dup_conv", Wide)', 'register("dup_conv", Wide)\n        register("only_b", Wide)'))
    reg = load(monkeypatch, site, "dup_a,dup_b", use=True)
    assert reg.get("encoders", "only_b").plugin == "dup_b"  # unaffected names keep working
    with pytest.raises(PluginError, match="'dup_a' and 'dup_b'"):
        reg.get("encoders", "dup_conv")
    # used from gin (as every command builds components): the same error, not gin's "unknown name"
    with pytest.raises(PluginError, match=r"encoders\.dup_conv is provided by plugins 'dup_a' and 'dup_b'"):
        config.parse(["pipelines/conv_ae.gin"], ["pipeline.encoder = @encoders.dup_conv()"])
    config.parse(["pipelines/conv_ae.gin"])  # a config that does not use the name is fine
    res = run_here("plugins")
    assert "only_b" in res.output and "dup_conv" in res.output and "'dup_a'" not in res.output.split("clash")[0]
    run_here("configs")


def test_allow_list_naming_no_installed_plugin_warns_with_installed_names(tmp_path, monkeypatch, caplog):
    site = fake_plugin(tmp_path / "site", "audiogen-wide-dist", "wide_ep", GOOD.replace("wide_conv", "wide_ep_conv"))
    reg = load(monkeypatch, site, "audiogen-wide-dist,wide_epp")
    assert "wide_ep" not in reg.plugins
    by_dist, typo = reg.warnings
    assert "'audiogen-wide-dist'" in by_dist and "its plugin name is 'wide_ep'" in by_dist
    assert "'wide_epp'" in typo and "did you mean wide_ep" in typo and "installed plugins: " in typo
    assert len([r for r in caplog.records if "not an installed plugin" in r.getMessage()]) == 2


def test_configs_say_when_a_plugin_gin_file_is_shadowed(tmp_path, monkeypatch):
    gin_dir = tmp_path / "plugin_gin"
    (gin_dir / "pipelines").mkdir(parents=True)
    (gin_dir / "pipelines" / "conv_ae.gin").write_text("# shadowed by the shipped file\n")
    (gin_dir / "pipelines" / "mine.gin").write_text("# the plugin's own\n")
    other = tmp_path / "other_gin"
    (other / "pipelines").mkdir(parents=True)
    (other / "pipelines" / "mine.gin").write_text("# the same name in a second plugin\n")
    code = """
        from audiogen import hookimpl

        @hookimpl
        def register_config_dirs(register):
            register({!r})
    """
    site = fake_plugin(tmp_path / "site", "audiogen-ginny", "ginny", code.format(str(gin_dir)))
    fake_plugin(site, "audiogen-ginny2", "ginny2", code.format(str(other)))
    load(monkeypatch, site, "ginny,ginny2", use=True)
    out = run_here("configs").output.splitlines()
    i = next(i for i, ln in enumerate(out) if ln.startswith("pipelines/conv_ae.gin"))
    assert str(gin_dir) not in out[i]  # the shipped file wins
    assert "shadows plugin 'ginny' file" in out[i + 1] and str(gin_dir / "pipelines" / "conv_ae.gin") in out[i + 1]
    # two plugins with one gin name: listed as ambiguous (with both files), and `configs` still works
    j = next(i for i, ln in enumerate(out) if ln.startswith("pipelines/mine.gin"))
    assert "(ambiguous)" in out[j] and str(gin_dir) in out[j + 1] and str(other) in out[j + 1]


def test_installed_plugins_stay_out_of_the_test_run(tmp_path):
    import os

    # conftest empties AUDIOGEN_PLUGINS: a user's broken plugin is not even imported by tests (nor their CLIs)
    assert os.environ["AUDIOGEN_PLUGINS"] == ""
    site = fake_plugin(tmp_path / "site", "audiogen-users", "users", "raise RuntimeError('a user plugin')\n")
    data = json.loads(run_cli("plugins", "--json", env={"PYTHONPATH": str(site)}).stdout)
    assert not data["failures"] and "users" not in data["plugins"]


NO_GRAD_PRIOR = """
    import torch
    from audiogen import hookimpl
    from audiogen.priors.gaussian import DiagGaussianPrior

    class FrozenScore(DiagGaussianPrior):
        '''Scores under torch.no_grad(): training cannot differentiate it.'''

        def log_prob(self, x, mask=None):
            with torch.no_grad():
                return super().log_prob(x, mask)

    class NoSize(torch.nn.Module):
        '''Forgets to declare latent_size.'''

    @hookimpl
    def register_priors(register):
        register("frozen_score", FrozenScore)
        register("no_size", NoSize)
"""


def test_train_prior_names_the_plugin_whose_prior_breaks_its_contract(tmp_path, monkeypatch, audiogen_latents):
    from audiogen.testing import run_cli as run_in_process

    load(monkeypatch, fake_plugin(tmp_path / "site", "audiogen-frozen", "frozen", NO_GRAD_PRIOR), "frozen", use=True)
    for name, rule in (("frozen_score", "does not depend on FrozenScore's parameters"),
                       ("no_size", "NoSize.latent_size must be a positive int")):
        res = run_in_process("train-prior", "--bind", f"pipeline.prior = @priors.{name}()", audiogen_latents,
                             "-o", tmp_path / name, "--no-progress", check=False)
        assert res.exit_code == 2, res.output
        assert f"prior priors.{name} from plugin 'frozen' 0.3 breaks the prior contract" in res.stderr
        assert rule in res.stderr and "Traceback" not in res.output
