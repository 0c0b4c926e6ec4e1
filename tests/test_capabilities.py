"""A plugin written to the small contract (nanochat's `Task`) works in every command, and each
optional capability (`taskcli.tasks.capabilities`) is used by its command when, and only when,
a task takes it on. Everything runs through the real CLI."""

import json
import os
from pathlib import Path

import hubdata
import pytest
from typer.testing import CliRunner

from taskcli.cli import app
from taskcli.export import columnar, lines
from taskcli.tasks import Param, Task, registry
from taskcli.tasks.capabilities import (
    ChecksMessages,
    DataFiles,
    ExampleIds,
    MessagesColumn,
    ReadsAhead,
    ReadsInThreads,
    RunsCode,
)
from taskcli.tasks.hub import HubTask

CAPABILITIES = (
    ChecksMessages,
    DataFiles,
    ExampleIds,
    MessagesColumn,
    ReadsAhead,
    ReadsInThreads,
    RunsCode,
)
COUNTRIES = (
    ("France", "Paris"),
    ("Japan", "Tokyo"),
    ("Kenya", "Nairobi"),
    ("Peru", "Lima"),
    ("Norway", "Oslo"),
    ("Chile", "Santiago"),
)
SIZE = len(COUNTRIES)

runner = CliRunner()


class Capitals(Task):
    """The small contract and nothing more: what a plugin author writes first."""

    name = "capitals"
    description = "Capital-city questions, answered in one word."
    dataset = "synthetic"
    eval_type = "generative"
    splits = ("train", "test")
    default_split = "train"
    params = (Param("size", int, SIZE, "How many questions."),)

    def __init__(self, split="train", size=SIZE, **slice_args):
        super().__init__(**slice_args)
        self.size = size

    def num_examples(self):
        return self.size

    def get_example(self, index):
        country, capital = COUNTRIES[index % SIZE]
        return {
            "messages": [
                {"role": "user", "content": f"What is the capital of {country}?"},
                {"role": "assistant", "content": capital},
            ],
            "country": country,
        }

    def evaluate(self, conversation, response):
        return response.strip() == conversation["messages"][-1]["content"]


class CheckedCapitals(Capitals, ChecksMessages):
    name = "checked-capitals"


class NamedCapitals(Capitals, ExampleIds):
    name = "named-capitals"
    answer_id = "country"


class EagerCapitals(Capitals, ReadsAhead):
    name = "eager-capitals"
    calls = 0

    def read_ahead(self):
        EagerCapitals.calls += 1


class FiledCapitals(Capitals, DataFiles):
    """Reads (it says) a file named by the test."""

    name = "filed-capitals"
    read_from = ""

    @property
    def data_files(self):
        return [FiledCapitals.read_from]

    @property
    def revision(self):
        return "abc123"


class Sums(Task, RunsCode):
    """Answers are Python expressions, run as programs that assert their value."""

    name = "sums"
    description = "One more than a number, as a Python expression."
    dataset = "synthetic"
    eval_type = "generative"

    def num_examples(self):
        return 3

    def get_example(self, index):
        return {
            "messages": [
                {"role": "user", "content": f"An expression for {index} + 1?"},
                {"role": "assistant", "content": f"{index} + 1"},
            ],
            "total": index + 1,
        }

    def build_program(self, conversation, completion):
        return f"assert ({completion}) == {conversation['total']}\n"

    def evaluate(self, conversation, response):
        """The contract's one answer at a time (a training loop's); `eval` runs the programs."""
        raise AssertionError("taskcli eval calls evaluate for a task that runs code")


class PlainSmolTalk(HubTask):
    """SmolTalk's rows as a plugin would read them without the messages column capability."""

    name = "plain-smoltalk"
    description = "SmolTalk, row by row."
    repo = dataset = "HuggingFaceTB/smol-smoltalk"
    splits = ("train", "test")

    def row_to_conversation(self, row):
        return {"messages": [{"role": m["role"], "content": m["content"]} for m in row["messages"]]}


PLUGINS = (Capitals, CheckedCapitals, NamedCapitals, EagerCapitals, FiledCapitals, Sums)


@pytest.fixture(autouse=True)
def plugins():
    for cls in (*PLUGINS, PlainSmolTalk):
        registry.register(cls)
    yield
    registry.clear_cache()


def run(*args):
    """`taskcli ARGS`; whatever happens is a message, never a traceback."""
    result = runner.invoke(app, [str(arg) for arg in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def json_lines(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- the small contract alone ---------------------------------------------------------------


def test_the_small_contract_takes_on_no_capability():
    task = Capitals()
    assert [cap.__name__ for cap in CAPABILITIES if isinstance(task, cap)] == []


def test_a_small_plugin_is_listed_and_shown():
    listed = run("list", "--json")
    assert listed.exit_code == 0
    entry = next(e for e in json.loads(listed.stdout) if e["name"] == "capitals")
    assert (entry["source"], entry["eval_type"]) == ("synthetic", "generative")
    shown = run("show", "capitals", "--index", 2, "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout) == {**Capitals()[2], "index": 2}
    drawn = run("show", "Capitals", "--split", "test", "--index", 4)
    assert drawn.exit_code == 0 and "Oslo" in drawn.stdout


def test_a_small_plugin_exports_and_what_it_writes_validates(tmp_path):
    out = tmp_path / "capitals.jsonl"
    exported = run("export", "capitals", "-o", out, "-f", "full")
    assert exported.exit_code == 0, exported.output
    rows = json_lines(out)
    assert [row.pop("source")["index"] for row in rows] == list(range(SIZE))
    assert rows == list(Capitals())
    manifest = json.loads((tmp_path / "capitals.jsonl.manifest.json").read_text())
    assert manifest["data_files"] == []  # it names no files: nothing to record
    assert run("validate", out).exit_code == 0
    refused = run("validate", "capitals")
    assert refused.exit_code == 2 and "capitals is a registered task" in refused.output


def test_a_small_plugin_has_statistics(tmp_path):
    result = run("stats", "capitals", "-p", "size=4", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["conversations"] == 4


def test_a_small_plugin_is_scored_by_its_evaluate(tmp_path):
    answers = tmp_path / "answers.jsonl"
    said = ["Paris", "Kyoto", " Nairobi\n", "Lima", "Bergen", "Santiago"]
    answers.write_text(
        "".join(json.dumps({"index": i, "completion": a}) + "\n" for i, a in enumerate(said))
    )
    result = run("eval", "capitals", answers, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["n"], document["correct"]) == (6, 4)
    assert "failures" not in document and "isolation" not in document  # no program was run


# --- each capability, used by its command when a task takes it on ---------------------------


def test_export_takes_the_bulk_path_only_for_a_messages_column(tmp_path, monkeypatch):
    hubdata.write_smoltalk(tmp_path)
    bulk_rows = []
    write_in_bulk = columnar.json_lines
    monkeypatch.setattr(
        columnar, "json_lines", lambda *a: bulk_rows.append(len(a[0])) or write_in_bulk(*a)
    )
    written = {}
    for name in ("smoltalk", "plain-smoltalk", "capitals"):
        bulk_rows.clear()
        result = run("export", name, "--split", "train", "--data-dir", tmp_path, "-o", "-")
        assert result.exit_code == 0, result.output
        written[name] = (result.stdout_bytes, sum(bulk_rows))
    assert isinstance(registry.get_task_class("smoltalk")(data_dir=tmp_path), MessagesColumn)
    assert written["smoltalk"][1] == 20  # every row went the bulk way
    assert written["plain-smoltalk"] == (written["smoltalk"][0], 0)  # row by row, same bytes
    assert written["capitals"][1] == 0


def test_export_leaves_the_rules_to_a_task_that_checks_its_messages(monkeypatch):
    checked = []
    check = lines.check_messages
    monkeypatch.setattr(lines, "check_messages", lambda m: checked.append(m) or check(m))
    for name, checks in (("capitals", SIZE), ("checked-capitals", 0)):
        checked.clear()
        result = run("export", name, "-o", "-")
        assert result.exit_code == 0, result.output
        assert (len(result.stdout_bytes.splitlines()), len(checked)) == (SIZE, checks)


def test_eval_runs_the_programs_of_a_task_that_runs_code(tmp_path):
    answers = tmp_path / "answers.jsonl"
    said = ["0 + 1", "1 + 2", "undefined_name"]
    answers.write_text(
        "".join(json.dumps({"index": i, "completion": a}) + "\n" for i, a in enumerate(said))
    )
    result = run("eval", "sums", answers, "--workers", 2, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["n"], document["correct"]) == (3, 1)
    assert document["failures"] == {"assertion": 1, "exception": 1}
    assert document["exceptions"] == {"NameError": 1}


def test_eval_takes_answers_named_by_the_ids_a_task_declares(tmp_path):
    answers = tmp_path / "answers.jsonl"
    said = [{"country": c, "completion": "Oslo" if c == "Norway" else "?"} for c, _ in COUNTRIES]
    answers.write_text("".join(json.dumps(answer) + "\n" for answer in said))
    result = run("eval", "named-capitals", answers, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["n"], document["correct"]) == (6, 1)
    refused = run("eval", "capitals", answers)
    assert refused.exit_code == 1 and "missing 'index'" in " ".join(refused.output.split())


def test_export_reads_ahead_before_a_whole_pass_of_a_task_that_can(tmp_path, monkeypatch):
    monkeypatch.setattr(EagerCapitals, "calls", 0)
    assert run("export", "eager-capitals", "-o", tmp_path / "all.jsonl").exit_code == 0
    assert EagerCapitals.calls == 1
    assert (
        run("export", "eager-capitals", "-o", tmp_path / "two.jsonl", "--limit", 2).exit_code == 0
    )
    assert EagerCapitals.calls == 1  # not for a part of it


def test_the_files_a_task_reads_are_recorded_and_never_overwritten(tmp_path, monkeypatch):
    data = tmp_path / "capitals.csv"
    data.write_text("France,Paris\n")
    monkeypatch.setattr(FiledCapitals, "read_from", str(data))
    out = tmp_path / "out.jsonl"
    assert run("export", "filed-capitals", "-o", out).exit_code == 0
    manifest = json.loads((tmp_path / "out.jsonl.manifest.json").read_text())
    assert manifest["data_files"] == [{"path": str(data), "revision": "abc123", "size": 13}]
    answers = tmp_path / "answers.jsonl"
    answers.write_text('{"index": 0, "completion": "Paris"}\n')
    for name, refused in (("filed-capitals", True), ("capitals", False)):
        result = run("eval", name, answers, "--details", data)
        assert (result.exit_code == 2) == refused, result.output
        assert ("an input is never overwritten" in result.output) == refused
    assert os.path.getsize(data) > 13  # a task that does not name its files cannot protect them


def test_a_folder_of_parquet_shards_records_its_files(tmp_path):
    """A conversation file target names the files it reads (`CustomJSON` takes on `DataFiles`):
    a folder is not a file its `path` parameter could name."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "chats" / "data"
    folder.mkdir(parents=True)
    shards = [folder / f"train-0000{i}-of-00002.parquet" for i in range(2)]
    for number, shard in enumerate(shards):
        rows = [Capitals().get_example(i)["messages"] for i in range(3 * number, 3 * number + 3)]
        pq.write_table(pa.table({"messages": rows}), shard)
    out = tmp_path / "out.jsonl"
    exported = run("export", tmp_path / "chats", "-o", out)
    assert exported.exit_code == 0, exported.output
    assert len(out.read_text().splitlines()) == SIZE
    manifest = json.loads((tmp_path / "out.jsonl.manifest.json").read_text())
    recorded = [(record["path"], record["revision"]) for record in manifest["data_files"]]
    assert recorded == [(str(shard), None) for shard in shards]


def test_defining_a_protocol_capability_s_members_is_taking_it_on():
    """A plugin written before the capabilities existed keeps its eval path and its ids."""

    class Unannounced(Capitals):
        answer_id = "country"

        def build_program(self, conversation, completion):
            return ""

    task = Unannounced()
    assert isinstance(task, RunsCode) and isinstance(task, ExampleIds)
    assert not isinstance(task, ChecksMessages) and not isinstance(task, ReadsInThreads)


def test_a_capability_taken_on_without_its_members_cannot_be_created():
    class Forgetful(Capitals, RunsCode):
        name = "forgetful"

    with pytest.raises(TypeError, match="build_program"):
        Forgetful()
