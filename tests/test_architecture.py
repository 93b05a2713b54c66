"""The package import rules (the README's architecture section), checked on the source."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "knowledge", "generation")
# generation.models may use torch, the standard library, and safetensors (the checkpoint format).
MODELS_ALLOWED = {"torch", "safetensors", "generation"}


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Absolute module names imported anywhere in a source file (relative imports resolved)."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize(
    ("package", "forbidden"), [("knowledge", {"bot", "generation"}), ("generation", {"bot", "knowledge"})]
)
def test_services_never_import_bot_or_each_other(package: str, forbidden: set[str]) -> None:
    offences = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sources(package)
        for name in imported_modules(path)
        if top(name) in forbidden
    ]
    assert offences == []


@pytest.mark.parametrize(
    ("service", "allowed"),
    [
        ("generation", ("generation.api", "generation.client", "generation.settings")),
        ("knowledge", ("knowledge.api", "knowledge.service", "knowledge.settings")),
    ],
)
def test_bot_reaches_a_service_only_through_its_public_modules(
    service: str, allowed: tuple[str, ...]
) -> None:
    offences = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sources("bot")
        for name in imported_modules(path)
        if top(name) == service and not name.startswith(allowed) and name != service
    ]
    assert offences == []


def test_generation_models_import_only_torch_and_stdlib() -> None:
    offences = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / "generation" / "models").rglob("*.py"))
        for name in imported_modules(path)
        if name and top(name) not in sys.stdlib_module_names and top(name) not in MODELS_ALLOWED
    ]
    assert offences == []
    internal = [
        name
        for path in sorted((ROOT / "generation" / "models").rglob("*.py"))
        for name in imported_modules(path)
        if top(name) == "generation" and not name.startswith("generation.models")
    ]
    assert internal == []


def test_generation_train_and_service_never_import_each_other() -> None:
    other_side = {"generation.train": "generation.service", "generation.service": "generation.train"}
    offences = [
        f"{path.relative_to(ROOT)} imports {name}"
        for side, other in other_side.items()
        for path in sources(side.replace(".", "/"))
        for name in imported_modules(path)
        if name == other or name.startswith(other + ".")
    ]
    assert offences == []


def generation_import_graph() -> dict[str, set[str]]:
    """Each generation module -> the generation modules it imports (lazy imports included)."""
    modules = {}
    for path in sources("generation"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in imported_modules(path):
            while imported and imported not in modules:  # `from package import name` names no module
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def test_generation_has_no_import_cycles() -> None:
    graph = generation_import_graph()
    done: set[str] = set()

    def cycle_from(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for target in sorted(graph[module]):
            found = cycle_from(target, [*path, module])
            if found:
                return found
        done.add(module)
        return None

    assert [cycle for module in sorted(graph) if (cycle := cycle_from(module, []))] == []


def test_generation_api_stays_light() -> None:
    tops = {top(name) for name in imported_modules(ROOT / "generation" / "api.py")}
    assert not tops & {"torch", "numpy", "safetensors"}


def test_checker_sees_a_violation(tmp_path: Path) -> None:
    """Guard against a checker that can never fail."""
    bad = tmp_path / "knowledge" / "probe.py"
    bad.parent.mkdir()
    bad.write_text("from bot import settings\nfrom . import ingest\n", encoding="utf-8")
    names = imported_modules(bad, root=tmp_path)
    assert "bot.settings" in names
    assert "knowledge.ingest" in names


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_cycles(root: Path, packages: tuple[str, ...]) -> list[list[str]]:
    """Every cycle among the modules of `packages` (type-checking imports count: they still tie the
    modules together for a reader)."""
    modules = {
        module_name(path, root): path
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
    }
    graph = {
        name: sorted(
            {target for target in imported_modules(path, root) if target in modules and target != name}
        )
        for name, path in modules.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in graph[name]:
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    return cycles


def test_no_import_cycles() -> None:
    assert import_cycles(ROOT, PACKAGES) == []


def test_cycle_checker_sees_a_cycle(tmp_path: Path) -> None:
    """Guard against a checker that can never fail."""
    package = tmp_path / "bot"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "a.py").write_text("from bot import b\n", encoding="utf-8")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.a import x\n", encoding="utf-8"
    )
    assert import_cycles(tmp_path, ("bot",)) == [["bot.a", "bot.b", "bot.a"]]


def test_the_store_is_the_bottom_layer() -> None:
    """bot.store imports nothing of the bot above it (knowledge.api's Source is its row type)."""
    offences = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / "bot" / "store").rglob("*.py"))
        for name in imported_modules(path)
        if top(name) == "bot" and not name.startswith("bot.store") and name != "bot"
    ]
    assert offences == []
