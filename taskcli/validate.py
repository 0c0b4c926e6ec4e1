"""`taskcli validate`: JSONL files checked against every rule, with the clean and the rejected
lines written out on request.

The rules live in `taskcli.conversation` (one conversation) and `taskcli.file_rules` (a file's
lines); this module checks several files in turn and writes the outputs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

import orjson

from taskcli.atomic import atomic_output
from taskcli.conversation import Problem
from taskcli.errors import UsageError
from taskcli.file_rules import FileReport, OnReject, OnValid, check_file, problem_json
from taskcli.jsonl import STDIN, display_name, normalise, open_binary


def validate_files(
    paths: Sequence[str],
    *,
    allow_system: bool = True,
    output_valid: str | os.PathLike[str] | None = None,
    rejects: str | os.PathLike[str] | None = None,
    on_bytes: Callable[[int], None] | None = None,
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
            name = display_name(os.fspath(path))
            reports.append(
                check_file(
                    path,
                    allow_system=allow_system,
                    on_valid=_valid_writer(valid_out) if valid_out else None,
                    on_reject=_rejects_writer(rejects_out, name) if rejects_out else None,
                    on_bytes=on_bytes,
                )
            )
    return reports


def check_targets(texts: Sequence[str]) -> None:
    """Every argument must name a conversation file by the target rule (`taskcli.targets`):
    a task or a spec is a usage error that says how to check what it would write."""
    from taskcli.targets import FILE, classify

    for text in texts:
        kind, name = classify(text)
        if kind != FILE:
            what = "a registered task" if kind == "task" else "a mixture spec"
            raise UsageError(
                f"{text} is {what}; validate checks conversation files.",
                hint=f"`taskcli export {name} -o - | taskcli validate -` checks what it writes"
                + (f"; write ./{text} for a file named {text}." if kind == "task" else "."),
            )


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
        raise UsageError(
            "the valid and the rejected lines must go to different files.",
            params=("output_valid", "rejects"),
        )
    for output in outputs:
        folder = os.path.dirname(output) or "."
        if not os.path.isdir(folder):
            raise UsageError(f"{output}: the folder {folder} does not exist.")
        for source in inputs:
            if os.path.realpath(source) == os.path.realpath(output):
                raise UsageError(f"{output} is also an input; the input is never overwritten.")
