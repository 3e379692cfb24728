"""The package's layout is its architecture (ARCHITECTURE.md): each subpackage imports
only the ones below it, nothing imports the kernel side but the kernel side itself,
the kernel side imports only the protocol, and no module imports itself in a circle.
Read from the source with ``ast``, lazy imports inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import grader

PACKAGE = Path(grader.__file__).parent
# Each part of the package and the parts it may import (besides itself).
ALLOWED = {
    "errors": set(),
    "protocol": set(),
    "kernel": {"protocol"},
    "spec": {"errors", "protocol"},
    "ingest": {"errors", "protocol", "spec"},
    "run": {"errors", "protocol", "spec"},
    "evaluation": {"errors", "protocol", "spec", "run"},
    "judge": {"root", "errors", "protocol", "spec", "ingest", "run", "evaluation"},
    "batch": {"root", "errors", "protocol", "spec", "ingest", "run", "judge"},
    "reports": {"root", "errors", "protocol", "spec", "ingest", "judge"},
    "assign": {"errors", "protocol", "spec", "ingest", "run", "evaluation", "judge"},
    "tools": {"root", "errors", "protocol", "spec", "run", "evaluation", "judge", "batch"},
    "platforms": {"root", "errors", "protocol", "spec", "ingest", "run", "judge", "batch", "reports"},
    "review": {"root", "errors", "protocol", "spec", "ingest", "judge", "batch", "reports"},
    "cli": {"root", "errors", "protocol", "spec", "ingest", "run", "evaluation", "judge", "batch", "reports", "tools"}
    | {"platforms", "review", "assign"},
    # The Check button's server side runs grader check as a command: it imports none of the rest
    "jupyter": set(),
    "root": {"judge"},
    "__main__": {"cli"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    """``grader.judge.checks`` -> ``judge``; ``grader`` -> ``root``; ``grader.cli`` -> ``cli``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "root"


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The grader modules ``path`` imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from grader.judge import checks` imports grader.judge.checks when that is a module
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [name if name in modules else node.module for name in names]
        else:
            continue
        found.update(name for name in names if name == "grader" or name.startswith("grader."))
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: imported_modules(path, set(paths)) - {name} for name, path in paths.items()}


def test_every_module_belongs_to_a_known_part():
    unknown = sorted({part_of(name) for name in import_graph()} - set(ALLOWED))
    assert not unknown, f"add these parts to ALLOWED and to ARCHITECTURE.md: {unknown}"


def test_each_part_imports_only_the_parts_below_it():
    wrong = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for target in targets
        if part_of(target) != part_of(module) and part_of(target) not in ALLOWED[part_of(module)]
    ]
    assert not wrong, "\n".join(wrong)


def test_the_kernel_side_and_the_host_side_share_only_the_protocol():
    graph = import_graph()
    host_imports_kernel = [
        f"{module} imports {target}"
        for module, targets in graph.items()
        if part_of(module) != "kernel"
        for target in targets
        if part_of(target) == "kernel"
    ]
    kernel_imports_host = [
        f"{module} imports {target}"
        for module, targets in graph.items()
        if part_of(module) == "kernel"
        for target in targets
        if part_of(target) not in ("kernel", "protocol")
    ]
    assert not host_imports_kernel and not kernel_imports_host, host_imports_kernel + kernel_imports_host


def test_no_module_imports_itself_through_others():
    graph = import_graph()
    cycles: list[list[str]] = []
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_check_finds_a_cycle_and_a_boundary_crossing(tmp_path, monkeypatch):
    """The checks above can fail: a made-up package with both faults."""
    fake = tmp_path / "grader"
    (fake / "kernel").mkdir(parents=True)
    (fake / "judge").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "kernel" / "__init__.py").write_text("from grader.judge import facts\n")
    (fake / "judge" / "__init__.py").write_text("")
    (fake / "judge" / "facts.py").write_text("def f():\n    import grader.kernel\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGE"]), "PACKAGE", fake)
    graph = import_graph()
    assert graph["grader.kernel"] == {"grader.judge.facts"}
    assert graph["grader.judge.facts"] == {"grader.kernel"}
    try:
        test_no_module_imports_itself_through_others()
    except AssertionError as error:
        assert "grader.judge.facts -> grader.kernel -> grader.judge.facts" in str(error)
    else:
        raise AssertionError("the cycle was not found")
    try:
        test_the_kernel_side_and_the_host_side_share_only_the_protocol()
    except AssertionError as error:
        assert "grader.kernel imports grader.judge.facts" in str(error)
    else:
        raise AssertionError("the boundary crossing was not found")
