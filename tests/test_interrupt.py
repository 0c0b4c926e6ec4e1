"""Ctrl-C: exit 130 at once, no bar left on screen, no partial output left on disk."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import hubdata
import pytest
from terminal import read_to_end, start_on_terminal

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hub")
    hubdata.write_humaneval(folder)
    return folder


def sandboxed_children(parent: int) -> list[int]:
    """The processes `parent` started (during `eval humaneval`, the sandboxed programs), from
    /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            found.append(int(entry.name))
    return found


def test_ctrl_c_during_eval_exits_130_within_a_second(data_dir, tmp_path):
    """The programs sleep far longer than the command may take to stop: the command does not
    wait for them (killing them is the sandbox's job, `taskcli.sandbox.execution`)."""
    sleeper = "import time\ntime.sleep(8)\n"
    answers = tmp_path / "answers.jsonl"
    answers.write_text(
        "".join(json.dumps({"index": i, "completion": sleeper}) + "\n" for i in range(2))
    )
    details = tmp_path / "verdicts.jsonl"
    command = ["eval", "humaneval", str(answers), "--timeout", "10", "--workers", "2"]
    command += ["--details", str(details), "--data-dir", str(data_dir)]
    process = subprocess.Popen(
        [sys.executable, "-m", "taskcli", *command],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    children: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not children:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the programs never started"
            time.sleep(0.02)
            children = sandboxed_children(process.pid)
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        elapsed = time.monotonic() - interrupted
    finally:
        process.kill()
        for child in children:  # the sandbox's to stop; here, not left to sleep on
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGKILL)
    assert process.returncode == 130
    assert elapsed < 1.0, f"took {elapsed:.2f} s to stop"
    assert b"Traceback" not in stderr
    assert not details.exists()
    assert stderr.decode().strip().splitlines()[-1] == "interrupted: nothing written."
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_ctrl_c_takes_the_bar_off_a_terminal(tmp_path):
    """On a terminal the export draws a bar; after Ctrl-C the last thing on screen is not it."""
    plugin = tmp_path / "plugin"
    (plugin / "slowish-0.1.dist-info").mkdir(parents=True)
    (plugin / "slowish.py").write_text(
        "import time\nfrom taskcli.tasks import Task\n\n"
        "class Slow(Task):\n    name = 'slowish'\n\n"
        "    def num_examples(self):\n        return 100000\n\n"
        "    def get_example(self, index):\n        time.sleep(0.01)\n"
        "        return {'messages': [{'role': 'user', 'content': 'q'},"
        " {'role': 'assistant', 'content': f'a{index}'}]}\n"
    )
    (plugin / "slowish-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: slowish\nVersion: 0.1\n"
    )
    (plugin / "slowish-0.1.dist-info" / "entry_points.txt").write_text(
        "[taskcli.tasks]\nslowish = slowish:Slow\n"
    )
    out = tmp_path / "out.jsonl"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(plugin), str(ROOT)]),
        "COLUMNS": "80",
        "TERM": "xterm",
    }
    env.pop("NO_COLOR", None)
    process, fd = start_on_terminal(
        [sys.executable, "-m", "taskcli", "export", "slowish", "-o", str(out)], env
    )
    screen = b""
    deadline = time.monotonic() + 60
    while b"converting" not in screen:
        assert time.monotonic() < deadline, screen[-500:]
        try:
            screen += os.read(fd, 65536)
        except OSError:
            break
    process.send_signal(signal.SIGINT)
    screen += read_to_end(fd)
    os.close(fd)
    assert process.wait() == 130
    tail = screen.rsplit(b"converting", 1)[1]
    # Rich removes a transient bar by moving up and erasing the line it drew.
    assert b"\x1b[2K" in tail
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


LINE = b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (
            ["validate", "{fifo}", "--output-valid", "{old}"],
            "nothing written, the old {old} is unchanged",
        ),
        (["validate", "{fifo}", "--rejects", "{new}"], "nothing written"),
        (["stats", "{fifo}"], "nothing written"),
        (["export", "{fifo}", "-o", "{old}"], "nothing written, the old {old} is unchanged"),
        (["export", "{fifo}", "-o", "{new}"], "nothing written"),
        (["export", "{fifo}", "-o", "-"], "standard output may hold part of the output"),
        (["show", "{fifo}", "-n", "5"], None),
    ],
    ids=[
        "validate-old",
        "validate-new",
        "stats",
        "export-old",
        "export-new",
        "export-stdout",
        "show",
    ],
)
def test_ctrl_c_says_what_it_left(tmp_path, command, said):
    """A real SIGINT while the command waits for its input (a FIFO holding one line): exit 130,
    and the last line on stderr says what is on disk; a file that was there is as it was."""
    fifo, old, new = tmp_path / "in.jsonl", tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    os.mkfifo(fifo)
    old.write_bytes(b"the old rows\n")
    names = {"fifo": fifo, "old": old, "new": new}
    process = subprocess.Popen(
        [sys.executable, "-m", "taskcli", *(part.format(**names) for part in command)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        writer = os.open(fifo, os.O_WRONLY)  # returns once the command opened it to read
        os.write(writer, LINE)  # then it waits for the rest
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        os.close(writer)
    finally:
        process.kill()
    assert process.returncode == 130
    assert b"Traceback" not in stderr
    expected = "interrupted." if said is None else f"interrupted: {said.format(**names)}."
    assert stderr.decode().strip().splitlines()[-1] == expected
    assert old.read_bytes() == b"the old rows\n" and not new.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
