"""A reading of dbsl's imports (module-level and function-local alike): no cycle, and the layers import one way
(config -> plan -> executors -> record -> report; the commands, dbsl.cli, on top: no library module imports them).

A library module's ``if __name__ == "__main__":`` block is not part of its imports: it runs only as the program
(``python -m dbsl.plan`` and the like, shims onto the command in dbsl.cli)."""
from __future__ import annotations

import ast
from pathlib import Path

import dbsl

ROOT = Path(dbsl.__file__).parent


def _is_main_block(node: ast.AST) -> bool:
    """``if __name__ == "__main__":``"""
    test = getattr(node, "test", None)
    return (isinstance(node, ast.If) and isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__" and len(test.comparators) == 1
            and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value == "__main__")


def _nodes(tree: ast.Module):
    """Every node of a module except those of its ``if __name__ == "__main__":`` blocks."""
    todo = [n for n in tree.body if not _is_main_block(n)]
    while todo:
        node = todo.pop()
        yield node
        todo.extend(ast.iter_child_nodes(node))


def module_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in _nodes(ast.parse(path.read_text())):
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
    "dbsl.ps": ("dbsl.forecast", "dbsl.report", "dbsl.one_run", "dbsl.run", "dbsl.sweep", "dbsl.tune",
                "dbsl.calibration"),
    "dbsl.forecast": ("dbsl.report", "dbsl.cli", "dbsl.one_run", "dbsl.sweep", "dbsl.tune", "dbsl.sinks"),
    "dbsl.record": ("dbsl.ps", "dbsl.report", "dbsl.one_run", "dbsl.monitor", "dbsl.sweep", "dbsl.tune"),
    "dbsl.monitor": ("dbsl.ps", "dbsl.report", "dbsl.one_run"),
    "dbsl.sinks": ("dbsl.report", "dbsl.cli"),
    "dbsl.report": ("dbsl.ps", "dbsl.one_run", "dbsl.run", "dbsl.monitor", "dbsl.tune", "dbsl.sweep", "dbsl.cli",
                    "dbsl.sinks"),
}
COMMANDS = "dbsl.cli"  # on top: imported by no module outside it, but for the shims
SHIMS = ("dbsl.run",)  # python -m dbsl.run, a documented command form: all of it a shim onto dbsl.cli.run


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def wrong_imports(graph: dict[str, set[str]], forbidden: dict = FORBIDDEN, shims=SHIMS) -> list[tuple[str, str]]:
    """(module, what it imports) for every import that reaches up a layer, or into the commands from outside them."""
    wrong = set()
    for m, targets in graph.items():
        for t in targets:
            if any(_under(m, layer) and any(_under(t, b) for b in banned) for layer, banned in forbidden.items()):
                wrong.add((m, t))
            if _under(t, COMMANDS) and not _under(m, COMMANDS) and m not in shims:
                wrong.add((m, t))
    return sorted(wrong)


def test_the_layer_check_flags_a_sink_that_imports_the_report_and_a_library_that_imports_a_command():
    graph = {"dbsl.sinks.wandb": {"dbsl.report.claims", "dbsl.record"}, "dbsl.report.claims": {"dbsl.record"},
             "dbsl.record": set(), "dbsl.plan": {"dbsl.cli.plan"}, "dbsl.cli.plan": {"dbsl.plan"},
             "dbsl.run": {"dbsl.cli.run"}, "dbsl.cli.run": set(), "dbsl.report.x": {"dbsl.sinks.wandb"}}
    assert wrong_imports(graph) == [("dbsl.plan", "dbsl.cli.plan"), ("dbsl.report.x", "dbsl.sinks.wandb"),
                                    ("dbsl.sinks.wandb", "dbsl.report.claims")]
    assert wrong_imports({"dbsl.sinks.wandb": {"dbsl.record"}, "dbsl.record": set()}) == []


def test_a_main_block_is_not_an_import(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    for name in ("__init__", "lib", "cli", "used"):
        (package / f"{name}.py").write_text("")
    (package / "lib.py").write_text('from .used import x\n\nif __name__ == "__main__":\n    from .cli import main\n')
    assert module_graph(package)["pkg.lib"] == {"pkg.used"}


def test_layers_import_one_way():
    graph = module_graph()
    assert "dbsl.cli.run" in graph["dbsl.run"] and "dbsl.cli.plan" not in graph["dbsl.plan"]  # the shims are read
    assert wrong_imports(graph) == []


def test_the_longest_chain_of_module_level_imports_is_at_most_nine_edges():
    """Module-level imports only (a function's own imports and annotation-only ``if TYPE_CHECKING`` imports do not
    load a module at import time). Before issue 28 the longest ran 13 edges: report -> build -> study -> html ->
    figures -> protocol -> tables -> params -> plan -> compose -> paths -> config -> errors."""
    from test_report_structure import longest_chain, module_imports

    chain = longest_chain(module_imports())
    assert len(chain) - 1 <= 9, " -> ".join(chain)
