"""Writing output files so that a failure never leaves half a file or destroys an old one.

The data goes to a temporary file in the destination's folder and is renamed over the
destination only after it was written completely and flushed to disk; on any error, Ctrl-C
included, the temporary file is removed and the destination is as it was.

Flushing a large file to disk takes seconds (2.5 s for a 1.7 GB export here), so a thread
starts flushing each time another `WRITEBACK_BYTES` were written, while the writing goes on;
the final fsync then finds little left to do.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

WRITEBACK_BYTES = 128 << 20
BUFFER_BYTES = 1 << 20
_fdatasync = getattr(os, "fdatasync", os.fsync)  # macOS has only fsync


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str], *, compress: bool | None = None
) -> Iterator[BinaryIO]:
    """A binary file object that becomes `path` only if the block finishes without error.

    A `.gz` suffix (or ``compress=True``) gzip-compresses the content, reproducibly (no name or
    timestamp in the gzip header), so two identical exports stay byte-identical.
    """
    target = Path(path)
    if compress is None:
        compress = target.suffix == ".gz"
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with _FlushingFile(fd) as raw:
            try:
                if compress:
                    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:
                        yield zipped  # type: ignore[misc]
                else:
                    yield raw
            finally:
                raw.stop_flushing()
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(temp_name, 0o666 & ~_umask())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _FlushingFile(io.BufferedWriter):
    """A file that, once `WRITEBACK_BYTES` more were written, has a thread flush it to disk."""

    def __init__(self, fd: int) -> None:
        super().__init__(io.FileIO(fd, "wb"), BUFFER_BYTES)
        self.written = self.flushed = 0
        self.flusher: threading.Thread | None = None
        self.wake = threading.Event()
        self.stopping = False

    def write(self, data: Any) -> int:
        count = super().write(data)
        self.written += count
        if self.written - self.flushed >= WRITEBACK_BYTES:
            if self.flusher is None:
                self.flusher = threading.Thread(
                    target=self._flush_to_disk, name="taskcli-writeback", daemon=True
                )
                self.flusher.start()
            self.wake.set()
        return count

    def _flush_to_disk(self) -> None:
        while True:
            self.wake.wait()
            self.wake.clear()
            if self.stopping:
                return
            written = self.written
            with contextlib.suppress(OSError):  # the final fsync reports any real failure
                _fdatasync(self.fileno())
            self.flushed = written

    def stop_flushing(self) -> None:
        """End the flushing thread; the file must not be closed while it runs."""
        if self.flusher is not None:
            self.stopping = True
            self.wake.set()
            self.flusher.join()
