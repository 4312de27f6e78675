"""The package's layering, checked by reading its source (no import runs).

Rules (issue 19):

* A subpackage (a folder of ``sklearn_cf`` with an ``__init__.py``:
  ``strategies``, ``datasets``, ``compare``, ``metrics``,
  ``model_selection``, ``_estimator``, ...) is entered through its front
  door only: from outside it, a module imports names without a leading
  underscore, and only from the subpackage's ``__init__`` or from one of
  its modules whose name has no leading underscore.
* Root-level modules (``sklearn_cf/_data.py``, ``_validation.py``,
  ``_atomic.py``, ...) are shared internals: their public names may be
  imported anywhere, their ``_private`` names not from a subpackage.
* No import circle among the package's modules, counting every import
  statement (module level and inside functions). An import of a package
  is an edge to its ``__init__``; the implicit import of parent packages
  is not an edge.
"""

import ast
import pathlib
from collections import deque

import pytest

PACKAGE = "sklearn_cf"
HERE = pathlib.Path(__file__).resolve().parents[1] / PACKAGE


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


class Package:
    """The modules of a package folder, read with :mod:`ast`."""

    def __init__(self, root):
        self.root = pathlib.Path(root)
        self.name = self.root.name
        self.modules = {}  # dotted name -> (path, is_package)
        for path in sorted(self.root.rglob("*.py")):
            parts = list(path.relative_to(self.root.parent).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            self.modules[".".join(parts)] = (path, path.name == "__init__.py")

    def where(self, module, line):
        return f"{self.modules[module][0].relative_to(self.root.parent)}:{line}"

    def subpackage(self, module):
        """The top subpackage ``module`` lies in; None at the root level."""
        parts = module.split(".")
        if len(parts) < 2:
            return None
        top = f"{self.name}.{parts[1]}"
        return parts[1] if self.modules.get(top, (None, False))[1] else None

    def resolve(self, module, level, target):
        """The absolute dotted name a (possibly relative) import refers to."""
        if level == 0:
            return target
        base = module.split(".")
        if not self.modules[module][1]:
            base = base[:-1]
        base = base[: len(base) - (level - 1)]
        return ".".join(base + ([target] if target else []))

    def imports(self, module):
        """``(line, target module, name or None)`` for each import statement of
        ``module``, wherever it stands, inside the package. ``from a import b``
        where ``a.b`` is a module gives target ``a.b`` and no name; ``import
        a.b.c`` gives its deepest existing module."""
        path = self.modules[module][0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                pairs = [(alias.name, None) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = self.resolve(module, node.level, node.module)
                pairs = [(source, alias.name) for alias in node.names]
            else:
                continue
            for target, name in pairs:
                if target != self.name and not target.startswith(self.name + "."):
                    continue
                if name is not None and f"{target}.{name}" in self.modules:
                    target, name = f"{target}.{name}", None
                while target not in self.modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                yield node.lineno, target, name

    def violations(self, module):
        """One message per import of ``module`` that breaks the layering."""
        own = self.subpackage(module)
        found = []
        for line, target, name in self.imports(module):
            other = self.subpackage(target)
            what = f"{target}" + (f" import {name}" if name else "")
            if other is not None and other != own:
                inner = target.split(".")[2:]
                if any(_private(part) for part in inner):
                    found.append(f"{self.where(module, line)}: from {what}: "
                                 f"{'.'.join(inner)} is a private module of {other}")
                elif name is not None and _private(name):
                    found.append(f"{self.where(module, line)}: from {what}: "
                                 f"{name} is private to {other}")
            elif other is None and own is not None and name is not None and _private(name):
                found.append(f"{self.where(module, line)}: from {what}: "
                             f"{name} is private to the root module {target}")
        return found

    def graph(self):
        """``{module: {imported module: first line}}``."""
        edges = {module: {} for module in self.modules}
        for module in self.modules:
            for line, target, _ in self.imports(module):
                if target != module:
                    edges[module].setdefault(target, line)
        return edges

    def cycles(self):
        """One shortest circle through each strongly connected set of modules."""
        edges = self.graph()
        index, low, stack, on_stack, components = {}, {}, [], set(), []

        def visit(node):  # Tarjan
            index[node] = low[node] = len(index)
            stack.append(node)
            on_stack.add(node)
            for nxt in sorted(edges[node]):
                if nxt not in index:
                    visit(nxt)
                    low[node] = min(low[node], low[nxt])
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if low[node] == index[node]:
                component = set()
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.add(top)
                    if top == node:
                        break
                if len(component) > 1:
                    components.append(component)

        for node in sorted(edges):
            if node not in index:
                visit(node)

        circles = []
        for component in components:
            start = min(component)
            parents, queue = {start: None}, deque([start])
            while queue:
                node = queue.popleft()
                if start in edges[node] and node != start or (
                        node == start and start in edges[start]):
                    path = [node]
                    while parents[path[-1]] is not None:
                        path.append(parents[path[-1]])
                    circles.append(path[::-1] + [start])
                    break
                for nxt in sorted(edges[node]):
                    if nxt in component and nxt not in parents:
                        parents[nxt] = node
                        queue.append(nxt)
        return [(circle, edges) for circle in circles]

    def describe(self, circle, edges):
        return "\n".join(f"  {self.where(a, edges[a][b])}: {a} -> {b}"
                         for a, b in zip(circle, circle[1:]))


SKLEARN_CF = Package(HERE)


def test_the_walk_sees_the_package():
    package = SKLEARN_CF
    assert package.subpackage("sklearn_cf.datasets") == "datasets"
    assert package.subpackage("sklearn_cf.datasets._table") == "datasets"
    assert package.subpackage("sklearn_cf.store") is None
    assert package.subpackage("sklearn_cf") is None
    assert package.resolve("sklearn_cf.compare._run", 2, "metrics._matrix") == (
        "sklearn_cf.metrics._matrix")
    assert package.resolve("sklearn_cf.compare", 1, "_run") == "sklearn_cf.compare._run"
    assert package.resolve("sklearn_cf.compare", 2, None) == "sklearn_cf"


def test_the_checks_catch_what_they_should(tmp_path):
    """The rules on a tiny made-up package: each forbidden import is found,
    each allowed one is not, and a circle closed inside a function counts."""
    fake = tmp_path / "sklearn_cf"
    (fake / "alpha").mkdir(parents=True)
    (fake / "beta").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "_shared.py").write_text("def _hidden(): pass\ndef shown(): pass\n")
    (fake / "top.py").write_text("from .beta._inner import public_name\n"
                                 "from ._shared import _hidden\n")
    (fake / "alpha" / "__init__.py").write_text("from ._impl import thing\n")
    (fake / "alpha" / "_impl.py").write_text(
        "from ..beta._inner import _secret\n"
        "from ..beta import visible\n"
        "from .._shared import _hidden, shown\n"
        "def later():\n"
        "    from ..beta._inner import public_name\n"
        "thing = 1\n")
    (fake / "beta" / "__init__.py").write_text("visible = 1\n")
    (fake / "beta" / "_inner.py").write_text(
        "_secret = public_name = 1\n"
        "def f():\n"
        "    import sklearn_cf.alpha\n")
    (fake / "beta" / "_other.py").write_text("from . import _inner\nfrom ._inner import _secret\n")
    package = Package(fake)
    found = "\n".join(package.violations("sklearn_cf.alpha._impl"))
    assert "alpha/_impl.py:1: from sklearn_cf.beta._inner import _secret" in found
    assert "alpha/_impl.py:3: from sklearn_cf._shared import _hidden" in found
    assert "alpha/_impl.py:5: from sklearn_cf.beta._inner import public_name" in found
    assert "visible" not in found and "shown" not in found
    assert package.violations("sklearn_cf.beta._other") == []
    # A root-level module: the front-door rule holds, the root's privates are shared.
    top = "\n".join(package.violations("sklearn_cf.top"))
    assert "top.py:1" in top and "top.py:2" not in top
    circles = package.cycles()
    assert len(circles) == 1
    circle, edges = circles[0]
    assert set(circle) == {"sklearn_cf.alpha", "sklearn_cf.alpha._impl",
                           "sklearn_cf.beta._inner"}
    assert circle[0] == circle[-1]
    assert "beta/_inner.py:3: sklearn_cf.beta._inner -> sklearn_cf.alpha" in (
        package.describe(circle, edges))


@pytest.mark.parametrize("module", sorted(SKLEARN_CF.modules))
def test_no_private_name_crosses_a_subpackage(module):
    found = SKLEARN_CF.violations(module)
    assert not found, "Private names across subpackages:\n" + "\n".join(found)


def test_no_import_circle():
    circles = SKLEARN_CF.cycles()
    assert not circles, "Import circles:\n" + "\n\n".join(
        SKLEARN_CF.describe(circle, edges) for circle, edges in circles)
