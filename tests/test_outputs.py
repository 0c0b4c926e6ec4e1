"""What taskcli writes never destroys what it points at (`taskcli.files.atomic`).

Devices are stood in for by device nodes made in a temporary folder (`mknod`, as root) or by a
FIFO or a terminal (pty), never by the machine's own ``/dev/null``: a bug here would replace it.
"""

import fcntl
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from specfiles import write_spec

from taskcli.export import export, writing
from taskcli.files import atomic
from taskcli.mixing.plan import build_plan
from taskcli.mixing.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
GOOD = '[{"role": "user", "content": "Hi %d"}, {"role": "assistant", "content": "Hello"}]\n'
BAD = '[{"role": "assistant", "content": "no user %d"}]\n'
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, mount)")


def taskcli(*args, stdin=None, input=None, timeout=60, **kwargs):
    """Run the command line as a user does: a new process, its exit code and its two streams."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "taskcli", *map(str, args)],
        stdin=stdin,
        input=input,
        capture_output=True,
        env=env,
        timeout=timeout,
        **kwargs,
    )


def one_line_error(result, code):
    """The run failed with `code` and said why in one `Error:` line (a `Hint:` line may
    follow), with no traceback."""
    assert result.returncode == code, result.stderr
    assert b"Traceback" not in result.stderr
    lines = result.stderr.decode().strip().splitlines()
    assert lines[0].startswith("Error: "), result.stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("Hint: ")), result.stderr
    return result.stderr.decode()


def data_file(folder: Path, good=3, bad=1) -> Path:
    path = folder / "data.jsonl"
    path.write_text("".join(GOOD % i for i in range(good)) + "".join(BAD % i for i in range(bad)))
    return path


def spec_for(folder: Path, data: Path) -> Path:
    return write_spec(folder, f"tasks:\n  - task: customjson\n    path: {data}\n")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def device(folder: Path, name: str, minor: int) -> Path:
    """A character device node like /dev/null (minor 3) or /dev/full (minor 7), made here."""
    path = folder / name
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    return path


class FifoReader:
    """Reads everything written into a FIFO, in a thread, as `cat FIFO` would."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path, self.data = path, b""
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with open(self.path, "rb") as fifo:
            self.data = fifo.read()

    def result(self) -> bytes:
        self.thread.join(30)
        return self.data


# --- outputs that are not regular files: written in place --------------------------------------


@root_only
@pytest.mark.parametrize("option", ["--output-valid", "--rejects"])
def test_validate_writes_into_a_device_and_leaves_it_a_device(tmp_path, option):
    null = device(tmp_path, "null", 3)
    result = taskcli("validate", data_file(tmp_path), option, null)
    assert result.returncode == 1  # the data has an invalid line
    assert stat.S_ISCHR(null.stat().st_mode)
    assert leftovers(tmp_path) == []


@root_only
def test_export_and_eval_write_into_a_device_without_a_manifest(tmp_path):
    null = device(tmp_path, "null", 3)
    data = data_file(tmp_path, bad=0)
    result = taskcli("export", spec_for(tmp_path, data), "-o", null)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISCHR(null.stat().st_mode)
    assert "no manifest" in result.stderr.decode()
    assert not list(tmp_path.glob("*.manifest.json"))
    answers = tmp_path / "answers.jsonl"
    answers.write_text('{"index": 0, "completion": "#### 3"}\n')
    words = tmp_path / "words.txt"
    words.write_text("apple\nbanana\n")
    result = taskcli(
        "eval", "spellingbee", answers, "-p", f"word_list={words}", "-p", "size=5",
        "--details", null,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert stat.S_ISCHR(null.stat().st_mode)
    assert leftovers(tmp_path) == []


def test_a_fifo_output_gets_the_data_and_stays_a_fifo(tmp_path):
    data = data_file(tmp_path, bad=0)
    reader = FifoReader(tmp_path / "pipe")
    result = taskcli("export", spec_for(tmp_path, data), "-o", reader.path)
    assert result.returncode == 0, result.stderr
    assert len(reader.result().splitlines()) == 3
    assert stat.S_ISFIFO(reader.path.stat().st_mode)
    assert leftovers(tmp_path) == [] and not list(tmp_path.glob("*.manifest.json"))


def test_a_terminal_output_is_written_in_place(tmp_path):
    master, slave = os.openpty()
    try:
        terminal = os.ttyname(slave)
        result = taskcli("validate", data_file(tmp_path), "--rejects", terminal)
        assert result.returncode == 1
        os.set_blocking(master, False)
        assert b"no user 0" in os.read(master, 65536)
    finally:
        os.close(master)
        os.close(slave)


def test_dev_stdout_is_the_standard_output_not_a_file_replaced(tmp_path):
    data = data_file(tmp_path, bad=0)
    result = taskcli("export", spec_for(tmp_path, data), "-o", "/dev/stdout")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3
    assert Path("/dev/stdout").is_symlink()


# --- symlinks, hard links, inputs ----------------------------------------------------------------


def test_a_symlinked_output_replaces_its_target_and_stays_a_link(tmp_path):
    data = data_file(tmp_path, bad=0)
    real = tmp_path / "real"
    real.mkdir()
    (real / "train.jsonl").write_text("old\n")
    link = tmp_path / "train.jsonl"
    link.symlink_to(real / "train.jsonl")
    result = taskcli("export", spec_for(tmp_path, data), "-o", link)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink()
    assert len((real / "train.jsonl").read_text().splitlines()) == 3
    manifest = json.loads((real / "train.jsonl.manifest.json").read_text())
    assert manifest["output"]["bytes"] == (real / "train.jsonl").stat().st_size


def test_a_hard_link_to_the_input_is_refused_before_reading(tmp_path):
    data = data_file(tmp_path)
    before = data.read_bytes()
    os.link(data, tmp_path / "clean.jsonl")
    result = taskcli("validate", data, "--output-valid", tmp_path / "clean.jsonl")
    assert "also an input" in one_line_error(result, 2)
    assert data.read_bytes() == before


def test_standard_input_redirected_from_the_output_is_refused(tmp_path):
    data = data_file(tmp_path)
    before = data.read_bytes()
    with data.open("rb") as stdin:
        result = taskcli("validate", "-", "--output-valid", data, stdin=stdin)
    assert "standard input" in one_line_error(result, 2)
    assert data.read_bytes() == before


def test_export_refuses_to_overwrite_its_own_data(tmp_path):
    data = data_file(tmp_path, bad=0)
    before = data.read_bytes()
    result = taskcli("export", spec_for(tmp_path, data), "-o", data)
    assert "also an input" in one_line_error(result, 2)
    assert data.read_bytes() == before


def test_eval_details_may_not_replace_the_answers(tmp_path):
    answers = tmp_path / "answers.jsonl"
    answers.write_text('{"index": 0, "completion": "#### 3"}\n')
    words = tmp_path / "words.txt"
    words.write_text("apple\n")
    result = taskcli(
        "eval", "spellingbee", answers, "-p", f"word_list={words}", "--details", answers
    )
    assert "also an input" in one_line_error(result, 2)


# --- leftovers of killed runs, and the manifest ------------------------------------------------


def test_temp_files_of_a_killed_run_are_removed_by_the_next_run(tmp_path):
    out = tmp_path / "clean.jsonl"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from taskcli.files.atomic import scratch_folder, staged_output\n"
            "with staged_output(sys.argv[1]) as s, scratch_folder(sys.argv[1]):\n"
            "    s.file.write(b'x' * 100000); s.file.flush(); print('ready', flush=True)\n"
            "    time.sleep(60)\n",
            str(out),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
    )
    assert writer.stdout.readline() == b"ready\n"
    assert len(leftovers(tmp_path)) == 2  # a live run's files are never touched
    atomic.remove_stale(out)
    assert len(leftovers(tmp_path)) == 2
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    result = taskcli("validate", data_file(tmp_path), "--output-valid", out)
    assert result.returncode == 1
    assert leftovers(tmp_path) == []
    assert len(out.read_text().splitlines()) == 3


def test_a_temp_name_held_by_another_process_is_kept(tmp_path):
    out = tmp_path / "out.jsonl"
    held = tmp_path / ".out.jsonl.taskcli-abcd1234.tmp"
    stale = tmp_path / ".out.jsonl.taskcli-scratch-dead.tmp"
    held.write_text("in progress")
    stale.mkdir()
    (stale / "0").write_text("scratch")
    with held.open() as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        atomic.remove_stale(out)
    assert held.exists() and not stale.exists()


def test_a_failure_after_the_output_is_written_keeps_the_old_output_and_manifest(
    tmp_path, monkeypatch
):
    data = data_file(tmp_path, bad=0)
    plan = build_plan(load_spec(spec_for(tmp_path, data)))
    out = tmp_path / "train.jsonl"
    export(plan, out)
    before = out.read_bytes(), (tmp_path / "train.jsonl.manifest.json").read_bytes()

    def broken(*args):
        raise RuntimeError("the manifest cannot be made")

    monkeypatch.setattr(writing, "_manifest", broken)
    with pytest.raises(RuntimeError):
        export(plan, out, limit=1)
    assert (out.read_bytes(), (tmp_path / "train.jsonl.manifest.json").read_bytes()) == before
    assert leftovers(tmp_path) == []


# --- outputs that cannot be written ------------------------------------------------------------


@pytest.mark.parametrize("option", ["--output-valid", "--rejects"])
def test_a_folder_as_output_is_a_usage_error(tmp_path, option):
    result = taskcli("validate", data_file(tmp_path), option, tmp_path)
    assert "is a folder" in one_line_error(result, 2)


@root_only
def test_a_full_device_is_an_error_not_a_traceback(tmp_path):
    full = device(tmp_path, "full", 7)
    result = taskcli("validate", data_file(tmp_path), "--output-valid", full)
    assert "No space left on device" in one_line_error(result, 1)
    assert stat.S_ISCHR(full.stat().st_mode)


def in_private_mount(tmp_path: Path, mount: str, command: list[str]):
    """Run `command` in a private mount namespace where `tmp_path/disk` is the mount `mount`."""
    disk = tmp_path / "disk"
    disk.mkdir(exist_ok=True)
    line = " ".join(f"'{part}'" for part in command)
    script = f"{mount} && exec {line}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "DISK": str(disk)}
    try:
        return subprocess.run(
            ["unshare", "-m", "sh", "-c", script], capture_output=True, env=env, timeout=60
        )
    except FileNotFoundError:
        pytest.skip("unshare is not installed")


@root_only
def test_a_full_disk_leaves_no_partial_file(tmp_path):
    big = tmp_path / "big.jsonl"
    big.write_text("".join(GOOD % i for i in range(5000)))
    out = tmp_path / "disk" / "clean.jsonl"
    result = in_private_mount(
        tmp_path,
        'mount -t tmpfs -o size=64k tmpfs "$DISK"',
        [sys.executable, "-m", "taskcli", "validate", str(big), "--output-valid", str(out)],
    )
    if b"mount:" in result.stderr:
        pytest.skip("cannot mount here")
    assert "No space left on device" in one_line_error(result, 1)


@root_only
def test_a_read_only_filesystem_is_an_error_not_a_traceback(tmp_path):
    out = tmp_path / "disk" / "clean.jsonl"
    result = in_private_mount(
        tmp_path,
        'mount --bind "$DISK" "$DISK" && mount -o remount,bind,ro "$DISK"',
        [
            sys.executable,
            "-m",
            "taskcli",
            "validate",
            str(data_file(tmp_path)),
            "--rejects",
            str(out),
        ],
    )
    if b"mount:" in result.stderr:
        pytest.skip("cannot mount here")
    assert "Read-only file system" in one_line_error(result, 1)
    assert not out.exists()


def test_writing_waits_for_nothing_when_the_fifo_reader_is_there(tmp_path):
    """A FIFO is opened once for writing (never opened and closed to check it exists)."""
    reader = FifoReader(tmp_path / "rejects")
    start = time.monotonic()
    result = taskcli("validate", data_file(tmp_path), "--rejects", reader.path)
    assert result.returncode == 1
    assert b"no user 0" in reader.result()
    assert time.monotonic() - start < 30
