"""The import graph of smc_lib: no cycle between its parts, and no arrow against the documented layering
(docs/ARCHITECTURE.md): a lower layer never imports a higher one, not even inside a function."""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "smc_lib"

# Lowest first. A part is a top-level module or subpackage of smc_lib; parts in one layer may not import
# each other either way unless listed in the same tuple in that order (left may be imported by right).
LAYERS = [
    ("errors",), ("registry", "runtime"), ("readers", "linalg", "selection", "scope", "schedules", "optim"),
    ("masks",), ("train",), ("methods", "tasks"), ("config",), ("analysis",), ("runs",), ("verify", "results"),
    ("sweep",), ("findings", "plots"), ("report", "datacheck"), ("cli",),
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def part(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else "__init__"


def imports() -> set[tuple[str, str]]:
    """(importing part, imported part) for every import in smc_lib, function-level ones included."""
    edges = set()
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG.parent).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        package = module if rel.name == "__init__" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    stem = ".".join(base + ([node.module] if node.module else []))
                    targets = [stem] if node.module else [f"{stem}.{a.name}" for a in node.names]
                elif node.module and node.module.startswith("smc_lib"):
                    targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("smc_lib")]
            for t in targets:
                src, dst = part(module), part(t)
                if src != dst and "__init__" not in (src, dst) and "_ray_path" not in (src, dst):
                    edges.add((src, dst))
    return edges


def test_every_part_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in PKG.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert parts - {"_ray_path"} <= set(RANK), f"add to LAYERS (and docs/ARCHITECTURE.md): {parts - set(RANK)}"


def test_no_import_goes_up_a_layer():
    up = sorted((a, b) for a, b in imports() if RANK[b] > RANK[a]
                or (RANK[b] == RANK[a] and LAYERS[RANK[a]].index(b) > LAYERS[RANK[a]].index(a)))
    assert not up, f"imports against the layering: {up}"


def test_no_cycle_between_parts():
    graph: dict[str, set[str]] = {}
    for a, b in imports():
        graph.setdefault(a, set()).add(b)
    seen, stack = set(), []

    def visit(n):
        if n in stack:
            raise AssertionError(f"import cycle: {' -> '.join(stack[stack.index(n):] + [n])}")
        if n in seen:
            return
        stack.append(n)
        for m in graph.get(n, ()):
            visit(m)
        stack.pop()
        seen.add(n)

    for n in list(graph):
        visit(n)


def test_the_library_never_imports_its_tools():
    """benchmarks/ and scripts/ sit beside smc_lib and import it, never the other way round (but for `smc bench`,
    which loads benchmarks/ from the checkout)."""
    tools = {"benchmarks", "scripts"}
    bad = []
    for path in PKG.rglob("*.py"):
        if path == PKG / "cli.py":
            tools_here = {"scripts"}
        else:
            tools_here = tools
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            bad += [f"{path.relative_to(PKG.parent)} imports {n}" for n in names if n.split(".")[0] in tools_here]
    assert not bad, bad
    assert not (PKG / "bench").exists() and not (PKG / "repro").exists()
