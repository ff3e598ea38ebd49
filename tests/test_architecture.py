"""The layout's rules, read from the source: dependencies point one way (devstore → webhooks →
segments → shopseg.shopify, and inside segments down the order of its domains), no import cycle, no
function-local import of the project's own code (outside AppConfig.ready, where Django wants it), and
modules stay small."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("segments", "webhooks", "shopseg", "devstore")
MAX_LINES = 400
# Modules still over MAX_LINES, with their size when the rule came in: each may only shrink, and
# leaves this list once split. Migrations are generated, not read.
STILL_TO_SPLIT: dict[str, int] = {}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imported(node: ast.AST) -> list[str]:
    """The project modules an import statement names (`from a import b` names a.b when b is a module)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    else:
        return []
    return [name for name in names if name in MODULES]


def _imports(path: Path, *, top_level: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level else ast.walk(tree)
    return {name for node in nodes for name in _imported(node)}


def _package(module: str) -> str:
    return "shopseg.shopify" if module.startswith("shopseg.shopify") else module.split(".")[0]


@pytest.mark.parametrize("importer, forbidden", [
    ("segments", ("webhooks", "devstore")),
    ("webhooks", ("devstore",)),
    ("shopseg", ("segments", "devstore")),
    ("shopseg.shopify", ("segments", "webhooks", "devstore", "shopseg")),
])
def test_dependencies_point_one_way(importer, forbidden):
    wrong = sorted(f"{module} imports {name}" for module, path in MODULES.items() if _package(module) == importer
                   or (importer == "shopseg" and module.startswith("shopseg.") and _package(module) == "shopseg")
                   for name in _imports(path, top_level=False)
                   if _package(name) in forbidden and not (importer == "shopseg.shopify" and
                                                           _package(name) == "shopseg.shopify"))
    # The project's WSGI entry point is where the webhook fast path goes in front of Django.
    wrong = [w for w in wrong if not w.startswith("shopseg.wsgi imports webhooks")]
    assert wrong == []


# segments' domains from the bottom up, in the order the data flows: a domain imports only those
# before it. A domain above is reached by a task's dotted name (shopseg.enqueue) or by registering
# with the one below (segments.privacy.compliance's erasers).
DOMAINS = ("engine", "shops", "mirror", "storefront", "predictions", "membership", "tags", "metrics", "experiences",
           "measurement", "privacy", "web")
# The imports that go up, each a flow one module leads across domains; a new one fails the test.
UPWARD = {
    ("segments.shops.install", "segments.mirror.backfill"): "installing an app starts its store copy's backfill",
    ("segments.shops.preferences", "segments.tags.models"): "a tag prefix or holdout tag is checked as a tag",
    ("segments.shops.preferences", "segments.tags.naming"): "a new prefix must not make two segments' tags clash",
    ("segments.shops.preferences", "segments.tags.plans"): "a new prefix rewrites every tag the app owns",
    ("segments.membership.definitions", "segments.tags.naming"): "a segment's handle must give a usable, unique tag",
}


def _domain(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "segments" and len(parts) > 2 and parts[1] in DOMAINS else None


def test_segments_domains_import_only_the_domains_below_them():
    upward = set()
    for module, path in MODULES.items():
        mine = _domain(module)
        for name in _imports(path, top_level=False):
            theirs = _domain(name)
            if mine and theirs and DOMAINS.index(theirs) > DOMAINS.index(mine):
                upward.add((module, ".".join(name.split(".")[:3])))
    assert sorted(upward - set(UPWARD)) == []
    assert sorted(set(UPWARD) - upward) == []       # gone: drop it from the list


def test_no_import_cycle():
    graph = {module: _imports(path, top_level=True) - {module} for module, path in MODULES.items()}
    state: dict[str, int] = {}          # 1: on the current path, 2: done
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for name in sorted(graph[module]):
            if state.get(name) == 1:
                cycles.append(path[path.index(name):] + [name])
            elif name not in state:
                visit(name, path + [name])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_no_function_local_import_of_project_code_outside_app_ready():
    """A function-local import hides a cycle; a service schedules its tasks by name instead."""
    found = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) or function.name == "ready":
                continue
            for node in ast.walk(function):
                if _imported(node):
                    found.append(f"{module}:{node.lineno}")
    assert sorted(set(found)) == []


def test_no_module_grows_past_the_limit():
    """The production packages' modules, and the tests' and benchmarks' too (migrations are generated)."""
    paths = [*MODULES.values(), *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]
    sizes = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in paths}
    over = {name: lines for name, lines in sizes.items() if lines > MAX_LINES}
    assert {name: lines for name, lines in over.items() if name not in STILL_TO_SPLIT} == {}
    assert {name: lines for name, lines in over.items() if lines > STILL_TO_SPLIT[name]} == {}
    assert [name for name in STILL_TO_SPLIT if sizes.get(name, 0) <= MAX_LINES] == []   # split: drop it from the list
