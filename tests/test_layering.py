"""The package's layering, read from its source with ``ast`` (every import, at module level or inside a function):
components and shared infrastructure never import a workflow or the CLI, workflows never import the CLI, and no
two audiogen modules import each other, directly or through others."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The top of the stack: the CLI parses options and calls workflows; the plugin authors' test kit and
# `python -m audiogen` run the CLI. Workflows (one module per command) sit below them and above everything else.
CLI = ("audiogen.cli", "audiogen.__main__", "audiogen.testing")
WORKFLOWS = "audiogen.workflows"


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of ``package`` under ``root``."""
    names = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _type_checking_only(node: ast.AST, parents: dict) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its code (``from a import b`` counts as a.b when
    that is a module, else as a); imports under ``if TYPE_CHECKING`` do not run and do not count."""
    tree = ast.parse(path.read_text(), str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def add(target: str) -> None:
        while target and target not in modules:  # an attribute or a name inside the module
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package
                pkg = name.split(".") if is_package else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(full if full in modules else base)
    return found


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    modules = module_names(root, package)
    return {name: imports(name, path, modules) for name, path in modules.items()}


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layering_violations(graph: dict[str, set[str]], cli=CLI, workflows: str = WORKFLOWS) -> list[str]:
    """'A imports B' for each import that goes up the stack: below the workflows into a workflow or the CLI, or from
    a workflow into the CLI."""
    out = []
    for a, targets in sorted(graph.items()):
        for b in sorted(targets):
            up_to_cli = any(_within(b, c) for c in cli) and not any(_within(a, c) for c in cli)
            up_to_workflow = _within(b, workflows) and not (_within(a, workflows) or any(_within(a, c) for c in cli))
            if up_to_cli or up_to_workflow:
                out.append(f"{a} imports {b}")
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted: every import cycle lies
    in one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # recursion depth is bounded by the number of modules (about a hundred)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


# ------------------------------------------------------------------------------------------------------ audiogen
def test_components_and_infrastructure_never_import_workflows_or_the_cli():
    graph = import_graph(ROOT, "audiogen")
    assert any(_within(m, WORKFLOWS) for m in graph), "no workflows found: the checker reads the wrong tree"
    assert layering_violations(graph) == []


def test_no_import_cycles_between_audiogen_modules():
    assert cycles(import_graph(ROOT, "audiogen")) == []


def test_every_command_calls_its_workflow():
    """cli.py parses options: each command's logic is a workflow module (or the plugin registry's listing)."""
    graph = import_graph(ROOT, "audiogen")
    for cmd in ("train", "train_prior", "encode", "decode", "sample", "evaluate", "reconstruct", "probe", "explore",
                "index", "quickstart", "export", "info", "plugins"):
        assert f"{WORKFLOWS}.{cmd}" in graph["audiogen.cli"], cmd


# --------------------------------------------------------------------------------------- the checker itself
def _package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_checker_finds_a_component_importing_a_workflow_and_a_cycle(tmp_path):
    root = _package(tmp_path, {
        "audiogen/__init__.py": "",
        "audiogen/cli.py": "from audiogen.workflows import train\n",
        "audiogen/workflows/__init__.py": "",
        "audiogen/workflows/train.py": "import audiogen.model\n",
        # a component reaching up into a workflow inside a function, and a cycle through a relative import
        "audiogen/model.py": "import audiogen.priors.gru\ndef f():\n    from audiogen.workflows.train import x\n",
        "audiogen/layers.py": "from . import model\n",
        "audiogen/priors/__init__.py": "",
        "audiogen/priors/gru.py": "from .. import layers\nfrom audiogen.cli import main\n",
        "audiogen/extra.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from audiogen import cli\n"
                             "import audiogen.layers\n",
    })
    graph = import_graph(root, "audiogen")
    assert graph["audiogen.layers"] == {"audiogen.model"}
    assert graph["audiogen.extra"] == {"audiogen.layers"}  # the TYPE_CHECKING import does not run
    assert layering_violations(graph) == ["audiogen.model imports audiogen.workflows.train",
                                          "audiogen.priors.gru imports audiogen.cli"]
    # model -> priors.gru -> layers -> model, and through the up-going imports gru -> cli -> train -> model
    assert cycles(graph) == [["audiogen.cli", "audiogen.layers", "audiogen.model", "audiogen.priors.gru",
                              "audiogen.workflows.train"]]


def test_checker_accepts_a_layered_package(tmp_path):
    root = _package(tmp_path, {
        "audiogen/__init__.py": "",
        "audiogen/cli.py": "from audiogen.workflows.train import train\n",
        "audiogen/workflows/__init__.py": "",
        "audiogen/workflows/train.py": "from audiogen import model\nfrom . import encode\n",
        "audiogen/workflows/encode.py": "import audiogen.model\n",
        "audiogen/model.py": "import numpy\n",
    })
    graph = import_graph(root, "audiogen")
    assert layering_violations(graph) == [] and cycles(graph) == []
