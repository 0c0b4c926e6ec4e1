"""`taskcli pack`: the rows nanochat's SFT loader feeds the model, from any target, before a GPU
hour is spent.

    from taskcli.pack import Measurement, pack
    from taskcli.targets import as_plan, open_target
    from taskcli.training.packing import PackSettings
    from taskcli.training.tokenizer import load_tokenizer

    plan = as_plan(open_target("examples/local-mixture.yaml"))
    measured = Measurement(plan, load_tokenizer("tiktoken:cl100k_base"), max_tokens=2048)
    measured.complete()                                  # renders what the cache lacks
    packed = pack(measured, PackSettings(max_seq_len=512, device_batch_size=4))
    packed.summary.verdict

Packing needs one number per conversation, its token count after the render cut, plus its
trained tokens for the figures. `Measurement` gets them per source (a spec entry's task, read
once however often the entry repeats): from the lengths cache
(`taskcli.training.lengths_cache`), else rendered in worker processes by
`taskcli.training.render.render_batches`, in the task's cheapest order, exactly as
``stats --tokenizer`` renders. They are then put in the mixture's order, and
`taskcli.training.packing` replays the loader over them. Ids are rendered again only for the
conversations of one row (`row_detail`) and for the ``packed`` export.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from taskcli import __version__
from taskcli.errors import InvalidData
from taskcli.mixing.plan import Plan
from taskcli.tasks.capabilities import DataFiles

if TYPE_CHECKING:
    from taskcli.mixing.spec import Entry
    from taskcli.tasks.common import Task
    from taskcli.training.lengths_cache import LengthsCache
    from taskcli.training.packing import PackRun, PackSettings, PackSummary
    from taskcli.training.tokenizer import Tokenizer
    from taskcli.training.tokens import Rendering

BUILTIN_TASK_MODULE = "taskcli.tasks."  # plugins' tasks may read anything: never cached


# --- where a mixture row comes from ------------------------------------------------------------


def mixture_rows(plan: Plan, rows: range) -> tuple[np.ndarray, np.ndarray]:
    """The spec entry of each mixture row in `rows`, and its example index in the entry's whole
    task: what every row of a packed run is traced back through."""
    return plan.placement(rows)


def row_origin(plan: Plan, entry: int, example: int) -> dict[str, Any]:
    """Where one mixture row comes from, as ``show --json`` and the `full` export format
    record it (task, subset, split, index, params), with its spec entry."""
    chosen = plan.spec.entries[entry]
    return {"entry": chosen.number, **chosen.origin(example)}


# --- lengths per source: cached or rendered ----------------------------------------------------


def source_key(
    entry: Entry, task: Task, tokenizer: Tokenizer, max_tokens: int
) -> dict[str, Any] | None:
    """What a source's lengths depend on, as a cache key; None when it cannot be told (a
    plugin's task, standard input, a FIFO, a tokenizer without a file to hash).

    The source as the entry asks for it (task, subset, split, parameters, slice), its data files
    (path, size, modification time) and Hub revision, the tokenizer (sha256 of its file, the
    chat token ids, and its chat template if it has one), the render cut, and taskcli's version
    (its render rules).
    """
    if not type(task).__module__.startswith(BUILTIN_TASK_MODULE) or tokenizer.sha256 is None:
        return None
    has_files = isinstance(task, DataFiles)
    paths = [os.fspath(path) for path in task.data_files] if has_files else []
    for param in type(task).params:
        value = entry.params.get(param.name)
        if param.is_path and isinstance(value, str) and not value.startswith(("http:", "https:")):
            paths.append(value)
    files = []
    for path in paths:
        try:
            status = os.stat(path)
        except OSError:
            return None
        if not os.path.isfile(path):
            return None  # standard input, a FIFO, a device: its content is not its name
        files.append([os.path.abspath(path), status.st_size, status.st_mtime_ns])
    source = entry.as_dict()
    del source["repeat"]
    return {
        "taskcli": __version__,
        "source": source,
        "files": files,
        "revision": task.revision if has_files else None,
        "tokenizer": {
            "sha256": tokenizer.sha256,
            "vocab_size": tokenizer.vocab_size,
            "special_ids": tokenizer.special_ids,
            # a chat template (its sha256 and mask rule) renders the same tokenizer differently
            **({"chat_template": tokenizer.template.describe()} if tokenizer.template else {}),
        },
        "max_tokens": max_tokens,
    }


@dataclass(frozen=True)
class CacheUse:
    """How a measurement got its sources' lengths."""

    enabled: bool
    from_cache: int
    rendered: int
    not_cacheable: int

    def describe(self) -> str:
        """One line for people."""
        if not self.enabled:
            return f"lengths cache off: {self.rendered} source(s) rendered"
        parts = [f"{self.from_cache} source(s) from the lengths cache", f"{self.rendered} rendered"]
        if self.not_cacheable:
            parts.append(f"{self.not_cacheable} not cacheable")
        return ", ".join(parts)


class Measurement:
    """Each source's lengths after the render cut and trained tokens, by position in its task.

    Built, it holds what the cache had; `pending_rows` is what `complete` still has to render.
    `cache=None` renders everything and stores nothing (``--no-cache``).
    """

    def __init__(
        self,
        plan: Plan,
        tokenizer: Tokenizer,
        max_tokens: int,
        cache: LengthsCache | None = None,
    ) -> None:
        self.plan, self.tokenizer, self.max_tokens, self.cache = plan, tokenizer, max_tokens, cache
        self.warnings: list[str] = []
        self.keys = [
            source_key(entry, task, tokenizer, max_tokens) if cache is not None else None
            for entry, task in zip(plan.spec.entries, plan.tasks, strict=True)
        ]
        self.found: list[tuple[np.ndarray, np.ndarray] | None] = [
            self._cached(number) for number in range(len(plan.tasks))
        ]
        self.from_cache = sum(found is not None for found in self.found)
        self.rendered = 0

    @property
    def pending_rows(self) -> int:
        """Conversations still to render."""
        return sum(
            len(task) for task, found in zip(self.plan.tasks, self.found, strict=True) if not found
        )

    def complete(
        self,
        on_progress: Callable[[int], None] | None = None,
        workers: int | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> None:
        """Render every source the cache lacked, in `workers` processes (default: one per
        core), and store it. A source another run is rendering is waited for (`on_wait` is
        told) and read from the cache. `on_progress` gets counts of conversations done."""
        from taskcli.training.render import default_workers

        report = on_progress or (lambda count: None)
        for number, task in enumerate(self.plan.tasks):
            if self.found[number] is not None:
                continue
            key = self.keys[number]
            if key is None or self.cache is None:
                self.found[number] = self._render(task, report, workers or default_workers())
                continue
            with self.cache.lock(key, on_wait):
                found = self._cached(number)
                if found is not None:
                    self.from_cache += 1
                    report(len(task))
                else:
                    found = self._render(task, report, workers or default_workers())
                    try:
                        self.cache.put(key, *found)
                    except OSError as error:
                        self.warnings.append(f"the lengths cache was not written: {error}")
                self.found[number] = found

    def cache_use(self) -> CacheUse:
        return CacheUse(
            enabled=self.cache is not None,
            from_cache=self.from_cache,
            rendered=self.rendered,
            not_cacheable=sum(key is None for key in self.keys) if self.cache is not None else 0,
        )

    def in_mixture_order(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(lengths, trained, entries, examples)``, one per mixture row, in the mixture's
        order: each row's numbers, its spec entry and its example index in the entry's task."""
        if any(found is None for found in self.found):
            raise ValueError("complete() the measurement first")
        plan = self.plan
        entries, examples = mixture_rows(plan, range(plan.total))
        lengths = np.zeros(plan.total, dtype=np.int64)
        trained = np.zeros(plan.total, dtype=np.int64)
        for number, (task, found) in enumerate(zip(plan.tasks, self.found, strict=True)):
            picked = np.flatnonzero(entries == number)
            span = task.physical_range()
            positions = (examples[picked] - span.start) // span.step
            lengths[picked] = found[0][positions]  # type: ignore[index]
            trained[picked] = found[1][positions]  # type: ignore[index]
        return lengths, trained, entries, examples

    def _cached(self, number: int) -> tuple[np.ndarray, np.ndarray] | None:
        key = self.keys[number]
        if key is None or self.cache is None:
            return None
        found = self.cache.get(key)
        if found is None or len(found[0]) != len(self.plan.tasks[number]):
            return None
        return found

    def _render(
        self, task: Task, report: Callable[[int], None], workers: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every conversation of `task` rendered as `stats --tokenizer` renders it (in its
        cheapest order), its length after the cut and trained tokens put at its position."""
        from taskcli.training.render import render_batches

        size = len(task)
        lengths = np.zeros(size, dtype=np.int32)
        trained = np.zeros(size, dtype=np.int32)
        read = array("q")  # the position in the task of each conversation, in render order

        def conversations():
            for position, conversation in task.iter_examples(task.physical_range()):
                read.append(position)
                yield conversation

        # Only the lengths after the cut are kept: what lies past it need not be encoded.
        for batch in render_batches(
            conversations(), self.tokenizer, self.max_tokens, workers, measure_cut=False
        ):
            positions = np.array(read[batch.start : batch.start + len(batch)], dtype=np.int64)
            offsets = np.asarray(batch.offsets, dtype=np.int64)
            marks = np.zeros(len(batch.mask) + 1, dtype=np.int64)
            np.cumsum(np.frombuffer(batch.mask, dtype=np.uint8), out=marks[1:])
            lengths[positions] = np.diff(offsets)
            trained[positions] = marks[offsets[1:]] - marks[offsets[:-1]]
            report(len(batch))
        self.rendered += 1
        return lengths, trained


# --- the packed run ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Packed:
    """A target's run through nanochat's loader: the replay, its summary, and what it came from.

    `entries`, `examples`, `lengths` and `trained` have one value per mixture row.
    """

    label: str
    plan: Plan
    tokenizer: Tokenizer
    render_max_tokens: int
    settings: PackSettings
    lengths: np.ndarray
    trained: np.ndarray
    entries: np.ndarray
    examples: np.ndarray
    run: PackRun
    summary: PackSummary
    cache: CacheUse
    warnings: tuple[str, ...] = ()
    source_names: tuple[str, ...] = ()  # per spec entry: how reports name it

    def source_name(self, entry: int) -> str:
        """How reports name a source: its name, else the spec entry's label."""
        if entry < len(self.source_names):
            return self.source_names[entry]
        return self.plan.spec.entries[entry].label

    def to_json(self) -> dict[str, Any]:
        """Everything the report shows, as plain data (``pack --json``)."""
        from taskcli.training.packing import NANOCHAT_LOADER

        settings, summary = self.settings, self.summary
        first = summary.first_without_targets
        sources = []
        for share in summary.sources:
            entry = self.plan.spec.entries[share.source]
            sources.append(
                {
                    "name": self.source_name(share.source),
                    "entry": entry.number,
                    "task": entry.task,
                    "subset": entry.subset,
                    "split": entry.split,
                    **{k: v for k, v in asdict(share).items() if k != "source"},
                }
            )
        return {
            "target": self.label,
            "loader": NANOCHAT_LOADER,
            "tokenizer": self.tokenizer.describe(),
            "render_max_tokens": self.render_max_tokens,
            "settings": settings.to_json(),
            "conversations": summary.conversations,
            "ends": summary.ends,
            "failure": summary.failure,
            "run_micro_batches": summary.run_micro_batches,
            "optimizer_steps": summary.optimizer_steps,
            "ranks": [
                {
                    "rank": rank,
                    "last_step_micro_batch": last,
                    "fed_micro_batches": fed,
                    "starved_from": starved,
                }
                for rank, (last, fed, starved) in enumerate(
                    zip(
                        summary.last_step_micro_batches,
                        summary.fed_micro_batches,
                        summary.starved_from,
                        strict=True,
                    )
                )
            ],
            "rows": summary.rows,
            "padding_fraction": summary.padding_fraction,
            "trained_fraction": summary.trained_fraction,
            "sources": sources,
            "never_placeable": summary.never_placeable,
            "skipped": summary.skipped,
            "placed_twice": summary.placed_twice,
            "micro_batches_without_targets": summary.micro_batches_without_targets,
            "first_without_targets": None
            if first is None
            else {"micro_batch": first[0], "rank": first[1]},
            "verdict": summary.verdict,
            "strict_ok": summary.strict_ok,
            "cache": asdict(self.cache),
        }


def pack(
    measured: Measurement,
    settings: PackSettings,
    label: str | None = None,
    source_names: tuple[str, ...] = (),
) -> Packed:
    """Replay nanochat's loader over a completed measurement, and summarise the run.
    `label` names the target, `source_names` its sources (default: the spec entries' labels)."""
    from taskcli.training.packing import simulate, summarize

    lengths, trained, entries, examples = measured.in_mixture_order()
    run = simulate(lengths, settings)
    summary = summarize(run, trained, entries)
    return Packed(
        label=label or measured.plan.spec.path.name,
        plan=measured.plan,
        tokenizer=measured.tokenizer,
        render_max_tokens=measured.max_tokens,
        settings=settings,
        lengths=lengths,
        trained=trained,
        entries=entries,
        examples=examples,
        run=run,
        summary=summary,
        cache=measured.cache_use(),
        warnings=tuple(measured.warnings),
        source_names=source_names,
    )


# --- one row -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentDetail:
    """One conversation in a packed row: where it comes from and where it sits."""

    index: int  # in the mixture
    origin: dict[str, Any]  # entry, task, subset, split, index (the example), params
    entry_label: str
    offset: int
    length: int
    trained: int
    conversation: dict[str, Any] | None = None  # with tokens only
    rendering: Rendering | None = None


@dataclass(frozen=True)
class RowDetail:
    """One packed row of one rank: its conversations, its padding, and with tokens its ids and
    mask as nanochat builds them (T + 1 each)."""

    rank: int
    micro_batch: int
    row: int  # within the micro-batch
    number: int  # counted across the rank's micro-batches
    capacity: int
    content_len: int
    segments: tuple[SegmentDetail, ...]
    ids: np.ndarray | None = None
    mask: np.ndarray | None = None

    @property
    def padding(self) -> int:
        return self.capacity - self.content_len

    @property
    def valid_targets(self) -> int:
        """Targets that are not -1: the trained tokens of its conversations (the row's first
        token, never a target, is a conversation's untrained <|bos|>)."""
        return sum(segment.trained for segment in self.segments)

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "rank": self.rank,
            "micro_batch": self.micro_batch,
            "row": self.row,
            "row_number": self.number,
            "capacity": self.capacity,
            "content_len": self.content_len,
            "padding": self.padding,
            "valid_targets": self.valid_targets,
            "segments": [
                {
                    "index": segment.index,
                    **{k: v for k, v in segment.origin.items() if k != "index"},
                    "example": segment.origin["index"],
                    "offset": segment.offset,
                    "length": segment.length,
                    "trained": segment.trained,
                }
                for segment in self.segments
            ],
        }
        if self.ids is not None and self.mask is not None:
            row["ids"] = self.ids.tolist()
            row["mask"] = self.mask.tolist()
        return row


def row_detail(packed: Packed, rank: int, number: int, *, with_tokens: bool = False) -> RowDetail:
    """Row `number` of `rank` (counted across its fed micro-batches); with tokens, its
    conversations rendered again and the row built from them as nanochat builds it. A rank or
    row outside the run is a `UsageError`."""
    layout = packed.run.row(rank, number)
    plan = packed.plan
    renderings: dict[int, Rendering] = {}
    conversations: dict[int, dict[str, Any]] = {}
    if with_tokens:
        from taskcli.training.render import render

        for segment in layout.segments:
            entry, example = int(packed.entries[segment.index]), int(packed.examples[segment.index])
            conversation = plan.tasks[entry].get_example(example)
            rendering = render(conversation, packed.tokenizer, packed.render_max_tokens)
            if rendering.num_tokens != segment.length:
                raise InvalidData(
                    f"mixture row {segment.index} renders to {rendering.num_tokens} tokens now but "
                    f"measured {segment.length}: its data changed; run again with --no-cache."
                )
            conversations[segment.index], renderings[segment.index] = conversation, rendering
    segments = tuple(
        SegmentDetail(
            index=segment.index,
            origin=row_origin(
                plan, int(packed.entries[segment.index]), int(packed.examples[segment.index])
            ),
            entry_label=packed.source_name(int(packed.entries[segment.index])),
            offset=segment.offset,
            length=segment.length,
            trained=int(packed.trained[segment.index]),
            conversation=conversations.get(segment.index),
            rendering=renderings.get(segment.index),
        )
        for segment in layout.segments
    )
    ids = mask = None
    if with_tokens:
        from taskcli.training.packing import build_rows

        built = next(
            build_rows(
                packed.run,
                lambda index: tuple(renderings[index]),
                packed.tokenizer.padding_id,
                rank=rank,
                row=number,
            )
        )
        ids, mask = built.ids, built.mask
    return RowDetail(
        rank=rank,
        micro_batch=layout.micro_batch,
        row=layout.row,
        number=number,
        capacity=packed.settings.row_capacity,
        content_len=layout.content_len,
        segments=segments,
        ids=ids,
        mask=mask,
    )
