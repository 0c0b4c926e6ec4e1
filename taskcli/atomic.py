"""Writing output files so that a failure never leaves half a file or destroys an old one.

The data goes to a temporary file in the destination's folder and is renamed over the
destination only after it was written completely and flushed to disk; on any error, Ctrl-C
included, the temporary file is removed and the destination is as it was.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


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
        with os.fdopen(fd, "wb") as raw:
            if compress:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:
                    yield zipped  # type: ignore[misc]
            else:
                yield raw
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
