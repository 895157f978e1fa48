"""The layout's dependency rules (docs/ARCHITECTURE.md), read from the source: no I/O, no imports run.

Every import counts, those inside functions too: a lazy import is still a
dependency, and a cycle hidden inside a function is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = {"streams.message", "streams.stage", "streams.pipeline", "streams.transition",
            "streams.transport", "streams.codec", "streams.delivery", "streams.errors",
            "streams.policy", "streams.names", "streams.bridge"}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return found


def _graph(package: str) -> dict[str, set[str]]:
    modules = {_module(p): p for p in (ROOT / package).rglob("*.py")}
    return {name: {i for i in _imports(path) if i in modules and i != name} for name, path in modules.items()}


STREAMS = _graph("streams")
ALL_IMPORTS = {name: _imports(ROOT / (name.replace(".", "/") + ".py")) if (ROOT / (name.replace(".", "/") + ".py")).exists()
               else _imports(ROOT / name.replace(".", "/") / "__init__.py") for name in STREAMS}


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_no_module_of_streams_is_part_of_an_import_cycle():
    cyclic = sorted(m for m in STREAMS if m in _reaches(STREAMS, m))
    assert cyclic == []


def test_streams_never_imports_processors_torch_or_triton():
    offenders = {m: sorted(i for i in imports if _under(i, "processors", "torch", "tritonclient", "triton_models"))
                 for m, imports in ALL_IMPORTS.items()}
    assert {m: i for m, i in offenders.items() if i} == {}


@pytest.mark.parametrize("module", sorted(m for m in STREAMS if _under(m, "streams.engine") or m in CONTRACT))
def test_the_contract_and_the_engine_know_no_transport_process_or_command(module: str):
    """They run over any transport: none of Redis, the service processes or the CLI reaches them."""
    reached = _reaches(STREAMS, module) | {module}
    forbidden = sorted(m for m in reached if _under(m, "streams.redis", "streams.service", "streams.cli",
                                                   "streams.testing"))
    redis_client = sorted(i for m in reached for i in ALL_IMPORTS[m] if _under(i, "redis"))
    assert (forbidden, redis_client) == ([], [])


def test_the_engine_package_and_the_transport_contract_exist_where_the_docs_say():
    for module in ("streams.engine.runner", "streams.transport", "streams.transition", "streams.redis.transport",
                   "streams.testing"):
        assert module in STREAMS, module
