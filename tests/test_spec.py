"""Mixture specs: what a valid spec resolves to, and every mistake reported at once (exit 2)."""

import pytest
from specfiles import write_spec
from typer.testing import CliRunner

from taskcli.cli import app
from taskcli.errors import UsageError
from taskcli.mixing.spec import Entry, load_spec
from taskcli.tasks import Param, Task, registry

runner = CliRunner()


class Quiz(Task):
    """Metadata like a hub task's; constructing it is counted, so tests see whether data loads."""

    name = "quiz"
    description = "Numbered quiz questions."
    dataset = "synthetic"
    subsets = ("easy", "hard")
    default_subset = "easy"
    splits = {"easy": ("train", "test"), "hard": ("test",)}  # noqa: RUF012
    default_split = "test"
    params = (
        Param("size", int, 10, "How many questions."),
        Param("style", str, "plain", "How to ask.", choices=("plain", "fancy")),
        Param("notes", str, "", "A file of notes.", is_path=True),
    )
    constructed = 0

    def __init__(self, subset="easy", split="test", size=10, style="plain", notes="", **slices):
        super().__init__(**slices)
        type(self).constructed += 1
        self.size = size

    def num_examples(self):
        return self.size

    def get_example(self, index):
        return {
            "messages": [
                {"role": "user", "content": f"question {index}"},
                {"role": "assistant", "content": f"answer {index}"},
            ]
        }


@pytest.fixture(autouse=True)
def quiz_registered():
    registry.register(Quiz)
    Quiz.constructed = 0
    yield
    registry.clear_cache()


def run_export(*args: str):
    """`taskcli export ARGS`, checked to fail cleanly: a message, no traceback."""
    result = runner.invoke(app, ["export", *args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


def flat(text: str) -> str:
    """Output with line wrapping undone, so long messages can be matched."""
    return " ".join(text.split())


def test_a_valid_spec_resolves_defaults_slices_params_and_paths(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "n.txt").write_text("note\n")
    spec = load_spec(
        write_spec(
            tmp_path,
            """
            seed: 7
            tasks:
              - task: quiz
              - task: quiz
                subset: hard
                stop: 8
                step: 3
                repeat: 2
                size: "12"
                style: fancy
                notes: notes/n.txt
            """,
        )
    )
    assert (spec.mode, spec.seed) == ("mixture", 7)
    assert spec.entries[0] == Entry(0, "quiz", "easy", "test")
    second = spec.entries[1]
    assert (second.subset, second.split) == ("hard", "test")
    assert (second.start, second.stop, second.step, second.repeat) == (0, 8, 3, 2)
    assert second.params == {
        "size": 12,
        "style": "fancy",
        "notes": str((tmp_path / "notes" / "n.txt").resolve()),
    }
    assert second.label == "tasks[1] (quiz / hard / test)"
    assert spec.as_dict()["tasks"][0]["params"] == {"size": 10, "style": "plain", "notes": ""}
    assert Quiz.constructed == 0  # checking a spec loads nothing


def test_paths_are_relative_to_the_spec_not_the_working_directory(tmp_path, monkeypatch):
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "n.txt").write_text("note\n")
    path = write_spec(folder, "tasks: [{task: quiz, notes: n.txt}]\n")
    monkeypatch.chdir(tmp_path)
    assert load_spec("specs/mixture.yaml").entries[0].params["notes"] == str(folder / "n.txt")
    assert load_spec(path).path == path.resolve()


def test_every_problem_is_reported_at_once_before_any_data_is_loaded(tmp_path):
    path = write_spec(
        tmp_path,
        """
        mode: interleave
        seed: forty-two
        shuffle: true
        tasks:
          - task: quizz
          - task: quiz
            spilt: test
          - task: quiz
            subset: medium
            size: many
          - task: quiz
            subset: hard
            split: train
            style: loud
          - task: quiz
            start: -1
            repeat: 0
          - task: quiz
            start: 5
            stop: 2
            step: 0
            notes: missing.txt
          - just a string
          - split: train
        """,
    )
    result = run_export(str(path), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 2
    output = flat(result.output)
    expected = [
        "15 problems in the mixture spec",
        "unknown key 'shuffle'. Valid top-level keys: mode, seed, tasks.",
        "mode: must be one of mixture, sequence; got 'interleave'",
        "seed: must be an integer, got 'forty-two'",
        "tasks[0]: unknown task 'quizz'. Did you mean 'quiz'?",
        "tasks[1]: unknown key 'spilt'. Did you mean 'split'?",
        "tasks[2]: task 'quiz' has no subset 'medium'. Valid subsets: easy, hard.",
        "tasks[2]: parameter 'size' of 'quiz' takes an int, got 'many'.",
        "tasks[3]: task 'quiz' has no split 'train' in subset 'hard'. Valid splits: test.",
        "tasks[3]: parameter 'style' of 'quiz' must be one of plain, fancy; got 'loud'.",
        "tasks[4]: start must be >= 0, got -1",
        "tasks[4]: repeat must be an integer from 1 to 1,000, got 0",
        "tasks[5]: stop must be an integer >= start (5), got 2",
        f"tasks[5]: notes: file not found: {(tmp_path / 'missing.txt').resolve()}",
        "tasks[6]: an entry must be a mapping with a 'task' key, got a string",
        "tasks[7]: no 'task' key; name a task from `taskcli list`",
    ]
    for line in expected:
        assert line in output
    assert Quiz.constructed == 0
    assert not (tmp_path / "out.jsonl").exists()


def test_each_problem_sits_on_its_own_line(tmp_path):
    path = write_spec(tmp_path, "tasks: [{task: quiz, size: x}, {task: quiz, subset: hard2}]\n")
    with pytest.raises(UsageError) as caught:
        load_spec(path)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{path}: 2 problems in the mixture spec:"
    assert lines[1].startswith("  tasks[0]: parameter 'size'")
    assert lines[2].startswith("  tasks[1]: task 'quiz' has no subset 'hard2'. Did you mean 'hard'")


def test_yaml_syntax_errors_give_line_and_column(tmp_path):
    """The place to fix (where the unclosed '[' opens) and what is wrong, in words."""
    path = write_spec(tmp_path, "tasks:\n  - task: quiz\n    split: [test\n")
    result = run_export(str(path), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 2
    assert flat(result.output) == f"Error: {path}:3:12: this '[' is never closed with ']'."


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("tasks:\n\t- task: quiz\n", "2:1", "a tab; YAML indents and separates with spaces"),
        ("tasks:\n  - task: quiz\n   split: test\n", "3:4", "this line is not indented like"),
        ("tasks:\n  - task: quiz\n    - x\n", "3:5", "this line is not indented like"),
        ("tasks:\n  - task: quiz\n  seed 3\n", "3:3", "a line without ':' where 'key:"),
        ('tasks:\n  - task: "quiz\n', "2:11", "this quote is never closed"),
        ("tasks: {a: b\n", "1:8", "this '{' is never closed with '}'"),
        ("tasks: [a, b}\n", "1:13", "'}' where ',' or ']' was expected, in the '[' of line 1"),
        ("tasks:\n  - task: a: b\n", "2:12", "a ':' inside a value: put a value that holds"),
        ("tasks:\n  - task: @quiz\n", "2:11", "a value cannot start with '@': put it in"),
        ("tasks:\n  - {task: quiz}}\n", "2:17", "a '}' that closes nothing"),
        ('tasks:\n  - task: "\\q"\n', "2:13", "'\\q' is no escape in double quotes"),
        ("tasks: []\n---\nseed: 1\n", "2:1", "a second document: a spec is one YAML"),
        ("tasks: &a []\nseed: *a\n", "2:7", "aliases (*a) are not allowed"),
    ],
)
def test_yaml_mistakes_are_said_in_words_where_they_are(tmp_path, text, where, what):
    """`spec.yaml:LINE:COL: what is wrong`, not PyYAML's own words ("found character '\\t'
    that cannot start any token", "expected <block end>, but found '<block mapping start>'")."""
    path = write_spec(tmp_path, text)
    with pytest.raises(UsageError) as raised:
        load_spec(path)
    message = str(raised.value)
    assert message.startswith(f"{path}:{where}: {what}"), message
    for words in ("<block", "<stream", "token", "scanning", "while parsing"):
        assert words not in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the spec must be a mapping with a 'tasks' list, got nothing"),
        ("- task: quiz\n", "the spec must be a mapping with a 'tasks' list, got a list"),
        ("seed: 1\n", "tasks: must be a non-empty list of task entries"),
        ("tasks: []\n", "tasks: must be a non-empty list of task entries"),
        ("tasks: {task: quiz}\n", "tasks: must be a non-empty list of task entries"),
        ("tasks: [{task: 3}]\n", "tasks[0]: 'task' is a number; name a task"),
        ("tasks: [{task: quiz, step: 1.5}]\n", "tasks[0]: step must be an integer, got 1.5"),
        ("tasks: [{task: quiz, repeat: true}]\n", "tasks[0]: repeat must be an integer from 1"),
        ("seed: true\ntasks: [{task: quiz}]\n", "seed: must be an integer, got True"),
    ],
)
def test_shape_errors(tmp_path, text, message):
    path = write_spec(tmp_path, text)
    result = run_export(str(path), "--dry-run")
    assert result.exit_code == 2
    assert message in flat(result.output)


def test_a_missing_spec_file_is_a_usage_error(tmp_path):
    result = run_export(str(tmp_path / "nope.yaml"), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 2
    assert "mixture spec not found" in flat(result.output)


def test_a_folder_or_binary_spec_is_a_usage_error(tmp_path):
    assert run_export(str(tmp_path), "--dry-run").exit_code == 2
    binary = tmp_path / "bad.yaml"
    binary.write_bytes(b"tasks: \xff\xfe\n")
    result = run_export(str(binary), "--dry-run")
    assert result.exit_code == 2
    assert "not UTF-8" in flat(result.output)
    with pytest.raises(UsageError, match=r"cannot be read \(Not a directory\)"):
        load_spec(binary / "inside.yaml")  # a file used as a folder


def test_an_unknown_task_lists_the_known_ones(tmp_path):
    path = write_spec(tmp_path, "tasks: [{task: zzz}]\n")
    result = run_export(str(path), "--dry-run")
    assert result.exit_code == 2
    output = flat(result.output)
    assert f"{path}: tasks[0]: unknown task 'zzz'." in output
    assert "Known tasks:" in output and "quiz" in output


def test_customjson_path_is_checked_relative_to_the_spec(tmp_path):
    (tmp_path / "convs.jsonl").write_text(
        '[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]\n'
    )
    good = load_spec(write_spec(tmp_path, "tasks: [{task: customjson, path: convs.jsonl}]\n"))
    assert good.entries[0].params["path"] == str(tmp_path / "convs.jsonl")
    bad = write_spec(tmp_path, "tasks: [{task: customjson, path: gone.jsonl}]\n", "bad.yaml")
    result = run_export(str(bad), "--dry-run")
    assert result.exit_code == 2
    assert f"tasks[0]: path: file not found: {tmp_path / 'gone.jsonl'}" in flat(result.output)
