"""How fast conversations are rendered into token ids and masks, against nanochat's own loop.

    python benchmarks/bench_tokens.py                   # 460k SmolTalk-like rows, cl100k_base
    python benchmarks/bench_tokens.py --rows 50000      # the same, scaled down
    python benchmarks/bench_tokens.py --tokenizer PATH  # any tokenizer spec taskcli accepts
    python benchmarks/bench_tokens.py --repeat 3        # each contender 3 times, the best counts

The rows are `bench_export.py`'s local SmolTalk copy (built there on first use, under the
gitignored `benchmarks/data/`). Each contender runs as a separate process reading the same
parquet files batch by batch, and is reported in conversations/s, CPU seconds (its own and
its workers') and peak RSS (the process's, plus its largest worker's); the load average
printed beside shows whether other work shared the cores:

- baseline: what nanochat's SFT does, one conversation at a time through a render written the
  way nanochat's ``render_conversation`` is (a closure appending ids and mask, a deep copy to
  fold a system message, one ``encode_ordinary`` call per message or part);
- baseline + Parquet: the same loop, its renders written as a user's script would keep them
  (``ids`` and ``mask`` lists, row groups of 8,192, the export's writer settings), in storage
  order: what ``export --format tokens`` replaces, which also shuffles;
- ``taskcli.training.render.render_batches`` with 1 worker (in this process) and with 2 worker
  processes, counting tokens and trained tokens per conversation as token statistics do;
- ``taskcli.training.render.render_many`` with 2 workers: the same, unpacked into Python lists per
  conversation (what ``show --tokens`` and tests use; exports should take the batches);
- read only: the parquet reading alone, the floor under every contender;
- the commands themselves, as a user runs them on the same copy: ``taskcli stats smoltalk.yaml
  --tokenizer T`` on 1 core (pinned) and on 2, and ``taskcli export ... --format tokens -o
  OUT.parquet``; their wall time includes start-up, the planning and, for the export, putting
  the rows in the mixture's order and writing Parquet.

Every contender sums the token and trained counts into a checksum, which must agree (the
Parquet files are read back for theirs; that the ids themselves are the same is what the test
suite checks).
Targets: render_batches, `taskcli stats --tokenizer` and `taskcli export --format tokens` on 2
cores at least 1.5x the baseline, near-linear scaling from 1 core to 2, peak RSS under 1 GB. The
load average printed beside a two-core contender includes its own processes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

CONTENDERS = (
    "read-only",
    "baseline",
    "baseline + Parquet",
    "render_batches-1",
    "render_batches-2",
    "render_many-2",
)
COMMANDS = ("taskcli stats, 1 core", "taskcli stats, 2 cores", "taskcli export tokens")


def conversations(files: list[Path]):
    import pyarrow.parquet as pq

    for path in files:  # a row group at a time: iter_batches held 1.4 GB for 100k rows
        parquet = pq.ParquetFile(path)
        for group in range(parquet.metadata.num_row_groups):
            table = parquet.read_row_group(group, columns=["messages"])
            for start in range(0, table.num_rows, 1024):
                for messages in table.slice(start, 1024).column(0).to_pylist():
                    yield {"messages": messages}


class NanochatStyle:
    """nanochat's render_conversation, in its shape, over the loaded tokenizer's encoder."""

    def __init__(self, tokenizer) -> None:
        self.encode = tokenizer.encode
        self.special = tokenizer.special_ids

    def render(self, conversation: dict, max_tokens: int) -> tuple[list[int], list[int]]:
        import copy

        ids: list[int] = []
        mask: list[int] = []

        def add_tokens(token_ids, mask_val):
            if isinstance(token_ids, int):
                token_ids = [token_ids]
            ids.extend(token_ids)
            mask.extend([mask_val] * len(token_ids))

        if conversation["messages"][0]["role"] == "system":
            conversation = copy.deepcopy(conversation)
            messages = conversation["messages"]
            messages[1]["content"] = messages[0]["content"] + "\n\n" + messages[1]["content"]
            messages = messages[1:]
        else:
            messages = conversation["messages"]
        s = self.special
        add_tokens(s["<|bos|>"], 0)
        for i, message in enumerate(messages):
            must_be_from = "user" if i % 2 == 0 else "assistant"
            assert message["role"] == must_be_from
            content = message["content"]
            if message["role"] == "user":
                add_tokens(s["<|user_start|>"], 0)
                add_tokens(self.encode(content), 0)
                add_tokens(s["<|user_end|>"], 0)
            else:
                add_tokens(s["<|assistant_start|>"], 0)
                if isinstance(content, str):
                    add_tokens(self.encode(content), 1)
                else:
                    for part in content:
                        value_ids = self.encode(part["text"])
                        if part["type"] == "text":
                            add_tokens(value_ids, 1)
                        elif part["type"] == "python":
                            add_tokens(s["<|python_start|>"], 1)
                            add_tokens(value_ids, 1)
                            add_tokens(s["<|python_end|>"], 1)
                        else:
                            add_tokens(s["<|output_start|>"], 0)
                            add_tokens(value_ids, 0)
                            add_tokens(s["<|output_end|>"], 0)
                add_tokens(s["<|assistant_end|>"], 1)
        return ids[:max_tokens], mask[:max_tokens]


class ParquetOut:
    """What a user's script writes the baseline's renders with: ``ids`` and ``mask`` lists, 8,192
    rows a row group, with the writer settings of ``taskcli export --format tokens``."""

    ROWS = 8192

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ids: list[list[int]] = []
        self.masks: list[list[int]] = []

    def __enter__(self) -> ParquetOut:
        import pyarrow.parquet as pq

        from taskcli.export.tokens import schema

        self.schema = schema().remove(6).remove(5).remove(4).remove(3).remove(2)
        self.writer = pq.ParquetWriter(
            self.path,
            self.schema,
            compression="zstd",
            use_dictionary=["ids.list.element"],
            write_statistics=False,
        )
        return self

    def add(self, ids: list[int], mask: list[int]) -> None:
        self.ids.append(ids)
        self.masks.append(mask)
        if len(self.ids) == self.ROWS:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if self.ids:
            columns = [
                pa.array(self.ids, self.schema[0].type),
                pa.array(self.masks, self.schema[1].type),
            ]
            self.writer.write_table(pa.Table.from_arrays(columns, schema=self.schema))
            self.ids, self.masks = [], []

    def __exit__(self, *exc: object) -> None:
        self.flush()
        self.writer.close()


class Descendants:
    """CPU seconds and the largest peak RSS of a process's descendants, sampled from /proc.

    render_batches' workers start from a forkserver: they are its children, not the caller's,
    so neither os.times() nor RUSAGE_CHILDREN of the caller (or of a command's process, waited
    for) ever counts them. Every 0.1 s each descendant's CPU time and peak RSS (VmHWM, which the
    kernel keeps) are read; a process's last reading stands for it.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu: dict[int, float] = {}
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Descendants:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())

    def _watch(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        while not self._done.wait(0.1):
            for pid in self._below(self.pid):
                try:
                    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:  # it ended meanwhile
                    continue
                self.cpu[pid] = (int(stat[11]) + int(stat[12])) / tick  # utime, stime
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak = max(self.peak, int(line.split()[1]) * 1024)

    def _below(self, pid: int) -> list[int]:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
            children = [int(c) for t in tasks for c in (t / "children").read_text().split()]
        except OSError:
            return []
        return [grand for child in children for grand in (child, *self._below(child))]


def run(
    contender: str, files: list[Path], spec: str, max_tokens: int, output: Path | None = None
) -> dict:
    """One contender in this process: seconds, conversations, checksum, peak RSS, CPU."""
    from taskcli.training.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(spec)
    with Descendants(os.getpid()) as workers:
        started, times = time.perf_counter(), os.times()
        count, checksum = render_all(contender, files, tokenizer, max_tokens, output)
        seconds = time.perf_counter() - started
        spent = [after - before for before, after in zip(times, os.times(), strict=True)]
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "contender": contender,
        "seconds": seconds,
        "conversations": count,
        "checksum": checksum,
        "peak_rss": own + workers.peak,
        # user and system, of this process and its workers
        "cpu_seconds": sum(spent[:2]) + workers.cpu_seconds,
    }


def render_all(
    contender: str, files: list[Path], tokenizer, max_tokens: int, output: Path | None
) -> tuple[int, int]:
    """What `contender` does with every conversation: how many, and their checksum."""
    from taskcli.training.render import render_batches, render_many

    count = checksum = 0
    if contender == "read-only":
        for _ in conversations(files):
            count += 1
    elif contender == "baseline":
        renderer = NanochatStyle(tokenizer)
        for conversation in conversations(files):
            ids, mask = renderer.render(conversation, max_tokens)
            count += 1
            checksum += len(ids) + sum(mask)
    elif contender == "baseline + Parquet":
        renderer = NanochatStyle(tokenizer)
        with ParquetOut(output) as out:
            for conversation in conversations(files):
                ids, mask = renderer.render(conversation, max_tokens)
                out.add(ids, mask)
                count += 1
        checksum = parquet_checksum(output)  # what was written, read back
    elif contender.startswith("render_batches"):
        workers = int(contender.rsplit("-", 1)[1])
        for batch in render_batches(conversations(files), tokenizer, max_tokens, workers):
            for tokens, trained in zip(batch.num_tokens(), batch.num_trained(), strict=True):
                count += 1
                checksum += tokens + trained
    else:
        workers = int(contender.rsplit("-", 1)[1])
        for ids, mask in render_many(conversations(files), tokenizer, max_tokens, workers):
            count += 1
            checksum += len(ids) + sum(mask)
    return count, checksum


def run_command(name: str, root: Path, spec: str, max_tokens: int) -> dict:
    """One of `COMMANDS` as a child process: seconds, peak RSS (its own or its largest
    worker's), and for stats the checksum of its token totals."""
    from bench_export import write_specs

    alone = write_specs(root, int(root.name))[0]
    out = root / "out" / "tokens.parquet"
    out.parent.mkdir(exist_ok=True)
    common = ["--data-dir", str(root), "--tokenizer", spec, "--max-tokens", str(max_tokens)]
    command = [sys.executable, "-m", "taskcli"]
    if name.startswith("taskcli stats"):
        command += ["stats", str(alone), *common, "--json"]
    else:
        command += ["export", str(alone), *common, "-f", "tokens", "-o", str(out)]
    cores = {0} if name.endswith("1 core") else None
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(root / "hf-home")}
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        env=env,
        preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
    )
    with Descendants(process.pid) as workers:
        printed = process.stdout.read() if process.stdout else b""
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command} failed with status {status}")
    result = {"seconds": seconds, "peak_rss": max(usage.ru_maxrss * 1024, workers.peak)}
    if name.startswith("taskcli stats"):
        tokens = json.loads(printed)["tokens"]
        totals = [tokens[key]["mean"] * tokens[key]["count"] for key in ("tokens", "trained")]
        result["checksum"] = round(sum(totals))
    else:
        result["checksum"] = parquet_checksum(out)
    return result


def parquet_checksum(path: Path) -> int:
    """Tokens plus trained tokens of a Parquet file with `ids` and `mask`, as `run` sums them,
    a row group at a time (whole, the file would cost gigabytes in the measured process)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    parquet, total = pq.ParquetFile(path), 0
    for group in range(parquet.metadata.num_row_groups):
        mask = parquet.read_row_group(group, columns=["mask"]).column("mask")
        flat = pc.list_flatten(mask)
        total += len(flat) + pc.sum(flat).as_py()  # a sum of int8 is an int64
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=460_000)
    parser.add_argument("--tokenizer", default="tiktoken:cl100k_base")
    parser.add_argument("--max-tokens", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best counts")
    parser.add_argument("--only", choices=CONTENDERS, help="run one contender in this process")
    parser.add_argument("--files", nargs="*", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        print(json.dumps(run(args.only, args.files, args.tokenizer, args.max_tokens, args.output)))
        return

    from bench_export import build_data

    root = build_data(args.rows)
    files = sorted((root / "HuggingFaceTB" / "smol-smoltalk" / "data").glob("*.parquet"))
    results: dict[str, dict] = {}
    baseline_out = root / "out" / "baseline-tokens.parquet"
    baseline_out.parent.mkdir(exist_ok=True)
    for _, contender in itertools.product(range(args.repeat), CONTENDERS):
        done = subprocess.run(
            [
                *(sys.executable, __file__, "--only", contender, "--tokenizer", args.tokenizer),
                *("--max-tokens", str(args.max_tokens), "--output", str(baseline_out)),
                *("--files", *map(str, files)),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout)
        result["load"] = os.getloadavg()[0]
        best = results.get(contender)
        if best is None or result["seconds"] < best["seconds"]:
            results[contender] = result
    for contender, result in results.items():
        rate = result["conversations"] / result["seconds"]
        rss = result["peak_rss"] / 2**20
        print(
            f"{contender:>18}: {result['conversations']} conversations in "
            f"{result['seconds']:.1f} s = {rate:,.0f}/s, CPU {result['cpu_seconds']:.1f} s, "
            f"peak RSS {rss:.0f} MB, load average {result['load']:.1f}"
        )
    checksums = {r["checksum"] for c, r in results.items() if c != "read-only"}
    assert len(checksums) == 1, f"the contenders disagree: {results}"
    base = results["baseline"]["conversations"] / results["baseline"]["seconds"]
    for contender in CONTENDERS[2:]:
        rate = results[contender]["conversations"] / results[contender]["seconds"]
        print(f"{contender} / baseline: {rate / base:.2f}x")

    rows, expected = results["baseline"]["conversations"], checksums.pop()
    for name in COMMANDS:
        best = None
        for _ in range(args.repeat):
            result = run_command(name, root, args.tokenizer, args.max_tokens)
            best = result if best is None or result["seconds"] < best["seconds"] else best
        assert best["checksum"] == expected, f"{name} disagrees: {best}"
        rate = rows / best["seconds"]
        versus = f"{rate / base:.2f}x the baseline"
        if name.startswith("taskcli export"):
            writing = results["baseline + Parquet"]
            versus += f", {rate * writing['seconds'] / rows:.2f}x the baseline + Parquet"
        print(
            f"{name:>24}: {rows} conversations in {best['seconds']:.1f} s = {rate:,.0f}/s "
            f"({versus}), peak RSS {best['peak_rss'] / 2**20:.0f} MB, "
            f"load average {os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()
