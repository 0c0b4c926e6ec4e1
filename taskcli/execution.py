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
import math
import os
import secrets
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Reason = Literal[
    "passed", "assertion", "exception", "timeout", "memory", "output", "exit", "killed"
]

# RLIMIT_NPROC counts every process and thread of the user, not just the program's, so the cap is
# what the user already runs plus this many.
_TASK_HEADROOM = 64

# Only this much of the bootstrap's outcome file is read: "started", then "raised <Name>" or
# "finished <token>".
_OUTCOME_BYTES = 256

_REASON_BY_EXCEPTION: dict[str, Reason] = {
    "AssertionError": "assertion",
    "MemoryError": "memory",
    "SystemExit": "exit",
}

# Runs as `python -I -S -B -u -c _BOOTSTRAP HARNESS_DIR WORK_DIR MEMORY CPU FSIZE HEADROOM` with
# the working directory WORK_DIR. Everything it needs is set up before the guard is installed.
_BOOTSTRAP = r'''
import builtins
import os
import resource
import sys

import _posixsubprocess
import _signal

harness_dir, work_dir = sys.argv[1:3]
memory_bytes, cpu_seconds, file_bytes, task_headroom = map(int, sys.argv[3:7])


def refuse(what):
    raise PermissionError(f"{what} is disabled in the sandbox")


def user_task_count():
    """Processes and threads of this user, which RLIMIT_NPROC counts along with the program's."""
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == os.getuid():
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                pass  # the process ended while we looked
    return count


def limit(resource_id, soft, hard):
    """Lowers a limit, never above the hard limit we were given (raising it would fail)."""
    _, given_hard = resource.getrlimit(resource_id)
    if given_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, given_hard), min(hard, given_hard)
    resource.setrlimit(resource_id, (soft, hard))


limit(resource.RLIMIT_AS, memory_bytes, memory_bytes)
limit(resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + 1)  # SIGXCPU first, SIGKILL a second later
limit(resource.RLIMIT_FSIZE, file_bytes, file_bytes)
limit(resource.RLIMIT_CORE, 0, 0)
task_cap = user_task_count() + task_headroom
limit(resource.RLIMIT_NPROC, task_cap, task_cap)
# Python starts with SIGXFSZ ignored, so an over-long write would only raise an OSError that the
# program could catch; with the default action the kernel ends the program.
_signal.signal(_signal.SIGXFSZ, _signal.SIG_DFL)

program_path = os.path.join(harness_dir, "program.py")
with open(program_path, encoding="utf-8", errors="surrogatepass") as program_file:
    source = program_file.read()
token_path = os.path.join(harness_dir, "token")
with open(token_path) as token_file:
    token = token_file.read()
os.remove(token_path)  # so the program cannot read the token and fake a pass
outcome = open(os.path.join(harness_dir, "outcome"), "w")


def disabled(what):
    def refuse_call(*args, **kwargs):
        refuse(what)

    return refuse_call


# The two ways to start or signal processes that raise no audit event.
_posixsubprocess.fork_exec = disabled("starting processes")
_signal.pidfd_send_signal = disabled("signalling processes")

BLOCKED_EVENTS = frozenset({
    "os.system", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "subprocess.Popen",
    "os.kill", "os.killpg", "resource.setrlimit", "resource.prlimit",
    "os.remove", "os.rmdir", "os.rename", "shutil.rmtree", "shutil.move", "os.truncate",
    "os.chmod", "os.chown", "os.link", "os.symlink", "os.utime", "os.setxattr",
    "os.putenv", "os.unsetenv", "os.chdir",
})
PATCHED_MODULES = frozenset({"_posixsubprocess", "_signal"})
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def inside_work_dir(path):
    if isinstance(path, int):
        return True  # a descriptor that is already open
    real = os.path.realpath(os.path.join(work_dir, os.fsdecode(path)))
    return real in (work_dir, os.devnull) or real.startswith(work_dir + os.sep)


def guard(event, args):
    if event in BLOCKED_EVENTS or event.startswith("ctypes."):
        refuse(event)
    if event == "import" and args[0] in PATCHED_MODULES:
        refuse(f"loading a fresh {args[0]}")  # it would bring back the disabled functions
    writes = event == "os.mkdir" or (event == "open" and args[2] & WRITE_FLAGS)
    if writes and not inside_work_dir(args[0]):
        refuse(f"writing {args[0]!r} outside the working directory")


sys.addaudithook(guard)
builtins.exit = builtins.quit = sys.exit  # as site would define them; -S leaves them out
program_module = type(sys)("__main__")  # its own __main__, so pickle finds its classes and
sys.modules["__main__"] = program_module  # `import __main__` does not reach the bootstrap
namespace = program_module.__dict__
outcome.write("started\n")
outcome.flush()
try:
    exec(compile(source, "program.py", "exec"), namespace)
except BaseException as error:
    namespace.clear()  # frees the program's data, so reporting works after a MemoryError
    outcome.write(f"raised {type(error).__name__}\n")
    outcome.flush()
    if isinstance(error, SystemExit):
        raise
    import traceback

    traceback.print_exception(type(error), error, error.__traceback__.tb_next)
    sys.exit(1)
outcome.write(f"finished {token}\n")
outcome.flush()
'''


@dataclass(frozen=True)
class Limits:
    """What one program may use. The defaults suit HumanEval: tiny functions and a few asserts."""

    timeout: float = 5.0
    """Wall-clock seconds, interpreter start-up included; then the process group is killed."""
    memory_mb: int = 256
    """Address space (RLIMIT_AS); allocating more raises MemoryError in the program."""
    max_output: int = 64_000
    """Bytes of stdout and of stderr kept in the result; the rest is dropped, not an error."""
    max_file_mb: int = 32
    """Largest file the program may write, its stdout and stderr included (RLIMIT_FSIZE), so a
    runaway writer cannot fill the disk; writing more stops it with reason "output"."""

    def __post_init__(self) -> None:
        for name in ("timeout", "memory_mb", "max_output", "max_file_mb"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be positive, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class ExecutionResult:
    """How one program ended. `reason` says why it failed, so a score can be broken down.

    reason is "passed"; "assertion" (an AssertionError escaped: a test failed); "exception"
    (another exception escaped, named in `exception`); "timeout" (wall-clock or CPU time ran
    out); "memory" (MemoryError); "output" (it wrote more than `Limits.max_file_mb` to a file or
    stream); "exit" (it exited before its end, e.g. `sys.exit(0)` or `os._exit(0)`, or its
    interpreter exited non-zero after it ended); or "killed" (a signal we did not send, e.g. a
    segmentation fault).
    """

    passed: bool
    reason: Reason
    exception: str | None
    """Type name of the exception that ended the program (`SystemExit` included), else None."""
    stdout: str
    stderr: str
    duration: float
    """Wall-clock seconds from starting the child to collecting it."""


def run_program(source: str, limits: Limits = Limits()) -> ExecutionResult:
    """Runs `source` in a fresh sandboxed child process and says whether it ran to its end."""
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="taskcli-sandbox-", ignore_cleanup_errors=True) as temp:
        harness_dir = Path(temp).resolve()
        work_dir = harness_dir / "work"
        work_dir.mkdir()
        (harness_dir / "program.py").write_text(source, encoding="utf-8", errors="surrogatepass")
        (harness_dir / "token").write_text(token)
        started = time.monotonic()
        with (
            open(harness_dir / "stdout", "wb") as stdout,
            open(harness_dir / "stderr", "wb") as stderr,
        ):
            process = subprocess.Popen(
                _child_command(harness_dir, work_dir, limits),
                cwd=work_dir,
                env=_child_environment(work_dir),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        timed_out = _wait_then_kill_group(process, limits.timeout)
        duration = time.monotonic() - started
        outcome = _read_start(harness_dir / "outcome", _OUTCOME_BYTES).split()
        stderr_text = _read_start(harness_dir / "stderr", limits.max_output)
        if outcome[:1] != ["started"] and not timed_out:
            # Not the program's fault (a broken interpreter, or limits too small for start-up):
            # scoring it as a failure would silently turn every score into 0.
            raise RuntimeError(f"the sandbox could not start the program:\n{stderr_text}")
        reason, exception = _judge(process.returncode, timed_out, outcome[1:], token)
        return ExecutionResult(
            passed=reason == "passed",
            reason=reason,
            exception=exception,
            stdout=_read_start(harness_dir / "stdout", limits.max_output),
            stderr=stderr_text,
            duration=duration,
        )


def run_many(
    sources: Sequence[str],
    limits: Limits = Limits(),
    workers: int | None = None,
    on_done: Callable[[int, ExecutionResult], None] | None = None,
) -> list[ExecutionResult]:
    """Runs the programs `workers` at a time (default: one per CPU); results in input order.

    The work happens in child processes, so plain threads are enough to drive them. `on_done`
    is called with (index, result) as each program finishes, e.g. to advance a progress bar; it
    is always called from the calling thread, so it need not be thread-safe.
    """
    results: list[ExecutionResult | None] = [None] * len(sources)
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        futures = {pool.submit(run_program, source, limits): i for i, source in enumerate(sources)}
        try:
            for future in as_completed(futures):
                index = futures[future]
                results[index] = future.result()
                if on_done is not None:
                    on_done(index, results[index])
        except BaseException:
            pool.shutdown(cancel_futures=True)  # Ctrl-C should not wait for the whole queue
            raise
    return results  # type: ignore[return-value]  # every slot was filled above


def _child_command(harness_dir: Path, work_dir: Path, limits: Limits) -> list[str]:
    """Isolated (-I), without site-packages (-S): the program sees the standard library only,
    and no third-party module that could sidestep the guard; -B writes no bytecode, -u keeps the
    output of a program that gets killed."""
    return [
        sys.executable,
        "-I",
        "-S",
        "-B",
        "-u",
        "-c",
        _BOOTSTRAP,
        str(harness_dir),
        str(work_dir),
        str(limits.memory_mb * 1024 * 1024),
        str(math.ceil(limits.timeout) + 1),  # CPU seconds: a backstop behind the wall clock
        str(limits.max_file_mb * 1024 * 1024),
        str(_TASK_HEADROOM),
    ]


def _child_environment(work_dir: Path) -> dict[str, str]:
    """Nothing inherited, so no tokens or credentials leak into the program."""
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(work_dir)}


def _wait_then_kill_group(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Waits up to `timeout` for the program, then SIGKILLs its whole process group, so nothing
    it started outlives it. Returns whether the time ran out.

    The pidfd reports the exit without reaping the child, so until the kill its pid, which is
    also the group id, cannot be reused by an unrelated process.
    """
    try:
        pidfd = os.pidfd_open(process.pid)
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            return not poller.poll(math.ceil(timeout * 1000))
        finally:
            os.close(pidfd)
    finally:  # even on Ctrl-C: no program may outlive its run
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _judge(
    returncode: int, timed_out: bool, outcome: list[str], token: str
) -> tuple[Reason, str | None]:
    """(reason, exception name) from how the child ended and what the bootstrap reported after
    "started": ["raised", name], ["finished", token], or nothing if the program never returned."""
    if timed_out or returncode == -signal.SIGXCPU:
        return "timeout", None
    if returncode == -signal.SIGXFSZ:
        return "output", None
    if outcome == ["finished", token] and returncode == 0:
        return "passed", None
    if len(outcome) == 2 and outcome[0] == "raised":
        return _REASON_BY_EXCEPTION.get(outcome[1], "exception"), outcome[1]
    if returncode < 0:
        return "killed", None
    return "exit", None


def _read_start(path: Path, size: int) -> str:
    """The first `size` bytes of a file the child wrote, never more, as text."""
    try:
        with open(path, "rb") as file:
            return file.read(size).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
