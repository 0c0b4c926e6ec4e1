"""Writing an export as one JSON array (``-o train.json``), streamed.

The rows come through the same pipeline as JSON lines (`taskcli.export.writing.write_rows`), in
order; this module only puts them between ``[`` and ``]`` with a comma after each but the last,
one row per line, so the file is what `json.load` expects and memory stays that of a line file:
nothing is gathered before it is written.
"""

from __future__ import annotations

from typing import BinaryIO


class JsonArraySink:
    """A `write(bytes)` callback for JSON lines that writes them to `stream` as the elements of
    one JSON array. `close` ends the array; without it the file is unfinished.

    A JSON line holds no raw newline (a newline in a string is written ``\\n``), so every
    newline byte ends a row: it becomes the comma before the next one.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.started = False
        self.row_ended = False  # the last byte written ended a row; its comma waits for the next

    def write(self, data: bytes | memoryview) -> None:
        if not len(data):
            return
        self.stream.write(b"[\n" if not self.started else b",\n" if self.row_ended else b"")
        self.started = True
        separated = bytes(data).replace(b"\n", b",\n")
        self.row_ended = separated.endswith(b",\n")
        self.stream.write(memoryview(separated)[:-2] if self.row_ended else separated)

    def close(self) -> None:
        self.stream.write(b"\n]\n" if self.started else b"[]\n")
