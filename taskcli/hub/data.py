"""Where the rows of one Hub dataset split come from: a local copy first, else the Hub.

A local copy is a folder laid out as ``hf download REPO --repo-type dataset --local-dir DIR/REPO``
leaves it::

    DIR/allenai/ai2_arc/README.md                              # YAML front matter with `configs:`
    DIR/allenai/ai2_arc/ARC-Easy/test-00000-of-00001.parquet

or as nanochat's own task cache (``$NANOCHAT_BASE_DIR/task_data``, nanochat commit 92d63d4)
leaves it: one folder per split, the Hub's parquet export of it in numbered shards, and a
``manifest.json`` listing them, written last::

    DIR/allenai--ai2_arc/ARC-Easy/test/00000.parquet
    DIR/allenai--ai2_arc/ARC-Easy/test/manifest.json           # ["00000.parquet"]

Its parquet files are read with Arrow directly, one row group at a time and only the row groups
asked for: nothing is copied into a cache, and showing one example decodes one row group. They
are not memory-mapped: parquet pages are decompressed and decoded into new Arrow buffers anyway,
so a mapping only adds the compressed file to the resident memory (a pass over a 1.2 GB copy
peaked at 1.4 GB RSS mapped, 0.25 GB read). Without a local copy, `datasets.load_dataset` reads
the Hub or its cache (HF_HOME), whose uncompressed Arrow files are memory-mapped. Either way the
caller gets `Rows`: a row count, reads in bulk, and the files behind them for the manifest.

When the data cannot be had, `DataUnavailable` says so within seconds and says how to get it:
without network `load_dataset` would otherwise retry for ~23 s or hang, so the Hub endpoint is
probed first and, when it does not answer, the Hugging Face libraries are put in offline mode
(which still serves cached copies).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from taskcli.errors import DataUnavailable, InvalidData

DATA_DIR_ENV = "TASKCLI_DATA_DIR"
DEFAULT_ENDPOINT = "https://huggingface.co"
REACHABILITY_TIMEOUT = 3.0  # seconds to wait for a TCP connection to the Hub before going offline
_TRUE = {"1", "ON", "YES", "TRUE"}  # what the Hugging Face libraries accept as "set"
BLOCK_ROWS = 8192  # rows decoded at a time from a larger row group (`ParquetRows`)
STREAM_BUFFER_BYTES = 1 << 20  # read buffer while a large row group is streamed
FEW_ROWS = 16  # up to this many rows of one block are sliced out rather than taken
SCAN_ROWS = 2048  # rows of a block converted to Python at a time by `Rows.scan`
READ_AHEAD_BLOCKS = 2  # blocks `Rows.read_ahead` decodes before a scan starts
MAX_README_BYTES = 8 << 20  # a dataset card; the largest on the Hub are a few hundred kB
BLOCK_CACHE_BYTES = 256 << 20  # decoded parquet row groups kept for random reads
WHOLE_GROUP_BYTES = 64 << 20  # a row group up to this size (its footer says) is decoded whole
# for random reads, even when it holds more than BLOCK_ROWS rows


@dataclass(frozen=True)
class DataFile:
    """A file rows were read from, with its size; usable wherever a path is."""

    path: str
    size: int

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path


class Rows:
    """The rows of one split, stored in blocks (parquet row groups or Arrow record batches).

    `take` reads each block it needs once and converts only the rows asked for, so a handful of
    rows costs a handful of blocks, and a permuted pass over everything costs one pass.
    """

    def __init__(
        self, block_sizes: Sequence[int], files: list[DataFile], revision: str | None
    ) -> None:
        import numpy as np

        self.starts = np.concatenate(([0], np.cumsum(block_sizes, dtype=np.int64)))
        self.num_rows = int(self.starts[-1])
        self.files = files
        self.revision = revision
        self._ahead: dict[int, Any] = {}  # blocks being decoded for the next scan (`read_ahead`)

    def block(self, number: int) -> Any:
        """Block `number` as an Arrow table or record batch."""
        raise NotImplementedError

    def take(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """The rows at `indices` (any order, repeats allowed) as dicts, in that order."""
        import numpy as np

        wanted = np.asarray(indices, dtype=np.int64)
        if wanted.size == 0:
            return []
        if wanted.min() < 0 or wanted.max() >= self.num_rows:
            raise IndexError(f"row indices must be in 0..{self.num_rows - 1}")
        blocks = np.searchsorted(self.starts, wanted, side="right") - 1
        order = np.argsort(blocks, kind="stable")
        segments = np.split(order, np.flatnonzero(np.diff(blocks[order])) + 1)
        rows: list[Any] = [None] * len(wanted)
        for segment in segments:
            number = int(blocks[segment[0]])
            local = wanted[segment] - self.starts[number]
            block = self.block(number)
            if len(local) <= FEW_ROWS:  # slicing spares `show` the import of pyarrow.compute
                taken = [block.slice(i, 1).to_pylist()[0] for i in local.tolist()]
            else:
                taken = block.take(local).to_pylist()
            for position, row in zip(segment.tolist(), taken, strict=True):
                rows[position] = row
        return rows

    def row(self, index: int) -> dict[str, Any]:
        return self.take([index])[0]

    def read_block(self, number: int) -> Any:
        """Block `number` for one use, not kept: whole passes hold one block at a time."""
        return self.block(number)

    def read_ahead(self, count: int = READ_AHEAD_BLOCKS) -> None:
        """Start decoding the first `count` blocks in a thread, for a scan from the start that
        is about to begin: `scan_blocks` takes them up, so their decoding overlaps whatever the
        caller does first."""
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="taskcli-read-ahead")
        count = min(count, len(self.starts) - 1)
        self._ahead = {number: pool.submit(self.read_block, number) for number in range(count)}
        pool.shutdown(wait=False)  # the thread ends once the blocks are read

    def scan(self, indices: Sequence[int]) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(i, row indices[i])`` for every i, block by block in storage order (`scan_blocks`)."""
        for positions, rows in self.scan_blocks(indices, SCAN_ROWS):
            yield from zip(positions.tolist(), rows.to_pylist(), strict=True)

    def scan_blocks(
        self, indices: Sequence[int], chunk_rows: int | None = None
    ) -> Iterator[tuple[Any, Any]]:
        """``(positions, rows)``: Arrow rows ``indices[positions]``, in storage order.

        `positions` is a numpy array of places in `indices`; `rows` holds those rows in that
        order, at most `chunk_rows` at a time (default: all the block has). Each block is read
        once and let go, so a pass over every row of a split bigger than memory holds two blocks
        (where `take` keeps recent blocks, for random access). The next block is decoded in
        a thread while this one's rows are used: Arrow releases the GIL, so the decoding costs
        no time on a second core.
        """
        from concurrent.futures import ThreadPoolExecutor

        import numpy as np

        wanted = np.asarray(indices, dtype=np.int64)
        if wanted.size == 0:
            return
        if wanted.min() < 0 or wanted.max() >= self.num_rows:
            raise IndexError(f"row indices must be in 0..{self.num_rows - 1}")
        order = np.argsort(wanted, kind="stable")
        blocks = np.searchsorted(self.starts, wanted[order], side="right") - 1
        bounds = np.flatnonzero(np.diff(blocks)) + 1
        numbers = blocks[[0, *bounds.tolist()]].tolist()
        ahead, self._ahead = self._ahead, {}
        with ThreadPoolExecutor(max_workers=1) as reader:

            def read(number: int) -> Any:
                return ahead.pop(number, None) or reader.submit(self.read_block, number)

            upcoming = read(numbers[0])
            for step, segment in enumerate(np.split(order, bounds)):
                block = upcoming.result()
                if step + 1 < len(numbers):
                    upcoming = read(numbers[step + 1])
                size = chunk_rows or len(segment)
                for part in range(0, len(segment), size):
                    positions = segment[part : part + size]
                    local = wanted[positions] - self.starts[numbers[step]]
                    yield positions, _rows_at(block, local)


def _rows_at(block: Any, ascending: Any) -> Any:
    """The rows of `block` at `ascending` local indices: a zero-copy slice when they are one
    run (a whole pass), since `take` copies every buffer, lists of structs slowly. Indices may
    repeat (an entry repeated in a mixture), so a run is told by its steps, not its ends."""
    import numpy as np

    if (np.diff(ascending) == 1).all():
        return block.slice(int(ascending[0]), len(ascending))
    return block.take(ascending)


class ParquetRows(Rows):
    """Rows of local parquet files; only the footers are read until rows are asked for.

    A block is a row group, or a slice of at most `BLOCK_ROWS` rows of a larger one: a file
    written as one row group of 200,000 rows would otherwise be decoded whole (1.7 GB for an
    export that holds 200 MB with small groups). Slices come from a stream over the row group
    (`ParquetFile.iter_batches`), which decodes page by page; reading the slices in order, as a
    scan does, continues that stream instead of starting again. Random reads (`block`) decode
    a row group of up to `WHOLE_GROUP_BYTES` whole and keep it as one, whatever its rows: a
    stream would decode the slices before the one wanted first, and only one stream runs at a
    time.
    """

    def __init__(self, paths: Sequence[Path], revision: str | None = None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._files = []
        # (file number, row group, first row in the group, rows, rows in the group) per block
        self._blocks: list[tuple[int, int, int, int, int]] = []
        self._whole: list[bool] = []  # per block: `block` decodes its row group whole
        for path in paths:
            try:
                parquet = pq.ParquetFile(path)
                metadata = parquet.metadata
                groups = [metadata.row_group(g) for g in range(metadata.num_row_groups)]
            except (OSError, pa.ArrowException, ValueError) as error:
                raise InvalidData(f"{path} is not a readable parquet file: {error}") from None
            for group, info in enumerate(groups):
                size, whole = info.num_rows, info.total_byte_size <= WHOLE_GROUP_BYTES
                for first in range(0, size, BLOCK_ROWS):
                    count = min(BLOCK_ROWS, size - first)
                    self._whole.append(whole)
                    self._blocks.append((len(self._files), group, first, count, size))
            self._files.append(parquet)
        files = [DataFile(str(path), os.path.getsize(path)) for path in paths]
        super().__init__([block[3] for block in self._blocks], files, revision)
        self._read: OrderedDict[int, Any] = OrderedDict()
        self._reading: dict[int, Any] = {}  # Futures of blocks being decoded
        self._read_lock = threading.Lock()  # guards both
        self._handles = threading.local()  # each thread's own open files (`_file`)
        self._stream: tuple[int, int, int, Any] | None = None  # file, group, next row, batches
        self._stream_lock = threading.Lock()  # a read-ahead and a scan may read at once
        self._stream_files: dict[int, Any] = {}

    def block(self, number: int) -> Any:
        """Block `number`, kept among the most recently used while they fit in
        `BLOCK_CACHE_BYTES`: random reads all over a big split (`taskcli browse` scrolling a
        mixture) hold a bounded amount of memory, not every row group they ever touched.

        Threads may ask at once (`taskcli browse` reads rows in two): different blocks are
        decoded in parallel, and a block already being decoded is waited for, not decoded
        again."""
        _, _, first, count, _ = self._blocks[number]
        if not self._whole[number]:
            return self._unit(number, whole=False)
        table = self._unit(number - first // BLOCK_ROWS, whole=True)  # under its first block
        return table if table.num_rows == count else table.slice(first, count)

    def _unit(self, unit: int, whole: bool) -> Any:
        """Block `unit`, or its whole row group, from the cache or decoded now."""
        from concurrent.futures import Future

        import pyarrow as pa

        with self._read_lock:
            table = self._read.get(unit)
            if table is not None:
                self._read.move_to_end(unit)
                return table
            pending = self._reading.get(unit)
            mine = pending is None
            if pending is None:
                pending = self._reading[unit] = Future()
        if not mine:
            return pending.result()  # the decoding thread's block, or its error
        try:
            table = self._decode(unit, whole)
        except BaseException as error:
            with self._read_lock:
                del self._reading[unit]
            pending.set_exception(error)
            raise
        with self._read_lock:
            del self._reading[unit]
            self._read[unit] = table
            kept = sum(block.nbytes for block in self._read.values())
            while kept > BLOCK_CACHE_BYTES and len(self._read) > 1:
                _, dropped = self._read.popitem(last=False)
                kept -= dropped.nbytes
        pending.set_result(table)
        # Decoding leaves its scratch memory (and what the cache let go) with Arrow's
        # allocator, which keeps it for later: handed back now (a few ms), random reads hold
        # the cache and one decode, not every decode's peak (about 200 MB less for browse).
        pa.default_memory_pool().release_unused()
        return table

    def _file(self, file_number: int) -> Any:
        """This thread's handle on the file: one `ParquetFile` read by two threads at once
        fails, and separate handles decode in parallel (pyarrow releases the GIL), two row
        groups on two cores in about the time of one. The footer parsed at opening is shared."""
        import pyarrow.parquet as pq

        if threading.current_thread() is threading.main_thread():
            return self._files[file_number]
        handles = self._handles.__dict__.setdefault("files", {})
        parquet = handles.get(file_number)
        if parquet is None:
            opened = self._files[file_number]
            parquet = pq.ParquetFile(self.files[file_number].path, metadata=opened.metadata)
            handles[file_number] = parquet
        return parquet

    def read_block(self, number: int) -> Any:
        """The block, its strings checked to be UTF-8: a damaged file is `InvalidData` here,
        never a UnicodeDecodeError where its rows are used."""
        return self._decode(number, whole=False)

    def _decode(self, number: int, whole: bool) -> Any:
        """Block `number`, or (`whole`) all of its row group."""
        import pyarrow as pa

        file_number, group, first, count, size = self._blocks[number]
        try:
            if whole or count == size:
                block = self._file(file_number).read_row_group(group)
            else:
                block = self._slice(file_number, group, first, count)
            block.validate(full=True)
            return block
        except (OSError, pa.ArrowException, ValueError, StopIteration) as error:
            path = self.files[file_number].path
            reason = str(error) or "the row group holds fewer rows than its metadata says"
            raise InvalidData(f"cannot read row group {group} of {path}: {reason}") from None

    def _streaming(self, file_number: int) -> Any:
        """The file opened to read a row group in pieces: buffered, without the pre-buffering
        that would load the row group's column chunks whole (1.1 GB peak instead of 0.4 GB
        for a 200,000-row group)."""
        import pyarrow.parquet as pq

        parquet = self._stream_files.get(file_number)
        if parquet is None:
            path = self.files[file_number].path
            parquet = pq.ParquetFile(path, buffer_size=STREAM_BUFFER_BYTES, pre_buffer=False)
            self._stream_files[file_number] = parquet
        return parquet

    def _slice(self, file_number: int, group: int, first: int, count: int) -> Any:
        """Rows ``first:first+count`` of a row group, from the stream over it."""
        with self._stream_lock:
            stream = self._stream
            if stream is None or stream[:3] != (file_number, group, first):
                batches = self._streaming(file_number).iter_batches(
                    batch_size=BLOCK_ROWS, row_groups=[group], use_threads=False
                )
                for _ in range(first // BLOCK_ROWS):  # a jump back or ahead decodes from the start
                    next(batches)
                stream = (file_number, group, first, batches)
            batch = next(stream[3])
            if batch.num_rows != count:
                raise ValueError(f"a slice of {batch.num_rows} rows where {count} were expected")
            self._stream = (file_number, group, first + count, stream[3])
            return batch


class TableRows(Rows):
    """Rows of an Arrow table already open (the memory-mapped cache `datasets` loads)."""

    def __init__(self, table: Any, files: list[DataFile], revision: str | None = None) -> None:
        self._batches = [batch for batch in table.to_batches() if batch.num_rows]
        super().__init__([batch.num_rows for batch in self._batches], files, revision)

    def block(self, number: int) -> Any:
        return self._batches[number]


def open_rows(
    repo: str, config: str, split: str, data_dir: str | os.PathLike[str] | None = None
) -> Rows:
    """The rows of `split` of `config` of `repo`: from DIR/REPO when it exists, else the Hub.

    `data_dir` defaults to the TASKCLI_DATA_DIR environment variable.
    """
    if data_dir is None or str(data_dir) == "":
        data_dir = os.environ.get(DATA_DIR_ENV) or None
    folder = data_root(Path(data_dir), repo) if data_dir is not None else None
    if folder is not None and (folder / repo).is_dir():
        return local_rows(folder, repo, config, split)
    cached = nanochat_copy(Path(data_dir), repo) if data_dir is not None else None
    if cached is not None:
        return nanochat_rows(cached, config, split)
    missing = ""
    if folder is not None:
        slug = repo.replace("/", "--")
        missing = (
            f"there is no local copy at {folder / repo}{_misplaced(folder)} (nor nanochat's "
            f"{Path(data_dir) / slug}), and "
        )
    return hub_rows(repo, config, split, folder, missing)


def data_root(folder: Path, repo: str) -> Path:
    """The data dir `folder` stands for: itself, or, when it is the dataset's own folder
    (``DIR/openai/gsm8k``) or its organisation's (``DIR/openai``), the DIR above them. People
    point at the folder they downloaded into; the layout wants the one above."""
    org, _, name = repo.rpartition("/")
    if (folder / repo).is_dir():
        return folder
    if folder.name == name and folder.parent.name == org and folder.is_dir():
        return folder.parent.parent
    if org and folder.name == org and (folder / name).is_dir():
        return folder.parent
    return folder


def _misplaced(folder: Path) -> str:
    """A note when `folder` looks like one dataset's folder rather than a data dir."""
    if (folder / "README.md").is_file() or any(folder.glob("*/*.parquet")):
        return (
            f" ({folder} looks like a dataset's own folder; the data dir is the folder that "
            "holds ORG/NAME folders)"
        )
    return ""


# --- local copies ------------------------------------------------------------------------------


def local_rows(data_dir: Path, repo: str, config: str, split: str) -> ParquetRows:
    repo_dir = data_dir / repo
    patterns = split_patterns(repo_dir, config, split)
    paths = matching_files(repo_dir, patterns)
    if not paths:
        raise DataUnavailable(
            f"{repo_dir} has no data files for subset {config!r}, split {split!r} "
            f"(looked for {', '.join(patterns) or 'an entry in its README'}).",
            hint=how_to_get(repo, data_dir),
            params=("data_dir",),
        )
    return ParquetRows(paths, local_revision(repo_dir, paths))


def split_patterns(repo_dir: Path, config: str, split: str) -> list[str]:
    """The file patterns of one split: from the README's `configs:` block, else the usual layout."""
    configs = readme_configs(repo_dir / "README.md")
    if config in configs:
        return configs[config].get(split, [])
    return [f"{config}/{split}-*.parquet", f"data/{split}-*.parquet"]


def matching_files(repo_dir: Path, patterns: Sequence[str]) -> list[Path]:
    """The files the first pattern with any matches matches, sorted (shard order)."""
    for pattern in patterns:
        found = sorted(path for path in repo_dir.glob(pattern) if path.is_file())
        if found:
            return found
    return []


def readme_configs(readme: Path) -> dict[str, dict[str, list[str]]]:
    """``{config: {split: [patterns]}}`` from a dataset card's YAML front matter.

    A config's ``data_files`` is a pattern, a list of patterns (both meaning split "train"), a
    list of ``{split, path}`` entries whose path is a pattern or a list, or a split -> path map.
    The card comes with the download, so it is read as untrusted: its size capped, its YAML
    read by `taskcli.files.safe_yaml`, every pattern kept inside the dataset's folder; anything
    malformed is `InvalidData` naming the file.
    """
    try:
        with readme.open("rb") as file:
            data = file.read(MAX_README_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise InvalidData(f"{readme}: cannot be read ({error.strerror}).") from None
    if len(data) > MAX_README_BYTES:
        raise InvalidData(f"{readme}: larger than {MAX_README_BYTES:,} bytes; not a dataset card.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidData(
            f"{readme}: not UTF-8 text ({error.reason} at byte {error.start})."
        ) from None
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    import yaml

    from taskcli.files import safe_yaml

    try:
        front = safe_yaml.load(text[3 : end if end != -1 else len(text)]) or {}
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{readme}:{mark.line + 1}:{mark.column + 1}" if mark else str(readme)
        reason = " ".join(part for part in (error.context, error.problem) if part)
        raise InvalidData(f"{where}: its YAML front matter does not parse: {reason}") from None
    except yaml.YAMLError as error:
        raise InvalidData(f"{readme}: its YAML front matter does not parse: {error}") from None
    entries = front.get("configs") if isinstance(front, dict) else None
    configs: dict[str, dict[str, list[str]]] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            name = str(entry.get("config_name", "default"))
            try:
                configs[name] = _patterns_by_split(entry.get("data_files"))
            except ValueError as error:
                raise InvalidData(f"{readme}: config {name!r}: {error}") from None
    return configs


def _patterns_by_split(data_files: Any) -> dict[str, list[str]]:
    def as_list(paths: Any) -> list[str]:
        if paths is None:
            return []
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ValueError(f"data_files must be paths (text), got {paths!r:.60}")
        return [_inside(p) for p in paths]

    if isinstance(data_files, dict):
        return {str(split): as_list(paths) for split, paths in data_files.items()}
    if data_files is None:
        return {}
    if isinstance(data_files, str) or (
        isinstance(data_files, list) and all(isinstance(p, str) for p in data_files)
    ):
        return {"train": as_list(data_files)}
    if not isinstance(data_files, list):
        raise ValueError(f"data_files must be a path, a list or a mapping, got {data_files!r:.60}")
    by_split: dict[str, list[str]] = {}
    for entry in data_files:
        if isinstance(entry, dict) and "path" in entry:
            by_split.setdefault(str(entry.get("split", "train")), []).extend(as_list(entry["path"]))
    return by_split


def _inside(pattern: str) -> str:
    """`pattern`, if it can only match files inside the dataset's folder."""
    parts = PurePosixPath(pattern.replace("\\", "/")).parts
    if not pattern or pattern.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
        raise ValueError(f"data_files path {pattern!r} leads outside the dataset's folder")
    return pattern


def local_revision(repo_dir: Path, paths: Sequence[Path]) -> str | None:
    """The Hub commit the files were downloaded at, from the notes `hf download` leaves."""
    notes = repo_dir / ".cache" / "huggingface" / "download"
    revisions = set()
    for path in paths:
        note = notes / (path.relative_to(repo_dir).as_posix() + ".metadata")
        try:
            revisions.add(note.read_text(encoding="utf-8").split("\n", 1)[0].strip())
        except OSError:
            continue
    return revisions.pop() if len(revisions) == 1 else None


# --- nanochat's task cache ---------------------------------------------------------------------

NANOCHAT_MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 1 << 20  # a list of shard names; nanochat's hold a few


def nanochat_copy(folder: Path, repo: str) -> Path | None:
    """The folder nanochat's task cache keeps `repo` in (``OWNER--NAME``), under `folder` or
    under its ``task_data`` (a user may point at ``$NANOCHAT_BASE_DIR`` itself), or None."""
    slug = repo.replace("/", "--")
    for candidate in (folder / slug, folder / "task_data" / slug):
        if candidate.is_dir():
            return candidate
    return None


def nanochat_rows(repo_dir: Path, config: str, split: str) -> ParquetRows:
    """The rows of one split from nanochat's task cache: the shards its ``manifest.json`` lists,
    in that order (nanochat concatenates them so). nanochat writes the manifest after the last
    shard, so a split folder without one is a download that did not finish."""
    split_dir = repo_dir / config / split
    if not split_dir.is_dir():
        raise DataUnavailable(
            f"{repo_dir} (nanochat's task cache) has no copy of subset {config!r}, split "
            f"{split!r}: nanochat downloads only the splits its scripts read.",
            hint="use a data dir that has it (an `hf download` copy), or run without --data-dir "
            "to read the Hugging Face Hub.",
            params=("data_dir",),
        )
    manifest = split_dir / NANOCHAT_MANIFEST
    if not manifest.is_file():
        raise DataUnavailable(
            f"{split_dir} has no {NANOCHAT_MANIFEST}: nanochat writes it after the last shard, "
            "so this copy is incomplete (its download was interrupted).",
            hint="run the nanochat script that reads it again to finish the download, or delete "
            f"{split_dir} and download it again.",
            params=("data_dir",),
        )
    names = _manifest_names(manifest)
    paths = [split_dir / name for name in names]
    missing = [name for name, path in zip(names, paths, strict=True) if not path.is_file()]
    if missing:
        raise DataUnavailable(
            f"{manifest} lists {', '.join(missing[:3])}"
            f"{f' and {len(missing) - 3} more' if len(missing) > 3 else ''}, which "
            f"{'is' if len(missing) == 1 else 'are'} not there: the copy is incomplete.",
            hint=f"delete {split_dir} and let nanochat download it again.",
            params=("data_dir",),
        )
    return ParquetRows(paths)


def _manifest_names(manifest: Path) -> list[str]:
    """The shard names a nanochat manifest lists, read as untrusted: a JSON list of plain
    ``.parquet`` file names in the same folder, at most `MAX_MANIFEST_BYTES`."""
    import json

    try:
        with manifest.open("rb") as file:
            data = file.read(MAX_MANIFEST_BYTES + 1)
    except OSError as error:
        raise InvalidData(f"{manifest}: cannot be read ({error.strerror}).") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise InvalidData(f"{manifest}: larger than {MAX_MANIFEST_BYTES:,} bytes; not a manifest.")
    try:
        names = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidData(f"{manifest}: not a JSON list of shard names ({error}).") from None
    if not isinstance(names, list) or not names:
        raise InvalidData(f"{manifest}: expected a non-empty JSON list of shard names.")
    for name in names:
        plain = isinstance(name, str) and name == Path(name).name and name not in ("", ".", "..")
        if not plain or not name.endswith(".parquet") or "\\" in name:
            raise InvalidData(
                f"{manifest}: {name!r:.80} is not a parquet file name in the manifest's folder."
            )
    return names


# --- the Hub -----------------------------------------------------------------------------------


def hub_rows(
    repo: str, config: str, split: str, data_dir: Path | None = None, missing: str = ""
) -> TableRows:
    """The rows through `datasets.load_dataset`, offline at once when the Hub does not answer."""
    endpoint = os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    variable = offline_variable()
    if variable is not None:
        why = f"offline mode is on ({variable} is set) and it is not in the Hugging Face cache"
    elif not hub_reachable(endpoint):
        use_offline_mode()
        why = f"the Hugging Face Hub ({endpoint}) is unreachable and it is not in its cache"
    else:
        why = "loading it from the Hugging Face Hub failed"

    import datasets

    try:
        dataset = datasets.load_dataset(repo, config, split=split)
    except Exception as error:
        # Offline, `datasets` says it cannot reach the Hub: `why` already says so, better.
        if not isinstance(error, ConnectionError):
            first_line = (str(error).strip().splitlines() or [""])[0]
            why += f" ({type(error).__name__}: {first_line})"
        raise DataUnavailable(
            f"dataset {repo} (subset {config!r}, split {split!r}) is not available: {missing}"
            f"{why}.",
            hint=how_to_get(repo, data_dir),
            params=("data_dir",),
        ) from None
    files = [
        DataFile(entry["filename"], os.path.getsize(entry["filename"]))
        for entry in dataset.cache_files
    ]
    folder = Path(files[0].path).parent.name if files else ""
    revision = folder if re.fullmatch(r"[0-9a-f]{40}", folder) else None
    return TableRows(dataset.data.table, files, revision)


def how_to_get(repo: str, data_dir: Path | None) -> str:
    """The commands that make `repo` available without network."""
    folder = data_dir if data_dir is not None else Path("DIR")
    return (
        f"on a machine with network, run `hf download {repo} --repo-type dataset "
        f"--local-dir {folder / repo}`, then use {folder} as the data dir (or set "
        f"{DATA_DIR_ENV}); or run again with network access."
    )


OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_set_here: set[str] = set()  # the offline variables `use_offline_mode` set, not the user


def offline_variable() -> str | None:
    """The offline variable the user set (not this process, after finding the Hub
    unreachable), or None: messages name only what the user did."""
    return next(
        (
            name
            for name in OFFLINE_VARIABLES
            if name not in _set_here and (os.environ.get(name) or "").strip().upper() in _TRUE
        ),
        None,
    )


def offline_requested() -> bool:
    """Whether the user put the Hugging Face libraries in offline mode."""
    return offline_variable() is not None


@cache
def hub_reachable(endpoint: str = DEFAULT_ENDPOINT, timeout: float = REACHABILITY_TIMEOUT) -> bool:
    """Whether a TCP connection to the endpoint (or the proxy in front of it) opens in time.

    Name resolution can hang as long as a connection, so the whole attempt runs in a thread and
    is abandoned after `timeout` seconds.
    """
    import socket
    import threading
    import urllib.parse
    import urllib.request

    url = urllib.parse.urlsplit(endpoint)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        proxy_url = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = proxy_url.hostname or "", proxy_url.port or 80
    outcome: list[bool] = []
    finished = threading.Event()

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(True)
        except OSError:
            outcome.append(False)
        finished.set()

    threading.Thread(target=connect, daemon=True).start()
    return finished.wait(timeout) and outcome[0]


def use_offline_mode() -> None:
    """Offline mode for this process, in modules already imported too.

    `huggingface_hub.constants` and `datasets.config` read HF_HUB_OFFLINE / HF_DATASETS_OFFLINE
    once, at import; setting the environment alone would miss modules imported before.
    """
    for name in OFFLINE_VARIABLES:
        if (os.environ.get(name) or "").strip().upper() not in _TRUE:
            os.environ[name] = "1"
            _set_here.add(name)
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    config = sys.modules.get("datasets.config")
    if config is not None:
        config.HF_HUB_OFFLINE = True
        config.HF_DATASETS_OFFLINE = True
