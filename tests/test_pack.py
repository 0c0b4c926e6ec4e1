"""`taskcli pack` and `export -f packed`: nanochat's SFT loader over a target, through the CLI.

The `bytes` tokenizer (tests/tokenizers_data.py) has no merges: a conversation of one user
message of x bytes and one assistant message of y bytes renders to x + y + 5 tokens (<|bos|>,
<|user_start|>, x, <|user_end|>, <|assistant_start|>, y, <|assistant_end|>), y + 1 of them
trained. So every figure below is worked out by hand; the replay itself is held to a line-by-line
transcription of nanochat's loader in tests/test_packing.py.
"""

import json
import multiprocessing
import time
from pathlib import Path

import hubdata
import numpy as np
import pyarrow.parquet as pq
import pytest
from rich.console import Console
from specfiles import write_spec
from typer.testing import CliRunner

from taskcli.cli import app
from taskcli.pack import Measurement
from taskcli.targets import as_plan, open_target
from taskcli.training import render as render_module
from taskcli.training.lengths_cache import LengthsCache
from taskcli.training.packing import PackSettings, build_rows, simulate
from taskcli.training.render import render
from taskcli.training.tokenizer import load_tokenizer
from taskcli.ui import console

runner = CliRunner()
BOS = 256
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(*args: str):
    return runner.invoke(app, list(args))


def conversation(length: int, trained: int) -> list[dict[str, str]]:
    """A conversation the bytes tokenizer renders to `length` tokens, `trained` of them trained."""
    user = length - trained - 4
    assert user >= 1 and trained >= 2
    return [
        {"role": "user", "content": "u" * user},
        {"role": "assistant", "content": "a" * (trained - 1)},
    ]


def write_chats(path: Path, shapes: list[tuple[int, int]]) -> Path:
    path.write_text("".join(json.dumps(conversation(*shape)) + "\n" for shape in shapes))
    return path


@pytest.fixture
def bytes_spec(tokenizer_folders):
    return str(tokenizer_folders["bytes"])


# (length, trained): A holds rows 0-2 of the sequence, B rows 3-5
A_SHAPES = [(20, 9), (12, 5), (16, 7)]
B_SHAPES = [(8, 3), (24, 11), (7, 2)]


@pytest.fixture
def two_sources(tmp_path):
    write_chats(tmp_path / "a.jsonl", A_SHAPES)
    write_chats(tmp_path / "b.jsonl", B_SHAPES)
    return write_spec(
        tmp_path,
        """
        mode: sequence
        tasks:
          - {task: customjson, path: a.jsonl}
          - {task: customjson, path: b.jsonl}
        """,
    )


HAND_CHECKED = ["--max-seq-len", "31", "--device-batch-size", "1", "--buffer-size", "2"]


def pack_json(target, tokenizer, *args):
    result = run("pack", str(target), "-t", tokenizer, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_report_figures_worked_out_by_hand(two_sources, bytes_spec):
    # Rows of 32 tokens, a buffer of 2, one row per micro-batch. Micro-batch 1: 20 (row 0),
    # then 12 (row 1) fills it. Micro-batch 2: 16, 8, 7, then 1 token of padding (24 and the
    # wrapped-around 20 are too long). Micro-batch 3: 24 and 24 tokens of padding; consumed
    # reaches 6: last_step. The loop fetched micro-batch 1 before it and trains 1 and 2.
    report = pack_json(two_sources, bytes_spec, *HAND_CHECKED)
    assert report["conversations"] == 6
    assert (report["run_micro_batches"], report["optimizer_steps"]) == (3, 2)
    assert report["ranks"] == [
        {"rank": 0, "last_step_micro_batch": 3, "fed_micro_batches": 2, "starved_from": None}
    ]
    assert report["rows"] == 2
    assert report["padding_fraction"] == pytest.approx(1 / 64)
    assert report["trained_fraction"] == pytest.approx((9 + 5 + 7 + 3 + 2) / (2 * 31))
    assert (report["never_placeable"], report["skipped"], report["placed_twice"]) == (0, 1, 0)
    a, b = report["sources"]
    assert (a["name"], a["placed"], a["trained_tokens"]) == ("tasks[0] (customjson)", 3, 21)
    assert (b["placed"], b["trained_tokens"], b["skipped"]) == (2, 5, 1)
    assert a["row_share"] == pytest.approx(3 / 5) and b["token_share"] == pytest.approx(5 / 26)
    # the loss is a mean per micro-batch: A is all of micro-batch 1's, 7 of 12 in micro-batch 2
    assert a["loss_share"] == pytest.approx((1 + 7 / 12) / 2)
    assert b["loss_share"] == pytest.approx((5 / 12) / 2)
    assert report["strict_ok"] and report["verdict"].startswith("the run ends after 2 optimizer")
    assert report["settings"]["total_batch_size"] == 31  # B·T·W by default
    assert report["tokenizer"]["special_ids"]["<|bos|>"] == BOS


def test_the_report_for_people(two_sources, bytes_spec, monkeypatch):
    monkeypatch.setattr(console, "stdout", Console(width=80))
    result = run("pack", str(two_sources), "-t", bytes_spec, *HAND_CHECKED)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for piece in (
        "Packing mixture.yaml",
        "sft_data_generator_bos_bestfit @ 92d63d4",
        "T=31, B=1, W=1, S=2",
        "micro-batches until last_step",
        "Per rank",
        "Share per source after packing",
        "Conversations left out or taken twice",
        "tasks[1] (customjson)",
        "Verdict: the run ends after 2 optimizer steps",
        "0 source(s) from the lengths cache, 2 rendered",
    ):
        assert piece in out, piece
    assert "1.6%" in out  # the padding
    assert max(map(len, out.splitlines())) <= 80


def test_gradient_accumulation_and_num_iterations(two_sources, bytes_spec):
    # G = 2 micro-batches per step: last_step comes with micro-batch 3, (3 - 1) / 2 = 1 step
    report = pack_json(two_sources, bytes_spec, *HAND_CHECKED, "--total-batch-size", "62")
    assert (report["optimizer_steps"], report["settings"]["micro_batches_per_step"]) == (1, 2)
    # num_iterations counts micro-batches: 2 sets last_step with micro-batch 2, so 1 step
    report = pack_json(two_sources, bytes_spec, *HAND_CHECKED, "--num-iterations", "2")
    assert (report["run_micro_batches"], report["optimizer_steps"]) == (2, 1)
    report = pack_json(two_sources, bytes_spec, *HAND_CHECKED, "--num-iterations", "1")
    assert report["optimizer_steps"] == 0 and report["rows"] == 0
    assert report["verdict"] == (
        "the run ends after 0 optimizer steps (1 micro-batch each): rank 0 sets last_step with "
        "micro-batch 1 (num_iterations): nothing is trained"
    )


def test_one_packed_row(two_sources, bytes_spec, monkeypatch):
    row = pack_json(two_sources, bytes_spec, *HAND_CHECKED, "--row", "1")
    assert (row["rank"], row["micro_batch"], row["row"], row["row_number"]) == (0, 1, 0, 1)
    assert (row["content_len"], row["padding"], row["valid_targets"]) == (31, 1, 7 + 3 + 2)
    assert [
        (s["index"], s["entry"], s["task"], s["example"], s["offset"], s["length"], s["trained"])
        for s in row["segments"]
    ] == [
        (2, 0, "customjson", 2, 0, 16, 7),
        (3, 1, "customjson", 0, 16, 8, 3),
        (5, 1, "customjson", 2, 24, 7, 2),
    ]
    assert row["segments"][1]["params"]["path"].endswith("b.jsonl")
    assert "ids" not in row
    monkeypatch.setattr(console, "stdout", Console(width=80))
    people = run("pack", str(two_sources), "-t", bytes_spec, *HAND_CHECKED, "--row", "1")
    assert people.exit_code == 0, people.output
    assert "Row 1 of rank 0 (micro-batch 1, row 0): 31 of 32 tokens, 1 padding" in people.stdout
    assert "padding (<|bos|>, masked)" in people.stdout


def test_one_packed_row_as_tokens(two_sources, bytes_spec, tokenizer_folders, monkeypatch):
    row = pack_json(two_sources, bytes_spec, *HAND_CHECKED, "--row", "1", "--tokens")
    tokenizer = load_tokenizer(bytes_spec)
    expected_ids, expected_mask = [], []
    for length, trained in (A_SHAPES[2], B_SHAPES[0], B_SHAPES[2]):
        ids, mask = render({"messages": conversation(length, trained)}, tokenizer)
        expected_ids += ids
        expected_mask += mask
    assert row["ids"] == [*expected_ids, BOS]  # one token of padding, <|bos|>
    assert row["mask"] == [*expected_mask, 0]
    monkeypatch.setattr(console, "stdout", Console(width=80))
    args = ["pack", str(two_sources), "-t", bytes_spec, *HAND_CHECKED, "--row", "1", "--tokens"]
    people = run(*args)
    out = people.stdout
    assert people.exit_code == 0, people.output
    assert "segment 0  ·  row tokens 0 to 15  ·  mixture row 2" in out
    assert "segment 2  ·  row tokens 24 to 30  ·  mixture row 5" in out
    assert "padding  ·  row tokens 31 to 31" in out
    assert "<|bos|> × 1, masked: their targets are -1" in out
    assert out.count("⟦<|bos|>·<|user_start|>·u") == 3  # each conversation's tokens


def test_rows_of_other_ranks(tmp_path, two_sources, bytes_spec):
    # rank 1 of 2 reads rows 1, 3 and 5 (12, 8, 7 tokens) and the wrapped-around 12: its first
    # micro-batch alone takes consumed from 1 to 9, past 6: last_step, and no optimizer step
    report = pack_json(two_sources, bytes_spec, *HAND_CHECKED, "--world-size", "2")
    assert report["optimizer_steps"] == 0 and len(report["ranks"]) == 2
    again = run(
        "pack", str(two_sources), "-t", bytes_spec, *HAND_CHECKED, "--world-size", "2",
        "--row", "0", "--rank", "1",
    )  # fmt: skip
    assert again.exit_code == 2
    assert "row 0 is past the run: rank 1 is fed no rows" in again.stderr
    path = write_chats(tmp_path / "many.jsonl", [(10, 3)] * 20)
    sizes = ["--max-seq-len", "31", "--device-batch-size", "1", "--world-size", "2"]
    report = pack_json(path, bytes_spec, *sizes)
    assert [rank["fed_micro_batches"] for rank in report["ranks"]] == [3, 3]
    row = pack_json(path, bytes_spec, *sizes, "--row", "2", "--rank", "1")
    assert (row["rank"], row["micro_batch"]) == (1, 2)
    # rank 1 reads mixture rows 1, 3, 5, ...: three of 10 tokens to a row
    assert [s["index"] for s in row["segments"]] == [13, 15, 17]


def starving(tmp_path: Path) -> Path:
    """A few short conversations, then many too long for rows of 17 tokens."""
    return write_chats(tmp_path / "long.jsonl", [(10, 3)] * 3 + [(40, 20)] * 30)


def test_starvation_is_a_verdict_in_bold_red_and_ends_quickly(tmp_path, bytes_spec):
    started = time.perf_counter()
    args = ["--max-seq-len", "16", "--device-batch-size", "2", "--buffer-size", "4"]
    report = pack_json(starving(tmp_path), bytes_spec, *args)
    assert time.perf_counter() - started < 10
    assert not report["ends"] and report["optimizer_steps"] is None
    # micro-batch 0: rows [10] and [10], micro-batch 1: [10] then the buffer holds 4 long ones
    assert report["ranks"][0]["starved_from"] == 2
    assert report["first_without_targets"] == {"micro_batch": 2, "rank": 0}
    assert report["verdict"] == (
        "NaN loss from micro-batch 2 (rank 0: all padding, its buffer holds only conversations "
        "that can never be placed); the epoch never ends"
    )
    assert report["never_placeable"] == 30 and not report["strict_ok"]
    strict = run("pack", str(tmp_path / "long.jsonl"), "-t", bytes_spec, *args, "--strict")
    assert strict.exit_code == 1
    assert "Verdict: NaN loss from micro-batch 2" in strict.stdout
    # num_iterations still ends a starved run: its padding micro-batches are counted, not laid out
    started = time.perf_counter()
    endless = pack_json(tmp_path / "long.jsonl", bytes_spec, *args, "--num-iterations", str(10**12))
    assert time.perf_counter() - started < 10
    assert endless["optimizer_steps"] == 10**12 - 1
    assert endless["micro_batches_without_targets"] == 10**12 - 1 - 2
    assert endless["verdict"].startswith("NaN loss from micro-batch 2")


def test_starving_at_micro_batch_zero(tmp_path, bytes_spec):
    path = write_chats(tmp_path / "all-long.jsonl", [(40, 20)] * 5)
    report = pack_json(path, bytes_spec, "--max-seq-len", "16", "--device-batch-size", "4")
    assert report["ranks"][0]["starved_from"] == 0 and report["rows"] == 0
    assert report["verdict"].startswith("NaN loss from micro-batch 0")
    assert report["verdict"].endswith("the epoch never ends")
    # the render cut at T + 1 (the fix proposed upstream) makes them fit, cut
    fixed = pack_json(
        path, bytes_spec, "--max-seq-len", "16", "--device-batch-size", "4",
        "--render-max-tokens", "17",
    )  # fmt: skip
    assert fixed["ends"] and fixed["never_placeable"] == 0


def test_no_trained_tokens_is_a_verdict(tmp_path, bytes_spec):
    path = write_chats(tmp_path / "chats.jsonl", [(10, 3)] * 6)
    args = ["--max-seq-len", "16", "--device-batch-size", "1", "--render-max-tokens", "3"]
    report = pack_json(path, bytes_spec, *args)  # cut before any assistant token
    assert report["trained_fraction"] == 0
    assert report["verdict"].startswith(
        "NaN loss from micro-batch 0 (rank 0: none of its conversations has a trained token)"
    )
    assert run("pack", str(path), "-t", bytes_spec, *args, "--strict").exit_code == 1
    ok = run("pack", str(path), "-t", bytes_spec, "--max-seq-len", "16", "--device-batch-size",
             "1", "--strict")  # fmt: skip
    assert ok.exit_code == 0, ok.output


def test_the_val_split_reads_one_evaluation(two_sources, bytes_spec):
    args = [*HAND_CHECKED, "--split", "val", "--eval-tokens", str(31 * 4)]
    report = pack_json(two_sources, bytes_spec, *args)
    assert report["ranks"][0]["fed_micro_batches"] == 4 and report["rows"] == 4
    assert report["verdict"] == (
        "each evaluation reads 4 micro-batches per rank, all with valid targets"
    )


def test_a_target_nanochat_could_not_start(tmp_path, bytes_spec):
    path = write_chats(tmp_path / "two.jsonl", [(10, 3)] * 2)
    args = ["--max-seq-len", "16", "--device-batch-size", "1", "--world-size", "4"]
    report = pack_json(path, bytes_spec, *args)
    assert report["failure"].startswith("world_size 4 is more than the 2 conversations")
    assert run("pack", str(path), "-t", bytes_spec, *args, "--strict").exit_code == 1
    people = run("pack", str(path), "-t", bytes_spec, *args)
    assert people.exit_code == 0 and "Verdict: world_size 4 is more than" in people.stdout
    empty = write_spec(tmp_path, "tasks: [{task: customjson, path: two.jsonl, stop: 0}]\n")
    report = pack_json(empty, bytes_spec, "--max-seq-len", "16", "--device-batch-size", "1")
    assert report["verdict"].startswith("the target has no conversations")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-seq-len", "0"], "max_seq_len must be 1 or more, got 0"),
        (["--device-batch-size", "-1"], "device_batch_size must be 1 or more, got -1"),
        (["--world-size", "0"], "world_size must be 1 or more, got 0"),
        (["--buffer-size", "0"], "buffer_size must be 1 or more, got 0"),
        (["--total-batch-size", "100"], "nanochat's chat_sft.py asserts it is"),
        (["--split", "test"], "split must be 'train' or 'val', got 'test'"),
        (["--eval-tokens", "-5"], "eval_tokens must be 0 or more"),
        (["--split", "val", "--eval-tokens", str(10**11)], "the replay stops at 2,097,152,000"),
        (["--rank", "1", "--row", "0"], "rank 1 is not one of the 1 ranks (0 to 0)"),
        (["--row", "99"], "row 99 is past the run: rank 0 is fed 2 rows (0 to 1)"),
        (["--rank", "0"], "--rank is about one packed row: give --row N too"),
        (["--tokens"], "--tokens is about one packed row: give --row N too"),
        (["--render-max-tokens", "-1"], "-1 is not in the range x>=0"),
    ],
)
def test_bad_input_is_one_usage_line(two_sources, bytes_spec, args, message):
    defaults = dict(zip(HAND_CHECKED[::2], HAND_CHECKED[1::2], strict=True))
    for flag in args[::2]:
        defaults.pop(flag, None)
    given = [part for pair in defaults.items() for part in pair]
    result = run("pack", str(two_sources), "-t", bytes_spec, *given, *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("Error: ") and message in lines[0], lines
    assert len(lines) <= 2 and (len(lines) == 1 or lines[1].startswith("Hint: "))
    assert "Traceback" not in result.output


def test_a_total_batch_size_error_names_the_flag(two_sources, bytes_spec):
    result = run("pack", str(two_sources), "-t", bytes_spec, *HAND_CHECKED, "--total-batch-size",
                 "40")  # fmt: skip
    assert "Hint: Set it with --total-batch-size." in result.stderr


def test_pack_needs_a_tokenizer_and_the_sizes(two_sources, monkeypatch):
    monkeypatch.delenv("TASKCLI_TOKENIZER", raising=False)
    result = run("pack", str(two_sources), "--max-seq-len", "31", "--device-batch-size", "1")
    assert result.exit_code == 2 and "pack renders conversations with a tokenizer" in result.stderr
    missing = run("pack", str(two_sources), "-t", "x", "--max-seq-len", "31")
    assert missing.exit_code == 2 and "Missing option '--device-batch-size'" in missing.stderr


# --- the lengths cache -------------------------------------------------------------------------


@pytest.fixture
def renders(monkeypatch):
    """Counts the sources rendered (calls of render_batches) in this process."""
    calls = []
    real = render_module.render_batches

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(render_module, "render_batches", counting)
    return calls


def test_a_second_pack_with_other_sizes_renders_nothing(two_sources, bytes_spec, renders):
    first = pack_json(two_sources, bytes_spec, *HAND_CHECKED)
    assert len(renders) == 2 and first["cache"]["rendered"] == 2
    other = ["--max-seq-len", "20", "--device-batch-size", "3", "--world-size", "2"]
    second = pack_json(two_sources, bytes_spec, *other, "--buffer-size", "5")
    assert len(renders) == 2, "nothing rendered again"
    assert second["cache"] == {"enabled": True, "from_cache": 2, "rendered": 0, "not_cacheable": 0}
    again = pack_json(two_sources, bytes_spec, *HAND_CHECKED)
    assert {k: v for k, v in again.items() if k != "cache"} == {
        k: v for k, v in first.items() if k != "cache"
    }


def test_the_cache_misses_when_a_file_the_tokenizer_or_the_cut_changes(
    two_sources, tmp_path, bytes_spec, tokenizer_folders, renders
):
    pack_json(two_sources, bytes_spec, *HAND_CHECKED)
    assert len(renders) == 2
    write_chats(tmp_path / "b.jsonl", [(8, 3), (24, 11), (9, 2)])  # b changes, a does not
    changed = pack_json(two_sources, bytes_spec, *HAND_CHECKED)
    assert len(renders) == 3 and changed["cache"]["from_cache"] == 1
    # b's rows 8, 24 and now 9 tokens: it is fed 8 (3 trained) and 24 (11) before last_step
    assert changed["sources"][1]["trained_tokens"] == 3 + 11
    pack_json(two_sources, str(tokenizer_folders["nanochat"]), *HAND_CHECKED)
    assert len(renders) == 5  # another tokenizer: both again
    pack_json(two_sources, bytes_spec, *HAND_CHECKED, "--render-max-tokens", "100")
    assert len(renders) == 7  # another cut: both again
    pack_json(two_sources, bytes_spec, *HAND_CHECKED, "--render-max-tokens", "100")
    assert len(renders) == 7


def test_no_cache_renders_and_stores_nothing(two_sources, bytes_spec, renders, tmp_path):
    folder = LengthsCache().folder
    report = pack_json(two_sources, bytes_spec, *HAND_CHECKED, "--no-cache")
    assert report["cache"]["enabled"] is False and len(renders) == 2
    assert not folder.exists() or not list(folder.glob("*.lengths"))
    pack_json(two_sources, bytes_spec, *HAND_CHECKED, "--no-cache")
    assert len(renders) == 4


def test_standard_input_is_never_cached(two_sources, tmp_path, bytes_spec, renders):
    data = (tmp_path / "a.jsonl").read_text()
    args = ["pack", "-", "-t", bytes_spec, *HAND_CHECKED, "--json"]
    for _ in range(2):
        result = runner.invoke(app, args, input=data)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["cache"]["not_cacheable"] == 1
    assert len(renders) == 2


def test_a_damaged_cache_entry_is_a_miss_and_is_replaced(two_sources, bytes_spec, renders):
    pack_json(two_sources, bytes_spec, *HAND_CHECKED)
    entries = sorted(LengthsCache().folder.glob("*.lengths"))
    assert len(entries) == 2
    entries[0].write_bytes(entries[0].read_bytes()[:-3])  # cut short
    report = pack_json(two_sources, bytes_spec, *HAND_CHECKED)
    assert len(renders) == 3 and report["cache"]["from_cache"] == 1
    pack_json(two_sources, bytes_spec, *HAND_CHECKED)
    assert len(renders) == 3  # rewritten whole


def test_the_cache_is_bounded_and_forgets_the_least_recently_used(tmp_path):
    cache = LengthsCache(tmp_path / "lengths", max_bytes=2_000)
    numbers = np.arange(100, dtype=np.int32)

    def store(name: str) -> None:
        with cache.lock({"k": name}):  # as a run that renders does
            cache.put({"k": name}, numbers, numbers // 2)
        time.sleep(0.02)  # distinct modification times

    for name in ("a", "b", "c"):
        store(name)
    assert cache.get({"k": "a"}) is None  # each entry is ~840 bytes: the oldest went
    assert cache.get({"k": "b"}) is not None  # used now: the next to go is c
    time.sleep(0.02)
    store("d")
    assert cache.get({"k": "c"}) is None and cache.get({"k": "b"}) is not None
    lengths, trained = cache.get({"k": "d"})
    assert (lengths == numbers).all() and (trained == numbers // 2).all()
    left = sorted(path.name for path in (tmp_path / "lengths").iterdir())
    kept = [cache.path({"k": name}).name for name in ("b", "d")]
    # no temporary file left behind, and the evicted entries' locks went with them
    assert left == sorted([*kept, *(name + ".lock" for name in kept), ".evict.lock"])


def test_an_entry_under_another_key_is_not_trusted(tmp_path):
    cache = LengthsCache(tmp_path)
    cache.put({"k": 1}, np.array([3, 4]), np.array([1, 2]))
    cache.path({"k": 2}).write_bytes(cache.path({"k": 1}).read_bytes())
    assert cache.get({"k": 2}) is None
    cache.put({"k": 3}, np.array([3, 4]), np.array([5, 2]))  # trained > length: not sane
    assert cache.get({"k": 3}) is None


def _measure_in_a_process(spec: str, tokenizer: str, log: str) -> None:
    """One run's measurement, as a separate process would make it; each render and each wait
    is logged to `log`."""
    real = render_module.render_batches

    def slow(*args, **kwargs):
        with open(log, "a") as out:
            out.write("render\n")
        time.sleep(1.0)  # long enough for the other process to find the lock taken
        return real(*args, **kwargs)

    render_module.render_batches = slow
    plan = as_plan(open_target(spec))
    measured = Measurement(plan, load_tokenizer(tokenizer), 2048, LengthsCache())

    def waited():
        with open(log, "a") as out:
            out.write("wait\n")

    measured.complete(workers=1, on_wait=waited)
    lengths = measured.in_mixture_order()[0]
    with open(log, "a") as out:
        out.write("lengths " + " ".join(map(str, lengths.tolist())) + "\n")


def test_concurrent_runs_render_a_source_once(tmp_path, bytes_spec):
    spec = write_spec(tmp_path, "tasks: [{task: customjson, path: a.jsonl}]\n")
    write_chats(tmp_path / "a.jsonl", A_SHAPES)
    log = tmp_path / "log"
    # spawned, not forked from this process, which runs threads (Python 3.12+ warns of them)
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_measure_in_a_process, args=(str(spec), bytes_spec, str(log)))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
        time.sleep(0.3)
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    lines = log.read_text().splitlines()
    assert lines.count("render") == 1 and lines.count("wait") == 1
    results = {line for line in lines if line.startswith("lengths")}
    assert len(results) == 1  # both runs got the same numbers


# --- the packed export -------------------------------------------------------------------------


def nanochat_batch(ids: np.ndarray, mask: np.ndarray) -> tuple[list[int], list[int]]:
    """nanochat's inputs and targets of one row, from the row's ids and mask."""
    inputs = ids[:-1].tolist()
    targets = [-1 if m == 0 else int(t) for t, m in zip(ids[1:], mask[1:], strict=True)]
    return inputs, targets


def test_the_packed_export_is_the_loaders_rows(tmp_path, bytes_spec):
    write_chats(tmp_path / "a.jsonl", [(n % 17 + 12, n % 5 + 2) for n in range(40)])
    write_chats(tmp_path / "b.jsonl", [(n % 23 + 9, 3) for n in range(25)])
    spec = write_spec(
        tmp_path,
        """
        seed: 7
        tasks:
          - {task: customjson, path: a.jsonl, repeat: 2}
          - {task: customjson, path: b.jsonl}
        """,
    )
    out = tmp_path / "packed.parquet"
    sizes = ["--max-seq-len", "40", "--device-batch-size", "3", "--world-size", "3"]
    args = ["export", str(spec), "-f", "packed", "-t", bytes_spec, *sizes, "-o", str(out)]
    result = run(*args)
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.column_names == [
        "rank", "micro_batch", "row", "ids", "mask", "content_len", "segments"
    ]  # fmt: skip
    assert str(table.schema.field("ids").type) == "list<element: int32 not null>"
    assert str(table.schema.field("mask").type) == "list<element: int8 not null>"

    # The same rows, built from the loader's replay and conversations rendered one by one.
    tokenizer = load_tokenizer(bytes_spec)
    plan = as_plan(open_target(str(spec)))
    owners, examples = plan.placement(range(plan.total))
    renderings = [
        render(plan.tasks[owner].get_example(example), tokenizer)
        for owner, example in zip(owners.tolist(), examples.tolist(), strict=True)
    ]
    settings = PackSettings(40, 3, world_size=3)
    packed_run = simulate([len(r.ids) for r in renderings], settings)
    expected = list(build_rows(packed_run, lambda i: tuple(renderings[i]), BOS))
    rows = table.to_pylist()
    assert len(rows) == len(expected) == sum(packed_run.fed_micro_batches) * 3
    for row, built in zip(rows, expected, strict=True):
        layout = built.layout
        assert (row["rank"], row["micro_batch"], row["row"]) == (
            layout.rank, layout.micro_batch, layout.row
        )  # fmt: skip
        assert row["content_len"] == layout.content_len
        ids, mask = np.array(row["ids"]), np.array(row["mask"])
        assert nanochat_batch(ids, mask) == nanochat_batch(built.ids, built.mask)
        assert [(s["index"], s["offset"], s["length"]) for s in row["segments"]] == [
            (s.index, s.offset, s.length) for s in layout.segments
        ]
        for segment in row["segments"]:
            entry = plan.spec.entries[owners[segment["index"]]]
            assert (segment["task"], segment["example"]) == (
                entry.task, int(examples[segment["index"]])
            )  # fmt: skip
    manifest = json.loads((tmp_path / "packed.parquet.manifest.json").read_text())
    packing = manifest["packing"]
    assert packing["loader"].endswith("sft_data_generator_bos_bestfit @ 92d63d4")
    assert (packing["max_seq_len"], packing["device_batch_size"], packing["world_size"]) == (
        40, 3, 3
    )  # fmt: skip
    assert packing["buffer_size"] == 100 and packing["written_up_to"] == "last_step"
    assert manifest["tokens"]["tokenizer"]["special_ids"]["<|bos|>"] == BOS
    assert manifest["rows"] == len(rows) and manifest["format"] == "packed"
    assert sum(entry["written"] for entry in manifest["entries"]) == packing["placements"]

    first = out.read_bytes()
    again = run(*args, "--no-cache")
    assert again.exit_code == 0, again.output
    assert out.read_bytes() == first  # byte-identical rerun
    assert manifest == json.loads((tmp_path / "packed.parquet.manifest.json").read_text())


def test_a_starving_export_stops_where_the_padding_begins(tmp_path, bytes_spec):
    path = starving(tmp_path)
    out = tmp_path / "starved.parquet"
    result = run(
        "export", str(path), "-f", "packed", "-t", bytes_spec, "--max-seq-len", "16",
        "--device-batch-size", "2", "--buffer-size", "4", "-o", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == 4  # micro-batches 0 and 1; from 2 on every row is padding
    assert rows[-1]["content_len"] == 0 and rows[-1]["segments"] == []
    assert rows[-1]["ids"] == [BOS] * 17
    packing = json.loads(out.with_name("starved.parquet.manifest.json").read_text())["packing"]
    assert packing["written_up_to"] == "starvation" and packing["ends"] is False
    assert packing["ranks"][0]["starved_from"] == 2
    assert packing["verdict"].startswith("NaN loss from micro-batch 2")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-seq-len", "16"], "the packed format needs the loader's sizes"),
        (["--max-seq-len", "16", "--device-batch-size", "0"], "device_batch_size must be 1"),
        (["--max-seq-len", "16", "--device-batch-size", "2", "--limit", "3"], "--limit"),
        (["-f", "tokens", "--max-seq-len", "16"], "--max-seq-len: only for --format packed"),
    ],
)
def test_packed_export_usage_errors(tmp_path, bytes_spec, args, message):
    path = write_chats(tmp_path / "chats.jsonl", [(10, 3)] * 4)
    fmt = [] if "-f" in args else ["-f", "packed"]
    out = str(tmp_path / "out.parquet")
    result = run("export", str(path), *fmt, "-t", bytes_spec, *args, "-o", out)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert not (tmp_path / "out.parquet").exists()


def test_the_packed_format_writes_parquet_only(tmp_path, bytes_spec):
    path = write_chats(tmp_path / "chats.jsonl", [(10, 3)] * 4)
    args = ["-f", "packed", "-t", bytes_spec, "--max-seq-len", "16", "--device-batch-size", "2"]
    result = run("export", str(path), *args, "-o", "-")
    assert result.exit_code == 2 and "the packed format is written as Parquet only" in result.stderr


# --- nanochat's task cache as a data dir, and its mixtures -------------------------------------


def write_nanochat_cache(root: Path) -> dict:
    """GSM8K main train/test and SmolTalk train/test as nanochat's task cache keeps them."""
    gsm8k = {
        split: [hubdata.gsm8k_row(n + offset, False) for n in range(12)]
        for split, offset in (("train", 0), ("test", 500))
    }
    smoltalk = {
        split: [hubdata.smoltalk_row(n + offset) for n in range(10)]
        for split, offset in (("train", 0), ("test", 1000))
    }
    for split, rows in gsm8k.items():
        hubdata.write_nanochat_split(
            root, "openai/gsm8k", "main", split, rows, hubdata.GSM8K_SCHEMA
        )
    for split, rows in smoltalk.items():
        hubdata.write_nanochat_split(
            root, "HuggingFaceTB/smol-smoltalk", "default", split, rows, hubdata.SMOLTALK_SCHEMA
        )
    return {"gsm8k": gsm8k, "smoltalk": smoltalk}


def test_nanochat_task_cache_reads_like_an_hf_download(tmp_path):
    task_data = tmp_path / "nanochat" / "task_data"
    written = write_nanochat_cache(task_data)
    hf = tmp_path / "hf"
    hubdata.write_repo(
        hf, "openai/gsm8k", {"main": written["gsm8k"]}, {"main": hubdata.GSM8K_SCHEMA}
    )
    for data_dir in (task_data, tmp_path / "nanochat"):  # task_data, or the base dir above it
        shown = run("show", "gsm8k", "--split", "train", "-n", "12", "--json", "--data-dir",
                    str(data_dir))  # fmt: skip
        assert shown.exit_code == 0, shown.output
        same = run("show", "gsm8k", "--split", "train", "-n", "12", "--json", "--data-dir",
                   str(hf))  # fmt: skip
        assert shown.stdout == same.stdout


def test_an_incomplete_nanochat_copy_is_a_clear_error(tmp_path):
    task_data = tmp_path / "task_data"
    folder = hubdata.write_nanochat_split(
        task_data, "openai/gsm8k", "main", "train",
        [hubdata.gsm8k_row(n, False) for n in range(4)], hubdata.GSM8K_SCHEMA, manifest=False,
    )  # fmt: skip
    result = run("show", "gsm8k", "--split", "train", "--data-dir", str(task_data))
    assert result.exit_code == 1
    assert f"{folder} has no manifest.json" in result.stderr and "incomplete" in result.stderr
    other = run("show", "gsm8k", "--split", "test", "--data-dir", str(task_data))
    assert other.exit_code == 1 and "has no copy of subset 'main', split 'test'" in other.stderr
    (folder / "manifest.json").write_text('["../../../etc/x.parquet"]')
    hostile = run("show", "gsm8k", "--split", "train", "--data-dir", str(task_data))
    assert hostile.exit_code == 1 and "is not a parquet file name" in hostile.stderr
    (folder / "manifest.json").write_text('["00000.parquet", "00007.parquet"]')
    missing = run("show", "gsm8k", "--split", "train", "--data-dir", str(task_data))
    assert missing.exit_code == 1 and "lists 00007.parquet, which is not there" in missing.stderr
    assert all("Traceback" not in r.output for r in (result, other, hostile, missing))


def test_nanochat_mixtures_pack_from_its_task_cache(tmp_path, bytes_spec):
    task_data = tmp_path / "task_data"
    write_nanochat_cache(task_data)
    mmlu = [hubdata.mmlu_aux_row(n) for n in range(8)]
    test = [hubdata.mmlu_row("world_religions", "test", n) for n in range(6)]
    hubdata.write_nanochat_split(
        task_data, "cais/mmlu", "all", "auxiliary_train", mmlu, hubdata.MMLU_SCHEMA
    )
    hubdata.write_nanochat_split(task_data, "cais/mmlu", "all", "test", test, hubdata.MMLU_SCHEMA)
    sizes = ["--max-seq-len", "2048", "--device-batch-size", "2", "--data-dir", str(task_data)]
    train = pack_json(EXAMPLES / "nanochat-sft.yaml", bytes_spec, *sizes)
    assert train["conversations"] == 10 + 3 * 8 + 4 * 12
    assert [s["name"] for s in train["sources"]] == [
        "tasks[0] (smoltalk / train)",
        "tasks[1] (mmlu / all / auxiliary_train)",
        "tasks[2] (gsm8k / main / train)",
    ]
    assert train["ends"]
    # the val mixture's stop: 5200 and stop: 420 end at the data's end here (6 and 12 rows)
    val = pack_json(EXAMPLES / "nanochat-sft-val.yaml", bytes_spec, *sizes, "--split", "val")
    assert val["conversations"] == 10 + 6 + 12
    assert val["settings"]["split"] == "val"
