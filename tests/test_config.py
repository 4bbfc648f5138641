"""gin composition: names resolve, errors suggest close matches, saved configs layer (the installed wheel: test_packaging)."""

from __future__ import annotations

import gin
import pytest

from audiogen import config
from audiogen.errors import ConfigError
from audiogen.pipeline import Pipeline, build_pipeline


def test_resolve_by_name_and_by_path(tmp_path):
    p = config.resolve("pipelines/conv_ae.gin")
    assert p.name == "conv_ae.gin" and p.parent.name == "pipelines"
    assert config.resolve("pipelines/conv_ae") == p  # suffix optional
    own = tmp_path / "mine.gin"
    own.write_text("train.max_steps = 3\n")
    assert config.resolve(own) == own.resolve()
    assert {"encoders/conv1d.gin", "decoders/conv1d.gin", "pipelines/conv_ae.gin"} <= set(config.available_configs())


def test_unknown_gin_file_lists_close_names():
    with pytest.raises(ConfigError, match="pipelines/conv_ae.gin"):
        config.resolve("pipelines/conv_aee.gin")


def test_unknown_configurable_in_binding_lists_close_matches():
    with pytest.raises(ConfigError) as e:
        config.parse(["pipelines/conv_ae.gin"], ["encoders.conv1dd.latent_size = 3"])
    assert "encoders.conv1dd" in str(e.value) and "encoders.conv1d" in str(e.value)


def test_unknown_parameter_lists_close_matches():
    with pytest.raises(ConfigError) as e:
        config.parse(["pipelines/conv_ae.gin"], ["encoders.conv1d.latent_sise = 3"])
    assert "latent_size" in str(e.value)


def test_unknown_name_in_gin_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.gin"
    bad.write_text("include 'pipelines/conv_ae.gin'\npipeline.encodr = @encoders.conv1d()\n")
    with pytest.raises(ConfigError) as e:
        config.parse([str(bad)])
    assert "bad.gin" in str(e.value) and "encoder" in str(e.value)


def test_later_files_and_bindings_win(tmp_path):
    a, b = tmp_path / "a.gin", tmp_path / "b.gin"
    a.write_text("include 'pipelines/conv_ae.gin'\nLATENT_SIZE = 5\n")
    b.write_text("LATENT_SIZE = 6\n")
    config.parse([str(a), str(b)])
    assert Pipeline().latent_size == 6
    config.parse([str(a), str(b)], ["LATENT_SIZE = 7"])
    assert Pipeline().latent_size == 7


def test_saved_operative_config_is_applied_before_user_overrides():
    config.parse(["pipelines/conv_ae.gin"], ["LATENT_SIZE = 3", "STRIDES = [2, 2]", "CHANNELS = [4, 4]"])
    pipe = Pipeline()
    saved = config.operative_config()
    assert "LATENT_SIZE = 3" in saved
    gin.clear_config()
    config.parse([], ["train.max_steps = 9"], base=saved)  # reload the artifact, then the user's override
    again = Pipeline()
    assert again.latent_size == 3 and again.hop == 4
    from audiogen.settings import train_settings

    assert train_settings().max_steps == 9
    config.parse([], ["LATENT_SIZE = 2"], base=saved)
    assert Pipeline().latent_size == 2
    assert pipe.hop == 4


def test_mismatched_encoder_and_decoder_name_both_numbers():
    config.parse(["pipelines/conv_ae.gin"], ["encoders.conv1d.strides = [4, 4]", "decoders.conv1d.strides = [4]",
                                              "CHANNELS = 8"])
    with pytest.raises(ConfigError, match="hop 16 != decoder hop 4"):
        build_pipeline()


def test_component_argument_errors_become_config_errors():
    config.parse(["pipelines/conv_ae.gin"], ["STRIDES = [4, 4]"])  # CHANNELS still has 3 entries
    with pytest.raises(ConfigError, match="channels has 3 entries but there are 2 stages"):
        build_pipeline()


def test_saved_configs_use_full_component_names():
    from audiogen.settings import audio_settings

    config.parse(["pipelines/conv_ae.gin"])
    build_pipeline()
    audio_settings()
    saved = config.operative_config()
    assert "encoders.conv1d.latent_size = %LATENT_SIZE" in saved
    assert "decoders.conv1d.strides = %STRIDES" in saved
    assert "\naudio.sample_rate = 16000" in saved  # audiogen's own settings keep their short names


def test_component_names_that_shadow_settings_are_refused():
    from audiogen.plugins import Registry

    with pytest.raises(ValueError, match="reserved"):
        Registry().add("datasets", "audio", object, "someone")


def test_include_typo_lists_close_matches(tmp_path):
    f = tmp_path / "mine.gin"
    f.write_text("include 'encoders/conv1dd.gin'\n")
    with pytest.raises(ConfigError, match=r"include 'encoders/conv1dd.gin' in gin file .*mine.gin names no gin file "
                                          r"\(close matches: encoders/conv1d.gin"):
        config.parse([str(f)])


def test_each_kind_folder_has_a_readme_naming_its_files():
    root = config.packaged_config_dir()
    for kind in sorted(p for p in root.iterdir() if p.is_dir()):
        readme = kind / "README.md"
        assert readme.is_file(), f"{kind} has no README.md"
        missing = [p.name for p in kind.glob("*.gin") if f"`{p.name}`" not in readme.read_text()]
        assert not missing, f"{readme} does not list {missing}"


def test_operative_config_records_component_defaults():
    """A component's Python defaults are its one source (gin files bind what differs) and still reach the stored
    config, so a run rebuilt later uses the values it trained with."""
    config.parse(["priors/diffwave.gin"], ["LATENT_SIZE=3", "pipeline.prior = @priors.diffwave()"])
    build_pipeline()
    saved = config.operative_config()
    for line in ("priors.diffwave.residual_layers = 30", "priors.diffwave.loss = 'l1'", "schedules.linear.steps = 50",
                 "priors.diffwave.latent_size = %LATENT_SIZE", "priors.diffwave.schedule = @schedules.linear()"):
        assert line in saved, line


@pytest.mark.parametrize("family", ["conv1d", "tasnet"])
def test_a_decoder_file_works_alone(family):
    config.parse([f"decoders/{family}.gin"], [f"pipeline.decoder = @decoders.{family}()"])
    assert build_pipeline().decoder.hop == 64  # the encoder file's STRIDES, included by the decoder's


def test_includes_work_from_a_folder_holding_data_and_pipelines_folders(tmp_path):
    """`python -m audiogen` puts the working directory on sys.path; its plain `data/` folder (a namespace package to
    importlib) made gin's package-path reader crash on `include 'data/speech16k.gin'` with a TypeError."""
    import subprocess
    import sys

    (tmp_path / "data").mkdir()
    (tmp_path / "pipelines").mkdir()
    code = ("from audiogen import config; config.parse(['pipelines/cwvae_l2_speech.gin'], []); "
            "import gin; print(gin.query_parameter('%LEVELS'))")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "2"
