"""Writing an export as a Parquet file, in the layout `taskcli.files.parquet` reads back.

The rows come through the same pipeline as JSON lines (`taskcli.export.writing.write_rows`),
so the order, the checks and the bulk paths are the ones every export has; this module turns
the lines, in order, into row groups of one schema, fixed before the first is written:

- the format's `column` (``messages``, or ``conversations`` for ShareGPT) is a list of structs.
  A message is its ``role`` and ``content`` strings; a content that is a list of parts goes in
  a ``parts`` field (a list of ``{type, text}``) beside a null ``content``, and OpenAI's
  ``tool_calls`` and ``tool_call_id`` are fields of their own. Those optional fields are in the
  schema only when some row uses them (`optional_fields`, gathered while the rows were made), so
  plain conversations get exactly SmolTalk's ``list<struct<role, content>>``;
- a format `with_metadata` (``full``) adds a ``metadata`` column: every other key of the row,
  its ``source`` included, as one JSON object, marked as such in the field's metadata
  (`taskcli.files.parquet.ROW_KEYS`) so that readers put the keys back. Rows from different
  tasks have different keys, which one typed column per key could not hold in one schema.

Message keys beyond these fields (a warning, ``unknown-key``, when read) have no place here.
"""

from __future__ import annotations

from typing import Any, BinaryIO

import orjson

from taskcli.errors import InvalidData
from taskcli.export.formats import ExportFormat
from taskcli.files.parquet import METADATA_COLUMN, ROW_KEYS

ROWS_PER_GROUP = 65536
# A message's fields beyond role and content, in the order a schema lists them.
OPTIONAL_FIELDS = ("parts", "tool_calls", "tool_call_id")


def optional_fields(record: Any) -> set[str]:
    """The `OPTIONAL_FIELDS` the messages of one written row need."""
    messages = record if type(record) is list else record.get("messages")
    found = set()
    for message in messages if type(messages) is list else ():
        if type(message.get("content")) is list:
            found.add("parts")
        if len(message) > 2:
            found.update(key for key in OPTIONAL_FIELDS[1:] if key in message)
    return found


def schema_of(fmt: ExportFormat, fields: set[str]) -> Any:
    """The Arrow schema of `fmt`'s rows whose messages use the optional `fields`."""
    import pyarrow as pa

    text = pa.string()
    if fmt.column == "conversations":
        item = pa.struct([("from", text), ("value", text)])
    else:
        kinds = {
            "parts": pa.list_(pa.struct([("type", text), ("text", text)])),
            "tool_calls": pa.list_(
                pa.struct(
                    [
                        ("id", text),
                        ("type", text),
                        ("function", pa.struct([("name", text), ("arguments", text)])),
                    ]
                )
            ),
            "tool_call_id": text,
        }
        chosen = [(name, kinds[name]) for name in OPTIONAL_FIELDS if name in fields]
        item = pa.struct([("role", text), ("content", text), *chosen])
    columns = [pa.field(fmt.column, pa.list_(item))]
    if fmt.with_metadata:
        columns.append(pa.field(METADATA_COLUMN, text, metadata=ROW_KEYS))
    return pa.schema(columns)


def _message(message: dict[str, Any]) -> dict[str, Any]:
    """A message as its struct: a list of parts in ``parts``, its ``content`` null."""
    content = message.get("content")
    if type(content) is not list:
        return message
    return {**message, "content": None, "parts": content}


class ParquetSink:
    """A `write(bytes)` callback for JSON lines that writes them as Parquet row groups to
    `stream`. `fields` is the set of optional message fields the rows use, complete once the
    rows are all made (before the first line is written). `close` writes what is left and the
    footer; without it the file is unfinished."""

    def __init__(self, stream: BinaryIO, fmt: ExportFormat, fields: set[str]) -> None:
        self.stream, self.fmt, self.fields = stream, fmt, fields
        self.pending: list[Any] = []
        self.writer: Any = None

    def write(self, data: bytes | memoryview) -> None:
        for line in bytes(data).splitlines():
            self.pending.append(orjson.loads(line))
            if len(self.pending) >= ROWS_PER_GROUP:
                self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.writer is None:
            schema = schema_of(self.fmt, self.fields)
            self.writer = pq.ParquetWriter(self.stream, schema, compression="zstd")
        if not self.pending:
            return
        column, rows = self.fmt.column, self.pending
        values = [row if type(row) is list else row[column] for row in rows]
        if column == "messages":
            values = [[_message(message) for message in messages] for messages in values]
        arrays = [values]
        if self.fmt.with_metadata:
            others = ({k: v for k, v in row.items() if k != column} for row in rows)
            arrays.append([orjson.dumps(keys).decode() for keys in others])
        schema = self.writer.schema
        try:
            columns = [
                pa.array(array, field.type) for array, field in zip(arrays, schema, strict=True)
            ]
            table = pa.Table.from_arrays(columns, schema=schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise InvalidData(
                f"the {self.fmt.name} rows do not fit one Parquet schema: {error}"
            ) from None
        self.writer.write_table(table)
        self.pending = []

    def close(self) -> None:
        self._flush()
        self.writer.close()
