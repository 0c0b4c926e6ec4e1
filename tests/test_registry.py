"""The registry: metadata-only listing, request checking, and plugins through entry points."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from taskcli.cli import app
from taskcli.errors import UsageError
from taskcli.tasks import registry

runner = CliRunner()

BUILTINS = [
    "arc",
    "mmlu",
    "gsm8k",
    "humaneval",
    "smoltalk",
    "customjson",
    "spellingbee",
    "simplespelling",
]


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A tiny installed plugin: a module plus a dist-info whose entry point names its task."""
    package = tmp_path / "taskcli_trivia"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent("""
        from taskcli.tasks import Param, Task

        class Trivia(Task):
            name = "trivia"
            description = "Three trivia questions."
            dataset = "synthetic"
            eval_type = "generative"
            splits = ("train",)
            params = (Param("shout", bool, False, "Answer in capitals."),)

            def __init__(self, split="train", shout=False, **slice_args):
                super().__init__(**slice_args)
                self.shout = shout

            def num_examples(self):
                return 3

            def get_example(self, index):
                answer = f"answer {index}"
                return {"messages": [
                    {"role": "user", "content": f"question {index}"},
                    {"role": "assistant", "content": answer.upper() if self.shout else answer},
                ]}
    """)
    )
    dist_info = tmp_path / "taskcli_trivia-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: taskcli-trivia\nVersion: 0.1\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[taskcli.tasks]\ntrivia = taskcli_trivia:Trivia\n"
        "arc = taskcli_trivia:Trivia\n"  # a plugin cannot shadow a built-in
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.clear_cache()
    yield tmp_path
    registry.clear_cache()


def test_builtins_are_registered_with_metadata():
    tasks = registry.all_tasks()
    assert list(tasks)[: len(BUILTINS)] == BUILTINS
    for name, cls in tasks.items():
        entry = registry.describe(cls)
        assert entry["name"] == name
        assert entry["description"] and entry["source"]
        assert entry["eval_type"] in ("categorical", "generative", None)


def test_list_json_through_the_cli():
    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    assert [e["name"] for e in entries][: len(BUILTINS)] == BUILTINS
    for entry in entries:
        assert {"name", "description", "source", "eval_type", "subsets", "splits", "params"} <= set(
            entry
        )


def test_list_table_names_every_task():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    for name in BUILTINS:
        assert name in result.stdout


def test_unknown_task_exits_2_and_suggests():
    result = runner.invoke(app, ["show", "gsm8"])
    assert result.exit_code == 2
    assert "unknown task 'gsm8'" in result.stderr
    assert "Did you mean 'gsm8k'?" in result.stderr
    assert "Traceback" not in result.output


def test_resolve_lists_valid_subsets_and_splits():
    with pytest.raises(UsageError, match="Valid subsets: ARC-Easy, ARC-Challenge"):
        registry.resolve("arc", subset="ARC-Medium")
    with pytest.raises(UsageError, match="Valid splits: train, test"):
        registry.resolve("gsm8k", split="validation")
    with pytest.raises(UsageError, match=r"has no parameter 'sise'.*Did you mean 'size'"):
        registry.resolve("spellingbee", params={"sise": "3"})
    with pytest.raises(UsageError, match="takes an int, got 'many'"):
        registry.resolve("spellingbee", params={"size": "many"})


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["show", "gsm8k", "--split", "tset"],
            "no split 'tset' in subset 'main'. Did you mean 'test'?",
        ),
        (
            ["show", "gsm8k", "--split", "TEST"],
            "no split 'TEST' in subset 'main'. Did you mean 'test'",
        ),
        (["show", "humaneval", "--split", "tets"], "has no split 'tets'. Did you mean 'test'?"),
        (["show", "arc", "--split", "validaton"], "Did you mean 'validation'?"),
        (["show", "mmlu", "--subset", "ALL"], "has no subset 'ALL'. Did you mean 'all'?"),
        (["show", "GSM8", "--split", "test"], "Did you mean 'gsm8k'?"),
        (["show", "spellingbee", "-p", "size=x"], "'size' of 'spellingbee' takes an int, got"),
    ],
)
def test_misspelt_names_get_a_suggestion_through_the_cli(args, words):
    """A split is suggested as a subset, a parameter or a task is (in any case), before any
    data is read; and the type a parameter takes is said with its article."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert words in result.stderr
    assert "Traceback" not in result.output


def test_resolve_fills_defaults_and_converts_params():
    request = registry.resolve("spellingbee", params={"size": "12"})
    assert request.cls.name == "spellingbee"
    assert request.params == {"size": 12} and request.split == request.cls.default_split
    task = request.create(start=2)
    assert (task.size, task.split, len(task)) == (12, "train", 10)


def test_check_request_reports_every_problem_at_once():
    cls = registry.get_task_class("spellingbee")
    _, problems = registry.check_request(cls, "x", "dev", {"sise": 1, "size": "many"})
    assert [str(p).split(".")[0] for p in problems] == [
        "task 'spellingbee' has no subsets (got 'x')",
        "task 'spellingbee' has no parameter 'sise'",
        "parameter 'size' of 'spellingbee' takes an int, got 'many'",
    ]


def test_plugin_task_is_listed_shown_and_cannot_shadow_builtins(plugin):
    tasks = registry.all_tasks()
    assert tasks["trivia"].__name__ == "Trivia"
    assert tasks["arc"].__module__ == "taskcli.tasks.arc"

    listed = runner.invoke(app, ["list", "--json"])
    trivia = next(e for e in json.loads(listed.stdout) if e["name"] == "trivia")
    assert trivia["params"] == [
        {"name": "shout", "type": "bool", "default": False, "help": "Answer in capitals."}
    ]

    shown = runner.invoke(app, ["show", "trivia", "--index", "2", "-p", "shout=true", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["messages"][1]["content"] == "ANSWER 2"


def test_plugin_is_found_by_a_fresh_process(plugin):
    env = {**os.environ, "PYTHONPATH": f"{plugin}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, "-m", "taskcli", "show", "trivia", "--json", "--count", "3"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["messages"][0]["content"] for line in done.stdout.splitlines()] == [
        "question 0",
        "question 1",
        "question 2",
    ]
