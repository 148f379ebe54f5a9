"""The catalog's wiring: torch-free to read, no import cycle, one state layout per cell."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from cellsearch.models import CELLS, get_cell
from cellsearch.models.layers import FusedStack

PACKAGE = "cellsearch.models"
PACKAGE_DIR = Path(__file__).parents[2] / "src" / "cellsearch" / "models"


def _module_name(path: Path) -> str:
    return PACKAGE if path.stem == "__init__" else f"{PACKAGE}.{path.stem}"


def _imported_models_modules(path: Path, modules: set[str]) -> set[str]:
    """Every models module that ``path`` imports anywhere: top level, functions, TYPE_CHECKING."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module in modules:
                found.add(node.module)
            if node.module == PACKAGE:  # "from cellsearch.models import sequence"
                found.update(
                    f"{PACKAGE}.{alias.name}"
                    for alias in node.names
                    if f"{PACKAGE}.{alias.name}" in modules
                )
    return found


def _import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE_DIR.glob("*.py"))
    modules = {_module_name(path) for path in paths}
    return {_module_name(p): _imported_models_modules(p, modules) for p in paths}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for target in sorted(graph[module] - {module}):
            cycle = visit(target, [*path, module])
            if cycle:
                return cycle
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module, [])
        if cycle:
            return cycle
    return None


def test_no_import_cycle_among_models_modules() -> None:
    graph = _import_graph()
    assert f"{PACKAGE}.catalog" in graph and f"{PACKAGE}.factories" in graph
    assert f"{PACKAGE}.factories" in graph[f"{PACKAGE}.catalog"]  # the loaders are seen
    assert _find_cycle(graph) is None, " -> ".join(_find_cycle(graph) or [])


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _find_cycle(graph) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_cell_is_named_by_a_string() -> None:
    for path in PACKAGE_DIR.glob("*.py"):
        assert "importlib" not in path.read_text(), path.name


def test_catalog_is_read_without_torch() -> None:
    # What the API process reads: names, descriptions, layouts, options, counts, and
    # option validation (an unknown option fails before any builder is loaded).
    code = (
        "import sys\n"
        "import cellsearch.models, cellsearch.models.catalog, cellsearch.models.cell_spec\n"
        "from cellsearch.models import CELLS, UnknownOptionError, get_cell\n"
        "for spec in CELLS.values():\n"
        "    assert spec.title and spec.description and spec.state_layout\n"
        "    assert [option.name for option in spec.options] is not None\n"
        "    assert spec.param_count(3, 8, 2) > 0 and spec.fused in (True, False)\n"
        "try:\n"
        "    get_cell('gru').build(1, 2, forget_bias=1.0)\n"
        "except UnknownOptionError:\n"
        "    pass\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'torch'], 'torch imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", sorted(CELLS))
def test_stack_takes_the_spec_layout(name: str) -> None:
    spec = get_cell(name)
    stack = spec.build(3, 4, 2)
    assert stack.state_layout is spec.state_layout
    assert len(stack.initial_state(2)) == len(spec.state_layout)
    assert isinstance(stack, FusedStack) == spec.fused


@pytest.mark.parametrize(
    ("rnn", "layout"),
    [(nn.LSTM(2, 3, batch_first=True), ("h",)), (nn.GRU(2, 3, batch_first=True), ("h", "c"))],
)
def test_fused_stack_refuses_a_layout_of_the_wrong_length(
    rnn: nn.RNNBase, layout: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError, match="state tensor"):
        FusedStack(rnn, layout)


def test_loaded_builder_is_what_build_calls() -> None:
    for spec in CELLS.values():
        builder = spec.builder()
        assert callable(builder)
        torch.manual_seed(0)
        first = builder(spec.state_layout, 2, 3, 1, 0.0, {o.name: o.default for o in spec.options})
        torch.manual_seed(0)
        second = spec.build(2, 3)
        for a, b in zip(first.parameters(), second.parameters(), strict=True):
            assert torch.equal(a, b)
