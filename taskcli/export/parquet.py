"""Writing an export as a Parquet file, with the format's columns.

The rows come through the same pipeline as JSON lines (`taskcli.export.writing.write_rows`),
so the order, the checks and the bulk paths are the ones every export has; this module turns
the lines, in order, into row groups. It knows nothing of any one format: the columns are the
format's `columns`, each typed as Arrow infers it from the first row group, so a new format
that lists its columns writes Parquet too.
"""

from __future__ import annotations

from typing import Any, BinaryIO

import orjson

from taskcli.errors import InvalidData
from taskcli.export.formats import ExportFormat

ROWS_PER_GROUP = 65536


class ParquetSink:
    """A `write(bytes)` callback for JSON lines that writes them as Parquet row groups to
    `stream`. `close` writes what is left and the footer; without it the file is unfinished."""

    def __init__(self, stream: BinaryIO, fmt: ExportFormat) -> None:
        self.stream, self.fmt = stream, fmt
        self.pending: list[dict[str, Any]] = []
        self.writer: Any = None
        self.schema: Any = None

    def write(self, data: bytes | memoryview) -> None:
        columns_of = self.fmt.columns_of
        for line in bytes(data).splitlines():
            self.pending.append(columns_of(orjson.loads(line)))
            if len(self.pending) >= ROWS_PER_GROUP:
                self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.pending and self.writer is not None:
            return
        try:
            table = pa.Table.from_pylist(self.pending, schema=self.schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise InvalidData(
                f"the {self.fmt.name} rows do not fit one Parquet schema: {error}"
            ) from None
        if self.writer is None:
            if not self.pending:  # an empty export: the columns, with no values to type them
                table = pa.table({name: pa.array([], pa.null()) for name in self.fmt.columns})
            self.schema = table.schema
            self.writer = pq.ParquetWriter(self.stream, self.schema, compression="zstd")
        self.writer.write_table(table)
        self.pending = []

    def close(self) -> None:
        self._flush()
        self.writer.close()
