"""Hostile programs against the real kernel sandbox.

Every attack runs twice: behind the Python guard as `eval` runs it, and with the guard left out
(`python_guard=False`), which shows what the kernel isolation stops on its own. The attacks run
in one parallel batch per module; after the batch, each attack's outside folder must still hold
its sentinel file unchanged and nothing else (no device node, socket, fifo or database), no
process any attack started may be alive, the test process must be untouched (not stopped, not
reniced) and the local TCP server must have seen no connection.
"""

import fcntl
import os
import secrets
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from taskcli.sandbox.execution import Limits, probe, run_program
from taskcli.sandbox.isolation import BUBBLEWRAP, NAMESPACES, NONE, Isolation, seccomp_filter

ISOLATION = probe(sys.executable)
pytestmark = pytest.mark.skipif(
    ISOLATION.level == NONE,
    reason=f"no kernel isolation on this machine: {ISOLATION.reason}",
)
LIMITS = Limits(timeout=4.0, disk_mb=8)
MARK = "taskcli-attack-" + secrets.token_hex(4)  # on the command line of every process started
SECRET = "hf_" + secrets.token_hex(8)
FS_IOC_GETFLAGS, IMMUTABLE = 0x80086601, 0x10

PRELUDE = """\
import os, sys
OUTSIDE = {outside!r}
SENTINEL = OUTSIDE + '/sentinel.txt'
TEST_PID, PORT, MARK = {test_pid}, {port}, {mark!r}

def attempt(label, action):
    try:
        action()
        print('DONE', label)
    except Exception as error:
        print('refused', label, type(error).__name__, error)

"""

SLEEPER = "['/bin/sh', '-c', 'sleep 60', MARK]"  # sh keeps MARK as $0: findable from outside

ATTACKS = {
    "mknod-block-device": """
import stat
device = os.stat('/').st_dev
for path in ('disk', OUTSIDE + '/disk'):
    def write_raw(path=path):
        os.mknod(path, stat.S_IFBLK | 0o600, device)
        with open(path, 'r+b') as disk:
            disk.write(b'\\0' * 512)
    attempt('raw write through ' + path, write_raw)
""",
    "chattr-immutable": """
import fcntl, struct
def immutable(path, mode):
    with open(path, mode) as file:
        fcntl.ioctl(file.fileno(), 0x40086602, struct.pack('l', 0x10))
attempt('chattr +i sentinel', lambda: immutable(SENTINEL, 'r'))
attempt('chattr +i own file', lambda: immutable('mine.txt', 'a'))
""",
    "files-created-outside": """
import socket, sqlite3
attempt('sqlite', lambda: sqlite3.connect(OUTSIDE + '/db.sqlite').execute('create table t (x)'))
attempt('unix socket', lambda: socket.socket(socket.AF_UNIX).bind(OUTSIDE + '/socket'))
attempt('fifo', lambda: os.mkfifo(OUTSIDE + '/fifo'))
attempt('node', lambda: os.mknod(OUTSIDE + '/node'))
""",
    "dir-fd-forms": """
folder = os.open(OUTSIDE, os.O_RDONLY)
attempt('truncate', lambda: os.open('sentinel.txt', os.O_WRONLY | os.O_TRUNC, dir_fd=folder))
attempt('create', lambda: os.open('new.txt', os.O_WRONLY | os.O_CREAT, dir_fd=folder))
attempt('mkdir', lambda: os.mkdir('new', dir_fd=folder))
attempt('unlink', lambda: os.unlink('sentinel.txt', dir_fd=folder))
""",
    "subinterpreter": """
import _xxsubinterpreters as interpreters
code = f'''
import os
for action in (lambda: os.unlink({{SENTINEL!r}}),
               lambda: os.system("sleep 60 & exec sh -c 'sleep 60' {{MARK}}"),
               lambda: os.kill({{TEST_PID}}, 19)):
    try:
        action()
    except Exception as error:
        print('refused', error)
'''
interpreters.run_string(interpreters.create(), code)
""",
    "posixsubprocess-under-another-name": """
import importlib.util, subprocess
spec = importlib.util.find_spec('_posixsubprocess')
fresh = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fresh)
subprocess._posixsubprocess = fresh
subprocess.Popen(['/bin/sh', '-c', 'rm -f "$1"; setsid sleep 60 & sleep 60', MARK, SENTINEL])
""",
    "cffi-from-site-packages": """
from cffi import FFI
ffi = FFI()
ffi.cdef('''int unlink(const char *); int kill(int, int); int fork(void); int setsid(void);
            int execv(const char *, char *const []);
            int mount(const char *, const char *, const char *, unsigned long, const void *);''')
libc = ffi.dlopen(None)
print('unlink', libc.unlink(SENTINEL.encode()), 'kill', libc.kill(TEST_PID, 19))
print('mount', libc.mount(b'none', OUTSIDE.encode(), b'tmpfs', 0, ffi.NULL))
if libc.fork() == 0:
    libc.setsid()
    words = [ffi.new('char[]', word) for word in (b'/bin/sh', b'-c', b'sleep 60', MARK.encode())]
    libc.execv(b'/bin/sh', ffi.new('char *[]', [*words, ffi.NULL]))
""",
    "setsid-children": f"""
import subprocess
attempt('setsid', lambda: subprocess.Popen({SLEEPER}, start_new_session=True))
attempt('double fork', lambda: os.fork() or (os.setsid(), os.execv('/bin/sh', {SLEEPER})))
""",
    "fork-bomb": """
if os.getuid() == 0:
    print('skipped: the kernel sets no process limit for uid 0')
else:
    children = 0
    try:
        while True:
            if os.fork() == 0:
                os.execv('/bin/sh', ['/bin/sh', '-c', 'sleep 60', MARK])
            children += 1
    except Exception as error:
        print('stopped after', children, type(error).__name__)
""",
    "kill-and-renice-the-parent": """
import signal
for pid in (TEST_PID, os.getppid(), 1):
    attempt(f'stop {pid}', lambda: os.kill(pid, signal.SIGSTOP))
    attempt(f'renice {pid}', lambda: os.setpriority(os.PRIO_PROCESS, pid, 19))
attempt('kill everything', lambda: os.kill(-1, signal.SIGKILL))
""",
    "read-the-parent-environment": """
for pid in ['self', str(TEST_PID), str(os.getppid()), *os.listdir('/proc')]:
    try:
        print(pid, open(f'/proc/{pid}/environ', 'rb').read())
    except OSError as error:
        print('refused', pid, error)
""",
    "tcp-to-localhost": """
import socket
attempt('connect', lambda: socket.create_connection(('127.0.0.1', PORT), timeout=1).send(b'hi'))
""",
    "fill-dev-shm": """
written = 0
try:
    with open('/dev/shm/flood', 'wb') as flood:
        while written < 4 * 1024**3:
            flood.write(b'x' * 2**20)
            flood.flush()
            written += 2**20
except OSError as error:
    print('stopped', error)
print('WROTE', written)
""",
    "fill-the-disk": """
written = 0
try:
    for number in range(4096):
        with open(f'file{number}', 'wb') as file:
            file.write(b'x' * 2**20)
            file.flush()
        written += 2**20
except OSError as error:
    print('stopped', error)
print('WROTE', written)
""",
    "print-into-the-parent-stdout": """
for path in (f'/proc/{TEST_PID}/fd/1', f'/proc/{os.getppid()}/fd/1', '/dev/tty', '/dev/console'):
    attempt(path, lambda: open(path, 'w').write('{"accuracy": 1.0}\\n'))
""",
}


def run_batch(outside_root: Path, server: socket.socket, guard: bool, isolation: str) -> dict:
    """Runs every attack (4 at a time), each with an outside folder of its own."""
    programs = {}
    for name, attack in ATTACKS.items():
        outside = outside_root / f"{name}-{'guarded' if guard else 'bare'}"
        outside.mkdir()
        (outside / "sentinel.txt").write_text("keep me")
        prelude = PRELUDE.format(
            outside=str(outside),
            test_pid=os.getpid(),
            port=server.getsockname()[1],
            mark=MARK,
        )
        programs[name] = (outside, prelude + attack)
    with ThreadPoolExecutor(4) as pool:
        futures = {
            name: pool.submit(run_program, source, LIMITS, isolation=isolation, python_guard=guard)
            for name, (_, source) in programs.items()
        }
        return {name: (programs[name][0], future.result()) for name, future in futures.items()}


def live_marked_processes() -> list[str]:
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            command_line = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if MARK.encode() in command_line and state != "Z":
            found.append(command_line.replace(b"\0", b" ").decode(errors="replace"))
    return found


@pytest.fixture(
    scope="module",
    params=[
        (True, NAMESPACES),
        (False, NAMESPACES),
        (True, BUBBLEWRAP),
        (False, BUBBLEWRAP),
    ],
    ids=["guarded", "kernel-only", "bwrap-guarded", "bwrap-kernel-only"],
)
def attacked(request):
    """The outcome of every attack, after checking what the whole batch left behind."""
    guard, isolation = request.param
    if isolation == BUBBLEWRAP and shutil.which("bwrap") is None:
        pytest.skip("bubblewrap (bwrap) is not on PATH, so its path is not tested here")
    # /tmp is private inside the sandbox, so the outside folders live where programs can see
    # them (read-only): /var/tmp.
    outside_root = Path(tempfile.mkdtemp(prefix="taskcli-outside-", dir="/var/tmp"))
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    os.environ["TASKCLI_TEST_SECRET"] = SECRET
    priority = os.getpriority(os.PRIO_PROCESS, 0)
    shm_before = set(os.listdir("/dev/shm"))
    try:
        outcomes = run_batch(outside_root, server, guard, isolation)
        deadline = time.monotonic() + 3
        while (left := live_marked_processes()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert left == [], "processes outlived their run"
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody connected
        assert os.getpriority(os.PRIO_PROCESS, 0) == priority
        assert set(os.listdir("/dev/shm")) == shm_before
        yield outcomes
    finally:
        del os.environ["TASKCLI_TEST_SECRET"]
        server.close()
        shutil.rmtree(outside_root, ignore_errors=True)


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_leaves_the_outside_untouched(attacked, name):
    outside, result = attacked[name]
    assert result.reason != "error", result.error
    described = f"{name}: {result.reason}\n{result.stdout}\n{result.stderr}"
    entries = {entry.name: entry.lstat() for entry in outside.iterdir()}
    assert list(entries) == ["sentinel.txt"], described
    assert stat.S_ISREG(entries["sentinel.txt"].st_mode)
    assert (outside / "sentinel.txt").read_text() == "keep me", described
    with open(outside / "sentinel.txt") as sentinel:
        flags = fcntl.ioctl(sentinel.fileno(), FS_IOC_GETFLAGS, struct.pack("l", 0))
    assert not struct.unpack("l", flags)[0] & IMMUTABLE
    assert "DONE raw write" not in result.stdout
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("name", ["fill-dev-shm", "fill-the-disk"])
def test_writes_stop_at_the_disk_cap(attacked, name):
    _, result = attacked[name]
    written = int(result.stdout.split("WROTE ")[1])
    assert written <= LIMITS.disk_mb * 2**20
    assert "No space left on device" in result.stdout or "disabled in the sandbox" in result.stdout


def test_a_fork_bomb_stops_at_the_process_limit(attacked):
    stdout = attacked["fork-bomb"][1].stdout
    if "skipped" not in stdout:
        children = int(stdout.split("stopped after ")[1].split()[0])
        assert children <= 64 + 16  # the headroom, plus what the user ran when it started


def test_the_program_sees_only_the_interpreter_of_a_closed_folder():
    # /root is mode 700 here: the sandbox replaces it by a folder holding only the interpreter
    # (or, for a venv elsewhere, the Python it was made from).
    if not sys.base_prefix.startswith("/root/") or os.stat("/root").st_mode & stat.S_IXOTH:
        pytest.skip("this interpreter is not under a closed /root")
    source = "import os\nprint(os.getuid())\nprint(sorted(os.listdir('/root')))\n"
    result = run_program(source, LIMITS)
    uid, listing = result.stdout.splitlines()
    assert uid == "65534"  # nobody: the interpreter is readable once /root is replaced
    assert listing == str([sys.base_prefix.split("/")[2]])


# --- the interpreter's folders wherever they live ------------------------------------------------

# /tmp and /dev/shm are the sandbox's own, so a venv there must be carried in; a folder closed to
# other users, as a home folder is, is replaced by one holding only the venv.
VENV_PLACES = {"tmp": "/tmp", "dev-shm": "/dev/shm", "home-like": "/var/tmp"}


@pytest.fixture(scope="module", params=VENV_PLACES.values(), ids=VENV_PLACES.keys())
def placed_venv(request):
    """A venv in a new folder (mode 700) of /tmp, /dev/shm or /var/tmp, beside a private file;
    its site-packages hold a module and a .pth file that would run code."""
    folder = Path(tempfile.mkdtemp(prefix="taskcli-venv-", dir=request.param))
    try:
        venv = folder / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
        python = str(venv / "bin" / "python")
        ask = "import site; print(site.getsitepackages()[0])"
        site = Path(subprocess.check_output([python, "-c", ask], text=True).strip())
        (site / "placed.py").write_text("ANSWER = 42\n")
        (site / "hook.pth").write_text("import sys; sys.hooked = True\n")
        (folder / "private.txt").write_text("the owner's")
        yield python, site, folder
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize("isolation", [NAMESPACES, BUBBLEWRAP])
def test_a_venv_anywhere_is_importable_read_only_and_alone(placed_venv, isolation):
    if isolation == BUBBLEWRAP and shutil.which("bwrap") is None:
        pytest.skip("bubblewrap (bwrap) is not on PATH, so its path is not tested here")
    python, site, folder = placed_venv
    source = (
        "import os, sys, placed\n"
        "assert placed.ANSWER == 42\n"
        "assert not hasattr(sys, 'hooked')  # the .pth file did not run\n"
        f"try:\n    open({str(site / 'planted.py')!r}, 'w')\n"
        "except OSError as error:\n    print('refused', error.strerror)\n"
        f"print(sorted(os.listdir({str(folder)!r})))\n"
    )
    # without the Python guard: the kernel alone keeps the venv read-only
    result = run_program(source, LIMITS, python=python, isolation=isolation, python_guard=False)
    assert result.passed, result.stderr + (result.error or "")
    refused, listing = result.stdout.splitlines()
    assert refused in ("refused Read-only file system", "refused Permission denied")
    assert listing == "['venv']"  # the private file beside it is not there
    assert not (site / "planted.py").exists()
    assert probe(python).hidden == ()


def test_a_folder_the_sandbox_cannot_show_is_named_by_the_probe(hidden_folder):
    assert probe(sys.executable).hidden == (hidden_folder,)
    assert run_program("import numpy\n", LIMITS).passed  # the others are still there


def test_no_network_and_no_foreign_processes(attacked):
    assert "DONE connect" not in attacked["tcp-to-localhost"][1].stdout
    stdout = attacked["kill-and-renice-the-parent"][1].stdout
    assert f"DONE stop {os.getpid()}" not in stdout
    assert f"DONE renice {os.getpid()}" not in stdout


# --- verdicts that a program cannot forge -------------------------------------------------------

WRONG_SOLUTION = "def add(a, b):\n    return a - b\n\n"
CHECK = "\ndef check(candidate):\n    assert candidate(2, 3) == 5\n\ncheck(add)\n"
CLAIM_PASS = """
def claim_pass():
    import socket
    arguments = open('/proc/self/cmdline', 'rb').read().split(b'\\0')
    nonce = [a for a in arguments if a.startswith(b'nonce=')][0][6:]
    reporter = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    reporter.connect(b'\\0taskcli-verdict-' + nonce)
    reporter.sendall(b'finished')
    reporter.close()
    os._exit(0)

def open_gate(namespaces):
    for namespace in namespaces:
        for value in list(namespace.values()):
            if isinstance(value, dict) and 'checked' in value:
                value['checked'] = True
                claim_pass()
"""
FORGERS = {
    "claims-the-pass-directly": "claim_pass()",
    "reads-frames": """
frame = sys._getframe()
while frame is not None:
    open_gate([frame.f_locals, frame.f_globals])
    frame = frame.f_back
""",
    "searches-gc": """
import gc
open_gate([o for o in gc.get_objects() if isinstance(o, dict)])
""",
    "walks-a-traceback": """
try:
    1 / 0
except ZeroDivisionError as error:
    frame = error.__traceback__.tb_frame
    while frame is not None:
        open_gate([frame.f_locals, frame.f_globals])
        frame = frame.f_back
""",
    "replaces-check-through-settrace": """
def tracer(frame, event, arg):
    if event == 'call' and frame.f_code.co_name == 'check':
        frame.f_globals['check'] = lambda candidate: None
        def skip(frame, event, arg):
            frame.f_lineno = frame.f_code.co_firstlineno + 2
            return skip
        return skip
    return tracer
sys.settrace(tracer)
""",
    "reads-frames-from-a-signal-handler": """
import signal
def handler(number, frame):
    while frame is not None:
        open_gate([frame.f_locals, frame.f_globals])
        frame = frame.f_back
signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 0.01)
import time
time.sleep(0.5)
""",
    "follows-the-bootstraps-functions": """
import _posixsubprocess, _signal
seen, todo = set(), [_posixsubprocess.fork_exec, _signal.signal, _signal.pidfd_send_signal]
while todo:
    item = todo.pop()
    if id(item) in seen:
        continue
    seen.add(id(item))
    if isinstance(item, dict):
        open_gate([item])
        todo.extend(v for v in item.values() if isinstance(v, dict) or callable(v))
    elif hasattr(item, '__closure__'):
        todo.append(item.__globals__)
        todo.extend(cell.cell_contents for cell in item.__closure__ or ())
print('refused: no way to the gate in', len(seen), 'objects')
""",
}


@pytest.fixture(scope="module")
def forged():
    with ThreadPoolExecutor(4) as pool:
        futures = {
            name: pool.submit(
                run_program,
                "import os, sys\n" + WRONG_SOLUTION + CLAIM_PASS + "\ntry:\n"
                + "".join(f"    {line}\n" for line in trick.strip().splitlines())
                + "except Exception as error:\n    print('refused', type(error).__name__, error)\n"
                + CHECK,
                LIMITS,
            )
            for name, trick in FORGERS.items()
        }  # fmt: skip
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("name", FORGERS)
def test_a_forged_pass_fails(forged, name):
    result = forged[name]
    assert not result.passed, result.stdout
    assert (result.reason, result.exception) == ("assertion", "AssertionError"), result.stdout
    assert "refused" in result.stdout


def test_an_object_equal_to_everything_passes_as_in_every_harness():
    # Documented in docs/eval.md: the checks compare with ==, which the answer controls.
    source = (
        "class Anything:\n    def __eq__(self, other):\n        return True\n\n"
        "def add(a, b):\n    return Anything()\n" + CHECK
    )
    assert run_program(source, LIMITS).passed


# --- the filter and the other isolation paths ---------------------------------------------------


def test_the_seccomp_filter_is_one_bpf_program():
    program = seccomp_filter()
    assert len(program) % 8 == 0 and len(program) // 8 < 256
    last_code, _, _, last_k = struct.unpack("=HBBI", program[-8:])
    assert (last_code, last_k) == (0x06, 0x00050000 | 38)  # the last entry: ENOSYS


@pytest.mark.parametrize(("isolation", "pid"), [(NAMESPACES, "1"), (BUBBLEWRAP, "3")])
def test_an_unprivileged_user_gets_a_user_namespace(tmp_path, isolation, pid):
    # As root the program runs in namespaces the root user made; this runs the same sandbox as
    # `nobody`, which needs a user namespace (and a Python that nobody can read). The program
    # is PID 1 of its namespace; under bubblewrap, bwrap is PID 1 and the supervisor PID 2.
    system_python = Path("/usr/bin/python3")
    if os.geteuid() != 0 or not system_python.exists():
        pytest.skip("needs root (to become nobody) and /usr/bin/python3")
    if isolation == BUBBLEWRAP and shutil.which("bwrap") is None:
        pytest.skip("bubblewrap (bwrap) is not on PATH, so its path is not tested here")
    root = Path(__file__).resolve().parent.parent
    probe_file = Path("/var/tmp") / f"taskcli-nobody-{secrets.token_hex(4)}"  # world-writable
    program = (
        "import os\nprint(os.getuid(), os.getpid(), sorted(os.listdir('/dev')))\n"
        f"open({str(probe_file)!r}, 'w')\n"
    )
    driver = (
        "from taskcli.sandbox.execution import run_program\n"
        f"r = run_program({program!r}, python='/usr/bin/python3', isolation={isolation!r},"
        " python_guard=False)\n"
        "print(r.reason, r.exception, r.stdout, r.error)\n"
    )
    work = tmp_path / "nobody"
    work.mkdir()
    os.chown(work, 65534, 65534)
    completed = subprocess.run(
        [str(system_python), "-c", driver],
        cwd=work,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root), "TMPDIR": str(work)},
        user=65534,
        group=65534,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if "unshare" in completed.stdout and "not permitted" in completed.stdout:
        pytest.skip(f"the kernel refuses unprivileged user namespaces: {completed.stdout}")
    reason, exception, uid, got_pid, *devices = completed.stdout.split()
    assert (reason, exception, uid, got_pid) == ("exception", "OSError", "65534", pid), completed
    assert " ".join(devices).startswith("['fd', 'null', 'random', 'shm'")
    assert not probe_file.exists()  # read-only file system


def test_no_isolation_is_said_and_still_guarded(monkeypatch):
    monkeypatch.setenv("TASKCLI_ISOLATION", "none")
    isolation = probe(sys.executable)
    assert isolation == Isolation(NONE, "turned off by TASKCLI_ISOLATION=none")
    assert "Python guard only" in isolation.describe()
    result = run_program("import os\nos.system('true')\n", LIMITS)
    assert (result.reason, result.exception) == ("exception", "PermissionError")
