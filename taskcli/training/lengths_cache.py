"""Rendered lengths kept between runs, so that packing with other sizes renders nothing again.

`taskcli pack` (and the ``packed`` export) needs, for each conversation of a source, its token
count after the render cut and its trained tokens. Rendering them is nearly all of its time, and
packing with another T, B, W or S needs the very same numbers, so they are kept under
taskcli's cache folder (``$TASKCLI_CACHE_DIR``, else ``~/.cache/taskcli``), in ``lengths/``, one
file per key. The key (built by the caller) holds everything the numbers depend on: the source,
the identity of its data files, the tokenizer, the render cut and taskcli's version.

- A file is written under a temporary name and renamed into place, so a reader sees a whole
  entry or none; one is used only when the key stored in it matches and its numbers are sane
  (anything else, a damaged or foreign file say, is a miss).
- A run that renders a missing entry holds a lock on its key (`filelock`): a second run of the
  same source waits for it and reads what it wrote, instead of rendering it again.
- The folder holds at most `MAX_BYTES`: after each write, the entries used longest ago (by
  modification time, which a hit refreshes) are removed with their locks, under a lock on the
  whole folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

MAGIC = b"taskcli lengths 1\n"
SUFFIX = ".lengths"
MAX_BYTES = 256 << 20  # about 32M conversations' numbers (8 bytes each)
_SIZE = struct.Struct("<Q")


def default_folder() -> Path:
    """Where the entries live: ``lengths/`` under taskcli's cache folder."""
    from taskcli.files.download import default_cache_dir

    return default_cache_dir() / "lengths"


class LengthsCache:
    """Lengths and trained counts (int32 each, one per conversation) by key, on disk."""

    def __init__(self, folder: Path | None = None, max_bytes: int = MAX_BYTES) -> None:
        self.folder = folder if folder is not None else default_folder()
        self.max_bytes = max_bytes

    def path(self, key: dict[str, Any]) -> Path:
        return self.folder / (_digest(key) + SUFFIX)

    def get(self, key: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
        """The numbers stored under `key`, or None when there are none (or none to trust)."""
        path = self.path(key)
        try:
            with path.open("rb") as file:
                found = _read(file, _key_bytes(key))
        except (OSError, ValueError):
            return None
        if found is not None:
            with contextlib.suppress(OSError):
                os.utime(path)  # used now: the last to be evicted
        return found

    @contextlib.contextmanager
    def lock(
        self, key: dict[str, Any], on_wait: Callable[[], None] | None = None
    ) -> Iterator[None]:
        """Hold `key`'s lock while its numbers are made; `on_wait` is called first if another
        run holds it."""
        from filelock import FileLock, Timeout

        self.folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.path(key)) + ".lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if on_wait is not None:
                on_wait()
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def put(self, key: dict[str, Any], lengths: np.ndarray, trained: np.ndarray) -> None:
        """Store the numbers under `key` (atomically), then keep the folder within its bound.
        Raises OSError when the folder cannot be written."""
        from taskcli.files.atomic import OutputError, staged_output

        self.folder.mkdir(parents=True, exist_ok=True)
        key_bytes = _key_bytes(key)
        lengths32 = np.ascontiguousarray(lengths, dtype="<i4")
        trained32 = np.ascontiguousarray(trained, dtype="<i4")
        path = self.path(key)
        try:
            with staged_output(path) as staged:
                staged.file.write(MAGIC + _SIZE.pack(len(key_bytes)) + key_bytes)
                staged.file.write(_SIZE.pack(len(lengths32)))
                staged.file.write(lengths32.tobytes())
                staged.file.write(trained32.tobytes())
        except OutputError as error:
            raise OSError(str(error)) from None
        self._evict(keep=path)

    def _evict(self, keep: Path) -> None:
        """Remove the entries used longest ago until the folder is within `max_bytes`."""
        from filelock import FileLock

        with FileLock(str(self.folder / ".evict.lock")):
            entries = []
            for path in self.folder.glob("*" + SUFFIX):
                with contextlib.suppress(OSError):
                    status = path.stat()
                    entries.append((status.st_mtime_ns, status.st_size, path))
            total = sum(size for _, size, _ in entries)
            for _, size, path in sorted(entries):
                if total <= self.max_bytes:
                    break
                if path == keep:
                    continue
                with contextlib.suppress(OSError):
                    path.unlink()
                    total -= size
                # Its lock goes too (at worst two runs then render one entry at once, each
                # writing it whole): lock files must not pile up for ever.
                with contextlib.suppress(OSError):
                    Path(str(path) + ".lock").unlink()


def _key_bytes(key: dict[str, Any]) -> bytes:
    return orjson.dumps(key, option=orjson.OPT_SORT_KEYS)


def _digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(_key_bytes(key)).hexdigest()


def _read(file: Any, key_bytes: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """An entry's numbers if it is whole, stored under `key_bytes` and sane; else None."""
    if file.read(len(MAGIC)) != MAGIC:
        return None
    (size,) = _SIZE.unpack(file.read(_SIZE.size))
    if size != len(key_bytes) or file.read(size) != key_bytes:
        return None
    (count,) = _SIZE.unpack(file.read(_SIZE.size))
    body = file.read(8 * count + 1)
    if len(body) != 8 * count:
        return None
    numbers = np.frombuffer(body, dtype="<i4").astype(np.int32)
    lengths, trained = numbers[:count], numbers[count:]
    if count and (lengths.min() < 0 or trained.min() < 0 or (trained > lengths).any()):
        return None
    return lengths, trained
