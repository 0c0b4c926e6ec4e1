"""The package's layout holds: each layer imports only below it, and Rich is drawn in one place.

The layers are the package's folders (CONTRIBUTING.md draws them); a module belongs to the
folder it sits in, or is a top-level module. Imports are read from the source with `ast`, so an
import inside a function counts as much as one at the top (except where a rule is about
module-level imports only).
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "taskcli"

# Lowest first. A part is a folder of the package or a top-level module; a top-level module
# named nowhere here is a command's library side (show, browse, validate, stats, eval, ...), and
# so is the export/ folder: commands import the layers below them, never one another.
LAYERS = (
    ("errors", "conversation"),
    ("files",),
    ("hub", "sandbox", "training"),
    ("tasks",),
    ("mixing",),
    ("targets",),
    ("<commands>",),
    ("ui",),
    ("cli",),
    ("__main__",),
)
COMMANDS = LAYERS.index(("<commands>",))
RICH_DRAWING = ("rich.table", "rich.panel", "rich.console")


def imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    """Every module `path` imports (``from a import b`` counts as a and a.b)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def part_of(module: str) -> str:
    """The part a module of the package belongs to: ``taskcli.files.reader`` -> ``files``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_of(part: str) -> int:
    for number, parts in enumerate(LAYERS):
        if part in parts:
            return number
    return COMMANDS


def modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if path.name != "__init__.py")


def module_name(path: Path) -> str:
    return "taskcli." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_imports_only_its_own_part_and_the_layers_below(path):
    own = part_of(module_name(path))
    reaching_up = set()
    for name in imports(path):
        if not name.startswith("taskcli.") or name == "taskcli.__version__":
            continue  # the package's face and its version sit above and below everything
        part = part_of(name)
        if part != own and layer_of(part) >= layer_of(own):
            reaching_up.add(name)
    assert not reaching_up, (
        f"{path.relative_to(PACKAGE)} reaches up or across: {sorted(reaching_up)}"
    )


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_ui_and_the_cli_draw_with_rich(path):
    if path.name == "cli.py" or PACKAGE / "ui" in path.parents:
        return
    drawing = {name for name in imports(path, top_level_only=True) if name.startswith(RICH_DRAWING)}
    assert not drawing, f"{path.relative_to(PACKAGE)} imports {sorted(drawing)} at module level"


def test_every_folder_of_the_package_is_a_layer():
    """A new folder must be given its place in the layers (and in CONTRIBUTING.md's tree)."""
    folders = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    placed = {part for parts in LAYERS for part in parts}
    assert folders - {"export"} <= placed


def test_stats_does_not_depend_on_export():
    assert not any(name.startswith("taskcli.export") for name in imports(PACKAGE / "stats.py"))


def test_the_layout_checks_see_the_imports_they_guard():
    """The checks above would pass vacuously if `imports` missed imports inside functions, or
    the layers did not rank the parts."""
    assert "taskcli.tasks.customjson.invalid_file" in imports(PACKAGE / "stats.py")
    assert "rich.console" in imports(PACKAGE / "ui" / "console.py", top_level_only=True)
    assert layer_of(part_of("taskcli.tasks.registry")) > layer_of(part_of("taskcli.files.reader"))
    assert layer_of(part_of("taskcli.show")) == layer_of(part_of("taskcli.export.formats"))
    assert layer_of(part_of("taskcli.ui.console")) > layer_of(part_of("taskcli.eval"))
