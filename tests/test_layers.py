"""The package's folders are layers: a module imports from its own folder and from the
layers below it, never from one above, so the tree shows what depends on what."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "workflow" / "leaklab"
# the lowest layer first; the package's own __init__.py and __main__.py sit above them all
LAYERS = (
    "profilers",
    "experiments",
    "process",
    "model",
    "tables",
    "measure",
    "report",
    "benchmarks",
    "history",
    "commands",
)


def imported_modules(path: Path) -> set[str]:
    """Every leaklab module or package a file imports, imports inside functions included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("leaklab.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("leaklab"):
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_every_module_sits_in_a_layer():
    folders = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert folders == set(LAYERS), f"folders that are not layers, or layers without a folder: {folders ^ set(LAYERS)}"
    flat = sorted(path.name for path in PACKAGE.glob("*.py") if path.name not in ("__init__.py", "__main__.py"))
    assert not flat, f"put {flat} into the layer folder it belongs to"


def test_no_import_climbs_to_a_higher_layer():
    climbs = []
    for layer, folder in enumerate(LAYERS):
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            for module in sorted(imported_modules(path)):
                target = module.split(".")[1]
                if target not in LAYERS[:layer + 1]:
                    climbs.append(f"{path.relative_to(PACKAGE)} ({folder}) imports {module}")
    assert not climbs, "imports that climb:\n" + "\n".join(climbs)
