"""The README's commands, .ci/run and the package list stay in step."""

from __future__ import annotations

import re
import tomllib

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


def test_every_subpackage_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.relative_to(ROOT).parent.parts) for p in (ROOT / "audiogen").rglob("*.py")
             if "__pycache__" not in p.parts}
    assert found <= listed, f"add to pyproject packages: {sorted(found - listed)}"
    assert "audiogen.gin" in listed


def test_runtime_dependencies_exclude_cuda_only_packages():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~ \[]", d)[0].lower() for d in deps}
    assert not names & {"torchaudio", "acids-rave", "nn-tilde", "pytorch-lightning"}
