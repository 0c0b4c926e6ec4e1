"""The package's layout holds: each layer imports only below it, and Rich is drawn in one place.

Read from the source with `ast`, so an import inside a function counts as much as one at the top
(except where a rule is about module-level imports only).
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "taskcli"
ABOVE_THE_TASKS = (
    "taskcli.tasks.registry",
    "taskcli.validate",
    "taskcli.export",
    "taskcli.stats",
    "taskcli.cli",
    "taskcli.mixing.plan",
    "taskcli.mixing.spec",
    "taskcli.eval",
    "taskcli.ui.render",
)
RICH_DRAWING = ("rich.table", "rich.panel", "rich.console")
DRAWS_WITH_RICH = {"render.py", "cli.py"}


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


def modules(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


@pytest.mark.parametrize("path", modules(PACKAGE / "tasks"), ids=lambda p: p.name)
def test_the_task_layer_imports_nothing_above_it(path):
    reaching_up = {
        name for name in imports(path) if name.startswith(ABOVE_THE_TASKS) or name == "taskcli"
    }
    assert not reaching_up, f"{path.name} imports {sorted(reaching_up)}"


@pytest.mark.parametrize("path", modules(PACKAGE), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_rendering_module_and_the_cli_draw_with_rich(path):
    if path.name == "cli.py" or PACKAGE / "ui" in path.parents:
        return
    drawing = {name for name in imports(path, top_level_only=True) if name.startswith(RICH_DRAWING)}
    assert not drawing, f"{path.relative_to(PACKAGE)} imports {sorted(drawing)} at module level"


def test_stats_does_not_depend_on_export():
    assert not any(name.startswith("taskcli.export") for name in imports(PACKAGE / "stats.py"))


def test_the_layout_checks_see_the_imports_they_guard():
    """The checks above would pass vacuously if `imports` missed imports inside functions."""
    assert "taskcli.tasks.customjson.invalid_file" in imports(PACKAGE / "stats.py")
    assert "rich.console" in imports(PACKAGE / "ui" / "console.py", top_level_only=True)
