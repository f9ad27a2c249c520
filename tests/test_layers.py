"""The three layers import in one direction: eagrl/ -> methods/ -> benchmark/ (docs/pipeline.md, "Architecture").

* ``benchmark/`` (the harness) imports nothing from ``methods/`` or ``eagrl/``;
* ``methods/`` (the method families) imports nothing from ``eagrl/``;
* ``methods/experts/`` imports no other family (hybrid, llm, eag_rl build on it, not the reverse).

Every import counts: at the top of a module and inside a function, and ``importlib.import_module`` of a
literal name.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

from tests.conftest import REPO

FORBIDDEN = {
    "benchmark": ("methods", "eagrl"),
    "methods": ("eagrl",),
    "methods/experts": ("methods.hybrid", "methods.llm", "methods.eag_rl"),
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in ``path``, at any depth, and of ``import_module("...")``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return found


def violations() -> list[str]:
    """Every import that crosses a layer the wrong way, as ``path:line imports module``."""
    out = []
    for folder, banned in FORBIDDEN.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            for line, module in imported_modules(path):
                if any(module == b or module.startswith(b + ".") for b in banned):
                    out.append(f"{path.relative_to(REPO).as_posix()}:{line} imports {module}")
    return out


def test_layers_import_in_one_direction():
    found = violations()
    assert not found, "imports against the layers (benchmark <- methods <- eagrl):\n" + "\n".join(found)


def test_the_check_sees_function_level_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from methods.experts import load_expert\n"
                      "    import importlib\n    importlib.import_module('eagrl.cli')\n")
    assert [m for _, m in imported_modules(module)] == ["os", "methods.experts", "importlib", "eagrl.cli"]


def module_graph(root: Path = REPO, packages: tuple[str, ...] = ("benchmark", "methods", "eagrl")) -> dict[str, set[str]]:
    """Each module of ``packages`` under ``root`` -> the modules of them it imports (a package as its __init__)."""
    names = {}
    for path in sorted(p for folder in packages for p in (root / folder).rglob("*.py")):
        dotted = ".".join(path.relative_to(root).with_suffix("").parts)
        names[dotted.removesuffix(".__init__")] = path
    graph = {}
    for name, path in names.items():
        targets = set()
        for _, module in imported_modules(path):
            while module and module not in names:  # `from a.b import c` names a module a.b (or c inside it)
                module = module.rpartition(".")[0]
            if module and module != name:
                targets.add(module)
        graph[name] = targets
    return graph


def import_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` as a list of modules, or [] when there is none."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        return list(error.args[1])
    return []


def test_no_import_cycle():
    """No module imports itself through others (function-level and type-only imports count too)."""
    cycle = import_cycle(module_graph())
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_sees_a_type_only_cycle(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from pkg.b import f\n")
    (tmp_path / "pkg" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import g\n")
    graph = module_graph(tmp_path, ("pkg",))
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.a"}
    assert set(import_cycle(graph)) == {"pkg.a", "pkg.b"}
