"""The rules about a JSONL file of conversations, checked in one streaming pass.

`taskcli.conversation.check_messages` judges one conversation; this module adds what only a
file has: its encoding, JSON syntax, line shape, line endings, duplicates and emptiness. Lines
come from `taskcli.files.reader`, a line over the length limit as a `LongLine` that is reported
(``line-too-long``) without being parsed; conversations are not kept. Memory holds the count of
each rule, the first `KEEP_PER_RULE` problems of each (all of them go to a temporary file when
asked, for ``validate --json``), and 16-32 bytes per distinct valid line for duplicates.

    report = check_file("data.jsonl")
    report.passes(), report.errors[0].line, report.errors[0].rule
"""

from __future__ import annotations

import gc
import os
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from taskcli.conversation import Problem
from taskcli.errors import InvalidData
from taskcli.files.formats import MESSAGES, Reading, overall, read
from taskcli.files.parquet import open_parquet
from taskcli.files.reader import (
    DOCUMENT,
    PARQUET,
    SHARDS,
    LongLine,
    container_of,
    display_name,
    holds_conversation,
    is_blank,
    length_of,
    open_lines,
    open_lines_counted,
    read_document,
    shape_of,
    written,
)

KEEP_PER_RULE = 100  # problems of one rule kept in memory; every one is counted

NOT_JSON_RULES = ("invalid-json", "invalid-utf8")
_loads, _DecodeError = orjson.loads, orjson.JSONDecodeError  # looked up once, used per line
# Called for each line without errors: (line number, byte offset of its JSON, conversation).
OnValid = Callable[[int, int, Any], None]
# Called for each line with errors: (line number, the line's bytes, its errors, and what the
# number counts: "line", or "row" for a file of records).
OnReject = Callable[[int, bytes, list[Problem], str], None]
# Rules beyond the file's own, judged on each conversation without errors (`validate
# --tokenizer` renders it through a chat template): the problems it breaks, without a line.
ExtraRules = Callable[[Any], list[Problem]]


class ProblemLog:
    """The errors (or the warnings) of one file, in memory bounded by the rules, not the lines.

    Every problem is counted by rule (`counts`, `len`); the first `keep` of each rule are kept
    (iterating and indexing see those); with `spool`, every problem is also written to a
    temporary file as a JSON line, for `every`. Ten million duplicate lines thus cost a few
    hundred problems of memory instead of gigabytes.
    """

    def __init__(self, keep: int = KEEP_PER_RULE, spool: bool = False, unit: str = "line") -> None:
        self.keep, self.unit = keep, unit
        self.counts: dict[str, int] = {}
        self.kept: list[Problem] = []
        self.total = 0
        self.spool: IO[bytes] | None = tempfile.TemporaryFile() if spool else None  # noqa: SIM115

    def append(self, problem: Problem) -> None:
        self.total += 1
        seen = self.counts.get(problem.rule, 0)
        self.counts[problem.rule] = seen + 1
        if seen < self.keep:
            self.kept.append(problem)
        if self.spool is not None:  # already laid out as the JSON output shows it
            self.spool.write(
                (b",\n" if self.total > 1 else b"\n") + _problem_text(problem, self.unit)
            )

    def extend(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            self.append(problem)

    def sort(self, *, key: Callable[[Problem], Any]) -> None:
        """Sort the kept problems (the spooled ones stay in the order found)."""
        self.kept.sort(key=key)

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.kept)

    def __getitem__(self, index: Any) -> Any:
        return self.kept[index]

    def __add__(self, other: Iterable[Problem]) -> list[Problem]:
        return [*self.kept, *other]

    def __eq__(self, other: object) -> bool:
        """Equal to a list holding exactly its problems (all of them kept)."""
        if isinstance(other, ProblemLog):
            other = other.kept if other.total == len(other.kept) else None
        return isinstance(other, list) and self.total == len(self.kept) and self.kept == other

    __hash__ = None  # type: ignore[assignment]

    def every(self) -> list[dict[str, Any]]:
        """Every problem as a JSON object (the kept ones only, without a spool)."""
        return orjson.loads(b"[" + b"".join(self.json_text()) + b"]")

    def json_text(self) -> Iterator[bytes]:
        """The inside of the JSON array of every problem (the kept ones only, without a
        spool), laid out by `_problem_text`: from a spool, copied in large pieces."""
        if self.spool is None:
            for number, problem in enumerate(self.kept):
                yield (b",\n" if number else b"\n") + _problem_text(problem, self.unit)
            return
        self.spool.flush()
        self.spool.seek(0)
        while piece := self.spool.read(1 << 20):
            yield piece + self.spool.readline()  # whole lines: no character is cut in two


def _problem_text(problem: Problem, unit: str) -> bytes:
    """`problem_json(problem)` as ``orjson.OPT_INDENT_2`` lays it out at the depth of a file's
    errors in ``validate --json``, written directly: millions of problems are printed fast."""
    return _PROBLEM_TEXT % (
        unit.encode(),
        orjson.dumps(problem.line),
        orjson.dumps(problem.rule),
        orjson.dumps(problem.message),
        orjson.dumps(problem.path),
    )


_PROBLEM_TEXT = b"\n".join(
    [
        b"        {",
        b'          "%b": %b,',
        b'          "rule": %b,',
        b'          "message": %b,',
        b'          "path": %b',
        b"        }",
    ]
)


@dataclass
class FileReport:
    """One file's verdict: how many conversations it holds, and its errors and warnings."""

    path: str
    conversations: int = 0  # non-blank lines, valid or not
    rejected: int = 0  # lines with at least one error
    errors: ProblemLog = field(default_factory=ProblemLog)
    warnings: ProblemLog = field(default_factory=ProblemLog)
    format: str | None = None  # the format its valid records were read in (`formats.overall`)
    unit: str = "line"  # what a problem's number counts: a JSONL file's lines, or rows (0-based)
    unreadable: InvalidData | None = None  # why it could not be read (to the end), as raised

    def passes(self, *, strict: bool = False) -> bool:
        """No errors (and, when `strict`, no warnings either)."""
        return not self.errors and not (strict and self.warnings)

    def not_json(self) -> str | None:
        """One line saying the file is mostly not JSON at all (a word list, a CSV), or None.

        Then its hundreds of identical syntax errors say less than this sentence does.
        """
        unparsed = sum(self.errors.counts.get(rule, 0) for rule in NOT_JSON_RULES)
        if unparsed < 2 or 2 * unparsed <= self.conversations:
            return None
        return (
            f"{self.path} does not look like a JSONL file of conversations: "
            f"{unparsed:,} of its {self.conversations:,} lines are not JSON."
        )

    def to_json(self, *, strict: bool = False) -> dict[str, Any]:
        """The file's entry in ``taskcli validate --json``."""
        return {
            "path": self.path,
            "valid": self.passes(strict=strict),
            "conversations": self.conversations,
            "errors": self.errors.every(),
            "warnings": self.warnings.every(),
        }

    def json_chunks(self, *, strict: bool = False) -> Iterator[str]:
        """`to_json` as pieces of text, laid out as ``orjson.OPT_INDENT_2`` lays it out inside
        ``{"files": [...]}``, every problem read back from the spool one at a time: printing
        millions of problems holds none of them in memory."""
        head = {"path": self.path, "valid": self.passes(strict=strict)}
        head["conversations"] = self.conversations
        fields = orjson.dumps(head, option=orjson.OPT_INDENT_2).decode().splitlines()[1:-1]
        yield "    {\n" + "\n".join(f"    {field}" for field in fields) + ",\n"
        for key, log in (("errors", self.errors), ("warnings", self.warnings)):
            yield f'      "{key}": ['
            empty = True
            for piece in log.json_text():
                yield piece.decode()
                empty = False
            yield ("" if empty else "\n      ") + ("],\n" if key == "errors" else "]\n")
        yield "    }"


def problem_json(problem: Problem, unit: str = "line") -> dict[str, Any]:
    """One problem as ``validate --json`` and ``--rejects`` write it: its line (or row), rule,
    message and path."""
    return {
        unit: problem.line,
        "rule": problem.rule,
        "message": problem.message,
        "path": problem.path,
    }


def format_problem(file: str, problem: Problem, unit: str = "line") -> str:
    """``file:line: [rule] message (at messages[3].role)``: one problem as people read it (a
    row of a Parquet file or a JSON array as ``file:row 5:``)."""
    where = f" (at {problem.path})" if problem.path else ""
    place = problem.line if unit == "line" else f"{unit} {problem.line}"
    if problem.line is None:  # the whole file's
        return f"{file}: [{problem.rule}] {problem.message}{where}"
    return f"{file}:{place}: [{problem.rule}] {problem.message}{where}"


class FirstSeen:
    """The first line of each distinct 64-bit hash, for finding duplicate conversations.

    An open-addressing table in two flat arrays costs 16 bytes a slot (24-48 bytes per distinct
    line) where a dict of ints would cost over 100. The hash is Python's own (SipHash, keyed per
    process, several times faster than hashlib); two different lines share it with probability
    about n²/2⁶⁵: one in ten million for two million lines.
    """

    def __init__(self) -> None:
        self.size = 0
        self.keys = array("q", bytes(8 * 1024))
        self.lines = array("Q", bytes(8 * 1024))

    def first_line(self, data: bytes, line: int) -> int | None:
        """The line `data` was first seen on, or None (and `line` is remembered)."""
        key = hash(data) or 1  # 0 marks an empty slot
        keys = self.keys
        mask = len(keys) - 1
        slot = key & mask
        while True:
            found = keys[slot]
            if found == key:
                return self.lines[slot]
            if not found:
                break
            slot = (slot + 1) & mask
        keys[slot] = key
        self.lines[slot] = line
        self.size += 1
        if 3 * self.size > 2 * len(keys):
            self._grow()
        return None

    def _grow(self) -> None:
        old = zip(self.keys, self.lines, strict=True)
        capacity = 2 * len(self.keys)
        self.keys = keys = array("q", bytes(8 * capacity))
        self.lines = lines = array("Q", bytes(8 * capacity))
        mask = capacity - 1
        for key, line in old:
            if key:
                slot = key & mask
                while keys[slot]:
                    slot = (slot + 1) & mask
                keys[slot] = key
                lines[slot] = line


def line_repeats(lines: Iterable[bytes]) -> Iterator[tuple[int, int | None]]:
    """``(line number, the earlier line it repeats or None)`` for each conversation line, in
    order, compared as the `duplicate` rule compares them (`FirstSeen`, the line without the
    BOM of line 1 and without surrounding whitespace). Blank lines and lines over the length
    limit (`LongLine`, a ``line-too-long`` error) are skipped.

    A line with errors is never reported a duplicate (its errors are), and `check_lines` leaves
    it out of the table; here it goes in. The answer for a line without errors is the rule's
    all the same: a line it repeats has the same bytes, so the same (no) errors. Costs the
    rule's memory, 16-32 bytes per distinct line, and no parsing.
    """
    first_line = FirstSeen().first_line
    for number, line in enumerate(lines, 1):
        if type(line) is not LongLine and holds_conversation(number, line):
            yield number, first_line(_duplicate_key(written(number, line)[0]), number)


def _duplicate_key(raw: bytes) -> bytes:
    """What two lines must share to be the same conversation: their bytes, less the whitespace
    around them (a CRLF line repeats its LF twin)."""
    return raw.strip()


def _syntax_problem(raw: bytes, error: orjson.JSONDecodeError, line: int, shift: int) -> Problem:
    """Why orjson rejected `raw`: a bad UTF-8 byte (orjson gives no offset for it) or the syntax."""
    try:
        text = raw.decode()
    except UnicodeDecodeError as bad:
        return Problem(
            "invalid-utf8",
            f"invalid UTF-8 byte 0x{raw[bad.start]:02X} at byte offset {bad.start + shift} "
            "of the line (0-based)",
            None,
            line,
        )
    reason = error.msg
    if text[error.pos :].startswith(("NaN", "Infinity", "-Infinity")):
        reason += " (NaN and Infinity are not JSON)"
    elif reason.startswith("depth limit"):
        reason += " (more than 1024 nested arrays or objects)"
    return Problem("invalid-json", f"invalid JSON: {reason} at column {error.colno}", None, line)


NOT_PARSED = object()  # the record of a line that is not JSON


def line_problems(
    number: int,
    raw: bytes,
    *,
    shift: int = 0,
    allow_system: bool = True,
    forced: str | None = None,
) -> tuple[Any, Reading]:
    """``(record, reading)``: line `number` read as a conversation in its own format, or the
    `forced` one (`taskcli.files.formats.read`), with what it breaks by itself (its JSON, its
    shape, the conversation rules), given its content `raw` (`taskcli.files.reader.written`),
    which starts `shift` bytes into the line. The record is `NOT_PARSED` when the line is not
    JSON.

    The one place a line is judged: `check_lines` judges every line with it, and `browse` the
    rows it shows (`row_rules`)."""
    try:
        record = _loads(raw)
    except _DecodeError as error:
        return NOT_PARSED, Reading(None, [_syntax_problem(raw, error, number, shift)])
    return record, read(record, forced, allow_system=allow_system)


def shape_rule(shape: str | None, first_shape: str | None) -> str | None:
    """The rule a record of `shape` breaks in a file whose first record has `first_shape`:
    ``mixed-formats`` between ShareGPT and the others, ``mixed-shapes`` between arrays and
    objects of messages, else None."""
    if shape is None or first_shape is None or shape == first_shape:
        return None
    return "mixed-formats" if "conversations" in (shape, first_shape) else "mixed-shapes"


def row_rules(
    number: int,
    raw: bytes,
    how_written: tuple[str, ...],
    first_shape: str | None,
    forced: str | None = None,
) -> tuple[Any, Reading, tuple[str, ...]]:
    """``(record, reading, rule ids)``: every rule `validate` holds line `number` to, for one
    row on its own: `line_problems`, how the line is written (``bom``, ``crlf``), and
    `shape_rule` against `first_shape`, the file's first conversation's. (`validate` names only
    the first line of a file that breaks ``bom``, ``crlf`` or ``mixed-shapes``; every such line
    breaks it.)"""
    shift = 3 if "bom" in how_written else 0
    record, reading = line_problems(number, raw, shift=shift, forced=forced)
    return record, reading, record_rules(record, reading, first_shape, forced, how_written)


def record_rules(
    record: Any,
    reading: Reading,
    first_shape: str | None,
    forced: str | None = None,
    how_written: tuple[str, ...] = (),
) -> tuple[str, ...]:
    """The rule ids of one record as read (`formats.read`): its own, how its line is written,
    and `shape_rule` against the file's `first_shape` (none when a format is `forced`)."""
    rules = [*dict.fromkeys(problem.rule for problem in reading.problems), *how_written]
    broken = None if forced else shape_rule(shape_of(record), first_shape)
    if broken is not None:
        rules.append(broken)
    return tuple(rules)


class _Checker:
    """One pass over a file's lines (`check`) or records (`check_record`): each checked on its
    own (`line_problems`, `formats.read`), plus what spans them (line endings, the shapes,
    duplicates), gathered into `report`."""

    def __init__(
        self,
        report: FileReport,
        allow_system: bool,
        on_valid: OnValid | None,
        on_reject: OnReject | None,
        forced: str | None = None,
        extra_rules: ExtraRules | None = None,
    ) -> None:
        self.report, self.allow_system, self.forced = report, allow_system, forced
        self.on_valid, self.on_reject = on_valid, on_reject
        self.extra_rules = extra_rules
        self.first_line = FirstSeen().first_line
        self.conversations = self.crlf_lines = self.first_crlf = 0
        self.first_shape: str | None = None  # the shape of the first conversation
        self.first_shape_line = 0
        self.mixed = False
        self.unread = False  # the file could not be read to the end (`unreadable`)

    def check(self, number: int, line: bytes, offset: int) -> None:
        """Check physical line `number` (without its LF), which starts at byte `offset`."""
        if type(line) is LongLine:
            self.report.conversations += 1
            problem = Problem(
                "line-too-long",
                f"the line is {line.length:,} bytes long, over the limit of {line.limit:,} "
                "(--max-line-bytes raises it); it was not parsed",
                None,
                number,
            )
            self._sort([problem], number, line)
            return
        raw, shift = line, 0
        if number == 1 or line[-1:] == b"\r":  # the lines `written` may change (a hot loop)
            raw, how = written(number, line)
            if "crlf" in how:
                self.crlf_lines += 1
                self.first_crlf = self.first_crlf or number
            if "bom" in how:
                self.report.warnings.append(
                    Problem("bom", "the file starts with a UTF-8 byte order mark", None, 1)
                )
                shift = 3
        if is_blank(raw):
            return
        self.conversations += 1
        record, reading = line_problems(
            number, raw, shift=shift, allow_system=self.allow_system, forced=self.forced
        )
        self._judge(number, record, reading, raw, line, offset + shift)

    def check_record(self, number: int, record: Any, known: bytes | None = None) -> None:
        """Check record `number` of a file of records (a row of Parquet, an item of a JSON
        array), as a line without its line-level rules. A record `known` to break no rule
        (found so from Arrow in bulk, `taskcli.files.arrow_rules`; `known` is its key for the
        `duplicate` rule) is the conversation it is, and may be None if nothing keeps it."""
        self.conversations += 1
        if known is not None and self.forced in (None, MESSAGES):
            if self.extra_rules is not None and self._broke_extra(number, record):
                return
            self.report.format = overall(self.report.format, MESSAGES)
            self._count(number, known)
            if self.on_valid is not None:
                self.on_valid(number, 0, record)
            return
        reading = read(record, self.forced, allow_system=self.allow_system)
        raw = orjson.dumps(record)
        self._judge(number, record, reading, raw, raw, 0)

    def _judge(
        self, number: int, record: Any, reading: Reading, key: bytes, raw: bytes, offset: int
    ) -> None:
        """File what record `number` breaks, with the rules across records (its shape, a
        duplicate of `key`), and hand it to `on_valid` or `on_reject` (with `raw`)."""
        problems = reading.problems
        mixed = None if self.forced else self._see_shape(record, number)
        if mixed is not None:
            problems = [mixed, *problems]
        if problems and self._sort(problems, number, raw):
            return
        if self.extra_rules is not None and self._broke_extra(number, reading.conversation, raw):
            return
        self.report.format = overall(self.report.format, reading.fmt)
        self._count(number, _duplicate_key(key))
        if self.on_valid is not None:
            self.on_valid(number, offset, reading.conversation)

    def _broke_extra(self, number: int, conversation: Any, raw: bytes | None = None) -> bool:
        """File what the conversation of line or row `number` breaks of the `extra_rules`; True
        if any is an error (the line is rejected, as `raw`: compact JSON when not given)."""
        assert self.extra_rules is not None
        problems = self.extra_rules(conversation)
        if not problems:
            return False
        return self._sort(problems, number, orjson.dumps(conversation) if raw is None else raw)

    def _count(self, number: int, key: bytes) -> None:
        """Remember the conversation of line or row `number` by its `key`: a `duplicate`
        warning when it was seen before."""
        first = self.first_line(key, number)
        if first is not None:
            self.report.warnings.append(
                Problem(
                    "duplicate",
                    f"the same conversation as {self.report.unit} {first}",
                    None,
                    number,
                )
            )

    def _see_shape(self, record: Any, number: int) -> Problem | None:
        """The rules about the file's shapes (`shape_rule`): a record in another format than
        the first one's is an error, returned; the first record in the other shape of
        messages is a warning, filed once."""
        shape = shape_of(record)
        if shape is None or shape == self.first_shape:
            return None
        if self.first_shape is None:
            self.first_shape, self.first_shape_line = shape, number
            return None
        broken = shape_rule(shape, self.first_shape)
        unit = self.report.unit
        if broken == "mixed-formats":
            return _mixed_formats(shape, number, self.first_shape, self.first_shape_line, unit)
        if not self.mixed:
            self.mixed = True
            self.report.warnings.append(_mixed_shapes(shape, number, self.first_shape_line, unit))
        return None

    def _sort(self, problems: list[Problem], number: int, line: bytes) -> bool:
        """File the problems of line `number` as errors and warnings; True if any is an error."""
        errors = []
        for p in problems:
            located = Problem(p.rule, p.message, p.path, number)
            (errors if p.is_error else self.report.warnings).append(located)
        if not errors:
            return False
        self.report.errors.extend(errors)
        self.report.rejected += 1
        if self.on_reject is not None:
            self.on_reject(number, line.rstrip(b"\r"), errors, self.report.unit)
        return True

    def unreadable(self, error: InvalidData, where: int | None) -> None:
        """The file cannot be read on from line or row `where` (None: at all): the
        ``unreadable-file`` error, what was read before it checked as usual."""
        self.unread = True
        self.report.unreadable = error
        self.report.errors.append(unreadable_problem(error, self.report.path, where))

    def finish(self, lines: int | None) -> None:
        """The rules about the whole file, once all its `lines` were checked (None: a file of
        records, not lines)."""
        report = self.report
        report.conversations = self.conversations
        if self.crlf_lines:
            report.warnings.append(
                Problem(
                    "crlf",
                    f"{self.crlf_lines} line(s) end with CRLF (\\r\\n) instead of LF; "
                    "this is the first",
                    None,
                    self.first_crlf,
                )
            )
            report.warnings.sort(key=lambda p: p.line)
        if not report.conversations and not self.unread:
            what = f"only {lines} blank line(s)" if lines else "nothing"
            where = 1 if lines is not None else None
            report.errors.append(
                Problem("empty-file", f"the file holds no conversations: {what}", None, where)
            )


def check_lines(
    lines: Iterable[bytes],
    path: str,
    *,
    allow_system: bool = True,
    on_valid: OnValid | None = None,
    on_reject: OnReject | None = None,
    keep: int = KEEP_PER_RULE,
    spool: bool = False,
    forced: str | None = None,
    extra_rules: ExtraRules | None = None,
) -> FileReport:
    """Check every line of a JSONL file; `path` only names the file in the report, `forced` is
    the format every line is read in (``--input-format``; None: each its own); each line
    without errors is also held to `extra_rules`.

    The report keeps the first `keep` problems of each rule and counts all; `spool` also keeps
    every problem on disk (`ProblemLog`)."""
    report = FileReport(path, errors=ProblemLog(keep, spool), warnings=ProblemLog(keep, spool))
    checker = _Checker(report, allow_system, on_valid, on_reject, forced, extra_rules)
    report.format = forced
    offset = number = 0
    try:
        for number, line in enumerate(lines, 1):
            checker.check(number, line, offset)
            offset += length_of(line) + 1
    except InvalidData as error:  # a truncated .gz, a disk error
        checker.unreadable(error, number + 1)
    checker.finish(number)
    return report


def check_records(
    records: Iterable[tuple[int, Any, bytes | None]],
    path: str,
    *,
    allow_system: bool = True,
    on_valid: OnValid | None = None,
    on_reject: OnReject | None = None,
    keep: int = KEEP_PER_RULE,
    spool: bool = False,
    forced: str | None = None,
    extra_rules: ExtraRules | None = None,
) -> FileReport:
    """Check ``(row, record, known)`` (the rows of Parquet files, the items of a JSON array)
    as `check_lines` checks lines, less the rules about how lines are written; problems are
    numbered by row, from 0. A record `known` to break no rule (`ParquetConversations.scan_all`
    tells it from Arrow in bulk, with its `duplicate` key) is spared its own check, not the
    `extra_rules`. `on_reject` gets each rejected record as compact JSON."""
    report = FileReport(
        path,
        errors=ProblemLog(keep, spool, "row"),
        warnings=ProblemLog(keep, spool, "row"),
        unit="row",
    )
    checker = _Checker(report, allow_system, on_valid, on_reject, forced, extra_rules)
    report.format = forced
    # Records come many at a time (a block of Parquet rows, a whole JSON document), and their
    # objects trigger full garbage collections; freezing what is alive now spares each of them a
    # walk over it (pyarrow's modules, a document), a tenth of what a Parquet row costs.
    gc.freeze()
    try:
        for number, record, known in records:
            checker.check_record(number, record, known)
    except InvalidData as error:  # a damaged row group
        checker.unreadable(error, checker.conversations)
    finally:
        gc.unfreeze()
    checker.finish(None)
    return report


def unreadable_problem(error: InvalidData, path: str, where: int | None = None) -> Problem:
    """The ``unreadable-file`` error of `path`, saying what `error` says (its hint too: a
    report has no other place for it), at line or row `where`."""
    message = str(error).removeprefix(f"{path}: ")
    if error.hint:
        message += f" {error.hint[0].upper()}{error.hint[1:]}"
    return Problem("unreadable-file", message, None, where)


def _mixed_formats(shape: str, line: int, first_shape: str, first_line: int, unit: str) -> Problem:
    names = {"conversations": "sharegpt", "object": "messages", "array": "nanochat"}
    return Problem(
        "mixed-formats",
        f"this {unit} is {names[shape]} but {unit} {first_line} is {names[first_shape]}; "
        "a file holds one format (`taskcli rules mixed-formats` says how to split it)",
        None,
        line,
    )


def _mixed_shapes(shape: str, line: int, first_line: int, unit: str) -> Problem:
    shapes = {"object": "an object with 'messages'", "array": "an array of messages"}
    other = "object" if shape == "array" else "array"
    return Problem(
        "mixed-shapes",
        f"this {unit} is {shapes[shape]} but {unit} {first_line} is {shapes[other]}; "
        "one shape per file is less surprising",
        None,
        line,
    )


def check_file(
    path: str | os.PathLike[str],
    *,
    allow_system: bool = True,
    on_valid: OnValid | None = None,
    on_reject: OnReject | None = None,
    on_bytes: Callable[[int], None] | None = None,
    keep: int = KEEP_PER_RULE,
    spool: bool = False,
    forced: str | None = None,
    split: str | None = None,
    extra_rules: ExtraRules | None = None,
) -> FileReport:
    """Check a conversation file (``-`` for standard input) in one pass, keeping no
    conversations: JSON lines line by line, a JSON document's items or a Parquet file's rows
    (a folder's shards of `split`) record by record, in storage order, a row group at a time.

    `on_valid` and `on_reject` see each line as it is checked, so callers can write the valid
    conversations or the rejected lines without a second pass; `on_bytes` sees each count of
    bytes read (a progress bar); `extra_rules` judges each conversation without errors. A file
    that cannot be opened is a `UsageError`.
    """
    name = os.fspath(path)
    options: dict[str, Any] = {
        "allow_system": allow_system,
        "on_valid": on_valid,
        "on_reject": on_reject,
        "keep": keep,
        "spool": spool,
        "forced": forced,
        "extra_rules": extra_rules,
    }
    container = container_of(name)
    records = None
    try:
        if container in (PARQUET, SHARDS):
            rows = open_parquet(name, split)
            options["forced"] = forced = forced or rows.forced_format
            needed = on_valid is not None or extra_rules is not None
            kept = needed or forced not in (None, MESSAGES)
            records = rows.scan_all(on_bytes, allow_system=allow_system, records=kept)
            return check_records(records, display_name(name), **options)
        if container == DOCUMENT:
            records = read_document(name)
    except InvalidData as error:  # a damaged footer, no conversation column, a huge document
        report = FileReport(display_name(name), unit="line" if container == DOCUMENT else "row")
        report.unreadable = error
        report.errors.append(unreadable_problem(error, report.path))
        return report
    if records is not None:
        if on_bytes is not None:
            on_bytes(os.path.getsize(name))
        items = ((i, record, None) for i, record in enumerate(records))
        return check_records(items, display_name(name), **options)
    opened = open_lines(name) if on_bytes is None else open_lines_counted(name, on_bytes)
    with opened as lines:
        return check_lines(lines, display_name(name), **options)
