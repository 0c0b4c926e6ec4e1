"""How long `taskcli eval humaneval` takes to score 164 programs, per number of workers.

    python benchmarks/bench_eval.py                  # workers 1 and 2, best of 3 runs each
    python benchmarks/bench_eval.py --workers 1 2 4 --runs 5

HumanEval has 164 problems, and most of the cost of scoring one is starting its sandboxed
interpreter, so this builds a local copy of `openai/openai_humaneval` in its Hub layout with 164
generated problems of the same shape (a typed signature, a docstring with an example, a canonical
solution, a `check(candidate)` with asserts) in `benchmarks/data/` (gitignored), answers every
problem with its canonical solution fenced as a chat model would write it, and times the whole
command (`python -m taskcli eval ... --workers N`) as a separate process: wall-clock time (best of
the runs) and the CPU time it and its sandboxed programs used. Every answer must pass.
"""

from __future__ import annotations

import argparse
import json
import os
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data" / "humaneval-164"
PROBLEMS = 164

# (function name, signature, docstring, canonical body, test inputs), formatted with the
# problem's parameters {k} (1, 2, ...), {m} (k + 1), {p} (1 to 4) and {c} (a letter).
FAMILIES = [
    (
        "add_{k}",
        "(x: int) -> int",
        "Return x plus {k}.",
        "    return x + {k}\n",
        ["0", "-{k}", "100"],
    ),
    (
        "scale_by_{k}",
        "(numbers: List[int]) -> List[int]",
        "Multiply every number in the list by {k}.",
        "    return [n * {k} for n in numbers]\n",
        ["[]", "[1, 2, 3]", "[-4, 0, 7]"],
    ),
    (
        "count_letter_{c}_{k}",
        "(text: str) -> int",
        "How many times the letter '{c}' occurs in text.",
        "    return sum(1 for letter in text if letter == '{c}')\n",
        ["''", "'{c}{c}{c}xyz'", "'banana bread'"],
    ),
    (
        "sum_of_powers_{k}",
        "(n: int) -> int",
        "The sum of i ** {p} for i from 1 to n.",
        "    total = 0\n    for i in range(1, n + 1):\n"
        "        total += i ** {p}\n    return total\n",
        ["0", "3", "10"],
    ),
    (
        "multiples_of_{m}_{k}",
        "(numbers: List[int]) -> List[int]",
        "The numbers that are multiples of {m}, in their order.",
        "    return [n for n in numbers if n % {m} == 0]\n",
        ["list(range(20))", "[]", "[{m}, {m} + 1, -{m}]"],
    ),
    (
        "rotate_left_{k}",
        "(text: str) -> str",
        "Rotate text left by {k} characters (wrapping around).",
        "    if not text:\n        return text\n    shift = {k} % len(text)\n"
        "    return text[shift:] + text[:shift]\n",
        ["''", "'abcdef'", "'hello world'"],
    ),
    (
        "fibonacci_mod_{m}_{k}",
        "(n: int) -> int",
        "The n-th Fibonacci number modulo {m} (F(0) = 0, F(1) = 1).",
        "    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, (a + b) % {m}\n    return a\n",
        ["0", "1", "10", "30"],
    ),
    (
        "clip_to_{k}",
        "(numbers: List[float]) -> List[float]",
        "Limit every number to the range [-{k}, {k}].",
        "    return [min(max(x, -{k}), {k}) for x in numbers]\n",
        ["[]", "[-100.0, 0.5, 100.0]", "[{k}, -{k}]"],
    ),
]


def problem(number: int) -> dict[str, str]:
    """Problem `number` as a HumanEval row, its expected values computed by running the solution."""
    name, signature, doc, body, inputs = FAMILIES[number % len(FAMILIES)]
    k = number // len(FAMILIES) + 1
    values = {"k": k, "m": k + 1, "p": k % 4 + 1, "c": string.ascii_lowercase[number % 26]}
    name, doc, body = (text.format(**values) for text in (name, doc, body))
    inputs = [text.format(**values) for text in inputs]
    header = "from typing import List\n\n\n" if "List" in signature else "\n"
    namespace: dict = {}
    exec(f"from typing import List\n\ndef {name}{signature}:\n{body}", namespace)
    function = namespace[name]
    outputs = [function(eval(text)) for text in inputs]
    prompt = (
        f'{header}def {name}{signature}:\n    """{doc}\n'
        f"    >>> {name}({inputs[1]})\n    {outputs[1]!r}\n"
        '    """\n'
    )
    asserts = "".join(
        f"    assert candidate({text}) == {output!r}\n"
        for text, output in zip(inputs, outputs, strict=True)
    )
    return {
        "task_id": f"HumanEval/{number}",
        "prompt": prompt,
        "canonical_solution": body,
        "test": f"\n\nMETADATA = {{}}\n\n\ndef check(candidate):\n{asserts}",
        "entry_point": name,
    }


def build() -> Path:
    """The local HumanEval copy and an answers file of canonical solutions, in task order."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "tests"))
    from hubdata import HUMANEVAL_SCHEMA, write_repo

    rows = [problem(number) for number in range(PROBLEMS)]
    write_repo(
        DATA,
        "openai/openai_humaneval",
        {"openai_humaneval": {"test": rows}},
        {"openai_humaneval": HUMANEVAL_SCHEMA},
    )
    answers = DATA / "answers.jsonl"
    with answers.open("w") as out:
        order = np.random.default_rng(42).permutation(len(rows))  # how the task numbers them
        for index, row_number in enumerate(order):
            row = rows[row_number]
            completion = (
                f"Here is the function:\n\n```python\n{row['prompt']}{row['canonical_solution']}"
                "```\n\nIt handles the empty case too."
            )
            out.write(json.dumps({"index": index, "completion": completion}) + "\n")
    return answers


def measure(answers: Path, workers: int) -> tuple[float, float, dict]:
    """Wall-clock and CPU seconds (the sandboxed children's included) of one `taskcli eval`
    process, and its JSON result. CPU time barely depends on what else the machine is doing."""
    command = [
        sys.executable, "-m", "taskcli", "eval", "humaneval", str(answers),
        "--data-dir", str(DATA), "--workers", str(workers), "--json",
    ]  # fmt: skip
    with tempfile.TemporaryFile() as stdout:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=stdout)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"taskcli eval failed: {' '.join(command)}")
        stdout.seek(0)
        return elapsed, usage.ru_utime + usage.ru_stime, json.loads(stdout.read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=3, help="runs per worker count; best is kept")
    args = parser.parse_args()
    answers = build()
    print(f"{PROBLEMS} HumanEval-style programs, canonical solutions, best of {args.runs} runs")
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'workers':>7} {'wall s':>7} {'ms/program':>11} {'CPU s':>6} {'passed':>7}")
    all_passed = True
    for workers in args.workers:
        runs = [measure(answers, workers) for _ in range(args.runs)]
        wall, cpu, result = min(runs, key=lambda run: run[0])
        all_passed &= result["correct"] == PROBLEMS
        print(
            f"{workers:>7} {wall:7.2f} {1000 * wall / PROBLEMS:11.1f} {cpu:6.2f} "
            f"{result['correct']:>3}/{result['n']}"
        )
    return 0 if all_passed else 1


if __name__ == "__main__":
    sys.exit(main())
