"""Scoring model answers against a task: accuracy, its 95% interval, and one verdict per answer.

An answers file is JSONL with one answer per line, in any order, where ``index`` is the task index
exactly as `taskcli show` numbers it::

    {"index": 0, "completion": "B"}
    {"index": 17, "completion": "Half of 84 is 42. #### 42"}

Each answer is judged by its task's own rule (`Task.evaluate`), except code: HumanEval answers
are turned into programs and run in parallel in the sandbox (`taskcli.sandbox.execution`)::

    opened = open_for_eval("mmlu", "answers.jsonl", data_dir="hub")
    score = score_file(opened, "answers.jsonl")
    score.accuracy, score.ci95, score.by_subject

The file is read twice: once to check every line (so all mistakes are reported together, before
any program runs), then again to score it in chunks, so memory does not grow with the file.
"""

from __future__ import annotations

import math
import os
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from taskcli.conversation import type_name
from taskcli.errors import InvalidData, UsageError
from taskcli.files.atomic import atomic_output, check_output
from taskcli.files.reader import LongLine, read_lines
from taskcli.targets import FILE, Target, open_target
from taskcli.tasks.common import Conversation, Task
from taskcli.tasks.registry import all_tasks, canonical_name, get_task_class

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile
MAX_REPORTED_PROBLEMS = 10
CHUNK_SIZE = 512  # answers judged per batch read of the task (and per parallel sandbox run)
DEFAULT_TIMEOUT = 5.0

Progress = Callable[[int, int], None]  # (answers scored so far, answers in all)


def wilson_interval(correct: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for `correct` successes in `n` trials (95% by default).

    Unlike the normal approximation it stays inside [0, 1] and is honest for small `n` and for
    accuracies near 0 or 1, which is where small models and small evals live.
    """
    if n <= 0:
        raise ValueError(f"the interval needs at least one trial, got n={n}")
    if not 0 <= correct <= n:
        raise ValueError(f"correct must be between 0 and n={n}, got {correct}")
    p = correct / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    low = 0.0 if correct == 0 else max(0.0, centre - half_width)
    high = 1.0 if correct == n else min(1.0, centre + half_width)
    return low, high


# --- the answers file ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """One line of an answers file."""

    line: int
    index: int
    completion: str
    key: str = "index"  # how the line named its example: "index", or the dataset's id key
    name: str = field(default="", compare=False)  # as the line named it: 'task_id "HumanEval/3"'
    error: str | None = None  # why it is not judged (verdict "error"), e.g. a runaway completion


MAX_COMPLETION_CHARS = 1_000_000  # a runaway model's answer is an "error" verdict, not a run


class AnswerIds:
    """The dataset's own ids of a task's examples (HumanEval's `task_id`), so an answers file
    written for another harness is scored against the right problems. Read on first use."""

    def __init__(self, task: Task, key: str) -> None:
        self.key = key
        self._task = task
        self._indices: dict[Any, int] | None = None

    def index_of(self, value: Any) -> int | None:
        if self._indices is None:
            self._indices = {example[self.key]: i for i, example in enumerate(self._task)}
        return self._indices.get(value)


def answer_ids(task: Task) -> AnswerIds | None:
    """How answers may name `task`'s examples besides `index`, if its data has ids."""
    return AnswerIds(task, task.answer_id) if task.answer_id is not None else None


def _parse(raw: bytes, line: int, size: int, ids: AnswerIds | None = None) -> Answer | str:
    """The answer on one line, or what is wrong with it (duplicates aside: that needs context)."""
    if type(raw) is LongLine:
        return f"the line is {raw.length:,} bytes long, over the limit of {raw.limit:,}"
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return f"not valid JSON ({error})"
    if type(record) is not dict:
        return f'expected an object {{"index": ..., "completion": ...}}, got {type_name(record)}'
    if ids is not None and ids.key in record:
        if "index" in record:
            return f"has both 'index' and {ids.key!r}: name the example one way"
        return _parse_by_id(record, line, ids)
    missing = [key for key in ("index", "completion") if key not in record]
    if missing:
        if ids is not None and "index" in missing:
            missing[missing.index("index")] = f"'index' (or {ids.key!r})"
            return "missing " + " and ".join(key if key[0] == "'" else repr(key) for key in missing)
        return "missing " + " and ".join(repr(key) for key in missing)
    index, completion = record["index"], record["completion"]
    if type(index) is not int:
        return f"'index' must be an integer, got {type_name(index)} {_short(index)}"
    if type(completion) is not str:
        return f"'completion' must be a string, got {type_name(completion)}"
    if not 0 <= index < size:
        valid = f"{size} examples (0 to {size - 1})" if size else "no examples"
        return f"index {index} is out of range: the task has {valid}"
    return _answer(line, index, completion, "index", f"index {index}")


def _parse_by_id(record: dict[str, Any], line: int, ids: AnswerIds) -> Answer | str:
    value = record[ids.key]
    if "completion" not in record:
        return "missing 'completion'"
    if type(value) is not str:
        return f"{ids.key!r} must be a string, got {type_name(value)} {_short(value)}"
    if type(record["completion"]) is not str:
        return f"'completion' must be a string, got {type_name(record['completion'])}"
    index = ids.index_of(value)
    if index is None:
        return f"{ids.key} {_short(value)} is not in the task"
    return _answer(line, index, record["completion"], ids.key, f"{ids.key} {_short(value)}")


def _answer(line: int, index: int, completion: str, key: str, name: str) -> Answer:
    if len(completion) > MAX_COMPLETION_CHARS:
        error = f"the completion has {len(completion):,} characters, over {MAX_COMPLETION_CHARS:,}"
        return Answer(line, index, "", key, name, error)
    return Answer(line, index, completion, key, name)


def _short(value: Any) -> str:
    shown = orjson.dumps(value).decode()
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Numbered non-blank lines of `path`, read as bytes so bad UTF-8 is orjson's to report;
    a line over the line length limit comes as a `LongLine`, never parsed."""
    with open(path, "rb") as file:
        for number, raw in enumerate(read_lines(file, str(path)), start=1):
            if raw.strip() or type(raw) is LongLine:
                yield number, raw


def require_answers_file(path: str | os.PathLike[str]) -> Path:
    """`path` as a readable file, or a usage error (exit 2) saying what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"answers file {path} not found.")
    if not path.is_file():
        raise UsageError(f"answers file {path} is not a file.")
    if not os.access(path, os.R_OK):
        raise UsageError(f"answers file {path} is not readable.")
    return path


def check_answers(path: str | os.PathLike[str], size: int, ids: AnswerIds | None = None) -> int:
    """How many answers `path` holds for a task of `size` examples, after checking every line.

    Every problem is collected -- bad JSON, wrong types, missing keys, out-of-range, unknown and
    duplicate examples -- and the first few are raised together, with line numbers, as
    `InvalidData`. With `ids`, lines may name their example by the dataset's id instead of
    `index`, but one file may not do both.
    """
    path = require_answers_file(path)
    first_line = array("I", bytes(4 * size))  # line of each index's answer; 0 = not answered yet
    first_by_key: dict[str, int] = {}  # line of the first answer named each way
    problems: list[str] = []
    problem_count = answers = 0
    for line, raw in _lines(path):
        parsed = _parse(raw, line, size, ids)
        if isinstance(parsed, Answer) and first_line[parsed.index]:
            parsed = f"{parsed.name} was already answered on line {first_line[parsed.index]}"
        if isinstance(parsed, str):
            problem_count += 1
            if len(problems) < MAX_REPORTED_PROBLEMS:
                problems.append(f"{path}:{line}: {parsed}")
            continue
        first_by_key.setdefault(parsed.key, line)
        first_line[parsed.index] = line
        answers += 1
    if problem_count:
        more = problem_count - len(problems)
        lines = "\n".join(["", *problems, *([f"... and {more} more."] if more else [])])
        plural = "s" if problem_count > 1 else ""
        raise InvalidData(f"{path} has {problem_count} invalid line{plural}:{lines}")
    if len(first_by_key) > 1:
        (key, line), (other, other_line) = sorted(first_by_key.items(), key=lambda item: item[1])
        raise InvalidData(
            f"{path} names examples both by {key!r} (line {line}) and by {other!r} (line "
            f"{other_line}); a file must use one or the other."
        )
    if not answers:
        raise InvalidData(f"{path} holds no answers.")
    return answers


def read_answers(
    path: str | os.PathLike[str], size: int, ids: AnswerIds | None = None
) -> Iterator[Answer]:
    """The answers of a file that `check_answers` accepted, streamed in file order."""
    path = Path(path)
    for line, raw in _lines(path):
        parsed = _parse(raw, line, size, ids)
        if isinstance(parsed, str):
            raise InvalidData(f"{path}:{line}: {parsed} (the file changed while it was scored)")
        yield parsed


# --- judging ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """How one answer was judged; for code, why the program failed."""

    index: int
    correct: bool
    subject: str | None = None
    reason: str | None = None  # code: "passed", or why not (`ExecutionResult.reason`)
    exception: str | None = None  # code: the exception type, when reason is "exception"
    error: str | None = None  # reason "error": why the answer could not be judged

    def row(self) -> dict[str, Any]:
        """The line `--details` writes for this answer (absent fields left out)."""
        row: dict[str, Any] = {"index": self.index, "correct": self.correct}
        for key in ("subject", "reason", "exception", "error"):
            value = getattr(self, key)
            if value is not None:
                row[key] = value
        return row


def require_evaluation(cls: type[Task]) -> None:
    """A usage error unless answers to tasks of class `cls` can be scored."""
    if cls.eval_type is not None and cls.evaluate is not Task.evaluate:
        return
    scorable = [
        name
        for name, other in all_tasks().items()
        if other.eval_type is not None and other.evaluate is not Task.evaluate
    ]
    raise UsageError(
        f"task {cls.name or cls.__name__!r} is training data with no evaluation rule, so its "
        f"answers cannot be scored. Tasks that can be scored: {', '.join(scorable)}."
    )


Outcome = tuple[bool, str | None, str | None, str | None]  # correct, reason, exception, error


def _judge_text(
    task: Task, conversations: Sequence[Conversation], answers: Sequence[Answer]
) -> list[Outcome]:
    return [
        (False, "error", None, answer.error)
        if answer.error
        else (bool(task.evaluate(conversation, answer.completion)), None, None, None)
        for conversation, answer in zip(conversations, answers, strict=True)
    ]


def _judge_code(
    task: Task,
    conversations: Sequence[Conversation],
    answers: Sequence[Answer],
    *,
    workers: int | None,
    timeout: float,
    python: str | None,
    on_done: Callable[[], None],
) -> list[Outcome]:
    """Run every answer's program in the sandbox, `workers` at a time."""
    from taskcli.sandbox.execution import Limits, run_many

    runnable = [i for i, answer in enumerate(answers) if answer.error is None]
    programs = [task.build_program(conversations[i], answers[i].completion) for i in runnable]
    results = run_many(
        programs,
        Limits(timeout=timeout),
        workers=workers,
        on_done=lambda i, result: on_done(),
        python=python,
    )
    outcomes: list[Outcome] = [(False, "error", None, answer.error) for answer in answers]
    for i, result in zip(runnable, results, strict=True):
        exception = result.exception if result.reason == "exception" else None
        outcomes[i] = (result.passed, result.reason, exception, result.error)
    for answer in answers:
        if answer.error is not None:
            on_done()
    return outcomes


@dataclass
class Score:
    """The outcome of scoring a set of answers against a task."""

    task: str
    subset: str | None
    split: str | None
    examples: int  # the task's size; fewer answers than this means a partial eval
    n: int = 0
    correct: int = 0
    by_subject: dict[str, list[int]] = field(default_factory=dict)  # subject -> [n, correct]
    failures: Counter[str] = field(default_factory=Counter)  # code: failed programs by reason
    exceptions: Counter[str] = field(default_factory=Counter)  # code: ... and by exception type
    isolation: Any = None  # code: the `taskcli.sandbox.isolation.Isolation` the programs ran under
    timeout: float | None = None  # code: seconds each program had

    def add(self, verdict: Verdict) -> None:
        self.n += 1
        self.correct += verdict.correct
        if verdict.subject is not None:
            tally = self.by_subject.setdefault(verdict.subject, [0, 0])
            tally[0] += 1
            tally[1] += verdict.correct
        if verdict.reason is not None and not verdict.correct:
            self.failures[verdict.reason] += 1
        if verdict.exception is not None:
            self.exceptions[verdict.exception] += 1

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def warnings(self) -> list[str]:
        """What makes this score less trustworthy than it looks, for people and for --json."""
        notes = []
        if self.isolation is not None and self.isolation.level == "none":
            notes.append(
                f"programs ran without kernel isolation ({self.isolation.reason}); only the "
                "Python guard protected this machine: see docs/sandbox.md"
            )
        if self.failures["error"]:
            notes.append(
                f"{self.failures['error']} of {self.n} answers could not be judged (reason "
                "error) and count as wrong: --details says why"
            )
        if self.timeout is not None and self.failures["timeout"] * 2 > self.n:
            notes.append(
                f"most programs timed out ({self.failures['timeout']} of {self.n}): the "
                f"machine may be too busy for --timeout {self.timeout:g}"
            )
        return notes

    @property
    def ci95(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.n)

    def to_dict(self) -> dict[str, Any]:
        """The `--json` document."""
        document: dict[str, Any] = {
            "task": self.task,
            "subset": self.subset,
            "split": self.split,
            "examples": self.examples,
            "n": self.n,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "ci95": list(self.ci95),
        }
        if self.by_subject:
            document["by_subject"] = {
                subject: {"n": n, "correct": correct, "accuracy": correct / n}
                for subject, (n, correct) in sorted(self.by_subject.items())
            }
        if self.failures:
            document["failures"] = dict(sorted(self.failures.items()))
        if self.exceptions:
            document["exceptions"] = dict(self.exceptions.most_common())
        if self.isolation is not None:
            document["isolation"] = self.isolation.level
        if self.warnings:
            document["warnings"] = self.warnings
        return document


def score_answers(
    task: Task,
    answers: Iterable[Answer],
    score: Score,
    *,
    workers: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    python: str | None = None,
    details: BinaryIO | None = None,
    on_answer: Callable[[], None] | None = None,
) -> Score:
    """Judge `answers` (indices already checked) chunk by chunk, adding them up in `score`.

    Each verdict is also written to `details` as a JSON line, in the order of `answers`.
    """
    advance = on_answer or (lambda: None)
    code = task.runs_code
    chunk: list[Answer] = []

    def judge() -> None:
        conversations = task.get_examples([task.physical_index(a.index) for a in chunk])
        if code:
            outcomes = _judge_code(
                task,
                conversations,
                chunk,
                workers=workers,
                timeout=timeout,
                python=python,
                on_done=advance,
            )
        else:
            outcomes = _judge_text(task, conversations, chunk)
        for answer, conversation, (correct, reason, exception, error) in zip(
            chunk, conversations, outcomes, strict=True
        ):
            subject = conversation.get("subject")
            verdict = Verdict(
                answer.index,
                correct,
                subject if isinstance(subject, str) else None,
                reason,
                exception,
                error,
            )
            score.add(verdict)
            if details is not None:
                details.write(orjson.dumps(verdict.row()) + b"\n")
            if not code:
                advance()
        chunk.clear()

    for answer in answers:
        chunk.append(answer)
        if len(chunk) == CHUNK_SIZE:
            judge()
    if chunk:
        judge()
    return score


def open_for_eval(
    target: str,
    answers_path: str | os.PathLike[str],
    subset: str | None = None,
    split: str | None = None,
    params: dict[str, Any] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
) -> Target:
    """The task to score against, after the checks that need no data (answers file, eval rule)."""
    require_answers_file(answers_path)
    registered = canonical_name(target)
    if registered is not None:
        require_evaluation(get_task_class(registered))
    opened = open_target(target, subset, split, params, data_dir=data_dir)
    if opened.is_spec:
        raise UsageError(
            f"{target} is a mixture spec; answers are scored against one task.",
            hint="`taskcli list` names the tasks that score answers.",
        )
    require_evaluation(type(opened.task))
    return opened


def score_file(
    opened: Target,
    answers_path: str | os.PathLike[str],
    *,
    workers: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    python: str | None = None,
    details_path: str | os.PathLike[str] | None = None,
    on_progress: Progress | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Score:
    """Check and score an answers file; with `details_path`, also write one verdict per answer.

    `workers` (default: the number of cores), `timeout` (seconds per program) and `python` (the
    interpreter whose installed packages programs may import; default: this one) apply to code.
    `on_warning` hears, before any answer is scored, what will make verdicts wrong whatever the
    answers (folders of `python` the sandbox hides); `Score.warnings` says the rest afterwards.
    """
    from taskcli.sandbox.execution import MIN_TIMEOUT

    if workers is not None and workers < 1:
        raise UsageError(f"workers must be at least 1, got {workers}.")
    if not timeout >= MIN_TIMEOUT:
        raise UsageError(
            f"timeout must be at least {MIN_TIMEOUT:g} seconds (an isolated Python needs that "
            f"long to start on a busy machine), got {timeout:g}."
        )
    if python is not None:
        _require_python(python)
    if details_path is not None:
        inputs = [os.fspath(answers_path), *(str(f) for f in opened.task.data_files)]
        if opened.kind == FILE:
            inputs.append(opened.text)
        check_output(details_path, inputs, "--details")
    task = opened.task
    size = len(task)
    ids = answer_ids(task)
    total = check_answers(answers_path, size, ids)
    done = 0

    def on_answer() -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, total)

    score = Score(opened.name, opened.subset, opened.split, size)
    if task.runs_code:
        from taskcli.sandbox.execution import probe

        score.isolation = probe(python or sys.executable)
        score.timeout = timeout
        if score.isolation.hidden and on_warning is not None:
            on_warning(hidden_folders_warning(score.isolation.hidden))
    writer = atomic_output(details_path) if details_path is not None else nullcontext()
    with writer as details:
        return score_answers(
            task,
            read_answers(answers_path, size, ids),
            score,
            workers=workers,
            timeout=timeout,
            python=python,
            details=details,
            on_answer=on_answer,
        )


def hidden_folders_warning(hidden: Sequence[str]) -> str:
    """What eval says when programs cannot see folders of the interpreter's sys.path."""
    some = f"{len(hidden)} folders" if len(hidden) > 1 else "a folder"
    them = "them" if len(hidden) > 1 else "it"
    return (
        f"the sandbox hides {some} of the interpreter's sys.path ({', '.join(hidden)}), so "
        f"answers that import from {them} will fail: see docs/sandbox.md"
    )


def _require_python(python: str) -> None:
    """A usage error unless `python` runs as a Python 3.9+ interpreter (what the sandbox needs)."""
    import subprocess

    check = "import sys; sys.exit(sys.version_info < (3, 9))"
    try:
        works = subprocess.run([python, "-I", "-S", "-c", check], timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        works = False
    if not works:
        raise UsageError(f"--python {python} is not a Python 3.9 or newer interpreter.")
