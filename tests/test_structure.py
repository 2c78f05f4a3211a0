"""The layout rules of docs/ARCHITECTURE.md, checked on the code (issue M): no import circle among the
project's modules, no module importing another's private name, report.json read in one module, every
frequency table in core/frequency.py, and no file in core/ much over 450 lines."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 460


def _modules() -> dict[str, Path]:
    out = {}
    for base in ("core", "studio"):
        for path in (ROOT / base).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, list[str], bool]]:
    """(module imported, names taken from it, at module level) for each import of the project's modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(map(id, tree.body))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [a.name for a in node.names]
            # `from core.board import weblink` imports the submodule, not a name of the package
            subs = [n for n in names if f"{node.module}.{n}" in modules]
            for n in subs:
                found.append((f"{node.module}.{n}", [], id(node) in top))
            rest = [n for n in names if n not in subs]
            if node.module in modules and (rest or not subs):
                found.append((node.module, rest, id(node) in top))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name in modules:
                    found.append((a.name, [], id(node) in top))
    return found


def _package_of(name: str, modules: dict[str, Path]) -> str | None:
    return name if modules[name].name == "__init__.py" else None


def test_no_import_circle():
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for target, _, _ in _imports(path, modules):
            # A package importing its own submodules (its re-exports) is how a package reads, not a circle.
            if modules[name].name == "__init__.py" and target.startswith(name + "."):
                continue
            if target != name:
                graph[name].add(target)
    # A module importing a package depends on the package's __init__, which depends on its submodules.
    seen: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(m: str) -> None:
        seen[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if seen.get(n) == 1:
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in seen:
                visit(n)
        stack.pop()
        seen[m] = 2

    for m in sorted(graph):
        if m not in seen:
            visit(m)
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles[:5])


def test_no_module_imports_another_modules_private_name():
    modules = _modules()
    bad = []
    for name, path in modules.items():
        for target, names, _ in _imports(path, modules):
            bad += [f"{name} imports {target}.{n}" for n in names if n.startswith("_") and target != name]
    assert not bad, bad


def test_report_json_is_parsed_in_one_module():
    readers = []
    for path in (ROOT / "core").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        # reading it: load_json / json.loads on a report.json path outside the export folder module
        if re.search(r"(load_json|json\.loads|read_text)\([^)]*(report\.json|REPORT\b)", text):
            readers.append(str(path.relative_to(ROOT)))
    assert readers == ["core/export/folder.py"], readers


def test_frequency_rules_live_in_core_frequency():
    tables = []
    for path in list((ROOT / "core").rglob("*.py")) + list((ROOT / "pages").glob("*.py")):
        if path.name == "frequency.py":
            continue
        text = path.read_text(encoding="utf-8")
        # an alias table: a literal mapping pandas' base aliases to something
        if re.search(r"""["'](min|T)["']\s*:\s*.*["'](h|H)["']\s*:""", text):
            tables.append(str(path.relative_to(ROOT)))
    assert not tables, tables


def test_no_core_file_much_over_450_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "core").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, long
