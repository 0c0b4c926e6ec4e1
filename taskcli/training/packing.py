"""nanochat's SFT loader replayed over rendered lengths: which conversation lands in which row.

nanochat's ``scripts/chat_sft.py`` (commit 92d63d4, July 2026) feeds the model through
``sft_data_generator_bos_bestfit``. Where a conversation lands depends only on the lengths of the
rendered conversations, so a whole run is replayed from one length per mixture row, without ids;
ids are needed again only to build rows (`build_rows`). The rules, as its code has them:

- rank r of W fetches mixture rows at cursor (r + k·W) mod N, k = 0, 1, ... (after a wrap the
  residue shifts when N % W != 0) into a buffer it tops up to S conversations before every
  placement;
- a row holds C = T + 1 tokens. It takes the longest buffered conversation that fits the room
  left, the earliest fetched on a tie, until none fits; the rest is BOS padding, masked. A
  conversation longer than C is never taken, nor one of length 0 (the scan's best length starts
  at 0): it holds its buffer slot for good;
- after each micro-batch of B rows, on the train split only, last_step is set, and stays set,
  once ``0 < num_iterations <= micro-batches yielded`` or once ``consumed >= N`` (consumed
  starts at r and grows by W per placed conversation);
- the training loop fetches one micro-batch before its loop, reads last_step (MAX over ranks) at
  the top of each optimizer step, and otherwise trains G micro-batches, fetching the next one
  after each. When the first last_step comes with micro-batch m (1-based), the run makes
  ceil((m - 1) / G) steps; the last micro-batch fetched is never trained;
- the val split never sets last_step: each evaluation reads eval_tokens // (B·T·W) micro-batches
  per rank from a fresh loader.

When a row finds nothing at all to place, every buffered conversation is unplaceable and none
will ever leave: every later row is padding (*starvation*). The replay stops there and counts the
padding micro-batches instead of building them, so it always ends.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, insort
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from taskcli.errors import UsageError

# The loader replayed, as exports' manifests and the docs name it.
NANOCHAT_LOADER = "nanochat scripts/chat_sft.py sft_data_generator_bos_bestfit @ 92d63d4"
DEFAULT_BUFFER_SIZE = 100
DEFAULT_EVAL_TOKENS = 40 * 524_288
# The val loader never sets last_step: each evaluation's replay is bounded by this instead.
MAX_EVAL_REPLAY_TOKENS = 100 * DEFAULT_EVAL_TOKENS
SPLITS = ("train", "val")

# A buffered conversation is one integer: its length in the high bits, then the complement of
# its fetch number, so sorted order is by length and, within a length, earliest fetch last; the
# largest key below (room + 1) << _FETCH_BITS is the loader's choice.
_FETCH_BITS = 40
_FETCH_MASK = (1 << _FETCH_BITS) - 1


@dataclass(frozen=True)
class PackSettings:
    """The loader's and the training loop's knobs, named as ``chat_sft.py`` names them.

    `total_batch_size` defaults to one micro-batch per optimizer step (B·T·W tokens);
    `eval_tokens` only matters for the val split. Invalid values raise `UsageError`.
    """

    max_seq_len: int
    device_batch_size: int
    world_size: int = 1
    buffer_size: int = DEFAULT_BUFFER_SIZE
    split: str = "train"
    num_iterations: int = -1
    total_batch_size: int | None = None
    eval_tokens: int = DEFAULT_EVAL_TOKENS

    def to_json(self) -> dict[str, Any]:
        """The settings as ``pack --json`` and the packed export's manifest record them, the
        total batch size as the training loop uses it."""
        return {
            "max_seq_len": self.max_seq_len,
            "device_batch_size": self.device_batch_size,
            "world_size": self.world_size,
            "buffer_size": self.buffer_size,
            "split": self.split,
            "num_iterations": self.num_iterations,
            "total_batch_size": self.total_batch_size or self.tokens_per_micro_batch,
            "micro_batches_per_step": self.micro_batches_per_step,
            "eval_tokens": self.eval_tokens,
        }

    def __post_init__(self) -> None:
        for name in ("max_seq_len", "device_batch_size", "world_size", "buffer_size"):
            value = getattr(self, name)
            if value <= 0:
                raise UsageError(f"{name} must be 1 or more, got {value}", params=(name,))
        if self.split not in SPLITS:
            raise UsageError(
                f"split must be 'train' or 'val', got {self.split!r}", params=("split",)
            )
        total, per_step = self.total_batch_size, self.tokens_per_micro_batch
        if total is not None and (total <= 0 or total % per_step):
            raise UsageError(
                f"total_batch_size {total} is not a positive multiple of device_batch_size × "
                f"max_seq_len × world_size = {per_step} (nanochat's chat_sft.py asserts it is)",
                params=("total_batch_size",),
            )
        if self.eval_tokens < 0:
            raise UsageError(
                f"eval_tokens must be 0 or more, got {self.eval_tokens}", params=("eval_tokens",)
            )
        replayed = self.eval_micro_batches * self.device_batch_size * self.row_capacity
        if self.split == "val" and replayed * self.world_size > MAX_EVAL_REPLAY_TOKENS:
            raise UsageError(
                f"eval_tokens {self.eval_tokens:,} makes each evaluation feed "
                f"{replayed * self.world_size:,} tokens; the replay stops at "
                f"{MAX_EVAL_REPLAY_TOKENS:,} (100 times nanochat's default)",
                params=("eval_tokens",),
            )

    @property
    def row_capacity(self) -> int:
        """C = T + 1: each row carries one token more than the model reads, for the last target."""
        return self.max_seq_len + 1

    @property
    def tokens_per_micro_batch(self) -> int:
        """B·T·W: the tokens one micro-batch of every rank feeds, as nanochat counts them."""
        return self.device_batch_size * self.max_seq_len * self.world_size

    @property
    def micro_batches_per_step(self) -> int:
        """G: micro-batches each rank trains per optimizer step (gradient accumulation)."""
        if self.total_batch_size is None:
            return 1
        return self.total_batch_size // self.tokens_per_micro_batch

    @property
    def eval_micro_batches(self) -> int:
        """Micro-batches per rank one evaluation reads: eval_tokens // (B·T·W), rounded down."""
        return self.eval_tokens // self.tokens_per_micro_batch


@dataclass(frozen=True, slots=True)
class Segment:
    """One conversation placed in a row: its mixture index, where it starts, its token count."""

    index: int
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class RowLayout:
    """One row as the loader fills it: segments back to back from offset 0, `content_len` tokens
    in all, then BOS padding (mask 0) up to the row's T + 1 tokens."""

    rank: int
    micro_batch: int
    row: int
    content_len: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class MicroBatch:
    """The B rows of one rank's micro-batch, and the rank's own last_step right after it."""

    rank: int
    index: int
    rows: tuple[RowLayout, ...]
    last_step: bool


class RankLoader:
    """One rank's ``sft_data_generator_bos_bestfit``, replayed over conversation lengths.

    The buffer is a sorted list of integer keys for the conversations that could still be placed,
    plus a count of those that never can, so a placement is a bisect rather than a scan of S
    conversations. What the rank yielded is kept in flat arrays (mixture index and offset per
    placement; content length and segment end per row): a few bytes per conversation, no ids.
    Rows past the recorded ones are padding: the rank starved.
    """

    def __init__(self, lengths: Sequence[int], settings: PackSettings, rank: int) -> None:
        if not 0 <= rank < settings.world_size:
            raise UsageError(
                f"rank {rank} is not one of the {settings.world_size} ranks (0 to "
                f"{settings.world_size - 1})",
                params=("rank",),
            )
        if rank >= len(lengths):
            raise UsageError(
                f"rank {rank} would fetch mixture row {rank} of {len(lengths)}: nanochat's "
                "TaskMixture asserts the index is in range",
                params=("rank",),
            )
        self.settings = settings
        self.rank = rank
        self.lengths = lengths if isinstance(lengths, list) else _as_list(lengths)
        self.yielded = 0
        self.last_step_from: int | None = None
        self.starved_from: int | None = None
        self._keys: list[int] = []
        self._unplaceable = 0
        self._cursor = rank
        self._fetched = 0
        self._consumed = rank
        self._segment_index = array("q")
        self._segment_offset = array("q")
        self._row_content = array("q")
        self._row_end = array("q")

    def advance(self, micro_batches: int) -> None:
        """Replay until `micro_batches` micro-batches have been yielded in all."""
        if self.starved_from is None:
            self._replay(micro_batches)
        if self.starved_from is not None:
            self._count_padding(micro_batches)

    def advance_to_last_step(self) -> None:
        """Replay until this rank's last_step is set. A starved rank gets there only through
        num_iterations (its consumed count no longer grows); without it, it never does."""
        if self.settings.split != "train":
            raise ValueError("the val loader never sets last_step")
        if self.starved_from is None:
            self._replay(None)
        if self.starved_from is not None and self.settings.num_iterations > 0:
            self._count_padding(self.settings.num_iterations)

    def micro_batch(self, index: int) -> MicroBatch:
        """Micro-batch `index` (0-based) of those yielded so far."""
        if not 0 <= index < self.yielded:
            raise IndexError(f"rank {self.rank} has yielded {self.yielded} micro-batches")
        batch = self.settings.device_batch_size
        rows = tuple(self.row(index * batch + row) for row in range(batch))
        last_step = self.last_step_from is not None and index >= self.last_step_from
        return MicroBatch(self.rank, index, rows, last_step)

    def row(self, number: int) -> RowLayout:
        """Row `number` of this rank, counting rows across its micro-batches from 0."""
        batch = self.settings.device_batch_size
        if not 0 <= number < self.yielded * batch:
            raise IndexError(f"rank {self.rank} has yielded {self.yielded * batch} rows")
        micro_batch, row = divmod(number, batch)
        if number >= len(self._row_content):
            return RowLayout(self.rank, micro_batch, row, 0, ())
        start = self._row_end[number - 1] if number else 0
        segments = tuple(
            Segment(index, offset, self.lengths[index])
            for index, offset in zip(
                self._segment_index[start : self._row_end[number]],
                self._segment_offset[start : self._row_end[number]],
                strict=True,
            )
        )
        return RowLayout(self.rank, micro_batch, row, self._row_content[number], segments)

    def flat_rows(self, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The first `rows` rows as flat arrays, for bulk work without a dataclass per row:
        content lengths and segment ends per row (cumulative), mixture index and offset per
        segment. Fewer rows come back when the rank starved: the rest are padding."""
        recorded = min(rows, len(self._row_content))
        content = np.frombuffer(self._row_content, dtype=np.int64)[:recorded]
        ends = np.frombuffer(self._row_end, dtype=np.int64)[:recorded]
        placements = int(ends[-1]) if recorded else 0
        index = np.frombuffer(self._segment_index, dtype=np.int64)[:placements]
        offset = np.frombuffer(self._segment_offset, dtype=np.int64)[:placements]
        return content, ends, index, offset

    def _count_padding(self, micro_batches: int) -> None:
        """Yield all-padding micro-batches of a starved rank by counting them: only the
        num_iterations test can still set last_step."""
        if micro_batches <= self.yielded:
            return
        iterations = self.settings.num_iterations
        if self.settings.split == "train" and self.last_step_from is None and iterations > 0:
            first = max(iterations - 1, self.yielded)
            if first < micro_batches:
                self.last_step_from = first
        self.yielded = micro_batches

    def _replay(self, until: int | None) -> None:
        """The loader's loop, until `until` micro-batches (None: until last_step) or starvation.

        The hot path: state lives in locals and is written back at the end.
        """
        settings = self.settings
        lengths = self.lengths
        size = len(lengths)
        capacity = settings.row_capacity
        world = settings.world_size
        buffer_size = settings.buffer_size
        batch = settings.device_batch_size
        train = settings.split == "train"
        iterations = settings.num_iterations
        rank = self.rank
        keys = self._keys
        unplaceable = self._unplaceable
        cursor = self._cursor
        fetched = self._fetched
        consumed = self._consumed
        yielded = self.yielded
        last_step_from = self.last_step_from
        add_index = self._segment_index.append
        add_offset = self._segment_offset.append
        add_content = self._row_content.append
        add_end = self._row_end.append
        placed = len(self._segment_index)
        starved = False
        while (last_step_from is None) if until is None else (yielded < until):
            for _ in range(batch):
                filled = 0
                while filled < capacity:
                    while len(keys) + unplaceable < buffer_size:
                        length = lengths[cursor]
                        if 0 < length <= capacity:
                            insort(keys, (length << _FETCH_BITS) | (_FETCH_MASK - fetched))
                        else:
                            unplaceable += 1
                        fetched += 1
                        cursor += world
                        if cursor >= size:
                            cursor %= size
                    if not keys:
                        starved = True
                        break
                    fits = bisect_left(keys, (capacity - filled + 1) << _FETCH_BITS)
                    if not fits:
                        break
                    key = keys.pop(fits - 1)
                    add_index((rank + (_FETCH_MASK - (key & _FETCH_MASK)) * world) % size)
                    add_offset(filled)
                    placed += 1
                    filled += key >> _FETCH_BITS
                    consumed += world
                if starved and not filled:
                    break
                add_content(filled)
                add_end(placed)
                if starved:
                    break
            yielded += 1
            if train and last_step_from is None and (0 < iterations <= yielded or consumed >= size):
                last_step_from = yielded - 1
            if starved:
                break
        self._unplaceable = unplaceable
        self._cursor = cursor
        self._fetched = fetched
        self._consumed = consumed
        self.yielded = yielded
        self.last_step_from = last_step_from
        if starved:
            self.starved_from = -(-len(self._row_content) // batch)


@dataclass(frozen=True)
class PackRun:
    """Every rank's loader as far as nanochat's loop reads it, and where the run ends.

    `fed_micro_batches[r]`: the micro-batches of rank r the model is fed, from 0 (trained on, or
    evaluated on for the val split). For a train run that ends, G × `optimizer_steps` on every
    rank; for one that never ends, those before the rank starves (after that, every micro-batch
    is padding, forever). `run_micro_batches`: micro-batches until the first rank's last_step
    (train) or per evaluation (val). `failure` says why nanochat could not start at all.
    """

    settings: PackSettings
    lengths: list[int]
    loaders: tuple[RankLoader, ...]
    fed_micro_batches: tuple[int, ...]
    run_micro_batches: int | None
    optimizer_steps: int | None
    failure: str | None = None

    @property
    def ends(self) -> bool:
        """Whether training ends (always, for an evaluation that starts)."""
        if self.failure is not None:
            return False
        return self.settings.split == "val" or self.optimizer_steps is not None

    @property
    def last_step_micro_batches(self) -> tuple[int | None, ...]:
        """Per rank, micro-batches until its own last_step (1-based); None: never set."""
        return tuple(
            None if loader.last_step_from is None else loader.last_step_from + 1
            for loader in self.loaders
        )

    def micro_batches(self, rank: int) -> Iterator[MicroBatch]:
        """The micro-batches of `rank` the model is fed, in order."""
        loader = self._loader(rank)
        for index in range(self.fed_micro_batches[rank]):
            yield loader.micro_batch(index)

    def row(self, rank: int, number: int) -> RowLayout:
        """Row `number` of `rank` (counted across its fed micro-batches); a row past the run is
        a `UsageError`."""
        loader = self._loader(rank)
        rows = self.fed_micro_batches[rank] * self.settings.device_batch_size
        if not 0 <= number < rows:
            fed = f"{rows} rows (0 to {rows - 1})" if rows else "no rows"
            raise UsageError(
                f"row {number} is past the run: rank {rank} is fed {fed}", params=("row",)
            )
        return loader.row(number)

    def _loader(self, rank: int) -> RankLoader:
        if self.failure is not None:
            raise UsageError(f"the run has no rows: {self.failure}")
        if not 0 <= rank < len(self.loaders):
            raise UsageError(
                f"rank {rank} is not one of the {len(self.loaders)} ranks (0 to "
                f"{len(self.loaders) - 1})",
                params=("rank",),
            )
        return self.loaders[rank]


def simulate(lengths: Sequence[int], settings: PackSettings) -> PackRun:
    """Replay every rank's loader as far as nanochat's training loop (or one evaluation) reads it.

    `lengths[i]` is mixture row i's rendered length (after the render cut). Always ends: a rank
    that starves is replayed up to that point and its padding micro-batches are counted.
    """
    lengths = _as_list(lengths)
    size, world = len(lengths), settings.world_size
    if size == 0:
        failure = "the target has no conversations: nanochat's loader asserts dataset_size > 0"
        return PackRun(settings, lengths, (), (), None, None, failure)
    if world > size:
        failure = (
            f"world_size {world} is more than the {size} conversations: rank {size} would fetch "
            f"mixture row {size}, and nanochat's TaskMixture asserts the index is in range"
        )
        return PackRun(settings, lengths, (), (), None, None, failure)
    loaders = tuple(RankLoader(lengths, settings, rank) for rank in range(world))
    if settings.split == "val":
        evaluated = settings.eval_micro_batches
        for loader in loaders:
            loader.advance(evaluated)
        return PackRun(settings, lengths, loaders, (evaluated,) * world, evaluated, None)
    for loader in loaders:
        loader.advance_to_last_step()
    finished = [
        loader.last_step_from + 1 for loader in loaders if loader.last_step_from is not None
    ]
    if not finished:
        fed = tuple(loader.starved_from or 0 for loader in loaders)
        return PackRun(settings, lengths, loaders, fed, None, None)
    first = min(finished)
    per_step = settings.micro_batches_per_step
    steps = -(-(first - 1) // per_step)
    for loader in loaders:
        loader.advance(1 + per_step * steps)  # the loop's last fetch, never trained
    return PackRun(settings, lengths, loaders, (per_step * steps,) * world, first, steps)


@dataclass(frozen=True)
class SourceShare:
    """One source (a spec entry) in the micro-batches the model is fed.

    `placed` counts placements (a conversation placed twice counts twice); `row_share`,
    `token_share` and `loss_share` are its fractions of all placements, of all valid targets,
    and of the loss (see `PackSummary`). `never_placeable`: its conversations longer than a row;
    `skipped`: the others, never placed in the run; `placed_twice`: placed more than once.
    """

    source: int
    conversations: int
    placed: int
    trained_tokens: int
    row_share: float
    token_share: float
    loss_share: float
    never_placeable: int
    skipped: int
    placed_twice: int


@dataclass(frozen=True)
class PackSummary:
    """What the model is fed over a run (`PackRun.fed_micro_batches` on every rank).

    - `rows`: fed rows, all ranks; `padding_fraction`: padding tokens ÷ (rows × (T + 1));
      `trained_fraction`: valid targets ÷ (rows × T). A row's valid targets are the trained
      tokens of its conversations: targets are the row shifted by one, -1 where the mask is 0
      and from the padding on, and the one token never a target, the row's first, is a
      conversation's <|bos|>, never trained.
    - train: each micro-batch's loss is the mean over its valid targets, divided by G, and ranks'
      gradients are averaged, so every fed micro-batch with a valid target weighs the same and a
      token in it weighs 1 ÷ its valid targets: `loss_share` is a source's mean, over those
      micro-batches, of its fraction of their valid targets. A micro-batch without one gives a
      NaN loss and is left out. val: bits per byte sum over every valid target, so `loss_share`
      is the token share (up to special tokens, which bpb skips and lengths do not show).
    - `starved_from[r]`: the first micro-batch of rank r that is all padding (its buffer stuck for
      good), if its replay got there. `first_without_targets`: (micro-batch, rank) of the earliest
      fed micro-batch without a valid target, or where a never-ending run starves.
    - `verdict`: one sentence saying how the run goes.
    """

    settings: PackSettings
    conversations: int
    last_step_micro_batches: tuple[int | None, ...]
    run_micro_batches: int | None
    optimizer_steps: int | None
    fed_micro_batches: tuple[int, ...]
    rows: int
    padding_fraction: float
    trained_fraction: float
    sources: tuple[SourceShare, ...]
    never_placeable: int
    skipped: int
    placed_twice: int
    starved_from: tuple[int | None, ...]
    micro_batches_without_targets: int
    first_without_targets: tuple[int, int] | None
    ends: bool
    failure: str | None
    verdict: str

    @property
    def strict_ok(self) -> bool:
        """What ``--strict`` asks: the run starts and every micro-batch has a valid target."""
        return self.failure is None and self.first_without_targets is None


def summarize(run: PackRun, trained: Sequence[int], source: Sequence[int]) -> PackSummary:
    """Padding, trained tokens, per-source shares and the verdict of a replayed run.

    `trained[i]`: mixture row i's trained tokens (its mask's sum after the render cut);
    `source[i]`: the spec entry it comes from.
    """
    settings, size = run.settings, len(run.lengths)
    trained_array = np.asarray(trained, dtype=np.int64)
    source_array = np.asarray(source, dtype=np.int64)
    if len(trained_array) != size or len(source_array) != size:
        raise ValueError(
            f"{size} lengths, but {len(trained_array)} trained counts and "
            f"{len(source_array)} sources"
        )
    sources, codes = np.unique(source_array, return_inverse=True)
    lengths = np.asarray(run.lengths, dtype=np.int64)
    placeable = (lengths > 0) & (lengths <= settings.row_capacity)
    tally = _Tally(len(sources), size)
    for loader, fed in zip(run.loaders, run.fed_micro_batches, strict=True):
        tally.add(loader, fed, trained_array, codes)
    first_without = tally.first_without_targets
    if not run.ends and run.failure is None:
        starving = min((loader.starved_from or 0, loader.rank) for loader in run.loaders)
        first_without = min(first_without or starving, starving)
    placed_rows = tally.placements > 0
    never = ~placeable
    skipped = placeable & ~placed_rows
    twice = tally.placements > 1
    per_source = [np.bincount(codes[mask], minlength=len(sources)) for mask in (never, skipped)]
    conversations = np.bincount(codes, minlength=len(sources))
    twice_per_source = np.bincount(codes[twice], minlength=len(sources))
    shares = tuple(
        SourceShare(
            source=int(sources[code]),
            conversations=int(conversations[code]),
            placed=int(tally.placed[code]),
            trained_tokens=int(tally.tokens[code]),
            row_share=_fraction(tally.placed[code], tally.placed.sum()),
            token_share=_fraction(tally.tokens[code], tally.tokens.sum()),
            loss_share=(
                _fraction(tally.tokens[code], tally.tokens.sum())
                if settings.split == "val"
                else _fraction(tally.loss[code], tally.micro_batches_with_targets)
            ),
            never_placeable=int(per_source[0][code]),
            skipped=int(per_source[1][code]),
            placed_twice=int(twice_per_source[code]),
        )
        for code in range(len(sources))
    )
    summary = PackSummary(
        settings=settings,
        conversations=size,
        last_step_micro_batches=run.last_step_micro_batches,
        run_micro_batches=run.run_micro_batches,
        optimizer_steps=run.optimizer_steps,
        fed_micro_batches=run.fed_micro_batches,
        rows=tally.rows,
        padding_fraction=_fraction(tally.padding, tally.rows * settings.row_capacity),
        trained_fraction=_fraction(tally.tokens.sum(), tally.rows * settings.max_seq_len),
        sources=shares,
        never_placeable=int(never.sum()),
        skipped=int(skipped.sum()),
        placed_twice=int(twice.sum()),
        starved_from=tuple(loader.starved_from for loader in run.loaders),
        micro_batches_without_targets=tally.without_targets,
        first_without_targets=first_without,
        ends=run.ends,
        failure=run.failure,
        verdict="",
    )
    return replace(summary, verdict=_verdict(summary))


class _Tally:
    """Sums over the fed micro-batches of every rank, from the loaders' flat arrays."""

    def __init__(self, sources: int, conversations: int) -> None:
        self.placed = np.zeros(sources, dtype=np.int64)
        self.tokens = np.zeros(sources, dtype=np.int64)
        self.loss = np.zeros(sources, dtype=np.float64)
        self.placements = np.zeros(conversations, dtype=np.int64)
        self.rows = 0
        self.padding = 0
        self.micro_batches_with_targets = 0
        self.without_targets = 0
        self.first_without_targets: tuple[int, int] | None = None

    def add(self, loader: RankLoader, fed: int, trained: np.ndarray, codes: np.ndarray) -> None:
        batch = loader.settings.device_batch_size
        rows = fed * batch
        content, row_end, index, _ = loader.flat_rows(rows)
        # Micro-batches past the recorded rows (a starved rank's) are all padding: counted,
        # never laid out, however many num_iterations makes the loop feed.
        recorded = min(fed, -(-len(content) // batch))
        segment_row = np.repeat(np.arange(len(row_end)), np.diff(row_end, prepend=0))
        segment_trained = trained[index]
        micro_batch = segment_row // batch
        valid = np.bincount(micro_batch, weights=segment_trained, minlength=recorded)[:recorded]
        self.rows += rows
        self.padding += rows * loader.settings.row_capacity - int(content.sum())
        self.placed += np.bincount(codes[index], minlength=len(self.placed))
        self.tokens += np.bincount(
            codes[index], weights=segment_trained, minlength=len(self.tokens)
        ).astype(np.int64)
        with_targets = valid > 0
        weight = np.divide(
            segment_trained,
            valid[micro_batch],
            out=np.zeros(len(index)),
            where=with_targets[micro_batch],
        )
        self.loss += np.bincount(codes[index], weights=weight, minlength=len(self.loss))
        self.placements += np.bincount(index, minlength=len(self.placements))
        self.micro_batches_with_targets += int(with_targets.sum())
        empty = np.flatnonzero(~with_targets)
        self.without_targets += len(empty) + fed - recorded
        first = int(empty[0]) if len(empty) else recorded if fed > recorded else None
        if first is not None:
            here = (first, loader.rank)
            if self.first_without_targets is None or here < self.first_without_targets:
                self.first_without_targets = here


def _verdict(summary: PackSummary) -> str:
    if summary.failure is not None:
        return summary.failure
    settings = summary.settings
    empty = summary.first_without_targets
    reason = ""
    if empty is not None:
        micro_batch, rank = empty
        starved = summary.starved_from[rank]
        reason = (
            f"rank {rank}: all padding, its buffer holds only conversations that can never be "
            "placed"
            if starved is not None and micro_batch >= starved
            else f"rank {rank}: none of its conversations has a trained token"
        )
    if settings.split == "val":
        evaluated = settings.eval_micro_batches
        if evaluated == 0:
            return "eval_tokens // (B·T·W) is 0: each evaluation reads no micro-batch"
        if summary.trained_fraction == 0:
            return f"no val micro-batch has a valid target: val bpb is inf ({reason})"
        if empty is not None:
            return (
                f"val micro-batch {empty[0]} has no valid target ({reason}); val bpb leaves out "
                f"{summary.micro_batches_without_targets} of {evaluated * settings.world_size}"
                " micro-batches"
            )
        return f"each evaluation reads {evaluated} micro-batches per rank, all with valid targets"
    if not summary.ends:
        return f"NaN loss from micro-batch {empty[0]} ({reason}); the epoch never ends"
    first = summary.run_micro_batches
    finisher = summary.last_step_micro_batches.index(first)
    why = (
        "num_iterations"
        if 0 < settings.num_iterations <= first
        else "its consumed count reached the mixture's size"
    )
    steps = _count(summary.optimizer_steps, "optimizer step", "optimizer steps")
    each = _count(settings.micro_batches_per_step, "micro-batch", "micro-batches")
    end = f"{steps} ({each} each): rank {finisher} sets last_step with micro-batch {first} ({why})"
    if empty is None:
        if not summary.optimizer_steps:
            return f"the run ends after {end}: nothing is trained"
        return f"the run ends after {end}; every trained micro-batch has a valid target"
    return f"NaN loss from micro-batch {empty[0]} ({reason}); the run still ends after {end}"


def _count(number: int, singular: str, plural: str) -> str:
    return f"{number} {singular if number == 1 else plural}"


def _fraction(part: float, whole: float) -> float:
    return float(part / whole) if whole else 0.0


def _as_list(lengths: Sequence[int]) -> list[int]:
    return lengths.tolist() if isinstance(lengths, np.ndarray) else list(lengths)


@dataclass(frozen=True)
class PackedRow:
    """A fed row rebuilt with its tokens: nanochat's inputs are ``ids[:-1]``, its targets
    ``ids[1:]`` with -1 where ``mask[1:]`` is 0."""

    layout: RowLayout
    ids: np.ndarray
    mask: np.ndarray


def build_rows(
    run: PackRun,
    ids_and_mask: Callable[[int], tuple[Sequence[int], Sequence[int]]],
    bos_id: int,
    *,
    rank: int | None = None,
    row: int | None = None,
) -> Iterator[PackedRow]:
    """The fed rows with ids (int32, T + 1, BOS-padded) and mask (int8, 0 on padding), in the
    order the loaders yield them, rank by rank; only `rank` and/or row number `row` (counted
    across the rank's micro-batches) when given. `ids_and_mask(i)` renders mixture row i again.

    Bad `rank` or `row` raise `UsageError` here, before any row is built.
    """
    ranks = range(len(run.loaders)) if rank is None else (rank,)
    for each in ranks:
        if row is not None:
            run.row(each, row)
        else:
            run._loader(each)
    return _built_rows(run, ids_and_mask, bos_id, ranks, row)


def _built_rows(
    run: PackRun,
    ids_and_mask: Callable[[int], tuple[Sequence[int], Sequence[int]]],
    bos_id: int,
    ranks: Sequence[int],
    row: int | None,
) -> Iterator[PackedRow]:
    capacity = run.settings.row_capacity
    for rank in ranks:
        numbers = range(run.fed_micro_batches[rank] * run.settings.device_batch_size)
        for number in numbers if row is None else (row,):
            layout = run.row(rank, number)
            ids = np.full(capacity, bos_id, dtype=np.int32)
            mask = np.zeros(capacity, dtype=np.int8)
            for segment in layout.segments:
                segment_ids, segment_mask = ids_and_mask(segment.index)
                if len(segment_ids) != segment.length or len(segment_mask) != segment.length:
                    raise ValueError(
                        f"mixture row {segment.index} renders to {len(segment_ids)} ids and "
                        f"{len(segment_mask)} mask values, but was packed as {segment.length}"
                    )
                end = segment.offset + segment.length
                ids[segment.offset : end] = segment_ids
                mask[segment.offset : end] = segment_mask
            yield PackedRow(layout, ids, mask)
