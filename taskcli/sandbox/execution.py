"""Running untrusted, model-written Python programs (HumanEval completions) and scoring them.

Each program runs in a child Python of its own, in a new session, with kernel resource limits, a
fresh temporary working directory, closed stdin and a scrubbed environment; when it ends or its
time is up, its whole process group is killed. Inside the child a small bootstrap sets the limits,
then refuses destructive operations (deleting or renaming files, writing outside the working
directory, starting processes, signalling other processes, ctypes) through an audit hook, which
the program cannot remove, before it runs the program. This is damage control for buggy or
careless code, not a security boundary: docs/sandbox.md says what it does not stop.

A program passes only if it runs to its end and the interpreter then exits with status 0: the
bootstrap writes a random per-run token after the program returns, so `sys.exit(0)` or
`os._exit(0)` before the tests ran scores as "exit", never as a pass.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from taskcli.sandbox import isolation as sandbox

Reason = Literal[
    "passed", "assertion", "exception", "timeout", "memory", "output", "exit", "killed", "error"
]

# RLIMIT_NPROC counts every process and thread of the user, not just the program's, so the cap is
# what the user already runs plus this many.
_TASK_HEADROOM = 64

# Only this much of the supervisor's report is read; a longer one is garbled.
_REPORT_BYTES = 4096
_CHILD_SCRIPT = Path(__file__).with_name("child.py")
MIN_TIMEOUT = 1.0
"""Seconds: below this an isolated interpreter may not even start on a busy machine."""

_REASON_BY_EXCEPTION: dict[str, Reason] = {
    "AssertionError": "assertion",
    "MemoryError": "memory",
    "SystemExit": "exit",
}


class Cancelled(Exception):
    """The run was cancelled (Ctrl-C elsewhere); the program was killed, there is no verdict."""


@dataclass(frozen=True)
class Limits:
    """What one program may use. The defaults suit HumanEval: tiny functions and a few asserts."""

    timeout: float = 5.0
    """Wall-clock seconds, interpreter start-up included; then everything it started is killed."""
    memory_mb: int = 256
    """Address space (RLIMIT_AS); allocating more raises MemoryError in the program."""
    max_output: int = 64_000
    """Bytes of stdout and of stderr kept in the result; the rest is dropped, not an error."""
    max_file_mb: int = 32
    """Largest file the program may write, its stdout and stderr included (RLIMIT_FSIZE), so a
    runaway writer cannot fill the disk; writing more stops it with reason "output"."""
    disk_mb: int = 64
    """With kernel isolation: all it may write to its working directory, /tmp and /dev/shm
    together (one size-limited tmpfs); writing more fails with "No space left on device"."""

    def __post_init__(self) -> None:
        for name in ("timeout", "memory_mb", "max_output", "max_file_mb", "disk_mb"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be positive, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class ExecutionResult:
    """How one program ended. `reason` says why it failed, so a score can be broken down.

    reason is "passed"; "assertion" (an AssertionError escaped: a test failed); "exception"
    (another exception escaped, named in `exception`); "timeout" (wall-clock or CPU time ran
    out); "memory" (MemoryError); "output" (it wrote more than `Limits.max_file_mb` to a file or
    stream); "exit" (it exited before its end, e.g. `sys.exit(0)` or `os._exit(0)`, or its
    interpreter exited non-zero after it ended); "killed" (a signal we did not send, e.g. a
    segmentation fault); or "error" (the sandbox could not run it or judge it: `error` says why).
    """

    passed: bool
    reason: Reason
    exception: str | None
    """Type name of the exception that ended the program (`SystemExit` included), else None."""
    stdout: str
    stderr: str
    duration: float
    """Wall-clock seconds from starting the child to collecting it."""
    error: str | None = None
    """For reason "error": what went wrong, in one line."""


def run_program(
    source: str,
    limits: Limits = Limits(),
    *,
    python: str | None = None,
    isolation: str | None = None,
    cancel: int | None = None,
    python_guard: bool = True,
) -> ExecutionResult:
    """Runs `source` in a fresh sandboxed child process and says whether it ran to its end.

    `python` is the interpreter to run it with (default: this one); its installed packages are
    importable. `isolation` is "bubblewrap", "namespaces" or "none" (see
    `taskcli.sandbox.isolation`); by default, what `probe` found works here. A readable `cancel`
    descriptor kills the program and raises `Cancelled`. Whatever the program does, the result is a
    verdict, never an exception: a sandbox that fails is reason "error". `python_guard=False`
    leaves out the audit hook, so tests can show what the kernel isolation stops on its own.
    """
    python = python or sys.executable
    if isolation is None:
        isolation = probe(python).level
    started = time.monotonic()
    try:
        with _harness() as harness:
            return _run_in(
                harness, source, limits, python, isolation, cancel, python_guard, started
            )
    except OSError as error:  # e.g. the temporary folder could not be made or removed
        return _error_result(f"the sandbox failed: {error}", "", time.monotonic() - started)


@contextlib.contextmanager
def _harness() -> Iterator[Path]:
    """A fresh folder for one program's files, removed by hand rather than by TemporaryDirectory,
    whose clean-up raises on a file the program made immutable (possible without kernel
    isolation): the verdict must survive it."""
    harness = Path(tempfile.mkdtemp(prefix="taskcli-sandbox-")).resolve()
    try:
        yield harness
    finally:
        shutil.rmtree(harness, ignore_errors=True)


def _run_in(
    harness: Path,
    source: str,
    limits: Limits,
    python: str,
    isolation: str,
    cancel: int | None,
    python_guard: bool,
    started: float,
) -> ExecutionResult:
    isolated = isolation != "none"
    for name in ("root", "scratch", "work"):
        (harness / name).mkdir()
    (harness / "program.py").write_text(source, encoding="utf-8", errors="surrogatepass")
    with (
        open(harness / "stdout", "wb") as stdout,
        open(harness / "stderr", "wb") as stderr,
    ):
        process = subprocess.Popen(
            _child_command(python, harness, limits, isolation, python_guard),
            cwd=harness,
            env=_child_environment("/tmp/work" if isolated else str(harness / "work")),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    ended = _wait_then_kill_group(process, limits.timeout, cancel)
    duration = time.monotonic() - started
    if ended == "cancelled":
        raise Cancelled
    stderr_text = _read_start(harness / "stderr", limits.max_output)
    if ended == "timeout":
        return ExecutionResult(
            False,
            "timeout",
            None,
            _read_start(harness / "stdout", limits.max_output),
            stderr_text,
            duration,
        )
    report = _read_report(harness / "report")
    if isinstance(report, str):
        detail = report
        if process.returncode != 0:
            last_line = stderr_text.strip().splitlines()[-1:] or ["nothing on stderr"]
            detail = f"the sandbox could not start the program ({last_line[0]})"
        return _error_result(detail, stderr_text, duration)
    reason, exception, error = _judge(report)
    return ExecutionResult(
        passed=reason == "passed",
        reason=reason,
        exception=exception,
        stdout=_read_start(harness / "stdout", limits.max_output),
        stderr=stderr_text,
        duration=duration,
        error=error,
    )


def _error_result(detail: str, stderr: str, duration: float) -> ExecutionResult:
    return ExecutionResult(False, "error", None, "", stderr, duration, error=detail)


def run_many(
    sources: Sequence[str],
    limits: Limits = Limits(),
    workers: int | None = None,
    on_done: Callable[[int, ExecutionResult], None] | None = None,
    *,
    python: str | None = None,
) -> list[ExecutionResult]:
    """Runs the programs `workers` at a time (default: one per CPU); results in input order.

    The work happens in child processes, so plain threads are enough to drive them. `on_done`
    is called with (index, result) as each program finishes, e.g. to advance a progress bar; it
    is always called from the calling thread, so it need not be thread-safe. An exception here
    (Ctrl-C) kills every running program at once before it propagates. Called from the main
    thread, Ctrl-C is caught by a handler that only sets a flag and wakes the runs, and
    KeyboardInterrupt is raised once they are killed: raised at a random point, it could leave
    a lock taken (in `on_done`'s progress bar, say) and hang the exit.
    """
    isolation = probe(python or sys.executable).level
    results: list[ExecutionResult | None] = [None] * len(sources)
    cancel_read, cancel_write = os.pipe()
    interrupted = False

    def on_interrupt(signum: int, frame: object) -> None:
        nonlocal interrupted
        interrupted = True
        os.write(cancel_write, b"x")  # wakes every waiting run, which kills its program

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_interrupt) if in_main_thread else None
    try:
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            futures = {
                pool.submit(
                    run_program,
                    source,
                    limits,
                    python=python,
                    isolation=isolation,
                    cancel=cancel_read,
                ): i
                for i, source in enumerate(sources)
            }
            try:
                for future in as_completed(futures):
                    if interrupted:
                        break
                    index = futures[future]
                    results[index] = future.result()
                    if on_done is not None:
                        on_done(index, results[index])
            except BaseException:
                os.write(cancel_write, b"x")
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            if interrupted:
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        os.close(cancel_read)
        os.close(cancel_write)
    if interrupted:
        raise KeyboardInterrupt
    return results  # type: ignore[return-value]  # every slot was filled above


def _child_command(
    python: str, harness: Path, limits: Limits, isolation: str, python_guard: bool = True
) -> list[str]:
    """Isolated mode (-I) ignores PYTHON* variables and the user's site-packages; -S skips site
    until the child has dropped its privileges (then it adds the installed packages itself); -B
    writes no bytecode; -u keeps the output of a program that gets killed."""
    settings = {
        "harness": str(harness),
        "nonce": secrets.token_hex(8),
        "isolate": int(isolation != "none"),
        "launcher": isolation,
        "guard": int(python_guard),
        "site": os.pathsep.join(site_packages(python)),
        "memory_bytes": limits.memory_mb * 1024 * 1024,
        "cpu_seconds": math.ceil(limits.timeout) + 1,  # a backstop behind the wall clock
        "file_bytes": limits.max_file_mb * 1024 * 1024,
        "disk_bytes": limits.disk_mb * 1024 * 1024,
        "task_headroom": _TASK_HEADROOM,
        "seccomp": sandbox.seccomp_filter().hex() if isolation != "none" else "",
    }
    settings["script"] = str(_CHILD_SCRIPT)
    arguments = [f"{key}={value}" for key, value in settings.items()]
    return [python, "-I", "-S", "-B", "-u", _child_bytecode(python), *arguments]


@functools.cache
def _child_bytecode(python: str) -> str:
    """The child script, compiled once: Python compiles a script it runs from source every time,
    which would cost each program ~4 ms. Another interpreter runs the source."""
    import importlib.util
    import py_compile

    if python != sys.executable:
        return str(_CHILD_SCRIPT)
    target = importlib.util.cache_from_source(str(_CHILD_SCRIPT))
    try:
        return py_compile.compile(str(_CHILD_SCRIPT), cfile=target, doraise=True)
    except (OSError, py_compile.PyCompileError):  # a package folder we may not write to
        return str(_CHILD_SCRIPT)


@functools.cache
def site_packages(python: str) -> tuple[str, ...]:
    """The folders of installed packages of `python`, which programs may import from: its
    site-packages, then the folders their .pth files name (`pth_folders`)."""
    if python == sys.executable:
        import site

        folders = tuple(site.getsitepackages())
    else:
        ask = "import site; print(*site.getsitepackages(), sep='\\n')"
        try:  # without -S: only site knows a venv's own folders
            found = subprocess.run(
                [python, "-I", "-c", ask], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return ()
        folders = tuple(found.stdout.splitlines()) if found.returncode == 0 else ()
    named = [folder for folder in pth_folders(folders) if folder not in folders]
    return folders + tuple(dict.fromkeys(named))


def pth_folders(site_folders: Iterable[str]) -> Iterator[str]:
    """The existing folders that the path lines of .pth files in `site_folders` add, as `site`
    adds them (relative to their folder; comments, hidden files and ``import`` lines skipped).
    Programs run without `site` (its ``import`` lines run code: editable-install finders), so
    packages installed as a path line (a src-layout editable install, a venv extended by
    another's folder) would otherwise not be importable."""
    for site_folder in site_folders:
        try:
            names = sorted(os.listdir(site_folder))
        except OSError:
            continue
        for name in names:
            if not name.endswith(".pth") or name.startswith("."):
                continue
            try:
                with open(os.path.join(site_folder, name), "rb") as file:
                    text = file.read(1 << 20).decode("utf-8", errors="replace")
            except OSError:
                continue
            for line in text.splitlines():
                line = line.rstrip()
                if not line or line.startswith(("#", "import ", "import\t")):
                    continue
                folder = os.path.abspath(os.path.join(site_folder, line))
                if os.path.isdir(folder):
                    yield folder


def _child_environment(work_dir: str) -> dict[str, str]:
    """Nothing inherited, so no tokens or credentials leak into the program."""
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": work_dir}


def _wait_then_kill_group(
    process: subprocess.Popen[bytes], timeout: float, cancel: int | None = None
) -> Literal["ended", "timeout", "cancelled"]:
    """Waits up to `timeout` for the child, then SIGKILLs its whole process group.

    With kernel isolation, killing the launcher is enough: the supervisor dies with it (parent
    death signal) and everything in the PID namespace with the supervisor. The process group
    kill is for the unisolated case. The pidfd reports the exit without reaping the child, so
    until the kill its pid, which is also the group id, cannot be reused by another process.
    """
    try:
        pidfd = os.pidfd_open(process.pid)
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            if cancel is not None:
                poller.register(cancel, select.POLLIN)
            events = dict(poller.poll(math.ceil(timeout * 1000)))
            if cancel in events:
                return "cancelled"
            return "ended" if events else "timeout"
        finally:
            os.close(pidfd)
    finally:  # even on Ctrl-C: no program may outlive its run
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _read_report(path: Path) -> dict[str, Any] | str:
    """The supervisor's report (wait status, "finished" or not, first note of the bootstrap), or
    why there is none that can be trusted."""
    text = _read_start(path, _REPORT_BYTES)
    if not text:
        return "the sandbox wrote no report"
    if text.startswith("broken "):
        return f"the sandbox failed: {text[7:].strip()}"
    lines = text.split("\n")
    keys = [line.partition(" ")[0] for line in lines[:3]]
    if keys != ["status", "finished", "info"] or lines[3:] != [""]:
        return "the sandbox's report is garbled"
    status, finished, info = (line.partition(" ")[2] for line in lines[:3])
    if not status.isdigit() or finished not in ("0", "1"):
        return "the sandbox's report is garbled"
    return {"status": int(status), "finished": finished == "1", "info": info}


def _judge(report: dict[str, Any]) -> tuple[Reason, str | None, str | None]:
    """(reason, exception name, error) from the supervisor's report: the program process's wait
    status, whether it said "finished" after its last line, and the bootstrap's first note."""
    try:
        returncode = os.waitstatus_to_exitcode(report["status"])
    except ValueError:
        return "error", None, "the sandbox's report is garbled"
    info = report["info"].split()
    if info[:1] == ["broken"]:
        return "error", None, f"the sandbox could not lock the program in: {report['info'][7:]}"
    if returncode == -signal.SIGXCPU:
        return "timeout", None, None
    if returncode == -signal.SIGXFSZ or info[:1] == ["output"]:  # the signal, or PID 1's note
        return "output", None, None
    if report["finished"] and returncode == 0:
        return "passed", None, None
    if len(info) == 2 and info[0] == "raised" and info[1].isidentifier():
        return _REASON_BY_EXCEPTION.get(info[1], "exception"), info[1], None
    if returncode < 0:
        return "killed", None, None
    return "exit", None, None


def _read_start(path: Path, size: int) -> str:
    """The first `size` bytes of a file the child wrote, never more, as text."""
    try:
        with open(path, "rb") as file:
            return file.read(size).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def probe(python: str) -> sandbox.Isolation:
    """The isolation programs get under `python`: namespaces made by taskcli, else bubblewrap if
    it is on PATH and works, else none. `TASKCLI_ISOLATION` forces one level.

    taskcli's own namespaces come first although bubblewrap is the field's tool: they build the
    same sandbox and cost a program about 30 ms less (bwrap is one more program to start, and
    builds its root from scratch). bubblewrap still isolates where only it may create user
    namespaces (a setuid bwrap, or a distribution that allows them to bwrap alone). Each level
    is tried by running a trial program under it, once per interpreter, which also finds the
    folders of the interpreter's sys.path that programs cannot see (`Isolation.hidden`)."""
    return _probe(python, os.environ.get(sandbox.ENV_OVERRIDE), shutil.which("bwrap"))


# The trial program lists the folders of its sys.path it cannot see; those that exist outside
# the sandbox are hidden by it.
_TRIAL = "import os, sys\nfor folder in sys.path:\n    os.path.exists(folder) or print(folder)\n"


@functools.cache
def _probe(python: str, override: str | None, bwrap: str | None) -> sandbox.Isolation:
    refused = sandbox.kernel_can_isolate()
    if refused is not None:
        return sandbox.Isolation(sandbox.NONE, refused)
    if override is not None and override not in sandbox.LEVELS:
        levels = ", ".join(sandbox.LEVELS)
        reason = f"{sandbox.ENV_OVERRIDE}={override} is not one of {levels}"
        return sandbox.Isolation(sandbox.NONE, reason)
    own, bubblewrap = sandbox.NAMESPACES, sandbox.BUBBLEWRAP
    candidates = [override] if override else [own, bubblewrap] if bwrap else [own]
    problems = []
    for level in candidates:
        result = run_program(_TRIAL, Limits(timeout=10.0), python=python, isolation=level)
        if result.passed:
            missing = result.stdout.splitlines()
            return sandbox.Isolation(level, hidden=tuple(filter(os.path.exists, missing)))
        problems.append(f"{level}: {result.error or result.reason}")
    return sandbox.Isolation(
        sandbox.NONE, "the kernel refused namespaces (" + "; ".join(problems) + ")"
    )
