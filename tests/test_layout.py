"""The floors of the house (docs/contributing.md: "The floors"): each floor imports only from the floors below
it, so a newcomer can read them from the ground up. Function-level imports count too."""
import ast
import os

from tests.helpers import ROOT, source_files

# Which of the project's packages each floor may import (the project's own code only).
MAY_USE = {
    "utils/foundation/": ("utils.foundation",),
    "utils/data/": ("utils.foundation", "utils.data"),
    "models/": ("utils.foundation", "models"),
    "utils/orchestration/": ("utils.foundation", "utils.data", "models", "utils.orchestration"),
}
PROJECT = ("utils", "models", "tools", "benchmarks")


def project_imports(path):
    with open(os.path.join(ROOT, path)) as fh:
        tree = ast.parse(fh.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # "from utils.data import demo" names the module utils.data.demo
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PROJECT:
                yield node.lineno, name


def test_each_floor_imports_only_from_the_floors_below():
    wrong = []
    checked = 0
    for floor, allowed in MAY_USE.items():
        for path in source_files(floor):
            checked += 1
            for line, name in project_imports(path):
                # "from utils import x" or "from utils.data import reid_data": the module named
                # in full is judged, the package on its own says nothing
                if name in ("utils", "utils.data", "utils.foundation", "utils.orchestration",
                            "models"):
                    continue
                if not name.startswith(tuple(a + "." for a in allowed)):
                    wrong.append(f"{path}:{line} imports {name}")
    assert checked >= 30                      # the walk found the floors
    assert wrong == []


def test_utils_holds_only_its_three_floors():
    """A new module goes onto a floor; utils/ itself holds no module."""
    loose = [n for n in os.listdir(os.path.join(ROOT, "utils"))
             if n.endswith(".py") and n != "__init__.py"]
    assert loose == []
    assert sorted(d for d in os.listdir(os.path.join(ROOT, "utils"))
                  if os.path.isdir(os.path.join(ROOT, "utils", d)) and d != "__pycache__") \
        == ["data", "foundation", "orchestration"]
