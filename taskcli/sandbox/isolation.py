"""Which isolation the kernel offers for running programs, and the seccomp filter they run under.

`taskcli.sandbox.execution` starts every program through `child.py`, which isolates it with Linux
namespaces when it can: by making the system calls itself, else through bubblewrap (`bwrap`) when it
is on PATH. This module names the levels, says whether the kernel can isolate at all, and builds the
seccomp filter (`taskcli.sandbox.execution.probe` tries the levels in turn): a classic BPF program
assembled here because Python has no binding for it and libseccomp is not always installed. The
filter is short, and a fixed list of system-call numbers is easy to review.
"""

from __future__ import annotations

import os
import platform
import struct
import sys
from dataclasses import dataclass

BUBBLEWRAP = "bubblewrap"  # namespaces set up by bwrap, when it is on PATH
NAMESPACES = "namespaces"  # namespaces set up by child.py itself
NONE = "none"  # the Python guard only
LEVELS = (BUBBLEWRAP, NAMESPACES, NONE)
ENV_OVERRIDE = "TASKCLI_ISOLATION"  # one of LEVELS, to force it (e.g. "none" to compare)

# x86-64 system calls a HumanEval program has no use for and an escape attempt would need:
# creating device nodes, mounting and namespaces, tracing or reading other processes, kernel
# modules and keys, clocks and host names, eBPF and perf, io_uring (whose work seccomp cannot
# see), and changing extended attributes.
DENIED_SYSCALLS = {
    "mknod": 133, "mknodat": 259, "mount": 165, "umount2": 166, "pivot_root": 155,
    "chroot": 161, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
    "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
    "delete_module": 176, "reboot": 169, "swapon": 167, "swapoff": 168, "setns": 308,
    "unshare": 272, "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321,
    "perf_event_open": 298, "userfaultfd": 323, "open_by_handle_at": 304,
    "name_to_handle_at": 303, "open_tree": 428, "move_mount": 429, "fsopen": 430,
    "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442, "quotactl": 179,
    "acct": 163, "settimeofday": 164, "clock_settime": 227, "adjtimex": 159,
    "clock_adjtime": 305, "sethostname": 170, "setdomainname": 171, "iopl": 172,
    "ioperm": 173, "syslog": 103, "kcmp": 312, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "pidfd_getfd": 438, "vhangup": 153, "uselib": 134,
    "personality": 135, "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190,
    "removexattr": 197, "lremovexattr": 198, "fremovexattr": 199, "fanotify_init": 300,
    "lookup_dcookie": 212, "seccomp": 317,
}  # fmt: skip
IOCTL, CLONE, CLONE3 = 16, 56, 435
# ioctl requests refused: file attributes (chattr +i, project ids) and faking terminal input.
DENIED_IOCTLS = (0x40086602, 0x40046602, 0x401C5820, 0x5412, 0x541C)
CLONE_NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | ...

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
LD_W_ABS, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
RET_KILL_PROCESS, RET_ALLOW, RET_ERRNO = 0x80000000, 0x7FFF0000, 0x00050000
EPERM, ENOSYS = 1, 38
NR, ARCH, ARG0, ARG1 = 0, 4, 16, 24  # offsets in struct seccomp_data (low 32 bits of args)


def seccomp_filter() -> bytes:
    """The filter as `struct sock_filter` entries: refused calls fail with EPERM (clone3 with
    ENOSYS, so the C library falls back to clone, whose flags the filter can read)."""
    program: list[tuple[int, int, int | str, int | str]] = []  # code, k, jump-if-true, if-false

    def op(code: int, k: int, true: int | str = 0, false: int | str = 0) -> None:
        program.append((code, k, true, false))

    op(LD_W_ABS, ARCH)
    op(JEQ, AUDIT_ARCH_X86_64, 1, 0)
    op(RET, RET_KILL_PROCESS)
    op(LD_W_ABS, NR)
    op(JGE, X32_SYSCALL_BIT, "deny")
    for number in DENIED_SYSCALLS.values():
        op(JEQ, number, "deny")
    op(JEQ, IOCTL, 0, "after ioctl")
    op(LD_W_ABS, ARG1)
    for request in DENIED_IOCTLS:
        op(JEQ, request, "deny")
    op(RET, RET_ALLOW)
    labels = {"after ioctl": len(program)}
    op(JEQ, CLONE, 0, 3)
    op(LD_W_ABS, ARG0)
    op(JSET, CLONE_NAMESPACE_FLAGS, "deny")
    op(RET, RET_ALLOW)
    op(JEQ, CLONE3, "nosys")
    op(RET, RET_ALLOW)
    labels["deny"] = len(program)
    op(RET, RET_ERRNO | EPERM)
    labels["nosys"] = len(program)
    op(RET, RET_ERRNO | ENOSYS)

    def offset(position: int, target: int | str) -> int:
        return target if isinstance(target, int) else labels[target] - position - 1

    return b"".join(
        struct.pack("=HBBI", code, offset(i, true), offset(i, false), k)
        for i, (code, k, true, false) in enumerate(program)
    )


@dataclass(frozen=True)
class Isolation:
    """What protects the machine from the programs: one of LEVELS (and why not better)."""

    level: str
    reason: str | None = None
    hidden: tuple[str, ...] = ()
    """Folders on the interpreter's sys.path that programs cannot see (under /run, say), so
    cannot import from; wherever else they live, the sandbox shows them read-only."""

    def describe(self) -> str:
        if self.level == NONE:
            return f"the Python guard only: {self.reason}"
        how = "bubblewrap" if self.level == BUBBLEWRAP else "taskcli itself"
        return f"kernel namespaces (set up by {how}), seccomp, no privileges, the Python guard"


def kernel_can_isolate() -> str | None:
    """Why the kernel isolation cannot be tried here, or None when it can."""
    if os.environ.get(ENV_OVERRIDE) == NONE:
        return f"turned off by {ENV_OVERRIDE}=none"
    if sys.platform != "linux":
        return f"kernel isolation needs Linux, this is {sys.platform}"
    if platform.machine() != "x86_64":
        return f"the seccomp filter is written for x86-64, this is {platform.machine()}"
    return None
