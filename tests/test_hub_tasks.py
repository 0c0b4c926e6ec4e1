"""The Hub-backed tasks on small local copies in the real layouts: ARC, MMLU, GSM8K, HumanEval,
SmolTalk. Expected conversations are built here from the rows the builders wrote, and the order
from `datasets.Dataset.shuffle(seed=42)` itself."""

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import hubdata
import pytest
from typer.testing import CliRunner

from taskcli.cli import app
from taskcli.conversation import flatten_content
from taskcli.errors import DataUnavailable, InvalidData
from taskcli.tasks.arc import ARC
from taskcli.tasks.gsm8k import GSM8K, answer_parts
from taskcli.tasks.humaneval import HumanEval, build_program
from taskcli.tasks.mmlu import MMLU, SUBJECTS
from taskcli.tasks.smoltalk import SmolTalk

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
REVISION = "0123456789abcdef0123456789abcdef01234567"
TAIL = "\nRespond only with the letter of the correct answer."


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """All five datasets in one data dir: several shards and small row groups, with revision."""
    data_dir = tmp_path_factory.mktemp("data")
    written = hubdata.write_all(data_dir, files_per_split=2, rows_per_group=3, revision=REVISION)
    return data_dir, written


def shuffled(rows):
    """The rows in the order `datasets` gives after `.shuffle(seed=42)`."""
    import datasets

    order = datasets.Dataset.from_dict({"i": list(range(len(rows)))}).shuffle(seed=42)["i"]
    return [rows[i] for i in order]


def mc_prompt(question, letters, choices):
    pairs = zip(letters, choices, strict=True)
    lines = "".join(f"- {choice}={letter}\n" for letter, choice in pairs)
    return f"Multiple Choice question: {question}\n{lines}{TAIL}"


# --- the seed-42 order ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 17, 1000])
def test_permutation_is_the_one_dataset_shuffle_uses(n, tmp_path):
    import datasets
    import numpy as np

    rows = [{"question": f"q{i}", "answer": f"#### {i}"} for i in range(n)]
    hubdata.write_repo(
        tmp_path, "openai/gsm8k", {"main": {"test": rows}}, {"main": hubdata.GSM8K_SCHEMA}
    )
    task = GSM8K(data_dir=tmp_path)
    expected = datasets.Dataset.from_dict({"i": list(range(n))}).shuffle(seed=42)["i"]
    assert task.perm.tolist() == expected
    assert expected != list(range(n)) or n == 1
    # and not the legacy generator, which gives another order
    assert n < 17 or np.random.RandomState(42).permutation(n).tolist() != expected
    assert [task[i]["messages"][0]["content"] for i in range(n)] == [f"q{i}" for i in expected]


# --- ARC -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("subset", ["ARC-Easy", "ARC-Challenge"])
@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_arc_conversations_field_by_field(hub, subset, split):
    data_dir, written = hub
    task = ARC(subset=subset, split=split, data_dir=data_dir)
    rows = shuffled(written["allenai/ai2_arc"][subset][split])
    assert len(task) == len(rows)
    for conversation, row in zip(task, rows, strict=True):
        labels = row["choices"]["label"]
        assert conversation == {
            "messages": [
                {
                    "role": "user",
                    "content": mc_prompt(row["question"], labels, row["choices"]["text"]),
                },
                {"role": "assistant", "content": row["answerKey"]},
            ],
            "letters": labels,
            "id": row["id"],  # answers may name the question by it
        }


def test_arc_keeps_numeric_labels_and_odd_choice_counts(hub):
    data_dir, written = hub
    rows = written["allenai/ai2_arc"]["ARC-Easy"]["train"]
    assert {len(r["choices"]["label"]) for r in rows} == {3, 4, 5}
    numeric = next(r for r in rows if r["choices"]["label"][0] == "1")
    task = ARC(subset="ARC-Easy", split="train", data_dir=data_dir)
    found = next(
        c
        for c in task
        if c["messages"][0]["content"].startswith(
            f"Multiple Choice question: {numeric['question']}\n"
        )
    )
    assert found["letters"] == numeric["choices"]["label"]
    assert f"- {numeric['choices']['text'][0]}=1\n" in found["messages"][0]["content"]
    assert found["messages"][1]["content"] == numeric["answerKey"]


def test_arc_exact_prompt_text(tmp_path):
    row = {
        "id": "x1",
        "question": "Which is a mammal?",
        "choices": {"text": ["shark", "whale", "trout"], "label": ["1", "2", "3"]},
        "answerKey": "2",
    }
    hubdata.write_repo(
        tmp_path, "allenai/ai2_arc", {"ARC-Easy": {"test": [row]}}, {"ARC-Easy": hubdata.ARC_SCHEMA}
    )
    conversation = ARC(data_dir=tmp_path)[0]
    assert conversation["messages"][0]["content"] == (
        "Multiple Choice question: Which is a mammal?\n- shark=1\n- whale=2\n- trout=3\n"
        "\nRespond only with the letter of the correct answer."
    )
    task = ARC(data_dir=tmp_path)
    assert task.evaluate(conversation, " 2\n") is True
    assert task.evaluate(conversation, "B") is False
    assert task.evaluate(conversation, "2.") is False


# --- MMLU ----------------------------------------------------------------------------------------


def test_mmlu_metadata_lists_every_subject_and_the_splits_of_each():
    assert len(SUBJECTS) == 57 and len(set(SUBJECTS)) == 57
    assert MMLU.subsets == ("all", "auxiliary_train", *SUBJECTS)
    assert MMLU.splits["all"] == ("test", "validation", "dev", "auxiliary_train")
    assert MMLU.splits["auxiliary_train"] == ("train",)
    assert all(MMLU.splits[s] == ("test", "validation", "dev") for s in SUBJECTS)
    assert (MMLU.source, MMLU.eval_type, MMLU.default_subset) == ("cais/mmlu", "categorical", "all")


@pytest.mark.parametrize(
    ("subset", "split"),
    [
        ("all", "test"),
        ("all", "dev"),
        ("all", "auxiliary_train"),
        ("college_mathematics", "test"),
        ("world_religions", "validation"),
    ],
)
def test_mmlu_conversations_field_by_field(hub, subset, split):
    data_dir, written = hub
    task = MMLU(subset=subset, split=split, data_dir=data_dir)
    rows = shuffled(written["cais/mmlu"][subset][split])
    assert len(task) == len(rows)
    for conversation, row in zip(task, rows, strict=True):
        assert conversation == {
            "messages": [
                {"role": "user", "content": mc_prompt(row["question"], "ABCD", row["choices"])},
                {"role": "assistant", "content": "ABCD"[row["answer"]]},
            ],
            "subject": row["subject"],
            "letters": ["A", "B", "C", "D"],
        }


def test_mmlu_auxiliary_train_rows_are_unwrapped(hub):
    data_dir, written = hub
    wrapped = written["cais/mmlu"]["auxiliary_train"]["train"]
    assert set(wrapped[0]) == {"train"}  # the real layout: one struct column
    unwrapped = MMLU(subset="auxiliary_train", split="train", data_dir=data_dir)
    flat = MMLU(subset="all", split="auxiliary_train", data_dir=data_dir)
    assert list(unwrapped) == list(flat)
    assert unwrapped[0]["messages"][1]["content"] in "ABCD"


def test_mmlu_auxiliary_train_defaults_to_its_only_split(hub):
    data_dir, written = hub
    assert MMLU(subset="auxiliary_train", data_dir=data_dir).split == "train"
    result = runner.invoke(
        app, ["show", "mmlu", "--subset", "auxiliary_train", "--data-dir", str(data_dir), "--json"]
    )
    assert result.exit_code == 0, result.output
    first = shuffled(written["cais/mmlu"]["auxiliary_train"]["train"])[0]["train"]
    assert json.loads(result.stdout)["messages"][1]["content"] == "ABCD"[first["answer"]]


def test_mmlu_row_without_four_choices_is_invalid_data(tmp_path):
    row = {"question": "q?", "subject": "anatomy", "choices": ["a", "b", "c"], "answer": 1}
    hubdata.write_repo(
        tmp_path, "cais/mmlu", {"anatomy": {"test": [row]}}, {"anatomy": hubdata.MMLU_SCHEMA}
    )
    with pytest.raises(InvalidData, match=r"cais/mmlu \(anatomy / test\) row 0.*4 choices"):
        MMLU(subset="anatomy", data_dir=tmp_path)[0]


# --- GSM8K ---------------------------------------------------------------------------------------


def test_gsm8k_answer_parts_exactly():
    assert answer_parts("<<2+3=5>>5 apples, then <<5*2>> more\n#### 10") == [
        {"type": "text", "text": ""},
        {"type": "python", "text": "2+3"},
        {"type": "python_output", "text": "5"},
        {"type": "text", "text": "5 apples, then "},
        {"type": "python", "text": "5*2"},
        {"type": "python_output", "text": ""},
        {"type": "text", "text": " more\n#### 10"},
    ]
    # the result is what follows the last '='
    assert answer_parts("<<a==b=True>>")[1:3] == [
        {"type": "python", "text": "a==b"},
        {"type": "python_output", "text": "True"},
    ]
    assert answer_parts("no calls\n#### 3") == [{"type": "text", "text": "no calls\n#### 3"}]


@pytest.mark.parametrize("subset", ["main", "socratic"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_gsm8k_conversations_field_by_field(hub, subset, split):
    data_dir, written = hub
    task = GSM8K(subset=subset, split=split, data_dir=data_dir)
    rows = shuffled(written["openai/gsm8k"][subset][split])
    assert len(task) == len(rows)
    for conversation, row in zip(task, rows, strict=True):
        assert set(conversation) == {"messages"}
        user, assistant = conversation["messages"]
        assert user == {"role": "user", "content": row["question"]}
        assert assistant["role"] == "assistant"
        parts = assistant["content"]
        assert flatten_content(parts) == row["answer"]  # round-trips to the original text
        assert [p["type"] for p in parts[::3]] == ["text"] * len(parts[::3])
        assert all(
            parts[i]["type"] == "python" and parts[i + 1]["type"] == "python_output"
            for i in range(1, len(parts), 3)
        )
        assert parts[-1]["text"].endswith("#### " + row["answer"].rsplit("#### ", 1)[1])


def test_gsm8k_call_without_equals_has_empty_output(hub):
    data_dir, written = hub
    rows = written["openai/gsm8k"]["main"]["train"]
    assert any(
        "<<" in r["answer"]
        and any("=" not in call.split(">>")[0] for call in r["answer"].split("<<")[1:])
        for r in rows
    )
    outputs = [
        p
        for c in GSM8K(subset="main", split="train", data_dir=data_dir)
        for p in c["messages"][1]["content"]
        if p["type"] == "python_output"
    ]
    assert any(p["text"] == "" for p in outputs)
    assert any(p["text"] != "" for p in outputs)


def test_gsm8k_evaluate_compares_the_final_number(hub):
    data_dir, _ = hub
    task = GSM8K(data_dir=data_dir)
    conversation = task[0]
    reference = flatten_content(conversation["messages"][1]["content"]).rsplit("#### ", 1)[1]
    assert task.evaluate(conversation, f"Let me think.\n#### {reference}") is True
    assert task.evaluate(conversation, f"#### {int(reference) + 1}") is False
    assert task.evaluate(conversation, reference) is False  # no '#### ' marker
    big = {
        "messages": [
            {"role": "user", "content": "?"},
            {"role": "assistant", "content": [{"type": "text", "text": "#### 1234"}]},
        ]
    }
    assert task.evaluate(big, "so #### 1,234") is True


# --- HumanEval -----------------------------------------------------------------------------------


def test_humaneval_conversations_field_by_field(hub):
    data_dir, written = hub
    task = HumanEval(data_dir=data_dir)
    rows = shuffled(written["openai/openai_humaneval"]["openai_humaneval"]["test"])
    assert len(task) == len(rows) and task.split == "test"
    for conversation, row in zip(task, rows, strict=True):
        assert conversation == {
            "messages": [
                {"role": "user", "content": row["prompt"]},
                {"role": "assistant", "content": f"{row['prompt']}\n{row['canonical_solution']}"},
            ],
            "task_id": row["task_id"],
            "entry_point": row["entry_point"],
            "test": row["test"],
        }


def run_python(source: str) -> int:
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, timeout=30)
    return done.returncode


def test_build_program_runs_the_reference_solutions_and_fails_wrong_ones(hub):
    data_dir, _ = hub
    task = HumanEval(data_dir=data_dir)
    for conversation in task:
        reference = conversation["messages"][1]["content"]
        program = build_program(conversation, reference)
        assert program.rstrip().endswith(f"check({conversation['entry_point']})")
        assert run_python(program) == 0, program
    broken = task[0]
    wrong = f"def {broken['entry_point']}(*args):\n    return None\n"
    assert run_python(build_program(broken, wrong)) != 0


def test_build_program_takes_the_first_fenced_block_and_the_prompt_imports(hub):
    data_dir, _ = hub
    task = HumanEval(data_dir=data_dir)
    conversation = next(c for c in task if c["entry_point"] == "running_max")
    assert conversation["messages"][0]["content"].startswith("from typing import List")
    completion = (
        "Here you go:\n```python\ndef running_max(numbers: List[int]) -> List[int]:\n"
        "    out = []\n    for n in numbers:\n        out.append(max(out[-1], n) if out else n)\n"
        "    return out\n```\nAnd a second block:\n```\nprint('ignored')\n```\n"
    )
    program = build_program(conversation, completion)
    assert program.startswith("from typing import List\n")
    assert "ignored" not in program
    assert run_python(program) == 0
    # without a fence the whole completion is the code
    plain = build_program(conversation, "def running_max(numbers):\n    return []\n")
    assert "def running_max(numbers):\n    return []" in plain
    assert run_python(plain) != 0


def test_build_program_takes_code_whose_first_line_alone_is_indented_as_whole_code(hub):
    # nanochat strips an answer before running it, so a stray indent on its first line is no error
    data_dir, _ = hub
    task = HumanEval(data_dir=data_dir)
    conversation = next(c for c in task if c["entry_point"] == "running_max")
    solution = conversation["messages"][1]["content"]
    assert solution.startswith("from typing import List\n\n\ndef running_max(")
    program = build_program(conversation, "    " + solution)
    assert program.startswith("from typing import List\n\nfrom typing import List\n")
    assert run_python(program) == 0, program


def test_an_indented_answer_that_is_not_whole_code_continues_the_prompt(hub):
    data_dir, _ = hub
    task = HumanEval(data_dir=data_dir)
    conversation = next(c for c in task if c["entry_point"] == "running_max")
    prompt = conversation["messages"][0]["content"]
    body = conversation["messages"][1]["content"].removeprefix(prompt + "\n")
    assert body.startswith("    result = []\n")
    # the body, then the function again: dedented, its `return` is outside any function
    again = body + "\n\ndef running_max(numbers):\n" + body
    for continuation in (body, again):
        program = build_program(conversation, continuation)
        assert program.startswith(prompt + continuation)
        assert run_python(program) == 0, program


@pytest.mark.parametrize(
    ("rest", "whole"),
    [
        ("1" + "+1" * 200_000, False),
        ("not " * 200_000 + "x", False),
        ("x = '\0'", False),
        ("x = '\\d' is 'd'", True),
    ],
    ids=["too-deep", "parser-overflow", "null-byte", "syntax-warnings"],
)
def test_deciding_whether_an_indented_answer_is_whole_code_is_silent(hub, recwarn, rest, whole):
    # what the compiler refuses is no whole code; what it only warns about is, and says nothing
    data_dir, _ = hub
    task = HumanEval(data_dir=data_dir)
    conversation = next(c for c in task if c["entry_point"] == "running_max")
    completion = f"    x = 1\ndef running_max(numbers):\n    return []\n{rest}\n"
    program = build_program(conversation, completion)
    prompt = conversation["messages"][0]["content"]
    assert program.startswith("from typing import List\n\nx = 1\n" if whole else prompt)
    assert [str(warning.message) for warning in recwarn] == []


def test_humaneval_evaluate_runs_in_the_sandbox(hub):
    data_dir, _ = hub
    task = HumanEval(data_dir=data_dir)
    conversation = task[0]
    # what `taskcli eval` calls on code tasks
    assert task.runs_code
    assert task.build_program(conversation, "x") == build_program(conversation, "x")
    assert task.evaluate(conversation, conversation["messages"][1]["content"]) is True
    assert task.evaluate(conversation, "def nothing():\n    pass\n") is False


# --- SmolTalk ------------------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["train", "test"])
def test_smoltalk_conversations_field_by_field(hub, split):
    data_dir, written = hub
    task = SmolTalk(split=split, data_dir=data_dir)
    rows = shuffled(written["HuggingFaceTB/smol-smoltalk"]["default"][split])
    assert len(task) == len(rows)
    for conversation, row in zip(task, rows, strict=True):
        assert conversation == {
            "messages": [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
        }
        assert [list(m) for m in conversation["messages"]] == [["role", "content"]] * len(
            row["messages"]
        )
    assert any(c["messages"][0]["role"] == "system" for c in task)


def write_smoltalk_rows(data_dir, rows):
    hubdata.write_repo(
        data_dir,
        "HuggingFaceTB/smol-smoltalk",
        {"default": {"train": rows}},
        {"default": hubdata.SMOLTALK_SCHEMA},
        folders={"default": "data"},
    )


def test_smoltalk_invalid_row_is_an_error_naming_the_row(tmp_path):
    good = hubdata.smoltalk_row(0)
    bad = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "user", "content": "again"},
            {"role": "assistant", "content": "yes"},
        ],
        "source": "x",
    }
    write_smoltalk_rows(tmp_path, [good, good, bad, good])
    task = SmolTalk(data_dir=tmp_path)
    bad_index = task.perm.tolist().index(2)
    with pytest.raises(InvalidData) as raised:
        list(task)
    message = str(raised.value)
    assert f"row 2 (example {bad_index})" in message
    assert "HuggingFaceTB/smol-smoltalk" in message and "roles-not-alternating" in message
    assert task[bad_index - 1 if bad_index else 1]["messages"]  # the other rows are fine

    result = runner.invoke(
        app, ["show", "smoltalk", "--data-dir", str(tmp_path), "--index", str(bad_index)]
    )
    assert result.exit_code == 1
    assert "row 2" in result.output and "Traceback" not in result.output


def test_smoltalk_null_content_is_invalid_data(tmp_path):
    row = {
        "messages": [{"role": "user", "content": None}, {"role": "assistant", "content": "ok"}],
        "source": "x",
    }
    write_smoltalk_rows(tmp_path, [row])
    with pytest.raises(InvalidData, match=r"row 0 .*bad-content"):
        SmolTalk(data_dir=tmp_path)[0]


# --- slicing, batches, files ----------------------------------------------------------------------


def test_slicing_picks_the_shuffled_examples(hub):
    data_dir, _ = hub
    full = list(GSM8K(split="train", data_dir=data_dir))
    sliced = GSM8K(split="train", data_dir=data_dir, start=2, stop=15, step=4)
    assert len(sliced) == 4
    assert list(sliced) == full[2:15:4]
    assert [sliced[i] for i in range(4)] == full[2:15:4]
    assert sliced[-1] == full[14]
    with pytest.raises(IndexError):
        sliced[4]


def test_get_examples_in_any_order_with_repeats_equals_one_by_one(hub):
    data_dir, _ = hub
    task = SmolTalk(data_dir=data_dir)
    indices = [19, 0, 7, 7, 3, 19, 12, 1]
    assert task.get_examples(indices) == [task.get_example(i) for i in indices]
    assert task.get_examples([]) == []
    with pytest.raises(IndexError, match=r"0\.\.19"):
        task.get_examples([20])


def test_many_rows_of_a_block_read_in_bulk_equal_rows_read_alone(tmp_path):
    rows = [hubdata.gsm8k_row(n, socratic=False) for n in range(200)]
    hubdata.write_repo(
        tmp_path,
        "openai/gsm8k",
        {"main": {"test": rows}},
        {"main": hubdata.GSM8K_SCHEMA},
        rows_per_group=100,
    )
    task = GSM8K(data_dir=tmp_path)
    bulk = task.get_examples(list(range(200)))  # > FEW_ROWS per block: Arrow take
    assert bulk == [task.get_example(i) for i in range(200)]
    assert [c["messages"][0]["content"] for c in bulk] == [r["question"] for r in shuffled(rows)]


def test_showing_one_example_reads_one_row_group(tmp_path):
    hubdata.write_smoltalk(tmp_path, rows_per_split=40, rows_per_group=4)
    task = SmolTalk(data_dir=tmp_path)
    assert len(task.rows.starts) - 1 == 10  # ten row groups
    task[17]
    assert len(task.rows._read) == 1


def test_data_files_sizes_and_revision(hub):
    data_dir, _ = hub
    task = ARC(subset="ARC-Challenge", split="validation", data_dir=data_dir)
    folder = data_dir / "allenai" / "ai2_arc" / "ARC-Challenge"
    expected = sorted(str(p) for p in folder.glob("validation-*.parquet"))
    assert len(expected) == 2  # two shards, in shard order
    assert [f.path for f in task.data_files] == expected
    assert [f.size for f in task.data_files] == [os.path.getsize(p) for p in expected]
    assert [os.fspath(f) for f in task.data_files] == expected
    assert [str(f) for f in task.data_files] == expected
    assert task.revision == REVISION


def test_revision_is_unknown_without_download_notes(tmp_path):
    hubdata.write_gsm8k(tmp_path, rows_per_split=3)
    assert GSM8K(data_dir=tmp_path).revision is None


@pytest.mark.parametrize("writer", [hubdata.write_arc, hubdata.write_smoltalk])
def test_readme_less_copy_is_found_by_the_usual_layout(writer, tmp_path):
    with_card, without_card = tmp_path / "card", tmp_path / "bare"
    writer(with_card, rows_per_split=8)
    writer(without_card, rows_per_split=8, readme=False)
    assert not list(without_card.glob("*/*/README.md"))
    task = ARC if writer is hubdata.write_arc else SmolTalk
    assert list(task(data_dir=without_card)) == list(task(data_dir=with_card))


def test_data_dir_comes_from_the_environment(hub, monkeypatch):
    data_dir, _ = hub
    monkeypatch.setenv("TASKCLI_DATA_DIR", str(data_dir))
    assert len(GSM8K()) == len(GSM8K(data_dir=data_dir))


def test_invalid_subset_or_split_in_python_lists_the_valid_ones(hub):
    data_dir, _ = hub
    with pytest.raises(ValueError, match="ARC-Easy, ARC-Challenge"):
        ARC(subset="ARC-Hard", data_dir=data_dir)
    with pytest.raises(ValueError, match="Valid splits: train"):
        MMLU(subset="auxiliary_train", split="test", data_dir=data_dir)


# --- data unavailable ----------------------------------------------------------------------------


def test_local_copy_without_the_split_is_data_unavailable(tmp_path):
    hubdata.write_arc(tmp_path, rows_per_split=3)
    for path in (tmp_path / "allenai" / "ai2_arc" / "ARC-Easy").glob("test-*"):
        path.unlink()
    with pytest.raises(DataUnavailable) as raised:
        ARC(subset="ARC-Easy", split="test", data_dir=tmp_path)
    message = str(raised.value)
    assert "ARC-Easy/test-*" in message
    hint = raised.value.hint
    assert f"hf download allenai/ai2_arc --repo-type dataset --local-dir {tmp_path}" in hint


def test_offline_without_copy_or_cache_through_the_cli(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    started = time.monotonic()
    result = runner.invoke(app, ["show", "arc", "--data-dir", str(empty)])
    assert time.monotonic() - started < 15
    assert result.exit_code == 1
    assert "allenai/ai2_arc" in result.output
    assert (
        f"hf download allenai/ai2_arc --repo-type dataset --local-dir "
        f"{empty / 'allenai' / 'ai2_arc'}"
    ) in " ".join(result.output.split())
    assert "Traceback" not in result.output


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class NotFound(http.server.BaseHTTPRequestHandler):
    """A Hub endpoint that answers every request with 404."""

    def do_GET(self):
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def not_found_hub():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("endpoint", ["offline-mode", "unreachable", "answers-404"])
def test_unavailable_data_in_a_real_process_is_fast_and_clean(endpoint, tmp_path, request):
    """`python -m taskcli show arc --data-dir EMPTY`: exit 1 within seconds, no traceback.

    With HF_HUB_OFFLINE set, `datasets` must fail at once; without it, against a closed port on
    127.0.0.1 taskcli must notice and go offline instead of letting `datasets` retry for half a
    minute; against a server that knows no dataset, the Hub's answer is reported.
    """
    empty = tmp_path / "EMPTY"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if endpoint != "offline-mode":
        env.pop("HF_HUB_OFFLINE")
        env.pop("HF_DATASETS_OFFLINE")
        env["HF_ENDPOINT"] = (
            f"http://127.0.0.1:{free_port()}"
            if endpoint == "unreachable"
            else request.getfixturevalue("not_found_hub")
        )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "taskcli", "show", "arc", "--data-dir", str(empty)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert elapsed < 15
    assert "Traceback" not in done.stderr
    message = " ".join(done.stderr.split())
    assert f"no local copy at {empty / 'allenai' / 'ai2_arc'}" in message
    assert f"hf download allenai/ai2_arc --repo-type dataset --local-dir {empty}" in message
    expected = {
        "offline-mode": "offline mode is on (HF_HUB_OFFLINE is set)",
        "unreachable": f"the Hugging Face Hub ({env.get('HF_ENDPOINT')}) is unreachable",
        "answers-404": "loading it from the Hugging Face Hub failed",
    }
    assert expected[endpoint] in message


def test_hub_cache_is_used_offline_with_its_revision(tmp_path, monkeypatch):
    """A `datasets` cache of allenai/ai2_arc (the layout load_dataset leaves) works offline."""
    import datasets

    # `datasets` reads HF_HOME once, at import: point its cache at this test's folder
    cache_root = tmp_path / "hf-datasets"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache_root)
    hubdata.write_arc(tmp_path / "copy", rows_per_split=6)
    local = tmp_path / "copy" / "allenai" / "ai2_arc"
    datasets.load_dataset(str(local), "ARC-Easy", split="test")  # fills the cache: ai2_arc/...
    (cache_root / "ai2_arc").rename(cache_root / "allenai___ai2_arc")
    version_dir = cache_root / "allenai___ai2_arc" / "ARC-Easy" / "0.0.0"
    (hash_dir,) = [p for p in version_dir.iterdir() if p.is_dir()]
    hash_dir.rename(version_dir / REVISION)
    shutil.rmtree(tmp_path / "copy")

    task = ARC(subset="ARC-Easy", split="test")
    from_cache = list(task)
    assert task.revision == REVISION
    assert [Path(f.path).name for f in task.data_files] == ["ai2_arc-test.arrow"]
    assert task.data_files[0].size == os.path.getsize(task.data_files[0].path)
    hubdata.write_arc(tmp_path / "again", rows_per_split=6)
    assert from_cache == list(ARC(subset="ARC-Easy", split="test", data_dir=tmp_path / "again"))
    assert task.get_examples([5, 0, 5]) == [from_cache[5], from_cache[0], from_cache[5]]
    scanned = dict(task.iter_examples([5, 0, 5]))
    assert [scanned[i] for i in range(3)] == [from_cache[5], from_cache[0], from_cache[5]]


# --- the command line ----------------------------------------------------------------------------


def test_show_json_prints_the_task_conversations(hub):
    data_dir, _ = hub
    result = runner.invoke(
        app,
        [
            "show",
            "gsm8k",
            "--split",
            "train",
            "--data-dir",
            str(data_dir),
            "--index",
            "3",
            "--count",
            "2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    task = GSM8K(split="train", data_dir=data_dir)
    assert lines == [{**task[3], "index": 3}, {**task[4], "index": 4}]


def test_show_renders_a_smoltalk_conversation(hub):
    data_dir, _ = hub
    result = runner.invoke(
        app, ["show", "smoltalk", "--split", "test", "--index", "0", "--data-dir", str(data_dir)]
    )
    assert result.exit_code == 0, result.output
    conversation = SmolTalk(split="test", data_dir=data_dir)[0]
    assert "smoltalk" in result.output and "test" in result.output
    for message in conversation["messages"]:
        assert message["content"].split()[0] in result.output


def test_show_index_past_the_end_says_how_many(hub):
    data_dir, written = hub
    size = len(written["openai/openai_humaneval"]["openai_humaneval"]["test"])
    result = runner.invoke(
        app, ["show", "humaneval", "--data-dir", str(data_dir), "--index", str(size)]
    )
    assert result.exit_code == 2
    assert f"{size} examples" in result.output


def test_task_modules_import_no_heavy_library():
    code = (
        "import sys\n"
        "import taskcli.tasks.arc, taskcli.tasks.mmlu, taskcli.tasks.gsm8k\n"
        "import taskcli.tasks.humaneval, taskcli.tasks.smoltalk, taskcli.hub.data\n"
        "print([m for m in ('datasets', 'pyarrow', 'numpy', 'yaml') if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert done.stdout.strip() == "[]", done.stderr


def test_storage_order_reads_give_the_right_rows_when_indices_repeat(tmp_path):
    """An entry repeated in a mixture asks for some examples twice: the reads in storage order
    must still give each position its own row (not a run that merely spans as many rows)."""
    hubdata.write_gsm8k(tmp_path)
    task = GSM8K(subset="main", split="train", data_dir=tmp_path)
    for wanted in ([0, 1, 2, 3, 4, 5, 6, 7, 8, 0], [3, 3, 5], [2, 0, 2, 1]):
        scanned = dict(task.iter_examples(wanted))
        assert [scanned[i] for i in range(len(wanted))] == task.get_examples(wanted), wanted
