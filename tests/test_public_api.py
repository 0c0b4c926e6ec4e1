"""The public library: the names `taskcli` offers, each from its one home, loaded on first use."""

import subprocess
import sys

import taskcli


def test_every_public_name_resolves_to_its_home():
    for name in taskcli.__all__:
        value = getattr(taskcli, name)
        if name != "__version__":
            assert value.__module__.startswith("taskcli."), name
    assert sorted(dir(taskcli)) == sorted(taskcli.__all__)


def test_an_unknown_name_is_an_attribute_error():
    try:
        taskcli.no_such_name  # noqa: B018
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("taskcli.no_such_name resolved")


def test_importing_the_package_loads_no_heavy_library():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, taskcli; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    heavy = {"pyarrow", "numpy", "datasets", "tokenizers", "tiktoken", "rich", "orjson"}
    assert not heavy & set(loaded)


def test_the_library_shows_a_spec_row_as_the_command_does():
    import json

    from typer.testing import CliRunner

    from taskcli.cli import app

    target = taskcli.open_target("examples/local-mixture.yaml")
    row = taskcli.show_rows(target, index=5).rows[0]
    printed = CliRunner().invoke(app, ["show", "examples/local-mixture.yaml", "-i", "5", "--json"])
    assert printed.exit_code == 0
    assert json.loads(printed.stdout) == row.to_json()
    assert row.origin is not None and row.to_json()["source"] == row.origin
