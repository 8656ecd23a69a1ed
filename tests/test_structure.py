"""The package keeps the shape docs/architecture.md describes.

Read from the source with ``ast`` (nothing is imported): imports point one way, no cycle forms
(an import inside a function counts; one under ``TYPE_CHECKING`` does not), each third-party
package stays in its room, and units stay short enough to read.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "omni_nb"

MAX_FUNCTION, MAX_CLASS, MAX_MODULE = 60, 300, 700

#: Which rooms may import each third-party package (a module name or a package prefix).
ROOMS = {
    "pandas": ("omni_nb.table", "omni_nb.views", "omni_nb._accessor"),
    "httpx": ("omni_nb.client",),
    "httpcore": ("omni_nb.client.transport",),  # its public network-backend API only
    "anyio": ("omni_nb._loop",),  # the blocking portal that runs every batch
    "ipywidgets": ("omni_nb.widget", "omni_nb.progress.live", "omni_nb.progress.run_view"),
    "IPython": ("omni_nb.magic", "omni_nb.progress.live"),
    "traitlets": ("omni_nb.magic", "omni_nb.widget"),
    # The ledger, and the rate-budget store every process of a key shares.
    "sqlite3": ("omni_nb.ledger", "omni_nb.ratelimit", "omni_nb._sqlite"),
}
FRONT_ENDS = ("omni_nb.magic", "omni_nb.widget", "omni_nb.cli")
#: Lower layers never reach up: (module prefix, what it must not import).
BELOW = {
    "omni_nb.errors": ("omni_nb.",),
    "omni_nb.config": ("omni_nb.client", "omni_nb.batch", "omni_nb.ledger", "omni_nb.table"),
    "omni_nb.ratelimit": ("omni_nb.client", "omni_nb.batch", "omni_nb.ledger", "omni_nb.table",
                          "omni_nb.rows", "omni_nb.progress", *FRONT_ENDS),
    "omni_nb.rows": ("omni_nb.client", "omni_nb.batch", "omni_nb.ledger", "omni_nb.table"),
    "omni_nb.client": ("omni_nb.batch", "omni_nb.ledger", "omni_nb.table", *FRONT_ENDS),
    "omni_nb.ledger": ("omni_nb.batch", *FRONT_ENDS),
    "omni_nb.table": ("omni_nb.batch", "omni_nb.ledger", *FRONT_ENDS),
    "omni_nb.batch": FRONT_ENDS,
    "omni_nb.progress": ("omni_nb.batch", "omni_nb.ledger", *FRONT_ENDS),
    "omni_nb.sandbox": ("omni_nb.",),  # the stand-in never shares code with what it checks
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _under_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _imports(name: str) -> Iterator[str]:
    """Every module ``name`` imports at run time (absolute names), in functions too."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if _under_type_checking(node, parents):
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            # `from . import run` imports the submodule (its package is already loading).
            yield from submodules if len(submodules) == len(node.names) else [base, *submodules]


def _internal(name: str) -> set[str]:
    """The omni_nb modules ``name`` imports (a package's ``__init__`` for a package)."""
    return {m for m in _imports(name) if m in MODULES and m != name}


def test_no_import_cycle() -> None:
    """No chain of run-time imports between omni_nb modules leads back to where it began."""
    graph = {name: _internal(name) - {"omni_nb"} for name in MODULES}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def test_no_module_imports_the_package_root() -> None:
    """Only the root imports its submodules; nothing below imports ``omni_nb`` itself (the
    root pulls in the lazy table of every public name)."""
    offenders = [name for name in MODULES if name != "omni_nb" and "omni_nb" in _imports(name)]
    assert offenders == []


@pytest.mark.parametrize("package", sorted(ROOMS))
def test_third_party_packages_stay_in_their_rooms(package: str) -> None:
    """A user who only wants the client never pays for widgets, and so on."""
    allowed = ROOMS[package]
    users = sorted(
        name for name in MODULES
        if any(m == package or m.startswith(package + ".") for m in _imports(name))
    )
    strays = [u for u in users if not any(u == a or u.startswith(a + ".") for a in allowed)]
    assert strays == []


@pytest.mark.parametrize("layer", sorted(BELOW))
def test_imports_point_one_way(layer: str) -> None:
    """Front ends -> batch/ledger -> client -> settings/errors, never back up."""
    forbidden = BELOW[layer]
    found = sorted(
        f"{name} -> {m}"
        for name in MODULES if name == layer or name.startswith(layer + ".")
        for m in _internal(name)
        if not (m == layer or m.startswith(layer + "."))
        and any(m == f or m.startswith(f if f.endswith(".") else f + ".") or m == f.rstrip(".")
                for f in forbidden)
    )
    assert found == []


def test_front_ends_never_import_each_other() -> None:
    """The magic, the form and the CLI each stand on the batch alone."""
    found = sorted(
        f"{name} -> {m}"
        for name in MODULES for front in FRONT_ENDS
        if name == front or name.startswith(front + ".")
        for m in _internal(name)
        if any(m == other or m.startswith(other + ".") for other in FRONT_ENDS if other != front)
    )
    assert found == []


def _code_lines(node: ast.AST, lines: list[str]) -> int:
    body = getattr(node, "body", [])
    doc: set[int] = set()
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        doc = set(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
    start, end = getattr(node, "lineno", 1), getattr(node, "end_lineno", len(lines))
    return sum(
        1 for i in range(start, end + 1)
        if i not in doc and lines[i - 1].strip() and not lines[i - 1].strip().startswith("#")
    )


def test_units_are_short() -> None:
    """Functions <= 60 lines of code, classes <= 300, modules <= 700 (docstrings, blank and
    comment-only lines not counted)."""
    too_long = []
    for name, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        if (n := _code_lines(tree, lines)) > MAX_MODULE:
            too_long.append(f"module {name}: {n}")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                limit, kind = MAX_FUNCTION, "def"
            elif isinstance(node, ast.ClassDef):
                limit, kind = MAX_CLASS, "class"
            else:
                continue
            if (n := _code_lines(node, lines)) > limit:
                too_long.append(f"{kind} {name}.{node.name}: {n}")
    assert too_long == []


def _defined_names(tree: ast.AST) -> set[str]:
    """Every name a module defines itself: functions, classes, assigned attributes and
    names (its own privates, and the dunder-like hooks it implements)."""
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            own.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            own.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
        elif isinstance(node, ast.alias):
            own.add(node.asname or node.name.split(".")[0])
    return own


def _reaches(path: Path) -> list[str]:
    """Where a module uses another module's or object's underscore name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = _defined_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            found += [f"{path.name}:{node.lineno} from {node.module} import {a.name}"
                      for a in node.names if a.name.startswith("_")
                      and not a.name.startswith("__")]
        if not (isinstance(node, ast.Attribute) and node.attr.startswith("_")):
            continue
        if node.attr.startswith("__") or node.attr.startswith("_repr_") or node.attr in own:
            continue
        base = node.value
        if isinstance(base, ast.Name) and base.id in ("self", "cls"):
            continue
        if isinstance(base, ast.Call) and getattr(base.func, "id", "") == "super":
            continue
        found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    return found


def test_no_module_reaches_into_another_ones_private_names() -> None:
    """A part talks to another through public names only: no ``obj._name`` on an object of
    another module (``self``/``cls`` and names the module defines itself are its own), no
    ``from x import _name``. Parts that must reach in are one part split in two."""
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) for hit in _reaches(path)]
    assert found == []


def test_the_private_name_check_sees_a_reach(tmp_path: Path) -> None:
    """The check above flags a reach into another object's private method and a private
    import, and lets a module's own privates pass."""
    sample = tmp_path / "sample.py"
    sample.write_text("from .form import _helper\n"
                      "def f(form):\n    form._say('x')\n"
                      "class A:\n    def _mine(self):\n        return self._mine, A._mine\n")
    assert [hit.split(" ", 1)[1] for hit in _reaches(sample)] == [
        "from form import _helper", "form._say"]
