"""Packing: the fast replay of nanochat's SFT loader held to a plain transcription of its code.

`nanochat_loader` and `nanochat_training` below are ``sft_data_generator_bos_bestfit`` and the
training loop of nanochat's ``scripts/chat_sft.py`` (commit 92d63d4), statement by statement,
over conversations rendered here as synthetic ids and masks: they scan the buffer, build the
rows and targets exactly as nanochat does. Property tests hold `simulate`, `summarize` and
`build_rows` to them for random lengths and settings; small cases are checked by hand.
"""

import time
from dataclasses import dataclass

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from taskcli.errors import UsageError
from taskcli.training.packing import (
    PackSettings,
    RankLoader,
    Segment,
    build_rows,
    simulate,
    summarize,
)

BOS = 7


def rendered(index: int, length: int, trained: int) -> tuple[list[int], list[int]]:
    """A conversation as render_conversation shapes one: <|bos|> first (mask 0), its last
    `trained` tokens trained; the ids say which mixture row and position they come from."""
    ids = [BOS] + [1000 * (index + 1) + position for position in range(1, length)]
    mask = [0] * (length - trained) + [1] * trained
    return ids[:length], mask


@dataclass
class PlainMicroBatch:
    rows: list[list[int]]
    mask_rows: list[list[int]]
    row_lengths: list[int]
    segments: list[list[tuple[int, int, int]]]
    targets: list[list[int]]
    last_step: bool


def nanochat_loader(conversations, T, B, W, S, split, num_iterations, rank):
    """sft_data_generator_bos_bestfit, line by line; also notes each placement's (mixture index,
    offset, length) and hands back the targets it builds."""
    last_step = False
    dataset_size = len(conversations)
    assert dataset_size > 0
    row_capacity = T + 1
    conv_buffer = []
    cursor = rank
    consumed = rank
    it = 0

    def refill_buffer():
        nonlocal cursor
        while len(conv_buffer) < S:
            ids, mask = conversations[cursor]
            conv_buffer.append((ids, mask, cursor))
            cursor += W
            if cursor >= dataset_size:
                cursor = cursor % dataset_size

    while True:
        rows, mask_rows, row_lengths, segments = [], [], [], []
        for _ in range(B):
            row, mask_row, placed = [], [], []
            padded = False
            while len(row) < row_capacity:
                while len(conv_buffer) < S:
                    refill_buffer()
                remaining = row_capacity - len(row)
                best_idx = -1
                best_len = 0
                for i, (conv, _, _) in enumerate(conv_buffer):
                    conv_len = len(conv)
                    if conv_len <= remaining and conv_len > best_len:
                        best_idx = i
                        best_len = conv_len
                if best_idx >= 0:
                    conv, conv_mask, index = conv_buffer.pop(best_idx)
                    placed.append((index, len(row), len(conv)))
                    row.extend(conv)
                    mask_row.extend(conv_mask)
                    consumed += W
                else:
                    content_len = len(row)
                    row.extend([BOS] * remaining)
                    mask_row.extend([0] * remaining)
                    padded = True
                    break
            row_lengths.append(content_len if padded else row_capacity)
            rows.append(row[:row_capacity])
            mask_rows.append(mask_row[:row_capacity])
            segments.append(placed)
        it += 1
        if 0 < num_iterations <= it and split == "train":
            last_step = True
        if split == "train" and consumed >= dataset_size:
            last_step = True
        targets = []
        for row, mask_row, content_len in zip(rows, mask_rows, row_lengths, strict=True):
            target = [
                -1 if mask == 0 else token
                for token, mask in zip(row[1:], mask_row[1:], strict=True)
            ]
            if content_len < row_capacity:
                target[content_len - 1 :] = [-1] * len(target[content_len - 1 :])
            targets.append(target)
        yield PlainMicroBatch(rows, mask_rows, row_lengths, segments, targets, last_step)


def nanochat_training(loaders, G, max_steps):
    """chat_sft.py's loop: one micro-batch fetched before it; at the top of each step last_step,
    MAX over ranks, ends it; else G micro-batches are trained, the next fetched after each.
    Returns the steps (None: still running after `max_steps`) and each rank's trained ones."""
    current = [next(loader) for loader in loaders]
    trained = [[] for _ in loaders]
    step = 0
    while True:
        if max(batch.last_step for batch in current):
            return step, trained
        if step == max_steps:
            return None, trained
        for _ in range(G):
            for rank, loader in enumerate(loaders):
                trained[rank].append(current[rank])
                current[rank] = next(loader)
        step += 1


def plain_loaders(conversations, s: PackSettings):
    return [
        nanochat_loader(
            conversations,
            s.max_seq_len,
            s.device_batch_size,
            s.world_size,
            s.buffer_size,
            s.split,
            s.num_iterations,
            rank,
        )
        for rank in range(s.world_size)
    ]


def fast_batch(run, rank, index):
    batch = run.loaders[rank].micro_batch(index)
    segments = [[(s.index, s.offset, s.length) for s in row.segments] for row in batch.rows]
    return segments, [row.content_len for row in batch.rows], batch.last_step


def plain_batch(batch: PlainMicroBatch):
    return batch.segments, batch.row_lengths, batch.last_step


@st.composite
def cases(draw):
    T = draw(st.integers(1, 12))
    capacity = T + 1
    longest = capacity + draw(st.sampled_from([0, 0, 3]))  # some mixtures hold too-long ones
    size = draw(st.integers(1, 150))
    lengths = draw(st.lists(st.integers(0, longest), min_size=size, max_size=size))
    trained = [draw(st.integers(0, max(0, length - 1))) for length in lengths]
    sources = [draw(st.integers(0, 3)) for _ in lengths]
    B = draw(st.integers(1, 3))
    W = draw(st.integers(1, min(4, len(lengths))))
    G = draw(st.integers(1, 3))
    evaluated = draw(st.integers(0, 5))
    per_micro_batch = B * T * W
    s = PackSettings(
        max_seq_len=T,
        device_batch_size=B,
        world_size=W,
        buffer_size=draw(st.integers(1, 6)),
        split=draw(st.sampled_from(["train", "train", "val"])),
        num_iterations=draw(st.sampled_from([-1, 0, 1, 2, 3, 5, 8, 30])),
        total_batch_size=G * per_micro_batch,
        eval_tokens=evaluated * per_micro_batch + draw(st.integers(0, per_micro_batch - 1)),
    )
    return lengths, trained, sources, s


def plain_run(conversations, s: PackSettings, run):
    """What the transcription feeds the model, per rank, and its steps: for a run the fast path
    says never ends, the transcription is run a few steps past every rank's starvation."""
    loaders = plain_loaders(conversations, s)
    if s.split == "val":
        return None, [[next(loader) for _ in range(s.eval_micro_batches)] for loader in loaders]
    G = s.micro_batches_per_step
    if run.ends:
        return nanochat_training(loaders, G, run.optimizer_steps + 1)
    return nanochat_training(loaders, G, max(run.fed_micro_batches) // G + 3)


@settings(max_examples=300)
@given(cases())
def test_the_fast_replay_is_the_loader(case):
    lengths, trained, sources, s = case
    conversations = [
        rendered(i, n, t) for i, (n, t) in enumerate(zip(lengths, trained, strict=True))
    ]
    run = simulate(lengths, s)
    steps, fed = plain_run(conversations, s, run)
    assert steps == run.optimizer_steps
    for rank, batches in enumerate(fed):
        count = run.fed_micro_batches[rank]
        assert [plain_batch(b) for b in batches[:count]] == [
            fast_batch(run, rank, i) for i in range(count)
        ]
        if run.ends:
            assert len(batches) == count
        else:  # every micro-batch after the starvation is padding, and the run goes on
            assert run.loaders[rank].starved_from == count
            assert all(set(b.row_lengths) == {0} for b in batches[count:])

    # each rank on its own, until its last_step (or a while past its starvation)
    for rank, loader in enumerate(plain_loaders(conversations, s)):
        fast = run.loaders[rank]
        horizon = max(fast.yielded, (fast.starved_from or 0) + 3)
        plain = [next(loader) for _ in range(horizon)]
        assert [b.last_step for b in plain[: fast.yielded]] == [
            fast.micro_batch(i).last_step for i in range(fast.yielded)
        ]
        flagged = [i + 1 for i, b in enumerate(plain) if b.last_step]
        expected = run.last_step_micro_batches[rank] if s.split == "train" else None
        assert (flagged[0] if flagged else None) == expected

    summary = check_summary(run, trained, sources, fed, conversations)
    event(f"{s.split}, {'ends' if run.ends else 'never ends'}")
    event(f"starves: {any(loader.starved_from is not None for loader in run.loaders)}")
    event(f"N % W != 0: {len(lengths) % s.world_size != 0}")
    event(f"optimizer steps > 1: {(run.optimizer_steps or 0) > 1}")
    event(f"skipped / placed twice: {summary.skipped > 0} / {summary.placed_twice > 0}")


def check_summary(run, trained, sources, fed, conversations):
    """The summary's figures, counted from the transcription's rows and targets."""
    s = run.settings
    summary = summarize(run, trained, sources)
    fed_batches = [batches[: run.fed_micro_batches[rank]] for rank, batches in enumerate(fed)]
    every = [b for batches in fed_batches for b in batches]
    rows = [row for b in every for row in b.rows]
    assert summary.rows == len(rows)
    padding = sum(s.row_capacity - n for b in every for n in b.row_lengths)
    assert summary.padding_fraction == pytest.approx(padding / (len(rows) * s.row_capacity or 1))
    tokens, loss, with_targets, without = {}, {}, 0, []
    for rank, batches in enumerate(fed_batches):
        for index, b in enumerate(batches):
            per_source = {}
            for segments, target in zip(b.segments, b.targets, strict=True):
                for mixture_index, offset, length in segments:
                    positions = range(max(offset - 1, 0), offset + length - 1)
                    valid = sum(target[p] != -1 for p in positions)
                    source = sources[mixture_index]
                    per_source[source] = per_source.get(source, 0) + valid
            valid = sum(t != -1 for target in b.targets for t in target)
            assert valid == sum(per_source.values())  # every valid target is in a conversation
            for source, count in per_source.items():
                tokens[source] = tokens.get(source, 0) + count
                if valid:
                    loss[source] = loss.get(source, 0) + count / valid
            with_targets += valid > 0
            if not valid:
                without.append((index, rank))
    by_source = {share.source: share for share in summary.sources}
    for source, share in by_source.items():
        assert share.trained_tokens == tokens.get(source, 0)
        if s.split == "train" and with_targets:
            assert share.loss_share == pytest.approx(loss.get(source, 0) / with_targets)
    assert summary.trained_fraction * len(rows) * s.max_seq_len == pytest.approx(
        sum(tokens.values())
    )
    assert summary.micro_batches_without_targets == len(without)
    if run.ends:
        assert summary.first_without_targets == (min(without) if without else None)
    else:
        starving = min((run.loaders[r].starved_from, r) for r in range(s.world_size))
        assert summary.first_without_targets == min([*without, starving])
        assert summary.verdict.endswith("the epoch never ends")
    assert summary.strict_ok == (summary.first_without_targets is None)

    placed = {}
    for b in every:
        for segments in b.segments:
            for mixture_index, _, _ in segments:
                placed[mixture_index] = placed.get(mixture_index, 0) + 1
    placeable = [0 < len(ids) <= s.row_capacity for ids, _ in conversations]
    assert summary.never_placeable == placeable.count(False)
    assert summary.skipped == sum(ok and i not in placed for i, ok in enumerate(placeable))
    assert summary.placed_twice == sum(count > 1 for count in placed.values())

    built = list(build_rows(run, lambda i: conversations[i], BOS))
    assert [(r.ids.tolist(), r.mask.tolist()) for r in built] == [
        (row, mask) for b in every for row, mask in zip(b.rows, b.mask_rows, strict=True)
    ]
    return summary


# -- by hand ------------------------------------------------------------------------------------

# T = 7 (rows of 8 tokens), B = 1, W = 2, S = 2. Rank 0 fetches rows 0, 2, 4, 6, then 0, 2, ...;
# rank 1 fetches 1, 3, 5, 7, then 1, 3, ...
HAND = [5, 3, 3, 8, 2, 4, 6, 3]


def segments_of(run, rank):
    return [
        ([(s.index, s.offset, s.length) for s in row.segments], row.content_len)
        for batch in run.micro_batches(rank)
        for row in batch.rows
    ]


def test_rows_by_hand_with_two_micro_batches_per_step():
    s = PackSettings(7, 1, world_size=2, buffer_size=2, total_batch_size=2 * 7 * 2)
    run = simulate(HAND, s)
    # rank 0: 5 + 3 fill row 0; 6 + 2 fill row 1 and consumed 0 + 4×2 = 8 sets last_step
    assert segments_of(run, 0) == [([(0, 0, 5), (2, 5, 3)], 8), ([(6, 0, 6), (4, 6, 2)], 8)]
    # rank 1: 8 alone; then 4, and of rows 1 and 7 (3 tokens each) the one fetched first; the
    # one token left is padding
    assert segments_of(run, 1) == [([(3, 0, 8)], 8), ([(5, 0, 4), (1, 4, 3)], 7)]
    assert run.last_step_micro_batches == (2, 3)
    assert run.run_micro_batches == 2
    assert run.optimizer_steps == 1  # micro-batch 2 comes in step 0; the loop stops at step 1
    assert run.fed_micro_batches == (2, 2)
    assert [run.loaders[r].yielded for r in (0, 1)] == [3, 3]  # the third is fetched, not trained
    assert [b.last_step for b in run.micro_batches(0)] == [False, True]
    summary = summarize(run, [1] * 8, [0, 1, 0, 1, 0, 1, 0, 1])
    assert summary.rows == 4
    assert summary.padding_fraction == 1 / 32
    assert summary.trained_fraction == 7 / 28
    assert (summary.skipped, summary.placed_twice, summary.never_placeable) == (1, 0, 0)
    assert [(x.placed, x.skipped) for x in summary.sources] == [(4, 0), (3, 1)]
    # the four micro-batches hold 2, 2, 1 and 2 trained tokens; source 1 has 1/2, 1 and 1/2
    assert summary.sources[1].loss_share == pytest.approx((0.5 + 1 + 0.5) / 4)
    assert summary.strict_ok


def test_one_micro_batch_per_step_trains_only_what_the_loop_reads_before_last_step():
    s = PackSettings(7, 1, world_size=2, buffer_size=2)
    run = simulate(HAND, s)
    assert (run.run_micro_batches, run.optimizer_steps, run.fed_micro_batches) == (2, 1, (1, 1))
    assert segments_of(run, 1) == [([(3, 0, 8)], 8)]
    # rank 1's own loader, on to its last_step: row 1 is fetched again after the wrap
    rank_1 = RankLoader(HAND, s, 1)
    rank_1.advance_to_last_step()
    third = rank_1.micro_batch(2)
    assert third.rows[0].segments == (Segment(7, 0, 3), Segment(1, 3, 3))
    assert (third.rows[0].content_len, third.last_step) == (6, True)


def test_a_run_can_end_before_its_first_step():
    # two rows per micro-batch: rank 0 consumes the whole mixture's share in its first one
    run = simulate(HAND, PackSettings(7, 2, world_size=2, buffer_size=2))
    assert run.last_step_micro_batches[0] == 1
    assert (run.optimizer_steps, run.fed_micro_batches) == (0, (0, 0))
    summary = summarize(run, [1] * 8, [0] * 8)
    assert summary.rows == 0 and summary.strict_ok
    assert summary.verdict.startswith("the run ends after 0 optimizer steps")


def test_num_iterations_counts_micro_batches_and_the_loop_makes_one_step_fewer():
    lengths = [4] * 1000
    run = simulate(lengths, PackSettings(7, 1, num_iterations=10))
    assert (run.run_micro_batches, run.optimizer_steps) == (10, 9)
    run = simulate(lengths, PackSettings(7, 1, num_iterations=10, total_batch_size=4 * 7))
    assert (run.run_micro_batches, run.optimizer_steps) == (10, 3)
    assert run.fed_micro_batches == (12,)


# -- starvation ---------------------------------------------------------------------------------

# T = 3 (rows of 4), B = 2, S = 2: 2 then 3 are placed; rows 1 and 3 (9 tokens) fill the buffer
STARVING = [2, 9, 3, 9, 1, 9]


def test_starvation_by_hand():
    run = simulate(STARVING, PackSettings(3, 2, buffer_size=2))
    assert segments_of(run, 0) == [([(0, 0, 2)], 2), ([(2, 0, 3)], 3)]
    assert run.loaders[0].starved_from == 1
    assert not run.ends and run.optimizer_steps is None
    summary = summarize(run, [1, 0, 2, 0, 0, 0], [0] * 6)
    assert summary.first_without_targets == (1, 0)
    assert summary.verdict == (
        "NaN loss from micro-batch 1 (rank 0: all padding, its buffer holds only conversations "
        "that can never be placed); the epoch never ends"
    )
    assert not summary.strict_ok
    assert summary.never_placeable == 3


def test_starvation_with_num_iterations_ends_with_nan_losses():
    run = simulate(STARVING, PackSettings(3, 2, buffer_size=2, num_iterations=5))
    assert run.ends and run.optimizer_steps == 4
    assert segments_of(run, 0)[2:] == [([], 0)] * 6  # three micro-batches of padding
    summary = summarize(run, [1, 0, 2, 0, 0, 0], [0] * 6)
    assert summary.micro_batches_without_targets == 3
    assert summary.verdict.startswith("NaN loss from micro-batch 1 (rank 0: all padding")
    assert "the run still ends after 4 optimizer steps" in summary.verdict
    assert summary.verdict.endswith("(num_iterations)")


def test_starvation_is_found_at_once_in_a_big_mixture():
    started = time.perf_counter()
    run = simulate([5000] * 2_000_000, PackSettings(511, 32, world_size=8))
    assert run.loaders[0].starved_from == 0 and not run.ends
    # every seventh conversation too long: the buffers fill up with them after a while
    lengths = [4000 if i % 7 == 0 else 100 + i % 300 for i in range(400_000)]
    run = simulate(lengths, PackSettings(511, 8, world_size=8))
    assert not run.ends and all(loader.starved_from for loader in run.loaders)
    assert time.perf_counter() - started < 2


def test_untrained_conversations_give_nan_from_the_first_micro_batch():
    run = simulate([3] * 20, PackSettings(7, 2))
    summary = summarize(run, [0] * 20, [0] * 20)
    assert summary.ends and not summary.strict_ok
    assert summary.micro_batches_without_targets == run.fed_micro_batches[0]
    assert summary.verdict.startswith(
        "NaN loss from micro-batch 0 (rank 0: none of its conversations has a trained token)"
    )


def test_a_mixture_nanochat_cannot_load_is_a_verdict():
    summary = summarize(simulate([], PackSettings(7, 2)), [], [])
    assert summary.verdict == (
        "the target has no conversations: nanochat's loader asserts dataset_size > 0"
    )
    assert not summary.strict_ok and summary.rows == 0
    summary = summarize(simulate([3, 3], PackSettings(7, 2, world_size=3)), [1, 1], [0, 0])
    assert summary.verdict.startswith("world_size 3 is more than the 2 conversations")


def test_val_reads_eval_tokens_worth_of_micro_batches_and_never_ends_the_epoch():
    s = PackSettings(7, 1, world_size=2, buffer_size=2, split="val", eval_tokens=5 * 14 + 13)
    run = simulate(HAND, s)
    assert run.fed_micro_batches == (5, 5)
    assert run.last_step_micro_batches == (None, None)
    summary = summarize(run, [1] * 8, [0] * 8)
    assert (
        summary.verdict == "each evaluation reads 5 micro-batches per rank, all with valid targets"
    )
    assert summary.sources[0].loss_share == 1.0


# -- settings and rows --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_seq_len": 0}, "max_seq_len must be 1 or more, got 0"),
        ({"device_batch_size": -1}, "device_batch_size must be 1 or more, got -1"),
        ({"world_size": 0}, "world_size must be 1 or more, got 0"),
        ({"buffer_size": 0}, "buffer_size must be 1 or more, got 0"),
        ({"split": "test"}, "split must be 'train' or 'val', got 'test'"),
        ({"total_batch_size": 100}, "total_batch_size 100 is not a positive multiple of"),
        ({"total_batch_size": 0}, "total_batch_size 0 is not a positive multiple of"),
        ({"eval_tokens": -1}, "eval_tokens must be 0 or more, got -1"),
    ],
)
def test_bad_settings_are_usage_errors(changes, message):
    with pytest.raises(UsageError, match=message) as error:
        PackSettings(**{"max_seq_len": 8, "device_batch_size": 4, **changes})
    assert "\n" not in str(error.value)
    if "total_batch_size" in changes:
        assert "nanochat's chat_sft.py asserts it is" in str(error.value)


def test_rows_of_one_rank_and_bad_requests():
    run = simulate(HAND, PackSettings(7, 1, world_size=2, buffer_size=2, total_batch_size=28))

    def ids_and_mask(index):
        return rendered(index, HAND[index], 1)

    [row] = build_rows(run, ids_and_mask, BOS, rank=1, row=1)
    assert row.layout.segments == (Segment(5, 0, 4), Segment(1, 4, 3))
    assert row.ids.tolist() == [BOS, 6001, 6002, 6003, BOS, 2001, 2002, BOS]
    assert row.mask.tolist() == [0, 0, 0, 1, 0, 0, 1, 0]
    assert [r.layout.rank for r in build_rows(run, ids_and_mask, BOS)] == [0, 0, 1, 1]
    with pytest.raises(UsageError, match="rank 2 is not one of the 2 ranks"):
        build_rows(run, ids_and_mask, BOS, rank=2)
    with pytest.raises(UsageError, match="row 2 is past the run: rank 0 is fed 2 rows"):
        build_rows(run, ids_and_mask, BOS, rank=0, row=2)
    with pytest.raises(ValueError, match="mixture row 0 renders to 4 ids"):
        list(build_rows(run, lambda i: rendered(i, HAND[i] - 1, 0), BOS))


def test_lengths_from_numpy_and_lists_pack_alike():
    import numpy as np

    s = PackSettings(7, 2, world_size=2, buffer_size=3)
    lengths = [1 + (i * 7) % 9 for i in range(50)]
    assert segments_of(simulate(np.array(lengths), s), 1) == segments_of(simulate(lengths, s), 1)
