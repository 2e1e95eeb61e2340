"""The import layering the architecture promises (docs/architecture.md), checked on the source with ast (nothing
is imported or run): agentlm never imports data_pipeline or launch, agentlm.checkpoint never imports agentlm.train
(at module level or inside a function), and module-level imports form no cycle. The checker is shown to catch a
planted upward import and a planted cycle in a fake package tree."""
from __future__ import annotations

import ast
import pathlib

from tests.conftest import ROOT

PACKAGES = ("agentlm", "data_pipeline", "launch")
# (importer prefix, forbidden imported prefix, why)
RULES = (("agentlm", "data_pipeline", "the library never imports the application built on it"),
         ("agentlm", "launch", "the library never imports the launchers"),
         ("agentlm.checkpoint", "agentlm.train", "checkpoints are read without the trainer"))


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def module_files(root: pathlib.Path, packages=PACKAGES) -> dict[str, pathlib.Path]:
    out = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, module: str, is_package: bool, known: set[str]):
    """(imported module, at module level?) for every import statement; `from X import name` counts as importing
    X.name when that is a module of the tree."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue  # never executed
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    package = module.split(".") if is_package else module.split(".")[:-1]
                    package = package[: len(package) - (child.level - 1)]
                    base = ".".join(package + ([base] if base else []))
                for alias in child.names:
                    full = f"{base}.{alias.name}"
                    found.append((full if full in known else base, top))
            visit(child, inner)

    visit(tree, True)
    return list(dict.fromkeys(found))


def import_graph(root: pathlib.Path, packages=PACKAGES) -> dict[str, list[tuple[str, bool]]]:
    """module -> [(imported module, at module level?)], over the modules of `packages` under `root`."""
    files = module_files(root, packages)
    known = set(files)
    return {m: _imports(ast.parse(p.read_text(encoding="utf-8"), str(p)), m, p.name == "__init__.py", known)
            for m, p in files.items()}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a module importing itself): Tarjan."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in edges.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def violations(graph: dict[str, list[tuple[str, bool]]]) -> list[str]:
    problems = []
    for module, imports in sorted(graph.items()):
        for target, top in imports:
            for importer, forbidden, why in RULES:
                if _under(module, importer) and _under(target, forbidden):
                    where = "module level" if top else "inside a function"
                    problems.append(f"{module} imports {target} ({where}): {why}")
    internal = {m: {t for t, top in imports if top and t in graph} for m, imports in graph.items()}
    problems += [f"import cycle at module level: {' -> '.join(c)}" for c in _cycles(internal)]
    return problems


def test_the_project_keeps_its_layers():
    graph = import_graph(ROOT)
    assert len(graph) > 100 and any(t == "agentlm.envs.base" for t, _ in graph["agentlm.envs.loop"])
    assert violations(graph) == []


def _tree(root: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_checker_reports_planted_upward_imports_and_cycles(tmp_path):
    clean = {
        "agentlm/__init__.py": "", "agentlm/envs/__init__.py": "",
        "agentlm/envs/base.py": "import json\n",
        "agentlm/envs/loop.py": "from agentlm.envs import base\nfrom .base import json\n",
        "agentlm/checkpoint/__init__.py": "",
        "agentlm/train/__init__.py": "from agentlm.checkpoint import load\n",
        "data_pipeline/__init__.py": "", "data_pipeline/run.py": "from agentlm.envs.loop import base\n",
        "launch/__init__.py": "",
        "agentlm/envs/lazy_a.py": "def f():\n    from agentlm.envs import lazy_b\n",  # a cycle only inside
        "agentlm/envs/lazy_b.py": "from agentlm.envs import lazy_a\n",  # functions is allowed
        "agentlm/envs/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import launch\n",
    }
    root = _tree(tmp_path / "clean", clean)
    assert violations(import_graph(root)) == []
    planted = {
        "agentlm/envs/upward.py": "def teacher():\n    from data_pipeline import run\n    return run\n",
        "agentlm/sweep.py": "import launch.sweep\n",
        "launch/sweep.py": "",
        "agentlm/checkpoint/convert.py": "from ..train import config\n",
        "agentlm/train/config.py": "",
        "agentlm/envs/a.py": "from agentlm.envs.b import x\n",
        "agentlm/envs/b.py": "class C:\n    from agentlm.envs import a\nx = 1\n",
    }
    found = violations(import_graph(_tree(tmp_path / "clean", planted)))
    assert found == [
        "agentlm.checkpoint.convert imports agentlm.train.config (module level): checkpoints are read without the "
        "trainer",
        "agentlm.envs.upward imports data_pipeline.run (inside a function): the library never imports the "
        "application built on it",
        "agentlm.sweep imports launch.sweep (module level): the library never imports the launchers",
        "import cycle at module level: agentlm.envs.a -> agentlm.envs.b",
    ]
