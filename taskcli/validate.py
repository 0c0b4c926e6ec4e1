"""Chat JSONL checked in one streaming pass: every broken rule, with its line, in constant memory.

A file holds one conversation per line, either a JSON array of messages (nanochat's CustomJSON
shape) or an object with a ``"messages"`` array and any other keys (the Hugging Face / OpenAI
shape)::

    [{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "nanobot."}]
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hi!"}]}

The file is read in large binary chunks and split into lines here, so line numbers count every
physical line (1-based, blank lines included) and a bad byte is reported where it is instead of
stopping a decoder. The conversation rules live in `taskcli.conversation.check_messages`; this
module adds the file-level ones: encoding, JSON syntax, line shape, line endings, duplicates and
empty files. Conversations are not kept; memory holds the problems found and a few dozen bytes
per distinct valid line for duplicate detection.

The normal form, which ``--output-valid`` writes and the `customjson` task returns, is an object
``{"messages": [...], **other top-level keys}``: one compact UTF-8 line, LF-terminated, no BOM.
That is the shape most training code and `datasets.load_dataset("json", ...)` expect.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, BinaryIO

import orjson

from taskcli.atomic import atomic_output
from taskcli.conversation import Problem, check_messages, messages_of
from taskcli.errors import InvalidData, UsageError

STDIN = "-"
BOM = b"\xef\xbb\xbf"
CHUNK_SIZE = 1 << 17  # fits in L2 cache; larger chunks read no faster

# Called for each line without errors: (line number, byte offset of its JSON, parsed record).
OnValid = Callable[[int, int, Any], None]
# Called for each line with errors: (line number, the line's bytes, its errors).
OnReject = Callable[[int, bytes, list[Problem]], None]


@dataclass
class FileReport:
    """One file's verdict: how many conversations it holds and every error and warning."""

    path: str
    conversations: int = 0  # non-blank lines, valid or not
    rejected: int = 0  # lines with at least one error
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def passes(self, *, strict: bool = False) -> bool:
        """No errors (and, when `strict`, no warnings either)."""
        return not self.errors and not (strict and self.warnings)

    def to_json(self, *, strict: bool = False) -> dict[str, Any]:
        """The file's entry in ``taskcli validate --json``."""
        return {
            "path": self.path,
            "valid": self.passes(strict=strict),
            "conversations": self.conversations,
            "errors": [problem_json(p) for p in self.errors],
            "warnings": [problem_json(p) for p in self.warnings],
        }


def problem_json(problem: Problem) -> dict[str, Any]:
    return {
        "line": problem.line,
        "rule": problem.rule,
        "message": problem.message,
        "path": problem.path,
    }


def format_problem(file: str, problem: Problem) -> str:
    """``file:line: [rule] message (at messages[3].role)``: one problem as people read it."""
    where = f" (at {problem.path})" if problem.path else ""
    return f"{file}:{problem.line}: [{problem.rule}] {problem.message}{where}"


def normalise(record: Any) -> dict[str, Any]:
    """A valid record in the normal form ``{"messages": [...], **other top-level keys}``."""
    return {"messages": record} if type(record) is list else record


def read_lines(
    stream: BinaryIO, name: str = "<stream>", chunk_size: int = CHUNK_SIZE
) -> Iterator[bytes]:
    """The physical lines of `stream`, without their ``\\n``; memory is two chunks plus one line.

    A chunk is cut by `io.BytesIO.readlines`, which finds each ``\\n`` with memchr: `bytes.split`
    compares byte by byte and takes twice as long on conversation-sized lines.
    A read that fails (a truncated or corrupt ``.gz``, a disk error) is `InvalidData` naming `name`.
    """
    pending: list[bytes] = []  # the start of a line that goes on in the next chunk
    while chunk := _read(stream, name, chunk_size):
        lines = io.BytesIO(chunk).readlines()
        tail = b"" if chunk.endswith(b"\n") else lines.pop()
        if lines:
            if pending:
                lines[0] = b"".join([*pending, lines[0]])
                pending = []
            yield from map(bytes.rstrip, lines, repeat(b"\n"))  # each ends with exactly one
        if tail:
            pending.append(tail)
    last = b"".join(pending)
    if last:
        yield last


def _read(stream: BinaryIO, name: str, size: int) -> bytes:
    try:
        return stream.read(size)
    except (OSError, EOFError) as error:
        raise InvalidData(f"{name}: cannot be read to the end: {error}") from None


def open_binary(path: str) -> BinaryIO:
    """`path` opened for reading bytes; a file that cannot be opened is a usage error."""
    try:
        return open(path, "rb")  # the caller closes it
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file.") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a folder, not a JSONL file.") from None
    except PermissionError:
        raise UsageError(f"{path}: permission denied; the file is not readable.") from None
    except OSError as error:
        raise UsageError(f"{path}: cannot open it ({error.strerror}).") from None


@contextlib.contextmanager
def open_lines(path: str) -> Iterator[Iterator[bytes]]:
    """The lines of a file (``-`` is standard input, ``.gz`` is decompressed on the fly)."""
    if path == STDIN:
        yield read_lines(sys.stdin.buffer, "<stdin>")
        return
    with open_binary(path) as raw:
        stream: BinaryIO = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw
        yield read_lines(stream, path)


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


def validate_lines(
    lines: Iterable[bytes],
    path: str,
    *,
    allow_system: bool = True,
    on_valid: OnValid | None = None,
    on_reject: OnReject | None = None,
) -> FileReport:
    """Check every line of a JSONL file; `path` only names the file in the report."""
    report = FileReport(path)
    errors, warnings = report.errors, report.warnings
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    seen = FirstSeen()
    conversations = rejected = 0
    offset = crlf_lines = first_crlf = first_shape_line = 0
    first_is_array: bool | None = None
    mixed = False
    number = 0
    for number, line in enumerate(lines, 1):
        start = offset
        offset += len(line) + 1
        raw = line
        if raw[-1:] == b"\r":
            crlf_lines += 1
            first_crlf = first_crlf or number
        if number == 1 and raw.startswith(BOM):
            warnings.append(Problem("bom", "the file starts with a UTF-8 byte order mark", None, 1))
            raw = raw[3:]
            start += 3
        if not raw or raw.isspace():
            continue
        conversations += 1
        try:
            record = loads(raw)
        except decode_error as error:
            problems = [_syntax_problem(raw, error, number, len(line) - len(raw))]
        else:
            messages, shape_problem = messages_of(record)
            if shape_problem is None:
                is_array = type(record) is list
                if first_is_array is None:
                    first_is_array, first_shape_line = is_array, number
                elif is_array is not first_is_array and not mixed:
                    mixed = True
                    warnings.append(_mixed_shapes(is_array, number, first_shape_line))
                problems = check_messages(messages, allow_system=allow_system)
            else:
                problems = [shape_problem]
        if problems:
            line_errors = []
            for p in problems:
                located = Problem(p.rule, p.message, p.path, number)
                (line_errors if p.is_error else warnings).append(located)
            if line_errors:
                errors.extend(line_errors)
                rejected += 1
                if on_reject is not None:
                    on_reject(number, line.rstrip(b"\r"), line_errors)
                continue
        first = seen.first_line(raw.strip(), number)
        if first is not None:
            warnings.append(
                Problem("duplicate", f"the same conversation as line {first}", None, number)
            )
        if on_valid is not None:
            on_valid(number, start, record)

    if crlf_lines:
        warnings.append(
            Problem(
                "crlf",
                f"{crlf_lines} line(s) end with CRLF (\\r\\n) instead of LF; this is the first",
                None,
                first_crlf,
            )
        )
        warnings.sort(key=lambda p: p.line)
    if not conversations:
        what = f"only {number} blank line(s)" if number else "nothing"
        errors.append(Problem("empty-file", f"the file holds no conversations: {what}", None, 1))
    report.conversations, report.rejected = conversations, rejected
    return report


def _mixed_shapes(is_array: bool, line: int, first_line: int) -> Problem:
    shapes = ("an object with 'messages'", "an array of messages")
    return Problem(
        "mixed-shapes",
        f"this line is {shapes[is_array]} but line {first_line} is {shapes[not is_array]}; "
        "one shape per file is less surprising",
        None,
        line,
    )


def validate_file(
    path: str | os.PathLike[str],
    *,
    allow_system: bool = True,
    on_valid: OnValid | None = None,
    on_reject: OnReject | None = None,
) -> FileReport:
    """Check a JSONL file (``-`` for standard input) in one pass, keeping no conversations.

    `on_valid` and `on_reject` see each line as it is checked, so callers can write the valid
    conversations or the rejected lines without a second pass. A file that cannot be opened is a
    `UsageError`.
    """
    name = os.fspath(path)
    with open_lines(name) as lines:
        return validate_lines(
            lines,
            "<stdin>" if name == STDIN else name,
            allow_system=allow_system,
            on_valid=on_valid,
            on_reject=on_reject,
        )


def validate_files(
    paths: Sequence[str],
    *,
    allow_system: bool = True,
    output_valid: str | os.PathLike[str] | None = None,
    rejects: str | os.PathLike[str] | None = None,
) -> list[FileReport]:
    """Check each file; optionally write the valid conversations and the rejected lines.

    Every input is opened before any work starts, so a missing file costs nothing. The outputs
    are written atomically and gather all inputs, in order: `output_valid` holds the normal form
    of each line without errors (warnings allowed), `rejects` one JSON object per line with
    errors, ``{"file", "line", "errors", "raw"}``.
    """
    outputs = [os.fspath(p) for p in (output_valid, rejects) if p is not None]
    _check_outputs([p for p in paths if p != STDIN], outputs)
    for path in paths:
        if path != STDIN:
            open_binary(path).close()
    reports = []
    with contextlib.ExitStack() as stack:
        valid_out = stack.enter_context(atomic_output(output_valid)) if output_valid else None
        rejects_out = stack.enter_context(atomic_output(rejects)) if rejects else None
        for path in paths:
            name = "<stdin>" if path == STDIN else os.fspath(path)
            reports.append(
                validate_file(
                    path,
                    allow_system=allow_system,
                    on_valid=_valid_writer(valid_out) if valid_out else None,
                    on_reject=_rejects_writer(rejects_out, name) if rejects_out else None,
                )
            )
    return reports


def _valid_writer(out: BinaryIO) -> OnValid:
    def write(line: int, offset: int, record: Any) -> None:
        out.write(orjson.dumps(normalise(record), option=orjson.OPT_APPEND_NEWLINE))

    return write


def _rejects_writer(out: BinaryIO, path: str) -> OnReject:
    def write(line: int, raw: bytes, errors: list[Problem]) -> None:
        entry = {
            "file": path,
            "line": line,
            "errors": [problem_json(p) for p in errors],
            "raw": raw.decode("utf-8", "backslashreplace"),
        }
        out.write(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))

    return write


def _check_outputs(inputs: Sequence[str], outputs: Sequence[str]) -> None:
    """Outputs must go to existing folders, differ from each other, and never replace an input."""
    if len(set(map(os.path.realpath, outputs))) < len(outputs):
        raise UsageError("--output-valid and --rejects must be different files.")
    for output in outputs:
        folder = os.path.dirname(output) or "."
        if not os.path.isdir(folder):
            raise UsageError(f"{output}: the folder {folder} does not exist.")
        for source in inputs:
            if os.path.realpath(source) == os.path.realpath(output):
                raise UsageError(f"{output} is also an input; the input is never overwritten.")
