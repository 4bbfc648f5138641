"""The plugin authors' kit: audiogen.testing fixtures, `audiogen plugins new`, the worked example plugin."""

from __future__ import annotations

import json


def test_kit_runs_a_prior_through_train_sample_and_decode(audiogen_latents, audiogen_cli, tmp_path):
    meta = json.loads((audiogen_latents.path / "meta.json").read_text())
    assert meta["latent_size"] == audiogen_latents.latent_size and meta["decoder"]["name"] == "decoders.conv1d"
    # min_std 5: samples with 5 times the data's std, which `sample` warns about
    audiogen_cli("train-prior", "--gin", "priors/diag_gaussian.gin", "--bind", "pipeline.prior=@priors.diag_gaussian()",
                 "--bind", f"LATENT_SIZE={audiogen_latents.latent_size}", "--bind", "priors.diag_gaussian.min_std=5.0",
                 "--bind", "train.max_steps=1", audiogen_latents, "-o", tmp_path / "prior", "--no-progress")
    res = audiogen_cli("sample", "--run", tmp_path / "prior", "-n", "2", "--seconds", "0.2", "-o", tmp_path / "s")
    assert res.exit_code == 0 and sorted(p.name for p in (tmp_path / "s").glob("*.wav")) == ["sample_000.wav",
                                                                                           "sample_001.wav"]
    warnings = json.loads((tmp_path / "s" / "samples.json").read_text())["diagnostics"]["warnings"]
    assert any("off the dataset's scale" in w for w in warnings)
    for w in warnings:  # each warning printed once (it was logged and echoed again)
        assert res.stderr.count(w) == 1, res.stderr


def test_kit_reports_user_errors_with_exit_code_2(audiogen_cli, tmp_path):
    (tmp_path / "bad.gin").write_text("pipeline.prior = @priors.diag_gausian()\n")
    (tmp_path / "data").mkdir()  # not tmp_path itself: -o inside the input is refused first
    res = audiogen_cli("train-prior", "--gin", tmp_path / "bad.gin", tmp_path / "data", "-o", tmp_path / "o",
                       check=False)
    assert res.exit_code == 2
    assert "priors.diag_gaussian" in res.stderr and "Traceback" not in res.output
