"""The declared dependencies match the code (issue 15): what ``src`` imports is a runtime
dependency, every runtime dependency is used, ``pip install sessionward`` declares no test tool,
and what the tests and benchmarks import is declared in the runtime or ``dev`` lists.

Imports are read from the source (``ast``), top-level names mapped to the installed
distributions that provide them (``importlib.metadata.packages_distributions``).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

USED_WITHOUT_IMPORT = {
    "uvloop": "uvicorn's event loop, chosen by name (server.http_config: loop='uvloop')",
    "httptools": "uvicorn's HTTP parser behind api/http_guard (uvicorn.protocols.http.httptools_impl)",
    "snekmate": "imported by the Vyper sources of sessionward/contracts",
}
"""Runtime dependencies the Python code does not import by their own name, and why."""

TEST_TOOLS = {
    "pytest",
    "pytest-xdist",
    "hypothesis",
    "ruff",
    "mypy",
    "schemathesis",
    "playwright",
    "py-spy",
    "import-linter",
    "cedarpy",
}


@cache
def _provided() -> dict[str, list[str]]:
    """Top-level module -> the installed distributions providing it."""
    return dict(packages_distributions())


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def _declared() -> tuple[frozenset[str], frozenset[str]]:
    """The runtime and ``dev`` distribution names of pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    def names(requirements: list[str]) -> frozenset[str]:
        found = (re.match(r"[A-Za-z0-9._-]+", r) for r in requirements)
        return frozenset(_normal(m.group(0)) for m in found if m)

    return names(project["dependencies"]), names(project["optional-dependencies"]["dev"])


@cache
def _third_party_imports(*folders: str) -> dict[str, set[str]]:
    """Top-level module imported -> files importing it, for modules an installed distribution
    provides (the project's own modules and test helpers are not distributions)."""
    provided = _provided()
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top in sys.stdlib_module_names or top == "sessionward":
                        continue
                    if top in provided:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def _undeclared(imports: dict[str, set[str]], declared: frozenset[str]) -> dict[str, list[str]]:
    provided = _provided()
    return {
        module: sorted(files)
        for module, files in imports.items()
        if not {_normal(d) for d in provided[module]} & declared
    }


def test_every_third_party_import_in_src_is_a_runtime_dependency() -> None:
    runtime, _ = _declared()
    assert _undeclared(_third_party_imports("src"), runtime) == {}


def test_every_runtime_dependency_is_imported_by_src_or_named_as_used_without_import() -> None:
    runtime, _ = _declared()
    provided = _provided()
    imported = {_normal(d) for module in _third_party_imports("src") for d in provided[module]}
    unused = runtime - imported - set(USED_WITHOUT_IMPORT)
    assert unused == set()


def test_installing_the_package_declares_no_test_tool() -> None:
    runtime, dev = _declared()
    assert runtime & TEST_TOOLS == set()
    assert TEST_TOOLS - dev == set()


def test_tests_and_benchmarks_import_only_declared_packages() -> None:
    runtime, dev = _declared()
    assert _undeclared(_third_party_imports("tests", "bench"), runtime | dev) == {}
