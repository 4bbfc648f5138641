"""Plugin loading: built-ins through the hooks, broken plugins isolated, duplicates refused, restriction by env."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from conftest import run_cli, write_tone

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
    out = run_cli("plugins").stdout
    assert "encoders:" in out and "conv1d" in out and "audiogen 0.1.0" in out
    data = json.loads(run_cli("plugins", "--json").stdout)
    assert data["components"]["decoders"]["conv1d"] == {"plugin": "audiogen", "version": "0.1.0",
                                                        "gin": "decoders.conv1d"}


def test_third_party_plugin_loads_and_is_restricted_by_env(tmp_path):
    site = fake_plugin(tmp_path / "site", "audiogen-wide", "wide", GOOD)
    env = {"PYTHONPATH": str(site)}
    data = json.loads(run_cli("plugins", "--json", env=env).stdout)
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
    proc = run_cli("plugins", env={"PYTHONPATH": str(site)})
    assert proc.returncode == 0
    assert "wide_conv" in proc.stdout  # the healthy plugin still works
    warnings = [ln for ln in proc.stderr.splitlines() if "WARNING" in ln]
    assert len([w for w in warnings if "broken_import" in w]) == 1, proc.stderr
    assert len([w for w in warnings if "broken_hook" in w]) == 1, proc.stderr
    assert "needs libfoo" in proc.stderr and "bad registration" in proc.stderr
    # and commands that build components still work
    run_cli("configs", env={"PYTHONPATH": str(site)})


def test_duplicate_component_names_are_an_error_naming_both(tmp_path):
    site = tmp_path / "site"
    fake_plugin(site, "audiogen-dup-a", "dup_a", GOOD)
    fake_plugin(site, "audiogen-dup-b", "dup_b", GOOD.replace("Wide(", "Wide2(").replace("Wide)", "Wide2)"))
    proc = run_cli("plugins", env={"PYTHONPATH": str(site)}, check=False)
    assert proc.returncode == 2
    assert "dup_a" in proc.stderr and "dup_b" in proc.stderr and "wide_conv" in proc.stderr
    assert "AUDIOGEN_PLUGINS" in proc.stderr  # the fix
    proc = run_cli("plugins", env={"PYTHONPATH": str(site), "AUDIOGEN_PLUGINS": "dup_a"})
    assert "wide_conv" in proc.stdout


def test_builtin_name_clash_is_reported(tmp_path):
    site = fake_plugin(tmp_path / "site", "audiogen-clash", "clash", GOOD.replace('"wide_conv"', '"conv1d"'))
    wav = write_tone(tmp_path / "x.wav")
    proc = run_cli("encode", "--gin", "pipelines/conv_ae.gin", wav, "-o", tmp_path / "o",
                   env={"PYTHONPATH": str(site)}, check=False)
    assert proc.returncode == 2
    assert "'audiogen'" in proc.stderr and "'clash'" in proc.stderr


def test_a_plugin_failing_half_way_is_skipped_whole(tmp_path):
    site = fake_plugin(tmp_path / "site", "audiogen-half", "half", GOOD + """
    @hookimpl
    def register_decoders(register):
        raise RuntimeError('second hook fails')
""")
    proc = run_cli("plugins", "--json", env={"PYTHONPATH": str(site)})
    data = json.loads(proc.stdout)
    assert "wide_conv" not in data["components"]["encoders"]  # its successful first hook is rolled back
    assert "half" not in data["plugins"]
    assert [f["plugin"] for f in data["failures"]] == ["half"]
