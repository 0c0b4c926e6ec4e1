"""Writing a plan's rows to a file or standard output, and the manifest that records it.

A file appears only once complete (`taskcli.atomic.staged_output`), together with its manifest
``OUT.manifest.json``: the resolved spec, the row counts, the data files and the output's sha256,
so "what exactly did my model train on?" has an answer. Both are staged before either is put in
place, so a failure leaves neither, and never a manifest describing another file. A device or a
FIFO (``-o /dev/null``) is written in place and gets no manifest; neither does standard output.
"""

from __future__ import annotations

import gc
import hashlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from taskcli import __version__
from taskcli.atomic import OutputError, check_output, is_special, scratch_folder, staged_output
from taskcli.export.formats import get_format
from taskcli.export.lines import Progress, add_entry
from taskcli.export.order import scratch_buckets
from taskcli.plan import Plan, selected_rows


def write_rows(
    plan: Plan,
    rows: range,
    fmt: str,
    write: Callable[[bytes], Any],
    progress: Progress | None = None,
    scratch: str | os.PathLike[str] | None = None,
    digest: Any = None,
) -> list[int]:
    """Write `rows` (positions in the final order) as JSON lines; returns each entry's count.

    `digest` (a hashlib object), when given, is updated with every byte written.

    Two passes: each entry's rows are read in the order cheapest for its task, checked,
    formatted and put in scratch files under `scratch` (`taskcli.export.lines`), then written in
    the final order (`taskcli.export.order`). Nothing is written before every row passed the
    conversation rules: the first that breaks them raises InvalidData, naming the entry and the
    row's index in its task.
    """
    export_format = get_format(fmt)
    if len(rows) == plan.total and plan.tasks:
        plan.tasks[0].read_ahead()  # its first data is decoded while the order is shuffled
    owners, indices = plan.placement(rows)
    counts = [0] * len(plan.spec.entries)
    if not rows:
        return counts
    import numpy as np

    report = progress or (lambda count: None)
    # Millions of short-lived rows trigger full garbage collections; freezing what is alive now
    # (modules, the plan) spares each of them a walk over it, about a second per million rows.
    gc.freeze()
    try:
        with scratch_buckets(len(rows), scratch) as buckets:
            for number, (entry, task) in enumerate(zip(plan.spec.entries, plan.tasks, strict=True)):
                places = np.flatnonzero(owners == number)  # positions within `rows`
                counts[number] = len(places)
                add_entry(entry, task, indices[places], places, export_format, buckets, report)
            buckets.write_in_order(write, digest)
    finally:
        gc.unfreeze()
    return counts


def manifest_path(output: str | os.PathLike[str]) -> Path:
    """Where the manifest of `output` goes: ``train.jsonl`` -> ``train.jsonl.manifest.json``."""
    output = Path(output)
    return output.with_name(output.name + ".manifest.json")


def export(
    plan: Plan,
    output: str | os.PathLike[str],
    *,
    fmt: str = "messages",
    limit: int | None = None,
    shard: tuple[int, int] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any] | None:
    """Write the plan's rows to `output` ("-" for stdout) and return the manifest written.

    A file output appears only once complete, then its manifest; a ``.gz`` suffix compresses.
    Standard output gets no manifest (None is returned).
    """
    get_format(fmt)
    rows = selected_rows(plan.total, limit, shard)
    if os.fspath(output) == "-":
        _export_to_stdout(plan, rows, fmt, progress)
        return None
    check_output(output, export_inputs(plan), "output")
    try:
        return _export_to_file(plan, output, rows, fmt, limit, shard, progress)
    except OSError as error:  # the scratch files: full disk, read-only filesystem
        raise OutputError(f"cannot write {output}: {error.strerror or error}.") from None


def _export_to_file(
    plan: Plan,
    output: str | os.PathLike[str],
    rows: range,
    fmt: str,
    limit: int | None,
    shard: tuple[int, int] | None,
    progress: Progress | None,
) -> dict[str, Any]:
    digest = hashlib.sha256()
    with staged_output(output) as staged:
        compressed = staged.file is not staged.raw
        with scratch_folder(output) as scratch:
            # Uncompressed, the bytes written are the file's bytes: hash them on the way.
            written = write_rows(
                plan,
                rows,
                fmt,
                staged.file.write,
                progress,
                scratch=scratch,
                digest=None if compressed else digest,
            )
        staged.finish()
        sha256 = digest.hexdigest()
        if staged.temp is not None and compressed:
            with staged.temp.open("rb") as finished:
                sha256 = hashlib.file_digest(finished, "sha256").hexdigest()
        elif compressed:
            sha256 = None  # written in place to a device: nothing to read back
        manifest = _manifest(
            plan, staged.path, fmt, limit, shard, rows, written, staged.size, sha256
        )
        if not staged.in_place:  # a device or a FIFO has no folder to put a manifest in
            data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n"
            staged.attach(manifest_path(staged.path), data)
    return manifest


def manifest_location(output: str | os.PathLike[str]) -> Path | None:
    """Where `export` put the manifest of `output`: beside the file a symlink points to, or
    nowhere for standard output and for a device or FIFO (written in place)."""
    if os.fspath(output) == "-" or is_special(output):
        return None
    return manifest_path(os.path.realpath(output))


def export_inputs(plan: Plan) -> list[str]:
    """The files an export reads: its spec, and the local files and parquet copies behind its
    tasks; none of them may be the output."""
    return [str(plan.spec.path), *(record["path"] for record in plan.data_files())]


def _export_to_stdout(plan: Plan, rows: range, fmt: str, progress: Progress | None) -> None:
    stdout: BinaryIO = sys.stdout.buffer
    try:
        write_rows(plan, rows, fmt, stdout.write, progress)
        stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (`| head`): that is its choice, not a failure.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())


def _manifest(
    plan: Plan,
    target: Path,
    fmt: str,
    limit: int | None,
    shard: tuple[int, int] | None,
    rows: range,
    written: list[int],
    size: int,
    digest: str | None,
) -> dict[str, Any]:
    spec = plan.spec
    entries = []
    for entry, count, in_file in zip(spec.entries, plan.entry_rows(), written, strict=True):
        entries.append(
            {"entry": entry.number, **entry.as_dict(), "rows": count, "written": in_file}
        )
    return {
        "taskcli_version": __version__,
        "spec": spec.as_dict(),
        "seed": spec.seed,
        "format": fmt,
        "limit": limit,
        "shard": None
        if shard is None
        else {"shard": shard[0], "of": shard[1], "start": rows.start, "stop": rows.stop},
        "entries": entries,
        "total": plan.total,
        "rows": len(rows),
        "data_files": plan.data_files(),
        "output": {"file": target.name, "bytes": size, "sha256": digest},
    }
