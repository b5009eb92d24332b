"""The code's shape (issue 54), checked so it stays: one PSNR, and (below) layers that point one
way. Reads the source with ast; imports nothing heavy."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGES = ("edge_ae", "training", "tools")


def sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_psnr_is_defined_once():
    """Every PSNR in training, the tools and the ARM check is training.metrics' formula."""
    owners = []
    for path in sources():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "log10":
                owners.append(str(path.relative_to(ROOT)))
    assert sorted(set(owners)) == ["training/metrics.py"]


def test_onnxruntime_sessions_come_from_one_factory():
    """Tools, exports and the runtime build sessions with edge_ae.model.loading.make_session, so
    a benchmark times the session options a user gets (no spin-waiting, the same threads)."""
    owners = set()
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("InferenceSession", "SessionOptions"):
                owners.add(str(path.relative_to(ROOT)))
    assert owners == {"edge_ae/model/loading.py"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports, anywhere in the file (function-level and
    TYPE_CHECKING imports too: a cycle is a cycle in the design even when it loads)."""
    modules = {module_name(p): p for p in sources()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                found = [f"{base}.{a.name}" for a in node.names] + [base]
            else:
                continue
            for target in found:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    graph = import_graph()
    assert "edge_ae.anomaly.fit" in graph["edge_ae.anomaly.detector"]  # the graph sees lazy imports
    assert cycles(graph) == []


def test_extension_points_are_exported():
    """What a user extends or configures is importable from the package itself."""
    import edge_ae
    from edge_ae.anomaly.fit import FitOptions
    from edge_ae.video.sinks import Output, Sink

    assert (edge_ae.Sink, edge_ae.Output, edge_ae.FitOptions) == (Sink, Output, FitOptions)
    assert {"Sink", "Output", "FitOptions", "make_session"} <= set(edge_ae.__all__)


TASKS = ("edge_ae.denoise", "edge_ae.anomaly", "edge_ae.autoencoder", "edge_ae.video", "edge_ae.jobs", "edge_ae.cli")


def test_the_io_layer_imports_no_task_package():
    """edge_ae/files/ (reading, writing, planning) sits below the tasks; the batch runners that
    call a task live above them, in edge_ae/jobs/."""
    graph = import_graph()
    upward = {m: sorted(t for t in targets if t.startswith(TASKS) or t == "edge_ae")
              for m, targets in graph.items() if m.startswith("edge_ae.files")}
    assert {m: t for m, t in upward.items() if t} == {}


def test_stream_takes_option_objects_not_a_long_list():
    """Stream and stream() take at most 10 typed parameters; the rest are option objects."""
    import inspect

    from edge_ae.video.stream import Stream, stream

    for fn in (Stream.__init__, stream):
        params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
        assert len(params) <= 10
        assert all(p.kind is not inspect.Parameter.VAR_KEYWORD and p.annotation is not inspect.Parameter.empty
                   for p in params)
