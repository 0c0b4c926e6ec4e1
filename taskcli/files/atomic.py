"""Writing output files so that a failure never leaves half a file or destroys anything.

A regular file (or a name not taken yet) is written to a temporary file in the destination's
folder and renamed over it only after it was written completely and flushed to disk; on any
error, Ctrl-C included, the temporary file is removed and the destination is as it was. A
symlink is followed: its target is replaced, the link stays.

A destination that exists and is not a regular file (a device such as ``/dev/null``, a FIFO, a
terminal, ``/dev/stdout``) is written in place: no temporary file, no rename. Renaming over it
would replace the device node itself (as root, ``/dev/null`` would become a regular file for the
whole machine).

Temporary names are recognisable: ``.NAME.taskcli-XXXXXXXX.tmp`` for a file being written and
``.NAME.taskcli-scratch-XXXXXXXX.tmp`` for an export's scratch folder, both beside NAME. The
process writing one holds a lock on it; a run killed with SIGKILL cannot remove them, so the next
run to the same output removes those nobody holds (`remove_stale`).

Flushing a large file to disk takes seconds (2.5 s for a 1.7 GB export here), so a thread
starts flushing each time another `WRITEBACK_BYTES` were written, while the writing goes on;
the final fsync then finds little left to do.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gzip
import io
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from taskcli.errors import TaskcliError, UsageError

WRITEBACK_BYTES = 128 << 20
BUFFER_BYTES = 1 << 20
TEMP_TAG = ".taskcli-"  # what every temporary name holds after the output's name
_fdatasync = getattr(os, "fdatasync", os.fsync)  # macOS has only fsync


class OutputError(TaskcliError):
    """An output could not be written (full disk, read-only filesystem, no permission)."""


def is_special(path: str | os.PathLike[str]) -> bool:
    """Whether `path` exists and is not a regular file (following symlinks): written in place."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def check_output(
    path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = (), what: str = ""
) -> None:
    """Usage errors an output can have, found before anything is read or written: a folder, a
    missing folder, or the same file as one of `inputs` (``-`` is standard input).

    `what` names the option in messages (``--rejects``); by default the path alone.
    """
    name = f"{what} {os.fspath(path)}" if what else os.fspath(path)
    if os.path.isdir(path):
        raise UsageError(f"{name} is a folder; give a file name.")
    if is_special(path):
        return  # a device or a FIFO: written in place, never replaced
    real = os.path.realpath(path)
    if not os.path.isdir(os.path.dirname(real)):
        raise UsageError(f"{name}: the folder {os.path.dirname(real)} does not exist.")
    try:
        mine = os.stat(real)
    except OSError:
        mine = None
    for source in inputs:
        source = os.fspath(source)
        try:
            theirs = os.fstat(0) if source == "-" else os.stat(source)
        except OSError:
            theirs = None
        same_inode = (
            mine is not None
            and theirs is not None
            and (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)
        )
        if same_inode or (source != "-" and os.path.realpath(source) == real):
            shown = "standard input" if source == "-" else source
            raise UsageError(
                f"{name} is also an input (the same file as {shown}); "
                "an input is never overwritten: write to another file."
            )


class PlannedOutputs:
    """The files a command is about to write, as they are before it starts, so that a command
    stopped part-way (Ctrl-C) can say what it left: since every file is staged, nothing, and
    the old files as they were; only standard output, a device or a FIFO, written in place,
    can hold part of the output. ``-`` is standard output."""

    def __init__(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        self.before = [(os.fspath(path), _identity(path)) for path in paths]

    def left(self) -> str:
        """What the outputs are now, in a sentence: ``nothing written, the old train.jsonl is
        unchanged``; a file finished before the stop is named as written."""
        unchanged, finished, partial = [], [], []
        for path, before in self.before:
            if path == "-" or is_special(path):
                partial.append("standard output" if path == "-" else path)
                continue
            now = _identity(path)
            if now is not None:
                (unchanged if now == before else finished).append(path)
        parts = []
        if finished:
            parts.append(f"{_listed(finished)} {'was' if len(finished) == 1 else 'were'} written")
        if partial:  # written in place as the rows come: some may have been
            parts.append(f"{_listed(partial)} may hold part of the output")
        parts = parts or ["nothing written"]
        if unchanged:
            parts.append(
                f"the old {_listed(unchanged)} {'is' if len(unchanged) == 1 else 'are'} unchanged"
            )
        return ", ".join(parts)


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _identity(path: str | os.PathLike[str]) -> tuple[int, int, int, int] | None:
    """What tells one version of a file from another: device, inode, size, modification time."""
    if os.fspath(path) == "-":
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


class StagedOutput:
    """One output being written: a temporary file renamed over the destination by `commit`, or,
    for a device or FIFO, the destination itself written in place.

    `file` is what to write to (gzip-compressed for ``.gz``); `path` the file that will hold the
    result (a symlink followed); `attach` adds a companion file (a manifest) committed with it.
    """

    def __init__(self, path: str | os.PathLike[str], compress: bool | None = None) -> None:
        requested = Path(path)
        if compress is None:
            compress = requested.suffix == ".gz"
        self.in_place = is_special(requested)
        self.temp: Path | None = None
        self.companions: list[StagedOutput] = []
        if self.in_place:
            self.path = requested
            fd = _opened(lambda: os.open(requested, os.O_WRONLY | os.O_NOCTTY), requested)
        else:
            self.path = Path(os.path.realpath(requested))
            remove_stale(self.path)
            fd, name = _opened(
                lambda: tempfile.mkstemp(
                    prefix=f".{self.path.name}{TEMP_TAG}", suffix=".tmp", dir=self.path.parent
                ),
                self.path,
            )
            self.temp = Path(name)
        try:
            if self.temp is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours alone: not stale
            self.raw = _FlushingFile(fd, self.path, sync=not self.in_place)
        except BaseException:  # Ctrl-C right after the file was made, say
            os.close(fd)
            if self.temp is not None:
                self.temp.unlink(missing_ok=True)
            raise
        self.file: BinaryIO = self.raw
        if compress:  # reproducible: no name or timestamp in the gzip header
            self.file = gzip.GzipFile(filename="", mode="wb", fileobj=self.raw, mtime=0)  # type: ignore[assignment]

    @property
    def size(self) -> int:
        """Bytes written to the destination so far (compressed, for ``.gz``)."""
        return self.raw.written

    def finish(self) -> None:
        """Write out everything buffered and, for a temporary file, flush it to disk; after
        this `temp` holds the complete content (a checksum may read it)."""
        try:
            if self.file is not self.raw:
                self.file.close()
            self.raw.stop_flushing()
            self.raw.flush()
            if self.temp is not None:
                os.fsync(self.raw.fileno())
                os.fchmod(self.raw.fileno(), 0o666 & ~_umask())
        except OSError as error:
            raise _write_error(self.path, error) from None

    def attach(self, path: str | os.PathLike[str], data: bytes) -> None:
        """Stage `data` for `path`, to be committed with this output (after it) or not at all."""
        companion = StagedOutput(path, compress=False)
        self.companions.append(companion)
        companion.file.write(data)
        companion.finish()

    def commit(self) -> None:
        """Put the output and its companions in place. An old companion is removed before the
        output is replaced, so even a crash between the renames never leaves a manifest that
        describes another file beside the output."""
        try:
            if self.temp is not None:
                for companion in self.companions:
                    if companion.temp is not None:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(companion.path)
                os.replace(self.temp, self.path)
            for companion in self.companions:
                companion.commit()
        except OSError as error:
            self.discard()
            raise _write_error(self.path, error) from None
        self.raw.close()

    def discard(self) -> None:
        """Remove the temporary files; the destination stays as it was."""
        for staged in (self, *self.companions):
            staged.raw.stop_flushing()
            with contextlib.suppress(OSError, ValueError):
                staged.raw.close()
            if staged.temp is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(staged.temp)


@contextlib.contextmanager
def staged_output(
    path: str | os.PathLike[str], *, compress: bool | None = None
) -> Iterator[StagedOutput]:
    """A `StagedOutput` committed if the block finishes without error, discarded otherwise."""
    staged = StagedOutput(path, compress)
    try:
        yield staged
        staged.finish()
        staged.commit()
    except BaseException:
        staged.discard()
        raise


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str], *, compress: bool | None = None
) -> Iterator[BinaryIO]:
    """A binary file object that becomes `path` only if the block finishes without error.

    A `.gz` suffix (or ``compress=True``) gzip-compresses the content, reproducibly (no name or
    timestamp in the gzip header), so two identical exports stay byte-identical. A write that
    fails (full disk, read-only filesystem) is an `OutputError` naming `path`.
    """
    with staged_output(path, compress=compress) as staged:
        yield staged.file


@contextlib.contextmanager
def scratch_folder(output: str | os.PathLike[str] | None) -> Iterator[Path]:
    """A locked temporary folder beside `output` (the system's temporary folder for None or
    a device), removed however the block exits; a killed run's is removed by the next run."""
    if output is None or is_special(output):
        with tempfile.TemporaryDirectory(prefix="taskcli-scratch-") as folder:
            yield Path(folder)
        return
    target = Path(os.path.realpath(output))
    remove_stale(target)
    folder = _opened(
        lambda: tempfile.mkdtemp(
            prefix=f".{target.name}{TEMP_TAG}scratch-", suffix=".tmp", dir=target.parent
        ),
        target,
    )
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            yield Path(folder)
        finally:
            os.close(fd)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale(output: Path) -> None:
    """Remove the temporary files and folders a killed run left for `output`: those with its
    recognisable names that no live process holds locked."""
    prefix = f".{output.name}{TEMP_TAG}"
    try:
        entries = [e for e in os.scandir(output.parent) if e.name.startswith(prefix)]
    except OSError:
        return
    for entry in entries:
        if not entry.name.endswith(".tmp"):
            continue
        is_dir = entry.is_dir(follow_symlinks=False)
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | (os.O_DIRECTORY * is_dir))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # a run in progress holds it
            continue
        try:
            if is_dir:
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass
        finally:
            os.close(fd)


def _opened(opener: Any, path: Path) -> Any:
    """`opener()`, with an OSError (read-only filesystem, no permission, full disk) reported."""
    try:
        return opener()
    except OSError as error:
        raise _write_error(path, error) from None


def _write_error(path: Path, error: OSError) -> TaskcliError:
    if error.errno == errno.EISDIR:
        return UsageError(f"{path} is a folder; give a file name.")
    return OutputError(f"cannot write {path}: {error.strerror or error}.")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _FlushingFile(io.BufferedWriter):
    """A file that, once `WRITEBACK_BYTES` more were written, has a thread flush it to disk
    (unless `sync` is off: a device or a pipe has no disk). A failed write is an OutputError."""

    def __init__(self, fd: int, path: Path, sync: bool = True) -> None:
        super().__init__(io.FileIO(fd, "wb"), BUFFER_BYTES)
        self.path, self.sync = path, sync
        self.written = self.flushed = 0
        self.flusher: threading.Thread | None = None
        self.wake = threading.Event()
        self.stopping = False

    def write(self, data: Any) -> int:
        try:
            count = super().write(data)
        except OSError as error:
            raise _write_error(self.path, error) from None
        self.written += count
        if self.sync and self.written - self.flushed >= WRITEBACK_BYTES:
            if self.flusher is None:
                self.flusher = threading.Thread(
                    target=self._flush_to_disk, name="taskcli-writeback", daemon=True
                )
                self.flusher.start()
            self.wake.set()
        return count

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as error:
            raise _write_error(self.path, error) from None

    def _flush_to_disk(self) -> None:
        while True:
            self.wake.wait()
            self.wake.clear()
            if self.stopping:
                return
            written = self.written
            with contextlib.suppress(OSError, ValueError):  # the final fsync reports failures
                _fdatasync(self.fileno())
            self.flushed = written

    def stop_flushing(self) -> None:
        """End the flushing thread; the file must not be closed while it runs."""
        if self.flusher is not None:
            self.stopping = True
            self.wake.set()
            self.flusher.join()
            self.flusher = None
