"""The export formats: one `ExportFormat` object each, all in the `FORMATS` table.

A format says how one conversation becomes one JSON line (`row`), and, when its lines can be
written straight from Arrow columns, how (`layout`): the fast path must then produce exactly the
bytes `row` would. The CLI's ``--format`` help, the generated CLI reference, the export and the
tests all read this table, so a new format is one new object here plus its tests.

This module imports nothing heavy: ``taskcli --help`` reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from taskcli.conversation import ROLES, SHAREGPT_ROLES
from taskcli.errors import UsageError, suggest

if TYPE_CHECKING:
    from taskcli.files.formats import Written
    from taskcli.mixing.spec import Entry

JSONL_FILES = ("jsonl", "jsonl.gz")
JSON_ARRAY = "json"  # one JSON array of every row (`taskcli.export.writing.JsonArraySink`)
JSON_FILES = (*JSONL_FILES, JSON_ARRAY)  # what every format of JSON rows writes
PARQUET = "parquet"
FILE_KINDS = (*JSON_FILES, PARQUET)
DEFAULT_FORMAT = "messages"

# How one conversation becomes the JSON value of its line, and whether the format could say all
# of it: (conversation, spec entry, index of the example in the entry's whole task).
RowFormatter = Callable[[dict[str, Any], "Entry", int], "Written"]


@dataclass(frozen=True)
class Layout:
    """How a format writes a conversation whose contents are all strings, for rows written
    straight from Arrow (`taskcli.export.columnar`).

    A line is `head`, the messages joined by commas, then `tail` (or, with `with_source`, the
    row's ``"source"`` as `Entry.origin` writes it) and a newline; a message is
    ``{"<role_key>": <name of its role>, "<content_key>": <content>}``.
    """

    head: bytes
    tail: bytes
    role_key: str = "role"
    content_key: str = "content"
    role_names: tuple[str, ...] = ROLES  # what system, user and assistant are called
    with_source: bool = False
    fold_system: bool = False  # rows that start with a system message go row by row


@dataclass(frozen=True)
class ExportFormat:
    """One export format: its name, a line of help, and how it writes a conversation."""

    name: str
    help: str
    row: RowFormatter | None  # None: not JSON at all (`renders_tokens`)
    layout: Layout | None = None  # None: every row goes through `row`, one by one
    file_kinds: tuple[str, ...] = FILE_KINDS  # the file names it writes: train.jsonl, ...
    # In Parquet (`taskcli.export.parquet`): the column of the conversation, a list of structs
    # (the row's own key, or the whole row when it is a list), and whether the row's other keys
    # go in a `metadata` column as a JSON object.
    column: str = "messages"
    with_metadata: bool = False
    # True for the training view: conversations rendered with a tokenizer into token ids and a
    # loss mask (`taskcli.export.tokens`), instead of JSON written by `row`.
    renders_tokens: bool = False
    # True when a row is one packed row of nanochat's SFT loader, not one conversation
    # (`taskcli.export.packed`): it needs the loader's sizes, and the run replayed.
    packs_rows: bool = False


class _WrittenBy:
    """A row formatter that writes with `taskcli.files.formats.WRITERS[fmt]`, imported on the
    first row: ``taskcli --help`` reads this table, and the formats module costs it 10 ms."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.write: Callable[[dict[str, Any]], Written] | None = None

    def __call__(self, conversation: dict[str, Any], entry: Entry, index: int) -> Written:
        if self.write is None:
            from taskcli.files.formats import WRITERS

            self.write = WRITERS[self.fmt]
        return self.write(conversation)


def _full(conversation: dict[str, Any], entry: Entry, index: int) -> Written:
    from taskcli.files.formats import Written

    return Written({**conversation, "source": entry.origin(index)})


FORMATS: dict[str, ExportFormat] = {
    fmt.name: fmt
    for fmt in (
        ExportFormat(
            "messages",
            '{"messages": [...]} with assistant tool parts kept as lists of parts (in Parquet, '
            "a message's parts go in its 'parts' field, beside a null 'content').",
            _WrittenBy("messages"),
            Layout(b'{"messages":[', b"]}"),
        ),
        ExportFormat(
            "nanochat",
            "A JSON array of messages with string contents, as nanochat's CustomJSON loads it: a "
            "system message is folded into the first user message, and tool calls are flattened "
            "to <<expr=result>> text, the rows that had them counted on stderr (the tokens "
            "format keeps them).",
            _WrittenBy("nanochat"),
            Layout(b"[", b"]", fold_system=True),
        ),
        ExportFormat(
            "openai",
            '{"messages": [...]} as OpenAI fine-tuning reads it: tool calls are real tool calls, '
            "an assistant message with tool_calls of a function named python (the code in its "
            "arguments) and a tool message with the output.",
            _WrittenBy("openai"),
            Layout(b'{"messages":[', b"]}"),
        ),
        ExportFormat(
            "sharegpt",
            '{"conversations": [{"from": "human" | "gpt" | "system", "value": ...}]}; tool calls '
            "are flattened to <<expr=result>> text, the rows that had them counted on stderr.",
            _WrittenBy("sharegpt"),
            Layout(
                b'{"conversations":[',
                b"]}",
                "from",
                "value",
                tuple(SHAREGPT_ROLES[role] for role in ROLES),
            ),
            column="conversations",
        ),
        ExportFormat(
            "full",
            "The whole conversation, metadata included, plus each row's source (task, subset, "
            "split, index); in Parquet, the metadata and source are a JSON object in a "
            "'metadata' column.",
            _full,
            Layout(b'{"messages":[', b"]}", with_source=True),
            with_metadata=True,
        ),
        ExportFormat(
            "tokens",
            "Parquet of each conversation as nanochat's SFT trains on it: token ids, the loss "
            "mask (1 = trained), and the row's source; needs --tokenizer. Lossless: tool calls "
            "stay tool tokens.",
            None,
            file_kinds=(PARQUET,),
            renders_tokens=True,
        ),
        ExportFormat(
            "packed",
            "Parquet of the rows nanochat's SFT loader feeds the model (bestfit packing, "
            "92d63d4), rank by rank up to last_step: rank, micro_batch, row, ids and mask (T + 1 "
            "tokens, BOS padding masked), content_len and each conversation's segment; needs "
            "--tokenizer, --max-seq-len and --device-batch-size.",
            None,
            file_kinds=(PARQUET,),
            renders_tokens=True,
            packs_rows=True,
        ),
    )
}


def get_format(name: str) -> ExportFormat:
    """The format called `name`, in any case as task names are (``OpenAI`` is ``openai``), or a
    usage error listing them."""
    found = FORMATS.get(name) or FORMATS.get(name.casefold())
    if found is None:
        raise UsageError(
            f"unknown format {name!r}.{suggest(name, list(FORMATS))} "
            f"Choose one of {', '.join(FORMATS)}."
        )
    return found


def file_kind(output: str) -> str | None:
    """The kind of file a name asks for (``jsonl``, ``jsonl.gz``, ``json``, ``parquet``), or
    None."""
    folded = output.casefold()
    return next((kind for kind in FILE_KINDS if folded.endswith("." + kind)), None)


def choose_output(
    output: str, fmt: str | None, *, stream: bool = False
) -> tuple[ExportFormat, str]:
    """The format and the kind of file to write `output` as: the kind follows the name.

    ``-`` (standard output) and any other `stream` (a device, a FIFO) get JSON lines. A name
    that asks for no known kind (``train.csv``) is a usage error unless `fmt` is given, which
    then says JSON lines are meant. A format that cannot write the kind asked for is a usage
    error naming those that can.
    """
    chosen = get_format(fmt or DEFAULT_FORMAT)
    if output == "-" or (stream and file_kind(output) is None):
        return chosen, "jsonl"
    kind = file_kind(output)
    if kind is None:
        if fmt is None:
            kinds = ", ".join("." + kind for kind in FILE_KINDS)
            raise UsageError(
                f"{output}: the file name does not say what to write; taskcli writes {kinds}.",
                hint="name the file after its kind, or give --format to write JSON lines under "
                "any name.",
                params=("output", "fmt"),
            )
        return chosen, "jsonl.gz" if output.endswith(".gz") else "jsonl"
    if kind not in chosen.file_kinds:
        able = [f.name for f in FORMATS.values() if kind in f.file_kinds]
        raise UsageError(
            f"the {chosen.name} format cannot be written as .{kind}.",
            hint=f"formats that write .{kind}: {', '.join(able)}.",
            params=("fmt",),
        )
    return chosen, kind


def formats_help() -> str:
    """Every format with its line of help, for ``--format``'s help and the CLI reference."""
    return " ".join(f"{fmt.name}: {fmt.help}" for fmt in FORMATS.values())
