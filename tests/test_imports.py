"""A reading of dbsl's imports (module-level and function-local alike): no cycle, and the layers import one way
(config -> plan -> executors -> record -> report; the commands on top)."""
from __future__ import annotations

import ast
from pathlib import Path

import dbsl

ROOT = Path(dbsl.__file__).parent


def module_graph() -> dict[str, set[str]]:
    modules = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
                found = subs or ([target] if target in modules else [])
            elif isinstance(node, ast.Import):
                found = [a.name for a in node.names if a.name in modules]
            else:
                continue
            graph[name].update(t for t in found if t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle():
    graph = module_graph()
    assert "dbsl.ps.remote_server" in graph["dbsl.ps.remote_worker"]  # the graph is read (a known edge)
    assert cycles(graph) == []


# module prefix -> prefixes it must not import (a lower layer never reaches up)
FORBIDDEN = {
    "dbsl.config": ("dbsl.plan", "dbsl.ps", "dbsl.record", "dbsl.report", "dbsl.one_run", "dbsl.run"),
    "dbsl.identity": ("dbsl.plan", "dbsl.ps", "dbsl.record", "dbsl.report", "dbsl.one_run"),
    "dbsl.timemodel": ("dbsl.plan", "dbsl.ps", "dbsl.record", "dbsl.report", "dbsl.one_run"),
    "dbsl.plan": ("dbsl.ps", "dbsl.record", "dbsl.report", "dbsl.one_run", "dbsl.monitor", "dbsl.sweep",
                  "dbsl.tune"),
    "dbsl.ps": ("dbsl.report", "dbsl.one_run", "dbsl.run", "dbsl.sweep", "dbsl.tune", "dbsl.calibration"),
    "dbsl.record": ("dbsl.ps", "dbsl.report", "dbsl.one_run", "dbsl.monitor", "dbsl.sweep", "dbsl.tune"),
    "dbsl.monitor": ("dbsl.ps", "dbsl.report", "dbsl.one_run"),
    "dbsl.report": ("dbsl.ps", "dbsl.one_run", "dbsl.run", "dbsl.monitor", "dbsl.tune", "dbsl.sweep"),
}


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_layers_import_one_way():
    graph = module_graph()
    wrong = [(m, t) for m, targets in graph.items() for t in targets
             for layer, banned in FORBIDDEN.items() if _under(m, layer) and any(_under(t, b) for b in banned)]
    assert wrong == []
