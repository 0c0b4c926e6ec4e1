"""Reading what a program drew on a pseudo-terminal, for tests that run taskcli on one."""

import os


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
