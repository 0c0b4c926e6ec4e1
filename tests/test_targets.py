"""One notion of a target for show, stats, validate and export, through the CLI."""

import json
import os
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from taskcli import show as showing
from taskcli.cli import app
from taskcli.errors import UsageError
from taskcli.files.parquet import record_of_row, row_keys_column
from taskcli.targets import FILE, SPEC, TASK, classify
from taskcli.tasks.spellingbee import SpellingBee

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
runner = CliRunner()


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def conversation(i):
    return [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]


def write_jsonl(path, count, start=0):
    path.write_bytes(b"".join(orjson.dumps(conversation(i)) + b"\n" for i in range(start, count)))
    return path


@pytest.fixture
def local_spec(tmp_path):
    for name in ("identity.jsonl", "words.txt"):
        (tmp_path / name).write_bytes((EXAMPLES / name).read_bytes())
    spec = tmp_path / "mix.yaml"
    spec.write_text(
        "seed: 3\ntasks:\n  - {task: customjson, path: identity.jsonl}\n"
        "  - {task: spellingbee, split: train, size: 30, word_list: words.txt}\n"
    )
    return spec


# --- the rule ----------------------------------------------------------------------------------


def test_the_rule_classifies_without_loading(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes").write_text("x")
    (tmp_path / "arc").write_text("x")  # a file named like a task: the task wins
    assert classify("-") == (FILE, "-")
    assert classify("mix.YAML") == (SPEC, "mix.YAML")
    assert classify("mine.json") == (FILE, "mine.json")
    assert classify("data/x") == (FILE, "data/x")
    assert classify("GSM8K") == (TASK, "gsm8k")
    assert classify("arc") == (TASK, "arc")
    assert classify("./arc") == (FILE, "./arc")
    assert classify("notes") == (FILE, "notes")
    with pytest.raises(UsageError, match="Did you mean 'gsm8k'"):
        classify("gsm9k")


def test_an_unknown_name_states_the_rule_in_the_error():
    result = invoke("show", "GSM9K")
    assert result.exit_code == 2
    assert "Error: unknown task 'GSM9K', and no file of that name exists." in result.stderr
    assert "Did you mean 'gsm8k'?" in result.stderr
    assert "Hint: A target is a task name (any case)" in result.stderr
    assert "a task name wins over a file of the same name: write ./NAME" in result.stderr


def test_a_task_name_wins_over_a_file_and_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "spellingbee", 2)
    words = EXAMPLES / "words.txt"
    task = invoke("show", "spellingbee", "-p", f"word_list={words}", "--json")
    assert task.exit_code == 0
    assert "note: spellingbee is read as the task spellingbee; write ./spellingbee" in task.stderr
    assert "spell" in task.stdout.lower()
    file = invoke("show", "./spellingbee", "--json")
    assert file.exit_code == 0 and json.loads(file.stdout)["messages"] == conversation(0)


def test_task_names_are_case_insensitive(tmp_path):
    words = EXAMPLES / "words.txt"
    upper = invoke("show", "SpellingBee", "-p", f"word_list={words}", "--json")
    lower = invoke("show", "spellingbee", "-p", f"word_list={words}", "--json")
    assert upper.exit_code == 0, upper.output
    assert upper.stdout == lower.stdout


@pytest.mark.parametrize("command", ["show", "stats", "validate", "export"])
def test_every_command_reads_a_json_file_and_stdin(tmp_path, command, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "mine.json", 3)
    extra = ["-o", "-"] if command == "export" else []
    by_name = invoke(command, "mine.json", *extra)
    assert by_name.exit_code == 0, by_name.output
    piped = invoke(command, "-", *extra, input=(tmp_path / "mine.json").read_text())
    assert piped.exit_code == 0, piped.output
    if command == "export":
        assert (
            piped.stdout
            == by_name.stdout
            == (tmp_path / "mine.json").read_text().replace("[", '{"messages":[', 1).split("\n")[0]
            + "}\n"
            + "".join(
                '{"messages":' + orjson.dumps(conversation(i)).decode() + "}\n" for i in (1, 2)
            )
        )


# --- show --------------------------------------------------------------------------------------


def test_show_a_spec_row_names_its_source_and_json_carries_it(local_spec, tmp_path):
    shown = invoke("show", local_spec, "--index", "4", "--json")
    assert shown.exit_code == 0, shown.output
    row = json.loads(shown.stdout)
    assert row["index"] == 4
    source = row["source"]
    assert set(source) >= {"entry", "task", "subset", "split", "index"}
    # The source is where `show` finds the very same conversation.
    args = ["show", source["task"], "--index", source["index"], "--json"]
    args += ["--split", source["split"]] if source["split"] else []
    args += [f"-p{key}={value}" for key, value in source.get("params", {}).items()]
    again = json.loads(invoke(*args).stdout)
    assert {k: v for k, v in again.items() if k != "index"} == {
        k: v for k, v in row.items() if k not in ("index", "source")
    }
    # For people: the header and the entry it comes from.
    people = invoke("show", local_spec, "--index", "4", env={"COLUMNS": "80"})
    assert "mix.yaml  ·  row 4 of 66 (0-based)" in people.stdout
    assert f"from tasks[{source['entry']}]" in people.stdout
    assert f"example {source['index']} of its task" in people.stdout


def test_show_json_rows_pass_validate(local_spec):
    shown = invoke("show", local_spec, "--count", "10", "--json")
    assert shown.exit_code == 0
    checked = invoke("validate", "-", input=shown.stdout)
    assert checked.exit_code == 0, checked.output
    assert "10 conversations" in checked.stdout


def test_partial_results_say_so():
    words = EXAMPLES / "words.txt"
    args = ["show", "spellingbee", "-p", f"word_list={words}", "-p", "size=31"]
    result = invoke(*args, "--index", "29", "--count", "5", "--json")
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 2
    assert result.stderr == "showing 2 of 5: spellingbee / train has 31 examples.\n"


def test_a_big_file_is_read_only_up_to_the_rows_shown(tmp_path, monkeypatch):
    """Past the whole-file size, `show` reads the lines it shows and counts the rest."""
    monkeypatch.setattr(showing, "WHOLE_FILE_BYTES", 100)
    path = write_jsonl(tmp_path / "big.jsonl", 1000)
    with path.open("ab") as file:
        file.write(b"this line is broken\n")  # past the rows shown: not read
    result = invoke("show", path, "--index", "5", "--count", "2")
    assert result.exit_code == 0, result.output
    assert "example 5 (0-based)  ·  line 6 of 1,001" in result.stdout
    assert "q5" in result.stdout and "q6" in result.stdout and "q7" not in result.stdout
    rows = invoke("show", path, "--index", "998", "--count", "2", "--json")
    assert [json.loads(line)["index"] for line in rows.stdout.splitlines()] == [998, 999]
    broken = invoke("show", path, "--index", "1000")
    assert broken.exit_code == 1
    assert f"{path}:1001: [invalid-json]" in broken.stderr
    assert f"Hint: `taskcli validate {path}` lists every problem." in broken.stderr
    past = invoke("show", path, "--index", "1001")
    assert past.exit_code == 2
    assert "index 1001 is out of range" in past.stderr and "1,001 examples" in past.stderr


def test_show_humaneval_metadata_stays_on_one_line_each(tmp_path):
    import hubdata

    hubdata.write_humaneval(tmp_path)
    result = invoke("show", "humaneval", "--data-dir", tmp_path, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    before_panels = result.stdout.split("╭", 1)[0]
    assert "test: def check(candidate): … (" in before_panels
    assert "assert candidate(" not in before_panels


# --- validate ---------------------------------------------------------------------------------


def test_validate_a_file_that_is_not_jsonl_says_so_in_one_line():
    result = invoke("validate", EXAMPLES / "words.txt", env={"COLUMNS": "80"})
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "does not look like a JSONL file of conversations" in lines[1]
    assert "1,510 of its 1,512 lines are not JSON" in lines[1]
    assert sum("[invalid-json]" in line for line in lines) == 5


@pytest.mark.parametrize("target", ["gsm8k", "examples/mixture.yaml"])
def test_validate_a_task_or_spec_says_how_to_check_it(target, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = invoke("validate", target)
    assert result.exit_code == 2
    assert "validate checks conversation files" in result.stderr
    assert f"`taskcli export {target} -o - | taskcli validate -`" in result.stderr


# --- export -----------------------------------------------------------------------------------


def test_export_one_file_through_any_format(tmp_path):
    source = EXAMPLES / "identity.jsonl"
    out = tmp_path / "identity-sharegpt.jsonl"
    result = invoke("export", source, "-o", out, "--format", "sharegpt")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 36 and rows[0]["conversations"][0]["from"] == "human"
    manifest = json.loads((tmp_path / "identity-sharegpt.jsonl.manifest.json").read_text())
    assert manifest["spec"]["tasks"][0]["params"]["path"] == str(source)
    assert manifest["spec"]["mode"] == "sequence"
    # In the file's own order.
    first = json.loads(source.read_text().splitlines()[0])
    first = first["messages"] if isinstance(first, dict) else first
    assert rows[0]["conversations"][0]["value"] == first[0]["content"]


def test_export_a_task_with_its_subset_split_and_params(tmp_path):
    out = tmp_path / "words.jsonl"
    words = EXAMPLES / "words.txt"
    result = invoke(
        "export", "spellingbee", "--split", "test", "-p", "size=7", "-p", f"word_list={words}",
        "-o", out, "--format", "full",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    task = SpellingBee(size=7, split="test", word_list=str(words))
    assert [row["messages"] for row in rows] == [task[i]["messages"] for i in range(7)]
    assert rows[3]["source"]["split"] == "test" and rows[3]["source"]["index"] == 3


@pytest.mark.parametrize(
    ("fmt", "columns"),
    [
        ("messages", ["messages"]),
        ("nanochat", ["messages"]),
        ("openai", ["messages"]),
        ("sharegpt", ["conversations"]),
        ("full", ["messages", "metadata"]),
    ],
)
def test_parquet_is_real_parquet_with_the_formats_columns(tmp_path, local_spec, fmt, columns):
    out = tmp_path / f"train-{fmt}.parquet"
    result = invoke("export", local_spec, "-o", out, "--format", fmt)
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.column_names == columns and table.num_rows == 66
    jsonl = tmp_path / f"train-{fmt}.jsonl"
    assert invoke("export", local_spec, "-o", jsonl, "--format", fmt).exit_code == 0
    keys = row_keys_column(table.schema)
    assert keys == ("metadata" if fmt == "full" else None)
    rows = [record_of_row(row, keys) for row in table.to_pylist()]
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert rows == [{"messages": line} if fmt == "nanochat" else line for line in lines]
    manifest = json.loads((tmp_path / f"train-{fmt}.parquet.manifest.json").read_text())
    assert manifest["output"]["kind"] == "parquet"


@pytest.mark.parametrize(
    ("name", "args", "words"),
    [
        ("train.csv", [], "the file name does not say what to write"),
        ("train.jsonl", ["--format", "tokens"], "the tokens format cannot be written as .jsonl"),
    ],
)
def test_an_output_name_that_does_not_fit_is_a_usage_error(tmp_path, local_spec, name, args, words):
    result = invoke("export", local_spec, "-o", tmp_path / name, *args)
    assert result.exit_code == 2
    assert words in " ".join(result.stderr.split())
    assert not (tmp_path / name).exists()


def test_an_explicit_format_writes_json_lines_under_any_name(tmp_path, local_spec):
    out = tmp_path / "train.csv"
    result = invoke("export", local_spec, "-o", out, "--format", "openai")
    assert result.exit_code == 0, result.output
    assert len([json.loads(line) for line in out.read_text().splitlines()]) == 66


def test_the_wrote_line_is_whole_and_names_the_manifest_folder(tmp_path, local_spec):
    deep = tmp_path / ("a-rather-long-folder-name-" * 3)
    deep.mkdir()
    out = deep / "train.jsonl"
    result = invoke("export", local_spec, "-o", out, env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert result.stderr == f"wrote 66 rows to {out} (manifest: {out}.manifest.json)\n"


def test_dry_run_at_80_columns_shows_each_entrys_file_whole(tmp_path, local_spec):
    result = invoke("export", local_spec, "--dry-run", env={"COLUMNS": "80"})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert f"tasks[0] path={tmp_path / 'identity.jsonl'}" in lines
    table = [line for line in lines if line.startswith(" tasks[")]
    assert table and all(len(line) <= 80 for line in table)


def test_library_export_follows_the_file_name(tmp_path, local_spec):
    from taskcli.export import export
    from taskcli.mixing.plan import build_plan
    from taskcli.mixing.spec import load_spec

    plan = build_plan(load_spec(local_spec))
    manifest = export(plan, tmp_path / "x.parquet", fmt="nanochat")
    assert manifest["output"]["kind"] == "parquet"
    assert pq.read_table(tmp_path / "x.parquet").column_names == ["messages"]
    with pytest.raises(UsageError):
        export(plan, tmp_path / "x.txt")
    assert not os.path.exists(tmp_path / "x.txt")
