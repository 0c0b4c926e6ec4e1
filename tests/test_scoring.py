"""The scoring library on its own: the Wilson interval, the answers file, and the tallies."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskcli import eval as scoring
from taskcli.errors import InvalidData, UsageError
from taskcli.targets import TASK, Source, Target
from taskcli.tasks import Task


class Parity(Task):
    """Example i asks whether i is even; the subject says which hundred it is in."""

    name = "parity"
    eval_type = "categorical"

    def __init__(self, size: int, **slice_args):
        super().__init__(**slice_args)
        self.size = size

    def num_examples(self):
        return self.size

    def get_example(self, index):
        answer = "even" if index % 2 == 0 else "odd"
        return {
            "messages": [
                {"role": "user", "content": f"Is {index} even or odd?"},
                {"role": "assistant", "content": answer},
            ],
            "subject": f"hundred-{index // 100}",
        }

    def evaluate(self, conversation, response):
        return response.strip() == conversation["messages"][-1]["content"]


def write_lines(path, lines):
    path.write_bytes(b"".join(line if isinstance(line, bytes) else line.encode() for line in lines))
    return path


def answer(index, completion):
    return json.dumps({"index": index, "completion": completion}) + "\n"


# --- Wilson ------------------------------------------------------------------------------------

# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, method 3.
NEWCOMBE = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
]


@pytest.mark.parametrize(("correct", "n", "low", "high"), NEWCOMBE)
def test_wilson_matches_published_values(correct, n, low, high):
    got_low, got_high = scoring.wilson_interval(correct, n)
    assert round(got_low, 4) == low
    assert round(got_high, 4) == high


def test_wilson_is_exact_at_the_edges():
    assert scoring.wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert scoring.wilson_interval(10, 10) == (pytest.approx(0.7225, abs=1e-4), 1.0)
    assert scoring.wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)


@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_contains_the_estimate_and_mirrors(pair):
    correct, n = pair
    low, high = scoring.wilson_interval(correct, n)
    assert 0.0 <= low <= correct / n <= high <= 1.0
    mirror_low, mirror_high = scoring.wilson_interval(n - correct, n)
    assert low == pytest.approx(1 - mirror_high, abs=1e-12)
    assert high == pytest.approx(1 - mirror_low, abs=1e-12)


def test_wilson_narrows_like_one_over_root_n():
    narrow, wide = (scoring.wilson_interval(n // 2, n) for n in (10_000, 100))
    assert (wide[1] - wide[0]) / (narrow[1] - narrow[0]) == pytest.approx(10, rel=0.03)


@pytest.mark.parametrize(("correct", "n"), [(0, 0), (3, 2), (-1, 5)])
def test_wilson_rejects_impossible_counts(correct, n):
    with pytest.raises(ValueError):
        scoring.wilson_interval(correct, n)


# --- the answers file ---------------------------------------------------------------------------


def test_answers_in_any_order_with_blank_lines(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [answer(3, "odd"), "\n", answer(0, "even"), "  \n"])
    assert scoring.check_answers(path, size=5) == 2
    assert list(scoring.read_answers(path, size=5)) == [
        scoring.Answer(1, 3, "odd"),
        scoring.Answer(3, 0, "even"),
    ]


def test_other_keys_are_allowed(tmp_path):
    line = json.dumps({"index": 1, "completion": "odd", "model": "d20", "seconds": 0.4}) + "\n"
    path = write_lines(tmp_path / "a.jsonl", [line])
    assert scoring.check_answers(path, size=2) == 1
    assert list(scoring.read_answers(path, size=2)) == [scoring.Answer(1, 1, "odd")]


def test_every_bad_line_is_reported_with_its_number(tmp_path):
    path = write_lines(
        tmp_path / "a.jsonl",
        [
            answer(0, "even"),  # 1: fine
            "{not json\n",  # 2
            answer(0, "odd"),  # 3: duplicate of line 1
            answer(5, "odd"),  # 4: out of range
            answer(-1, "odd"),  # 5: out of range
            '{"index": "2", "completion": "even"}\n',  # 6: index is a string
            '{"index": 2.0, "completion": "even"}\n',  # 7: index is a float
            '{"index": true, "completion": "even"}\n',  # 8: index is a boolean
            '{"index": 2, "completion": null}\n',  # 9: completion is null
            '{"completion": "even"}\n',  # 10: no index
            '[2, "even"]\n',  # 11: not an object
            b'{"index": 2, "completion": "\xff"}\n',  # 12: not UTF-8
        ],
    )
    with pytest.raises(InvalidData) as raised:
        scoring.check_answers(path, size=5)
    message = str(raised.value)
    assert message.startswith(f"{path} has 11 invalid lines:")
    expected = {
        2: "not valid JSON",
        3: "index 0 was already answered on line 1",
        4: "index 5 is out of range: the task has 5 examples (0 to 4)",
        5: "index -1 is out of range",
        6: "'index' must be an integer, got string \"2\"",
        7: "'index' must be an integer, got number 2.0",
        8: "'index' must be an integer, got boolean true",
        9: "'completion' must be a string, got null",
        10: "missing 'index'",
        11: "expected an object",
        12: "not valid JSON",
    }
    reported = message.splitlines()[1:]
    assert len(reported) == scoring.MAX_REPORTED_PROBLEMS + 1
    assert reported[-1] == "... and 1 more."
    for line_text, (number, fragment) in zip(
        reported[:-1], list(expected.items())[:10], strict=True
    ):
        assert line_text.startswith(f"{path}:{number}: "), line_text
        assert fragment in line_text, line_text


def test_any_index_is_out_of_range_of_an_empty_task(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [answer(0, "even")])
    with pytest.raises(InvalidData, match="index 0 is out of range: the task has no examples"):
        scoring.check_answers(path, size=0)


def test_a_file_of_blank_lines_has_no_answers(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", ["\n", "\n"])
    with pytest.raises(InvalidData, match="holds no answers"):
        scoring.check_answers(path, size=3)


def test_a_missing_or_unreadable_answers_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        scoring.check_answers(tmp_path / "nope.jsonl", size=3)
    with pytest.raises(UsageError, match="is not a file"):
        scoring.check_answers(tmp_path, size=3)


# --- scoring ------------------------------------------------------------------------------------


def score(task, path, **options):
    return scoring.score_file(
        Target(TASK, "parity", "parity", (Source("parity", task),)), path, **options
    )


def test_score_tallies_accuracy_subjects_and_details(tmp_path):
    # 1100 answers span three chunks; odd indices below 50 get the wrong answer.
    lines = []
    for i in reversed(range(1100)):
        right = "even" if i % 2 == 0 else "odd"
        lines.append(answer(i, "even" if i < 50 else f" {right}\n"))
    path = write_lines(tmp_path / "a.jsonl", lines)
    seen = []
    result = score(
        Parity(1200),
        path,
        details_path=tmp_path / "details.jsonl",
        on_progress=lambda done, total: seen.append((done, total)),
    )
    assert (result.n, result.correct, result.examples) == (1100, 1075, 1200)
    assert result.accuracy == pytest.approx(1075 / 1100)
    document = result.to_dict()
    assert document["ci95"] == pytest.approx(list(scoring.wilson_interval(1075, 1100)))
    assert document["by_subject"]["hundred-0"] == {"n": 100, "correct": 75, "accuracy": 0.75}
    assert document["by_subject"]["hundred-10"] == {"n": 100, "correct": 100, "accuracy": 1.0}
    assert list(document["by_subject"]) == sorted(document["by_subject"])
    assert "failures" not in document
    assert seen[-1] == (1100, 1100) and len(seen) == 1100

    rows = [json.loads(line) for line in (tmp_path / "details.jsonl").read_text().splitlines()]
    assert [row["index"] for row in rows] == list(reversed(range(1100)))
    assert rows[-1] == {"index": 0, "correct": True, "subject": "hundred-0"}
    assert rows[-2] == {"index": 1, "correct": False, "subject": "hundred-0"}


def test_a_failed_scoring_leaves_no_details_file(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [answer(0, "even"), answer(9, "odd")])
    details = tmp_path / "details.jsonl"
    with pytest.raises(InvalidData):
        score(Parity(5), path, details_path=details)
    assert list(tmp_path.iterdir()) == [path]


def test_details_in_a_missing_folder_is_a_usage_error(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [answer(0, "even")])
    with pytest.raises(UsageError, match="does not exist"):
        score(Parity(5), path, details_path=tmp_path / "no" / "details.jsonl")
    with pytest.raises(UsageError, match="is a folder"):
        score(Parity(5), path, details_path=tmp_path)


def test_a_task_without_an_evaluation_rule_cannot_be_scored():
    class Chat(Task):
        name = "chat"

    with pytest.raises(UsageError) as raised:
        scoring.require_evaluation(Chat)
    message = str(raised.value)
    assert "'chat' is training data" in message
    assert "Tasks that can be scored: arc, mmlu, gsm8k, humaneval, spellingbee" in message
    scoring.require_evaluation(Parity)
