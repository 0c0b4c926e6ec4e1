"""Running a program on a pseudo-terminal and reading what it drew, for tests that run taskcli
on one."""

import os
import pty
import subprocess


def start_on_terminal(
    command: list[str], env: dict[str, str], cwd: str | os.PathLike[str] | None = None
) -> tuple[subprocess.Popen, int]:
    """`command` started with a pseudo-terminal as its standard streams, and the terminal's
    side to read. Started by subprocess, not `pty.fork`: forking the suite's process, which runs
    threads, is what Python 3.13 warns may deadlock."""
    terminal, program_side = pty.openpty()
    try:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=program_side,
            stdout=program_side,
            stderr=program_side,
            start_new_session=True,
        )
    finally:
        os.close(program_side)
    return process, terminal


def read_to_end(fd: int) -> bytes:
    """Everything the terminal `fd` shows until the program on it closes it (or exits)."""
    screen = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # Linux reports a closed pty as EIO
            break
        if not chunk:
            break
        screen += chunk
    return screen
