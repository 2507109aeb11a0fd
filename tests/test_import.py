"""The package imports light: no laion_clap, open_clip or transformers at import."""
import subprocess
import sys


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, asteroid_audiosep; "
        "heavy = [m for m in ('laion_clap', 'clap_module', 'open_clip', 'transformers') if m in sys.modules]; "
        "print(','.join(heavy)); "
        "assert asteroid_audiosep.AudioSep.__name__ == 'AudioSep'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def _import_graph():
    """Module -> package modules it imports (at module level or inside functions), from the source."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "asteroid_audiosep"
    modules = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(base + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def test_no_import_cycle_among_the_package_modules():
    """Every import inside the package points one way (an explicit import of a package's
    ``__init__`` counts; the implicit import of a parent package does not)."""
    graph = _import_graph()
    assert "asteroid_audiosep.models.audiosep" in graph and "asteroid_audiosep.official" in graph
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_graph_sees_a_cycle_when_there_is_one():
    graph = _import_graph()
    # The edge the redesign removed: models -> official (and official imports models, through
    # the layouts it recognises).
    assert "asteroid_audiosep.layouts" in graph["asteroid_audiosep.official"]
    assert "asteroid_audiosep.models" in graph["asteroid_audiosep.layouts"]
    assert "asteroid_audiosep.official" not in graph["asteroid_audiosep.models.audiosep"]


def test_no_test_module_imports_another():
    """Shared fixtures live in conftest.py, shared helpers in tests/helpers.py."""
    import re
    from pathlib import Path

    offenders = []
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        for line in path.read_text().splitlines():
            if re.match(r"\s*(from|import)\s+(test_\w+|conftest)\b", line):
                offenders.append(f"{path.name}: {line.strip()}")
    assert not offenders, offenders
