"""`taskcli stats`: exact numbers on hand-built data, every target kind, and the error paths."""

import itertools
import json
import math
import re
import runpy
from pathlib import Path

import hubdata
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from taskcli.cli import app
from taskcli.errors import InvalidData, UsageError
from taskcli.stats import compute_stats, histogram, percentile, summarize
from taskcli.targets import SPEC, TASK, Source, Target
from taskcli.tasks import Task
from taskcli.ui.reports import bar

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent

# Five conversations whose numbers are worked out by hand below.
CONVERSATIONS = [
    {"messages": [{"role": "user", "content": "abcd"}, {"role": "assistant", "content": "hello"}]},
    {
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "12345678"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "ab"},
                    {"type": "python", "text": "1+1"},
                    {"type": "python_output", "text": "2"},
                    {"type": "text", "text": "done"},
                ],
            },
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": "yy"},
            {"role": "user", "content": "zzz"},
            {"role": "assistant", "content": "wwww"},
        ]
    },
    {"messages": [{"role": "user", "content": "é" * 10}, {"role": "assistant", "content": "ok"}]},
    {
        "messages": [
            {"role": "system", "content": "s" * 100},
            {"role": "user", "content": "q" * 50},
            {"role": "assistant", "content": "a" * 350},
        ]
    },
]
# Per conversation: messages 2 3 4 2 3; user 4 8 4 10 50; assistant 5 10 6 2 350 (the parts
# 2+3+1+4); system 3 and 100 in two conversations; totals 9 21 10 12 500. Nearest rank of n=5:
# the median is the 3rd smallest value, p95 the 5th; of n=2: the median is the 1st, p95 the 2nd.
EXPECTED_SUMMARIES = {
    "messages": {"count": 5, "min": 2, "median": 3, "p95": 4, "max": 4, "mean": 2.8},
    "system": {"count": 2, "min": 3, "median": 3, "p95": 100, "max": 100, "mean": 51.5},
    "user": {"count": 5, "min": 4, "median": 8, "p95": 50, "max": 50, "mean": 15.2},
    "assistant": {"count": 5, "min": 2, "median": 6, "p95": 350, "max": 350, "mean": 74.6},
    "total": {"count": 5, "min": 9, "median": 12, "p95": 500, "max": 500, "mean": 110.4},
}
# Totals 9..500 fit the finest edges (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 per decade) in 19 bins,
# from the edge 8 (the largest <= 9) to 600 (the first > 500).
EXPECTED_EDGES = [8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, 150, 200, 250, 300, 400]
EXPECTED_EDGES += [500, 600]
EXPECTED_FILLED_BINS = {(8, 9): 1, (10, 11): 1, (12, 14): 1, (20, 24): 1, (500, 599): 1}


class Listed(Task):
    """A task over a fixed list of conversations, counting how often it is read in bulk."""

    def __init__(self, conversations, **slice_args):
        super().__init__(**slice_args)
        self.conversations = conversations
        self.batches = 0

    def num_examples(self):
        return len(self.conversations)

    def get_example(self, index):
        return self.conversations[index]

    def get_examples(self, indices):
        self.batches += 1
        return [self.conversations[i] for i in indices]


def only(task, name="hand-built"):
    return Target(TASK, name, name, (Source(name, task),))


def write_jsonl(path, conversations):
    path.write_text("".join(json.dumps(c) + "\n" for c in conversations), encoding="utf-8")
    return path


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def brute_force_percentile(values, p):
    """The smallest value that at least p% of the values do not exceed (nearest-rank)."""
    return min(v for v in values if sum(x <= v for x in values) * 100 >= p * len(values))


# --- the library ------------------------------------------------------------------------------


def test_hand_built_numbers_are_exact():
    stats = compute_stats(only(Listed(CONVERSATIONS)))
    assert stats.conversations == 5
    got = stats.to_json()
    assert got["messages"] == pytest.approx(EXPECTED_SUMMARIES["messages"])
    assert list(got["characters"]) == ["system", "user", "assistant", "total"]
    for role in ("system", "user", "assistant", "total"):
        assert got["characters"][role] == pytest.approx(EXPECTED_SUMMARIES[role]), role
    assert got["with_system"] == {"count": 2, "share": 0.4}
    assert got["with_tool_calls"] == {"count": 1, "share": 0.2}
    assert got["percentiles"] == "nearest-rank"


def test_length_histogram_bins_are_log_spaced_round_and_contiguous():
    bins = compute_stats(only(Listed(CONVERSATIONS))).histogram
    assert [b.low for b in bins] + [bins[-1].high + 1] == EXPECTED_EDGES
    assert {(b.low, b.high): b.count for b in bins if b.count} == EXPECTED_FILLED_BINS
    assert sum(b.count for b in bins) == 5


def test_histogram_gets_coarser_when_the_range_is_wide():
    bins = histogram([1, 3, 70, 999_999])
    edges = [b.low for b in bins] + [bins[-1].high + 1]
    # 1-2-5 per decade: 1 .. 1,000,000 is 18 bins; the finer series would need more than 24.
    assert edges == [*(m * 10**e for e in range(6) for m in (1, 2, 5)), 1_000_000]
    assert [b.count for b in bins if b.count] == [1, 1, 1, 1]
    assert [(b.low, b.high, b.count) for b in histogram([0, 0, 1])] == [(0, 0, 2), (1, 1, 1)]
    assert histogram([]) == []


@given(st.lists(st.integers(min_value=0, max_value=2**32 - 1), min_size=1, max_size=60))
def test_summary_matches_the_nearest_rank_definition(values):
    summary = summarize(values)
    assert summary.min == min(values) and summary.max == max(values)
    assert summary.median == brute_force_percentile(values, 50)
    assert summary.p95 == brute_force_percentile(values, 95)
    assert summary.mean == pytest.approx(sum(values) / len(values))
    assert percentile(sorted(values), 100) == max(values)
    bins = histogram(sorted(values))
    assert sum(b.count for b in bins) == len(values) and len(bins) <= 24
    assert all(b.high + 1 == after.low for b, after in itertools.pairwise(bins))
    for v in values:
        assert sum(b.low <= v <= b.high for b in bins) == 1


def test_repeats_count_a_source_again_and_shares_are_per_source():
    first, second = Listed(CONVERSATIONS[:2]), Listed(CONVERSATIONS[2:])
    stats = compute_stats(
        Target(SPEC, "two", "two", (Source("a", first, repeat=3), Source("b", second)))
    )
    assert first.batches == 1  # read once, counted three times
    assert stats.conversations == 3 * 2 + 3
    assert stats.with_system == 3 * 1 + 1 and stats.with_tool_calls == 3 * 1
    expanded = CONVERSATIONS[:2] * 3 + CONVERSATIONS[2:]
    assert stats.characters["total"] == compute_stats(only(Listed(expanded))).characters["total"]
    a, b = stats.sources
    assert (a.name, a.rows, a.characters) == ("a", 6, 3 * (9 + 21))
    assert (b.name, b.rows, b.characters) == ("b", 3, 10 + 12 + 500)
    assert a.row_share == pytest.approx(6 / 9) and b.row_share == pytest.approx(3 / 9)
    assert a.character_share == pytest.approx(90 / 612)


def test_slices_are_respected_and_read_in_chunks(monkeypatch):
    import taskcli.stats

    monkeypatch.setattr(taskcli.stats, "CHUNK_ROWS", 2)
    task = Listed(CONVERSATIONS, start=1, step=2)  # conversations 1 and 3
    seen = []
    stats = compute_stats(only(task), on_progress=seen.append)
    assert stats.conversations == 2 and task.batches == 1 and seen == [2]
    assert stats.characters["total"].min == 12 and stats.characters["total"].max == 21
    whole = Listed(CONVERSATIONS)
    compute_stats(only(whole), on_progress=seen.append)
    assert whole.batches == 1 and seen[1:] == [2, 2, 1]  # read in bulk, reported per chunk


def test_an_empty_task_has_no_percentiles():
    stats = compute_stats(only(Listed([])))
    got = stats.to_json()
    assert got["conversations"] == 0 and got["messages"] is None and got["characters"] == {}
    assert got["length_histogram"] == [] and got["with_system"]["share"] == 0.0


def test_an_unknown_role_is_invalid_data():
    odd = [{"messages": [{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}]}]
    with pytest.raises(InvalidData, match="odd: a message has the unknown role 'tool'"):
        compute_stats(only(Listed(odd), "odd"))


def test_bars_are_proportional_in_eighths():
    assert bar(1.0, 10) == "█" * 10
    assert bar(0.0, 10) == ""
    assert bar(0.5, 3) == "█▌"
    assert bar(1 / 80, 10) == "▏"
    assert bar(2.0, 4) == "████"


# --- through the CLI --------------------------------------------------------------------------


def test_jsonl_target_json_output(tmp_path):
    path = write_jsonl(tmp_path / "five.jsonl", CONVERSATIONS)
    result = invoke("stats", path, "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert set(got) == {
        "target",
        "format",  # the file's, as its records were read
        "conversations",
        "percentiles",
        "messages",
        "characters",
        "with_system",
        "with_tool_calls",
        "length_histogram",
        "sources",
        "tokens",  # null without --tokenizer
    }
    assert got["tokens"] is None
    assert got["conversations"] == 5 and got["target"] == str(path)
    assert got["format"] == "messages"
    for role in ("system", "user", "assistant", "total"):
        assert got["characters"][role] == pytest.approx(EXPECTED_SUMMARIES[role])
    assert got["with_tool_calls"]["count"] == 1
    assert {(b["low"], b["high"]): b["count"] for b in got["length_histogram"] if b["count"]} == (
        EXPECTED_FILLED_BINS
    )
    assert [s["rows"] for s in got["sources"]] == [5]


def test_jsonl_target_rich_output(tmp_path):
    path = write_jsonl(tmp_path / "five.jsonl", CONVERSATIONS)
    result = invoke("stats", path)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "5 conversations" in out and "nearest-rank" in out
    assert "Length histogram" in out and "Share per source" not in out
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 3}
    assert [cell.strip() for cell in lines["with tool calls"].split("│")[2:4]] == ["1", "20.0%"]
    row = [cell.strip() for cell in lines["assistant characters"].split("│")[2:8]]
    assert row == ["5", "2", "6", "350", "350", "74.6"]
    # The fullest histogram bin has the longest bar: every filled bin here holds one row.
    bars = [line for line in out.splitlines() if "█" in line]
    assert len(bars) == 5 and all(line.count("█") == 40 for line in bars)


def test_task_target_matches_a_naive_recount(tmp_path):
    words = ROOT / "examples" / "words.txt"
    args = ["-p", f"word_list={words}", "-p", "size=150", "--split", "test"]
    result = invoke("stats", "spellingbee", *args, "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)

    from taskcli.tasks.spellingbee import SpellingBee

    conversations = list(SpellingBee(size=150, split="test", word_list=str(words)))
    assistant = [sum(len(p["text"]) for p in c["messages"][1]["content"]) for c in conversations]
    ranked = sorted(assistant)
    assert got["target"] == "spellingbee / test"
    assert got["conversations"] == 150
    assert got["characters"]["assistant"]["median"] == ranked[math.ceil(0.5 * 150) - 1]
    assert got["characters"]["assistant"]["p95"] == ranked[math.ceil(0.95 * 150) - 1]
    assert got["characters"]["assistant"]["max"] == ranked[-1]
    assert got["with_tool_calls"] == {"count": 150, "share": 1.0}
    assert "system" not in got["characters"]


def test_spec_target_reports_rows_and_share_per_entry(tmp_path):
    write_jsonl(tmp_path / "five.jsonl", CONVERSATIONS)
    words = ROOT / "examples" / "words.txt"
    spec = tmp_path / "mix.yaml"
    spec.write_text(
        "tasks:\n"
        "  - task: customjson\n    path: five.jsonl\n    repeat: 2\n"
        f"  - task: simplespelling\n    word_list: {words}\n    size: 30\n"
        "  - task: customjson\n    path: five.jsonl\n    start: 1\n    step: 2\n"
    )
    result = invoke("stats", spec, "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["conversations"] == 10 + 30 + 2
    assert [(s["rows"], round(s["row_share"], 4)) for s in got["sources"]] == [
        (10, round(10 / 42, 4)),
        (30, round(30 / 42, 4)),
        (2, round(2 / 42, 4)),
    ]
    assert got["sources"][0]["characters"] == 2 * (9 + 21 + 10 + 12 + 500)
    assert got["sources"][2]["characters"] == 21 + 12
    assert got["with_system"]["count"] == 2 * 2 + 1
    assert got["sources"][0]["name"].startswith("tasks[0]")

    shown = invoke("stats", spec)
    assert shown.exit_code == 0, shown.output
    assert "Share per source" in shown.stdout and "mix.yaml" in shown.stdout
    assert "23.8%" in shown.stdout and "71.4%" in shown.stdout  # 10/42 and 30/42


def gsm8k_characters(row):
    """(user, assistant) characters of a GSM8K row, worked out from the raw answer text.

    Each call ``<<expr=result>>`` becomes a python and a python_output part: its ``<<``,
    ``>>`` and ``=`` are not part texts; the rest of the answer is.
    """
    calls = re.findall(r"<<([^>]*)>>", row["answer"])
    markup = sum(4 + ("=" in call) for call in calls)
    return len(row["question"]), len(row["answer"]) - markup


def test_hub_task_numbers_come_from_the_raw_rows(tmp_path):
    rows = hubdata.write_gsm8k(tmp_path, rows_per_split=30)["main"]["test"]
    result = invoke("stats", "gsm8k", "--split", "test", "--data-dir", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["target"] == "gsm8k / main / test" and got["conversations"] == 30
    user = sorted(gsm8k_characters(row)[0] for row in rows)
    assistant = sorted(gsm8k_characters(row)[1] for row in rows)
    for name, values in (("user", user), ("assistant", assistant)):
        summary = got["characters"][name]
        assert (summary["min"], summary["max"]) == (values[0], values[-1])
        assert summary["median"] == values[14] and summary["p95"] == values[28]  # ranks 15, 29
    calls = sum("<<" in row["answer"] for row in rows)
    assert got["with_tool_calls"]["count"] == calls and calls > 0


def test_a_sliced_hub_entry_counts_exactly_its_rows(tmp_path):
    """The slice picks examples of the shuffled order; stats read them in file order."""
    rows = hubdata.write_gsm8k(tmp_path, rows_per_split=30)["main"]["train"]
    spec = tmp_path / "mix.yaml"
    spec.write_text("tasks:\n  - {task: gsm8k, split: train, start: 2, stop: 27, step: 3}\n")
    result = invoke("stats", spec, "--data-dir", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    perm = np.random.default_rng(42).permutation(30)  # example i is row perm[i]
    chosen = [rows[perm[i]] for i in range(2, 27, 3)]
    totals = sorted(sum(gsm8k_characters(row)) for row in chosen)
    assert got["conversations"] == len(chosen) == 9
    assert got["characters"]["total"]["min"] == totals[0]
    assert got["characters"]["total"]["median"] == totals[4]
    assert got["characters"]["total"]["max"] == totals[-1]
    assert got["characters"]["total"]["mean"] == pytest.approx(sum(totals) / 9)


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["stats", "no-such-task"], 2, "unknown task"),
        (["stats", "missing.jsonl"], 2, "missing.jsonl"),
        (["stats", "missing.yaml"], 2, "missing.yaml"),
        (["stats", "spellingbee", "--split", "nope"], 2, "Valid splits"),
    ],
)
def test_usage_errors_exit_2_without_traceback(tmp_path, monkeypatch, args, code, words):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == code
    assert words in result.stderr and "Traceback" not in result.output


def test_task_options_are_refused_for_a_spec(tmp_path):
    write_jsonl(tmp_path / "five.jsonl", CONVERSATIONS)
    spec = tmp_path / "mix.yaml"
    spec.write_text("tasks:\n  - task: customjson\n    path: five.jsonl\n")
    result = invoke("stats", spec, "--split", "train")
    assert result.exit_code == 2
    # The library names the parameter; the CLI's hint adds the flag.
    assert "Error: split cannot be given with a mixture spec" in result.stderr
    assert "(set with --split)." in result.stderr


def test_invalid_and_empty_jsonl_fail_with_exit_1(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(CONVERSATIONS[0]) + "\n" + '{"messages": [{"role": "user"}]}\n')
    result = invoke("stats", bad)
    assert result.exit_code == 1
    assert "bad.jsonl:2" in result.stderr and "Traceback" not in result.output

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = invoke("stats", empty, "--json")
    assert result.exit_code == 1
    assert "empty.jsonl" in result.stderr and result.stdout == ""


def test_an_empty_selection_is_reported_not_failed(tmp_path):
    write_jsonl(tmp_path / "five.jsonl", CONVERSATIONS)
    spec = tmp_path / "mix.yaml"
    spec.write_text("tasks:\n  - {task: customjson, path: five.jsonl, start: 9}\n")
    shown = invoke("stats", spec)
    assert shown.exit_code == 0 and "0 conversations" in shown.stdout
    assert "No conversations." in shown.stdout
    got = json.loads(invoke("stats", spec, "--json").stdout)
    assert got["conversations"] == 0 and got["sources"][0]["rows"] == 0


def test_help_has_an_example():
    result = invoke("stats", "--help")
    assert result.exit_code == 0
    assert "Example:" in result.stdout and "taskcli stats" in result.stdout
    for option in ("--subset", "--split", "--param", "--data-dir", "--json"):
        assert option in result.stdout


def test_open_target_refuses_params_for_a_spec():
    from taskcli.targets import open_target

    with pytest.raises(UsageError, match="params cannot be given") as raised:
        open_target("mix.yaml", params={"size": "3"})
    assert raised.value.params == ("params",)


# --- the pictures -----------------------------------------------------------------------------


def test_screenshot_script_renders_real_output(tmp_path):
    script = runpy.run_path(str(ROOT / "scripts" / "render_screenshots.py"))
    show_svg, stats_svg = script["render"](tmp_path)
    show, stats = show_svg.read_text(), stats_svg.read_text()
    assert show.startswith("<svg") and stats.startswith("<svg")
    committed = ROOT / "docs" / "images"
    assert show == (committed / "show.svg").read_text(), "run scripts/render_screenshots.py"
    assert stats == (committed / "stats.svg").read_text(), "run scripts/render_screenshots.py"
    # Rich writes each text run as its own element, with spaces as &#160;.
    show, stats = show.replace("&#160;", " "), stats.replace("&#160;", " ")
    assert "taskcli show examples/identity.jsonl" in show
    assert "assistant" in show and "python ▶" in show
    assert "Length" in stats and "histogram" in stats and "Share" in stats
    assert "tasks[1]" in stats and "spellingbee" in stats
