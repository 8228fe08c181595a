"""The shape of dbsl/report (issue 28): no function longer than 50 lines, and report modules that do not import each
other in long chains (module-level imports: the dependencies a module really has)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "dbsl" / "report"
LIMIT = 50  # lines from the def line to the body's last line; decorators excluded, docstrings included


def long_functions(source: str, limit: int = LIMIT) -> list[tuple[str, int, int]]:
    """(name, def line, length) of every function, method and nested function in ``source`` longer than ``limit``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > limit:
                found.append((node.name, node.lineno, length))
    return found


def test_the_length_check_counts_from_the_def_line_to_the_bodys_end():
    body = "\n".join(f"    x{i} = {i}" for i in range(48))
    fifty = f'def f():\n    """Doc."""\n{body}\n'  # the def line, the docstring and 48 lines
    assert long_functions(fifty) == [] and long_functions(fifty, limit=49) == [("f", 1, 50)]
    fifty_one = f'@decorator\n{fifty}    return x0\n'  # the decorator does not count
    assert long_functions(fifty_one) == [("f", 2, 51)]


def test_the_length_check_sees_methods_and_nested_functions():
    body = "\n".join(f"            y{i} = {i}" for i in range(50))
    source = f"class C:\n    def method(self):\n        def inner():\n{body}\n        return inner\n"
    assert [name for name, _, _ in long_functions(source)] == ["method", "inner"]


@pytest.mark.parametrize("path", sorted(REPORT.glob("*.py")), ids=lambda p: p.name)
def test_no_report_function_is_longer_than_fifty_lines(path):
    assert long_functions(path.read_text()) == []


def top_level(body: list) -> list:
    """The statements that run when a module is imported: its body, with the bodies of top-level ``try`` and ``if``
    blocks (both branches) but not of ``if TYPE_CHECKING:`` (annotations only) or ``if __name__ == "__main__":`` (a
    ``python -m`` form, not an import)."""
    out = []
    for node in body:
        if isinstance(node, ast.If) and ("TYPE_CHECKING" in ast.unparse(node.test)
                                         or "__name__" in ast.unparse(node.test)):
            continue
        if isinstance(node, (ast.If, ast.Try)):
            inner = node.body + node.orelse + getattr(node, "finalbody", [])
            inner += [s for h in getattr(node, "handlers", []) for s in h.body]
            out += top_level(inner)
        else:
            out.append(node)
    return out


def module_imports(root: Path = ROOT, package: str = "dbsl") -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports at module level (``from . import x`` names the module x)."""
    files = {}
    for path in (root / package).rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for module, path in files.items():
        here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        targets = set()
        for node in top_level(ast.parse(path.read_text()).body):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = ".".join((here[:len(here) - node.level + 1] if node.level else [])
                                + (node.module.split(".") if node.module else []))
                targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names}
        graph[module] = {t for t in targets if t in files and t != module}
    return graph


def longest_chain(graph: dict[str, set[str]], within: str = "") -> list[str]:
    """The longest path of imports between modules whose names start with ``within`` (the graph has no cycles)."""
    memo: dict[str, list[str]] = {}

    def longest(module: str) -> list[str]:
        if module not in memo:
            after = [longest(t) for t in sorted(graph[module]) if t.startswith(within)]
            memo[module] = [module] + max(after, key=len, default=[])
        return memo[module]

    return max((longest(m) for m in sorted(graph) if m.startswith(within)), key=len)


def test_the_chain_finder_finds_the_longest_chain():
    graph = {"a": {"b", "c"}, "b": {"d"}, "c": set(), "d": {"x.e"}, "x.e": set()}
    assert longest_chain(graph) == ["a", "b", "d", "x.e"]
    assert longest_chain(graph, within="x") == ["x.e"]


def test_report_modules_import_each_other_in_short_chains():
    """The command, the build, its sections, the tables and figures they show, what those compute on (the endpoint,
    the realised schedule), the collected records: e.g. __main__ -> build -> sections -> claims -> endpoint ->
    collect. (Before issue 28 the report's own chain was 8 deep: build -> study -> html -> figures -> protocol ->
    tables -> params, ...)"""
    chain = longest_chain(module_imports(), within="dbsl.report")
    assert len(chain) - 1 <= 5, " -> ".join(chain)
