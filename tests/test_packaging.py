"""The README's commands and .ci/run stay in step; a built wheel ships every module and config."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [ln for ln in block.splitlines() if ln and not ln.startswith("#")]


def test_ci_runs_the_readme_test_command():
    main_job, test_cmd = readme_commands()[:2]
    assert "audiogen quickstart" in main_job and "torch==2.13.0" in main_job
    assert "pytest" in test_cmd and "torch==2.13.0" in test_cmd
    ci = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith("#")]
    assert test_cmd in ci


def test_ci_lints_with_the_pinned_ruff():
    ci = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith("#")]
    lint = [ln for ln in ci if "ruff check" in ln]
    assert lint and lint[0].startswith(".venv/bin/ruff check"), ci  # the venv the test command installed
    test_extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    assert any(re.fullmatch(r"ruff==[\d.]+", d) for d in test_extras), test_extras


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of what the build reads, so no build/ or egg-info lands in the source tree."""
    tmp = tmp_path_factory.mktemp("wheel")
    before = _build_dir_state()  # an install of the checkout (as .ci/run does) may have left build/ already
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "audiogen", src / "audiogen", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp / "dist"), str(src)], check=True, capture_output=True)
    (whl,) = (tmp / "dist").glob("audiogen-*.whl")
    assert _build_dir_state() == before, "building the wheel wrote build/ into the source tree"
    return whl


def _build_dir_state() -> set | None:
    build = ROOT / "build"
    return {(str(p), p.stat().st_mtime_ns) for p in build.rglob("*")} if build.exists() else None


def test_the_wheel_ships_every_module_config_and_template(wheel):
    shipped = set(zipfile.ZipFile(wheel).namelist())
    tracked = {p.relative_to(ROOT).as_posix() for p in (ROOT / "audiogen").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert tracked - shipped == set(), "files of audiogen/ missing from the wheel"
    assert any(n.startswith("audiogen/gin/pipelines/") and n.endswith(".gin") for n in shipped)


def test_configs_resolve_from_the_installed_package(wheel, tmp_path):
    """Install the wheel in a fresh folder and resolve configs from there, away from the source tree."""
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)  # a pure-Python wheel installs by unpacking
    code = textwrap.dedent("""
        import audiogen, json
        from audiogen import config
        p = config.resolve("pipelines/conv_ae.gin")
        config.parse(["pipelines/conv_ae.gin"])
        print(json.dumps({"pkg": audiogen.__file__, "gin": str(p)}))
    """)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    paths = json.loads(out.stdout)
    assert paths["pkg"].startswith(str(target))
    assert paths["gin"].startswith(str(target / "audiogen" / "gin")), paths


def test_runtime_dependencies_exclude_cuda_only_packages():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~ \[]", d)[0].lower() for d in deps}
    assert not names & {"torchaudio", "acids-rave", "nn-tilde", "pytorch-lightning"}
