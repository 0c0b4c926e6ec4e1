"""Writing a plan's rows to a file or standard output, and the manifest that records it.

A file appears only once complete (`taskcli.files.atomic.staged_output`), together with its manifest
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
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from taskcli import __version__
from taskcli.errors import UsageError
from taskcli.export.formats import JSON_ARRAY, PARQUET, ExportFormat, choose_output, get_format
from taskcli.export.lines import EntryLines, Progress, Tally
from taskcli.export.order import scratch_buckets
from taskcli.export.tokens import EntryTokens, TokenSettings
from taskcli.files.atomic import (
    OutputError,
    check_output,
    is_special,
    scratch_folder,
    staged_output,
)
from taskcli.files.formats import Loss
from taskcli.mixing.plan import Plan, selected_rows
from taskcli.tasks.capabilities import ReadsAhead

if TYPE_CHECKING:
    from taskcli.export.packed import PackedRun


def write_rows(
    plan: Plan,
    rows: range,
    fmt: str,
    write: Callable[[bytes], Any],
    progress: Progress | None = None,
    scratch: str | os.PathLike[str] | None = None,
    digest: Any = None,
    on_phase: Callable[[str], None] | None = None,
    tokens: TokenSettings | None = None,
    tally: Tally | None = None,
) -> list[int]:
    """Write `rows` (positions in the final order) as JSON lines, or for the `tokens` format as
    token records (rendered with `tokens`); returns each entry's count.

    `digest` (a hashlib object), when given, is updated with every byte written; `tally`, when
    given, counts what the format could not say (`Tally`).

    Two passes: each entry's rows are read in the order cheapest for its task, checked,
    formatted and put in scratch files under `scratch` (`taskcli.export.lines`), then written in
    the final order (`taskcli.export.order`). Nothing is written before every row passed the
    conversation rules: the first that breaks them raises InvalidData, naming the entry and the
    row's index in its task.
    """
    export_format = get_format(fmt)
    if export_format.packs_rows:
        raise UsageError(
            "the packed format writes packed rows, not the plan's rows: use `export(..., "
            "packed=...)`."
        )
    if export_format.renders_tokens and tokens is None:
        raise UsageError(
            "the tokens format renders conversations with a tokenizer, and none was given.",
            hint="give --tokenizer SPEC (or set TASKCLI_TOKENIZER), e.g. tiktoken:cl100k_base.",
            params=("tokens",),
        )
    phase = on_phase or (lambda name: None)
    if len(rows) == plan.total and plan.tasks and isinstance(plan.tasks[0], ReadsAhead):
        plan.tasks[0].read_ahead()  # its first data is decoded while the order is shuffled
    phase("shuffling")
    owners, indices = plan.placement(rows)
    counts = [0] * len(plan.spec.entries)
    if not rows:
        return counts
    import numpy as np

    report = progress or (lambda count: None)
    tally = tally or Tally(Loss(fmt))
    # Millions of short-lived rows trigger full garbage collections; freezing what is alive now
    # (modules, the plan) spares each of them a walk over it, about a second per million rows.
    gc.freeze()
    try:
        with scratch_buckets(len(rows), scratch) as buckets:
            phase("converting")
            for number, (entry, task) in enumerate(zip(plan.spec.entries, plan.tasks, strict=True)):
                places = np.flatnonzero(owners == number)  # positions within `rows`
                counts[number] = len(places)
                if tokens is not None and export_format.renders_tokens:
                    made = EntryTokens(entry, task, tokens, buckets, report)
                else:
                    made = EntryLines(entry, task, export_format, buckets, report, tally)
                made.add(indices[places], places)
            phase("ordering")
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
    fmt: str | None = None,
    limit: int | None = None,
    shard: tuple[int, int] | None = None,
    progress: Progress | None = None,
    on_phase: Callable[[str], None] | None = None,
    tokens: TokenSettings | None = None,
    packed: PackedRun | None = None,
    loss: Loss | None = None,
) -> dict[str, Any] | None:
    """Write the plan's rows to `output` ("-" for stdout) and return the manifest written.

    The file's name says what to write (`taskcli.export.formats.choose_output`): JSON lines
    (``.jsonl``, ``.jsonl.gz`` compressed), one JSON array of the rows (``.json``) or Parquet
    with the format's columns (``.parquet``); another name needs `fmt`. `fmt` defaults to
    ``messages``. A file output appears only once complete, then its manifest. Standard output
    gets no manifest (None is returned). `progress` is called with counts of rows converted,
    `on_phase` with the name of each phase that has no rows to count (shuffling, ordering,
    flushing). The `tokens` format writes Parquet only, rendered with `tokens`; so does the
    `packed` format, which writes the rows of `packed` (the loader replayed over the same plan,
    as `taskcli pack` does, with the same cut) instead of the plan's rows, and counts its
    conversations placed as progress. The rows whose tool parts the format wrote as text are
    counted into `loss` (for the caller to say; `Loss.note`) and the manifest's
    ``tool_parts_as_text``.
    """
    export_format, kind = choose_output(os.fspath(output), fmt, stream=is_special(output))
    fmt = export_format.name
    tally = Tally(loss or Loss(fmt), set() if kind == PARQUET else None)
    rows = selected_rows(plan.total, limit, shard)
    if export_format.renders_tokens and kind != PARQUET:
        raise UsageError(
            f"the {fmt} format is written as Parquet only.",
            hint="name the output file .parquet, e.g. -o train.parquet.",
            params=("output",),
        )
    if export_format.packs_rows:
        if packed is None or tokens is None:
            raise UsageError(
                "the packed format needs the loader's run: a tokenizer, --max-seq-len and "
                "--device-batch-size."
            )
        if limit is not None or shard is not None:
            raise UsageError(
                "the packed format writes the loader's rows of the whole mixture: --limit and "
                "--shard do not apply.",
                params=("limit",) if limit is not None else ("shard",),
            )
    if os.fspath(output) == "-":
        _export_to_stdout(plan, rows, fmt, progress, on_phase, tally)
        return None
    check_output(output, export_inputs(plan), "output")
    try:
        if packed is not None and export_format.packs_rows:
            return _export_packed(plan, output, packed, tokens, progress, on_phase)
        return _export_to_file(
            plan,
            output,
            rows,
            export_format,
            kind,
            (limit, shard),
            progress,
            on_phase,
            tokens,
            tally,
        )
    except OSError as error:  # the scratch files: full disk, read-only filesystem
        raise OutputError(f"cannot write {output}: {error.strerror or error}.") from None


def _export_to_file(
    plan: Plan,
    output: str | os.PathLike[str],
    rows: range,
    export_format: ExportFormat,
    kind: str,
    selection: tuple[int | None, tuple[int, int] | None],
    progress: Progress | None,
    on_phase: Callable[[str], None] | None,
    tokens: TokenSettings | None,
    tally: Tally,
) -> dict[str, Any]:
    digest = hashlib.sha256()
    with staged_output(output, compress=kind == "jsonl.gz") as staged:
        sink = _columnar_sink(staged.file, export_format, kind, plan, tally)
        # Plain JSON lines are the file's bytes: hash them on the way; the others once written.
        on_the_way = sink is None and staged.file is staged.raw
        with scratch_folder(output) as scratch:
            written = write_rows(
                plan,
                rows,
                export_format.name,
                staged.file.write if sink is None else sink.write,
                progress,
                scratch=scratch,
                digest=digest if on_the_way else None,
                on_phase=on_phase,
                tokens=tokens,
                tally=tally,
            )
        if sink is not None:
            sink.close()
        if on_phase is not None:
            on_phase("flushing")
        staged.finish()
        sha256 = digest.hexdigest() if on_the_way else None
        if not on_the_way and staged.temp is not None:
            with staged.temp.open("rb") as finished:
                sha256 = hashlib.file_digest(finished, "sha256").hexdigest()
        limit, shard = selection
        manifest = _manifest(
            plan, staged.path, export_format.name, limit, shard, rows, written, staged.size, sha256
        )
        manifest["output"]["kind"] = kind
        manifest["tool_parts_as_text"] = tally.loss.rows
        if tokens is not None and export_format.renders_tokens:
            manifest["tokens"] = tokens.describe()
        if not staged.in_place:  # a device or a FIFO has no folder to put a manifest in
            data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n"
            staged.attach(manifest_path(staged.path), data)
    return manifest


def _export_packed(
    plan: Plan,
    output: str | os.PathLike[str],
    packed: PackedRun,
    tokens: TokenSettings | None,
    progress: Progress | None,
    on_phase: Callable[[str], None] | None,
) -> dict[str, Any]:
    """The `packed` format: the loader's rows as Parquet, and a manifest that records the
    loader followed, its sizes, where each rank's rows stop and why."""
    from taskcli.export.packed import PackedRows, write_packed
    from taskcli.training.packing import NANOCHAT_LOADER

    if tokens is None or tokens.max_tokens != packed.render_max_tokens:
        raise UsageError("the packed rows must be rendered with the cut they were packed with.")
    rows = PackedRows.of(packed)
    with staged_output(output, compress=False) as staged:
        with scratch_folder(output) as scratch:
            written = write_packed(
                packed, rows, staged.file, tokens, progress, scratch=scratch, on_phase=on_phase
            )
        if on_phase is not None:
            on_phase("flushing")
        staged.finish()
        sha256 = None
        if staged.temp is not None:
            with staged.temp.open("rb") as finished:
                sha256 = hashlib.file_digest(finished, "sha256").hexdigest()
        manifest = _manifest(
            plan, staged.path, "packed", None, None, range(plan.total), written, staged.size, sha256
        )
        settings, summary = packed.settings, packed.summary
        manifest["rows"] = rows.rows
        manifest["output"]["kind"] = PARQUET
        manifest["tokens"] = tokens.describe()
        manifest["packing"] = {
            "loader": NANOCHAT_LOADER,
            **settings.to_json(),
            "render_max_tokens": packed.render_max_tokens,
            "ends": summary.ends,
            "run_micro_batches": summary.run_micro_batches,
            "optimizer_steps": summary.optimizer_steps,
            "written_up_to": "last_step"
            if all(rank["up_to"] == "last_step" for rank in rows.ranks)
            else "starvation",
            "ranks": list(rows.ranks),
            "placements": rows.placements,
            "verdict": summary.verdict,
        }
        if not staged.in_place:
            data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n"
            staged.attach(manifest_path(staged.path), data)
    return manifest


def _columnar_sink(
    stream: BinaryIO, export_format: ExportFormat, kind: str, plan: Plan, tally: Tally
) -> Any:
    """What turns the lines into Parquet row groups or one JSON array; None for JSON lines."""
    if kind == JSON_ARRAY:
        from taskcli.export.jsonarray import JsonArraySink

        return JsonArraySink(stream)
    if export_format.renders_tokens:
        from taskcli.export.tokens import TokenParquet

        return TokenParquet(stream, plan.spec.entries)
    if kind == PARQUET:
        from taskcli.export.parquet import ParquetSink

        assert tally.fields is not None  # gathered for every Parquet output
        return ParquetSink(stream, export_format, tally.fields)
    return None


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


def _export_to_stdout(
    plan: Plan,
    rows: range,
    fmt: str,
    progress: Progress | None,
    on_phase: Callable[[str], None] | None,
    tally: Tally,
) -> None:
    stdout: BinaryIO = sys.stdout.buffer
    try:
        write_rows(plan, rows, fmt, stdout.write, progress, on_phase=on_phase, tally=tally)
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
