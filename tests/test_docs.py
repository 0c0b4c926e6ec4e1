"""Docs that cannot rot: generated pages are current, and every shell example runs.

Shell examples are the lines of ```bash blocks in README.md and docs/*.md whose first word is a
command we can run here (taskcli and a few coreutils). Each page's examples run in order in one
fresh folder holding a copy of `examples/` and, as `data/` and through TASKCLI_DATA_DIR, small
local copies of the Hub datasets in their real layouts. A line ending in ``# exit N`` must exit
with N; every other line must exit 0. Install commands (pip), Hub downloads (hf) and cluster
lines (sbatch) are not run; of ``pip install . && taskcli ...`` the taskcli half is.
"""

import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import hubdata
import pytest
from typer.main import get_command

from taskcli.cli import app

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# "pip install . && taskcli show ..." runs its second half: the suite itself installed taskcli.
INSTALL_PREFIX = re.compile(r"^(python -m )?pip install \S+ && ")
RUNNABLE = {"taskcli", "cat", "head", "wc", "cmp", "diff", "zcat", "ls"}
gen_docs = runpy.run_path(str(ROOT / "scripts" / "gen_docs.py"))


def shell_examples(page: Path) -> list[tuple[str, int]]:
    """(command line, expected exit code) for each runnable line of the page's bash blocks."""
    examples = []
    for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = INSTALL_PREFIX.sub("", line.strip())
            if not line or line.split()[0] not in RUNNABLE:
                continue
            expected = re.search(r"#\s*exit\s+(\d+)\s*$", line)
            examples.append((line, int(expected.group(1)) if expected else 0))
    return examples


@pytest.fixture(scope="module")
def workspace_factory(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    hubdata.write_all(data_dir)
    bin_dir = tmp_path_factory.mktemp("bin")
    wrapper = bin_dir / "taskcli"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m taskcli "$@"\n')
    wrapper.chmod(0o755)

    def make() -> tuple[Path, dict[str, str]]:
        folder = tmp_path_factory.mktemp("workspace")
        shutil.copytree(ROOT / "examples", folder / "examples")
        (folder / "data").symlink_to(data_dir)
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(ROOT),
            "TASKCLI_DATA_DIR": str(data_dir),
        }
        return folder, env

    return make


@pytest.mark.parametrize("page", [p for p in PAGES if shell_examples(p)], ids=lambda p: p.name)
def test_shell_examples_run(page, workspace_factory):
    examples = shell_examples(page)
    folder, env = workspace_factory()
    for line, expected in examples:
        done = subprocess.run(
            ["bash", "-c", line], cwd=folder, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == expected, (
            f"{page.name}: `{line}` exited {done.returncode}, expected {expected}\n"
            f"stdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-2000:]}"
        )


def test_the_readme_usage_block_runs_offline_without_any_data(workspace_factory):
    """The block the README says runs offline does, with no dataset copies and no Hub."""
    text = (ROOT / "README.md").read_text()
    block = text.split("Everything in this block runs offline", 1)[1].split("```bash\n", 1)[1]
    lines = [line for line in block.split("```", 1)[0].splitlines() if line.strip()]
    assert len(lines) >= 8
    folder, env = workspace_factory()
    (folder / "data").unlink()
    env = {key: value for key, value in env.items() if key != "TASKCLI_DATA_DIR"}
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens there: no Hub
    for line in lines:
        done = subprocess.run(
            ["bash", "-c", line], cwd=folder, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"`{line}`: {done.stderr[-2000:]}"


def test_readme_has_the_two_fresh_machine_commands():
    text = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install . && taskcli show examples/identity.jsonl" in text
    test_command = "python -m pip install -e '.[test]' && python -m pytest"
    assert test_command in text and test_command in ci


def test_every_extra_the_docs_name_exists():
    """`pip install 'taskcli[X]'` and "the X extra" name extras pyproject.toml defines (the
    training view once named a `tokens` extra there never was)."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    named = set()
    for page in [*PAGES, ROOT / "CONTRIBUTING.md"]:
        text = " ".join(page.read_text().split())
        named |= {
            (page.name, x)
            for x in re.findall(r"taskcli\[(\w+)\]|\.\[(\w+)\]", text)
            for x in x
            if x
        }
        named |= {(page.name, x) for x in re.findall(r"the `?(\w+)`? extra", text)}
    assert {name for _, name in named} >= {"browse", "test"}  # the check sees them
    assert [(page, name) for page, name in sorted(named) if name not in extras] == []


@pytest.mark.parametrize("name", sorted(gen_docs["PAGES"]))
def test_generated_pages_are_current(name):
    render = gen_docs["PAGES"][name]
    path = ROOT / "docs" / name
    assert path.read_text() == render(), f"docs/{name} is stale: run python scripts/gen_docs.py"


def test_every_command_and_option_is_in_the_cli_reference():
    reference = (ROOT / "docs" / "cli.md").read_text()
    root = get_command(app)
    for name, command in root.commands.items():
        assert f"## `taskcli {name}`" in reference
        for param in command.params:
            for option in param.opts:
                if option.startswith("-"):
                    assert f"`{option}`" in reference, f"{name} {option} missing"


def test_every_command_help_has_an_example():
    root = get_command(app)
    for name, command in root.commands.items():
        assert "Example:" in (command.help or ""), f"taskcli {name} --help has no example"


def test_mkdocs_nav_lists_every_page():
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(nav):
        for item in nav:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            yield from pages(value) if isinstance(value, list) else [value]

    listed = set(pages(config["nav"]))
    on_disk = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert on_disk == listed


def test_the_site_builds_strictly(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "index.html").exists()
