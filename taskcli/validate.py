"""`taskcli validate`: JSONL files checked against every rule, with the clean and the rejected
lines written out on request.

The rules live in `taskcli.conversation` (one conversation) and `taskcli.files.rules` (a file's
lines); this module checks several files in turn and writes the outputs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from taskcli.conversation import RECORD_FORMATS, Problem
from taskcli.errors import InvalidData, UsageError
from taskcli.files.atomic import atomic_output, check_output, is_special
from taskcli.files.reader import STDIN, check_readable, display_name, line_limit
from taskcli.files.rules import (
    KEEP_PER_RULE,
    ExtraRules,
    FileReport,
    OnReject,
    OnValid,
    check_file,
    problem_json,
)

if TYPE_CHECKING:
    from taskcli.training.tokenizer import Tokenizer


def validate_files(
    paths: Sequence[str],
    *,
    allow_system: bool = True,
    output_valid: str | os.PathLike[str] | None = None,
    rejects: str | os.PathLike[str] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    keep_per_rule: int = KEEP_PER_RULE,
    spool: bool = False,
    max_line_bytes: int | None = None,
    input_format: str | None = None,
    split: str | None = None,
    tokenizer: Tokenizer | None = None,
) -> list[FileReport]:
    """Check each file; optionally write the valid conversations and the rejected lines.

    Every input is checked before any work starts, so a missing file costs nothing, and no
    output may be one of the inputs (same path or same file). The outputs
    are written atomically and gather all inputs, in order: `output_valid` holds the normal form
    of each line without errors (warnings allowed), `rejects` one JSON object per line with
    errors, ``{"file", "line", "errors", "raw"}``. Each report keeps the first `keep_per_rule`
    problems of each rule (`spool`: all, on disk); lines over `max_line_bytes` are not parsed.
    Records are read in `input_format` (each in its own when None); a folder of Parquet shards
    is checked for its `split`. With a `tokenizer` that renders through a chat template, each
    conversation without errors is rendered too (`template_rules`): one the template refuses
    is rejected (``template-error``), one it trains nothing of is a warning
    (``trains-nothing``).
    """
    extra_rules = template_rules(tokenizer) if tokenizer is not None else None
    if input_format is not None and input_format not in RECORD_FORMATS:
        raise UsageError(
            f"unknown input format {input_format!r}; choose one of {', '.join(RECORD_FORMATS)}.",
            params=("input_format",),
        )
    named = ((output_valid, "--output-valid"), (rejects, "--rejects"))
    outputs = [(os.fspath(path), option) for path, option in named if path is not None]
    for path in paths:
        if path != STDIN:
            check_readable(path)
    for output, option in outputs:
        check_output(output, paths, option)
    real = [os.path.realpath(output) for output, _ in outputs if not is_special(output)]
    if len(set(real)) < len(real):
        raise UsageError("--output-valid and --rejects must be different files.")
    reports = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(line_limit(max_line_bytes))
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
                    keep=keep_per_rule,
                    spool=spool,
                    forced=input_format,
                    split=split,
                    extra_rules=extra_rules,
                )
            )
    return reports


def template_rules(tokenizer: Tokenizer) -> ExtraRules:
    """The rules a conversation is held to under `tokenizer`'s chat template, rendered whole
    (no cut): the template must render it (``template-error``), and its mask must train some
    of it (``trains-nothing``). A tokenizer without a template is a UsageError: nanochat's
    render trains every conversation that breaks no rule, so there would be nothing to find."""
    renderer = tokenizer.template
    if renderer is None:
        raise UsageError(
            f"tokenizer {tokenizer.spec} renders with nanochat's chat tokens, which train every "
            "conversation validate accepts: there is no chat template to check rows against.",
            hint="give a Hugging Face model folder, or a chat template file.",
            params=("chat_template",),
        )
    from taskcli.training.chat_template import RULE_NAMES

    rule = RULE_NAMES[renderer.rule]

    def judge(conversation: Any) -> list[Problem]:
        try:
            _, mask, _ = renderer.ids_and_mask(conversation)
        except InvalidData as error:
            return [Problem("template-error", str(error))]
        if mask.any():
            return []
        message = f"the chat template trains none of its tokens (mask: {rule})"
        return [Problem("trains-nothing", message)]

    return judge


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
    def write(line: int, offset: int, conversation: Any) -> None:
        out.write(orjson.dumps(conversation, option=orjson.OPT_APPEND_NEWLINE))

    return write


def _rejects_writer(out: BinaryIO, path: str) -> OnReject:
    def write(line: int, raw: bytes, errors: list[Problem], unit: str) -> None:
        entry = {
            "file": path,
            unit: line,
            "errors": [problem_json(p, unit) for p in errors],
            "raw": raw.decode("utf-8", "backslashreplace"),
        }
        out.write(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))

    return write
