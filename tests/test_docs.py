"""The plugin guide quotes real, tested files; the README documents a contract and a checker for every kind."""

from __future__ import annotations

import re

from conftest import ROOT

from audiogen import contracts, hookspecs

GUIDE = ROOT / "docs" / "plugins.md"
BLOCK = re.compile(r"```\w*\n# from (\S+)\n(.*?)```", re.S)


def test_guide_excerpts_match_the_example_plugin():
    excerpts = BLOCK.findall(GUIDE.read_text())
    assert len(excerpts) >= 8
    for path, body in excerpts:
        source = (ROOT / path).read_text()
        assert body in source, f"docs/plugins.md quotes {path}, which no longer contains:\n{body}"


def test_readme_documents_every_hook_and_a_checker_per_kind():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Plugins"):]
    hooks = [n for n in vars(hookspecs) if n.startswith("register_")]
    for hook in hooks:
        assert f"`{hook}(" in section, hook
    for kind in hookspecs.KINDS:  # every kind has a checker, except dataset classes (any torch Dataset)
        if kind != "datasets":
            checker = f"check_{kind.removesuffix('s')}"
            assert hasattr(contracts, checker) and checker in section, kind
    assert "docs/plugins.md" in section
