"""Reading the same conversations from JSON lines and from Parquet: time and peak memory.

    python benchmarks/bench_files.py             # bench_targets.py's 1.5 GB JSONL file (3M rows)
    python benchmarks/bench_files.py --mb 200    # a smaller one, same cases

It takes `bench_targets.py`'s file (written when missing), writes the same conversations as
Parquet with ``taskcli export FILE -o FILE.parquet`` (row groups of 65,536 rows; reused when
there), and times each command on both, side by side in one run, each as a separate process
whose peak RSS is measured (as `bench_hostile.py` does):

- ``validate FILE`` and ``stats FILE``: one full pass each;
- ``export FILE -o /dev/null``: a full conversion to JSON lines (a device is written in place).

Per row, Parquet should cost no more than JSON lines, and its memory follow a row group, not the
file. The figures are wall seconds (per row, and rows per second) and CPU seconds (user and
system, every thread: Parquet decodes on a second thread) of each command, with its peak RSS.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from bench_targets import DATA, ROOT, make_file

# The measuring process: runs one command and prints its peak RSS (MB) and CPU seconds (user +
# system, every thread): on a shared machine CPU time says more than wall time.
MEASURED = """
import resource, subprocess, sys
with subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL) as child:
    code = child.wait()
if code:
    sys.exit(f"{sys.argv[1:]} failed ({code})")
used = resource.getrusage(resource.RUSAGE_CHILDREN)
print(used.ru_maxrss // 1024, used.ru_utime + used.ru_stime)
"""


def measure(command: list[str]) -> tuple[int, float, float]:
    """Peak RSS (MB), wall seconds and CPU seconds of `command`, run alone in a measuring
    process."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, *command],
        capture_output=True,
        text=True,
        cwd=DATA,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    elapsed = time.perf_counter() - started
    if done.returncode:
        sys.exit(done.stderr[-2000:])
    rss, cpu = done.stdout.split()[-2:]
    return int(rss), elapsed, float(cpu)


def parquet_copy(path: Path) -> Path:
    """The file's conversations as Parquet, written by taskcli's own export once."""
    target = path.with_suffix(".parquet")
    if not target.exists():
        taskcli = [sys.executable, "-m", "taskcli"]
        subprocess.run(
            [*taskcli, "export", str(path), "-o", str(target)],
            check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1500, help="size of the JSONL file in MB")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each case (best kept)")
    args = parser.parse_args()
    lines = make_file(args.mb)
    table = parquet_copy(lines)
    sys.path.insert(0, str(ROOT))
    from taskcli.files.reader import count_lines

    rows = count_lines(str(lines))
    print(f"{rows:,} conversations: {lines.name} {lines.stat().st_size / 1e9:.2f} GB, ", end="")
    print(f"{table.name} {table.stat().st_size / 1e9:.2f} GB")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    taskcli = [sys.executable, "-m", "taskcli"]
    commands = {
        "validate": lambda name: [*taskcli, "validate", name],
        "stats": lambda name: [*taskcli, "stats", name],
        "export -o /dev/null": lambda name: [*taskcli, "export", name, "-o", "/dev/null"],
    }
    print(
        f"{'command':<22} {'file':<8} {'wall s':>7} {'us/row':>7} {'rows/s':>9} "
        f"{'CPU s':>7} {'CPU us/row':>10} {'peak RSS':>9}"
    )
    for label, command in commands.items():
        for kind, path in (("jsonl", lines), ("parquet", table)):
            runs = [measure(command(path.name)) for _ in range(args.repeat)]
            rss = max(run[0] for run in runs)
            wall = min(run[1] for run in runs)
            cpu = min(run[2] for run in runs)
            print(
                f"{label:<22} {kind:<8} {wall:7.2f} {wall / rows * 1e6:7.2f} {rows / wall:9,.0f} "
                f"{cpu:7.2f} {cpu / rows * 1e6:10.2f} {rss:6} MB",
                flush=True,
            )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
