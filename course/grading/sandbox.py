"""A bubblewrap sandbox around one student's kernel: what the student's code can see, reach and use.

    >>> box = Sandbox(memory_bytes=3 * 2**30)
    >>> box.command(["python", "-c", "print(1)"], private=Path("/tmp/unit"))[:1]
    ['bwrap']

Inside, the kernel sees the operating system and the Python environment read-only, the ``kit`` and ``course``
packages read-only (labs import both), and one private writable folder (its working directory, a copy of the one notebook, the kernel's
sockets). It does not see the instructor's home, the repository's ``solutions/`` or ``tests/``, other
students' submissions or any results file. It has its own process, network (loopback only), IPC and host-name
namespaces; when the kernel process ends or the grader drops it, every process it started dies with it
(``--die-with-parent`` on the namespace's first process), a detached ``setsid`` child included. Run as root
(a course server, CI), the kernel also drops to an unprivileged user id of its own, so that resource limits on
processes apply to it and it cannot signal anything outside; run as an ordinary user, bubblewrap's user
namespace plays that part.

Limits (``prlimit``): memory a process can write to (``memory_bytes``, RLIMIT_DATA; a 20 GB allocation fails with
``MemoryError`` inside) and, a few times higher, its address space (RLIMIT_AS),
CPU seconds, processes and threads of the sandbox's user, size of any file written, no core files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from course import ROOT

#: Modes of ``course.grade --sandbox``.
MODES = ("required", "auto", "off")
#: The first of the unprivileged user ids kernels run as when the grader is root (one per parallel job).
FIRST_UID = 61000


class SandboxUnavailable(RuntimeError):
    """``--sandbox required`` on a machine where bubblewrap is missing or cannot create namespaces."""


@dataclass(frozen=True)
class Sandbox:
    """How to wrap one kernel command; plain settings, no state."""

    memory_bytes: int = 3 * 2**30
    cpu_s: int = 1800
    processes: int = 1024  # threads count too: TensorFlow starts a few dozen
    file_bytes: int = 2**30
    uid: int = FIRST_UID
    bwrap: str = "bwrap"

    @property
    def address_space_bytes(self) -> int:
        return max(4 * self.memory_bytes, self.memory_bytes + 8 * 2**30)

    def read_only(self) -> list[Path]:
        """What the kernel may read: the system, the Python environment, the kit and course packages; no tests,
        solutions or submissions."""
        paths = [Path(p) for p in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")]
        paths += [Path(sys.base_prefix), Path(sys.prefix), Path(sys.executable).resolve().parent.parent]
        # The two packages a lab imports (the kit; the course's knowledge checks), never the repository around them.
        paths += [ROOT / "kit", ROOT / "course", ROOT / "models"]
        return _unique(p for p in paths if p.exists())

    def command(self, argv: list[str], *, private: Path) -> list[str]:
        """``argv`` wrapped so that it runs sandboxed with ``private`` as its only writable folder (and cwd)."""
        cmd = [
            self.bwrap,
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
        ]
        # The fresh /dev, /proc and /tmp first: a Python environment or a checkout that lives under /tmp (as on
        # many CI runners) is then bound on top of the empty /tmp instead of being hidden by it.
        # /dev/shm writable by the sandbox's user: Ray's object store (lab 08's federation) maps its memory there.
        cmd += [
            "--dev",
            "/dev",
            "--perms",
            "1777",
            "--tmpfs",
            "/dev/shm",
            "--proc",
            "/proc",
            "--perms",
            "1777",
            "--tmpfs",
            "/tmp",
        ]
        made: set[Path] = {Path("/tmp")}
        for path in self.read_only():
            cmd += _parents(path, made)
            cmd += (
                ["--symlink", os.readlink(path), str(path)]
                if path.is_symlink()
                else ["--ro-bind", str(path), str(path)]
            )
        cmd += _parents(private, made) + ["--bind", str(private), str(private), "--chdir", str(private)]
        if os.geteuid() == 0:
            # Namespaces alone leave the kernel root: drop to a user of its own, with no capabilities.
            cmd += [
                "--",
                "setpriv",
                f"--reuid={self.uid}",
                f"--regid={self.uid}",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
            ]
        else:
            cmd.insert(1, "--unshare-user")
            cmd += ["--"]
        # Memory: RLIMIT_DATA bounds what a process can write to (heap and private mappings), which is what a
        # kernel really uses; TensorFlow reserves far more address space than it touches, so the address-space
        # limit (which also bounds shared mappings) is set a few times higher.
        cmd += [
            "prlimit",
            f"--data={self.memory_bytes}",
            f"--as={self.address_space_bytes}",
            f"--cpu={self.cpu_s}",
            f"--nproc={self.processes}",
            f"--fsize={self.file_bytes}",
            "--core=0",
            "--",
        ]
        return cmd + list(argv)

    def prepare(self, private: Path) -> None:
        """Make ``private`` the sandbox user's own folder (when the grader is root)."""
        if os.geteuid() == 0:
            for path in [private, *private.rglob("*")]:
                os.chown(path, self.uid, self.uid, follow_symlinks=False)

    def environment(self, private: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
        """A clean environment: nothing of the grader's (paths to results, tests or submissions) leaks in."""
        home = private / "home"
        env = {
            "PATH": os.pathsep.join(
                [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
            ),
            # getpass.getuser() (paho-mqtt's client ids) looks here before the password file, which has no
            # entry for the sandbox's user id.
            "USER": "student",
            "LOGNAME": "student",
            "HOME": str(home),
            "TMPDIR": "/tmp",
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "PYTHONPATH": str(ROOT),
            "IPYTHONDIR": str(home / ".ipython"),
            "MPLCONFIGDIR": str(home / ".mpl"),
            "MPLBACKEND": "Agg",
            "KERAS_HOME": str(home / ".keras"),
            "FLWR_HOME": str(home / ".flwr"),
            "RAY_TMPDIR": "/tmp",
            "JUPYTER_RUNTIME_DIR": str(home / ".jupyter"),
            "COURSE_GRADER": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        for key in (
            "VIRTUAL_ENV",
            "TF_CPP_MIN_LOG_LEVEL",
            "OMP_NUM_THREADS",
            "GPIOZERO_PIN_FACTORY",
            "GPIOZERO_MOCK_PIN_CLASS",
            "PYTHONHASHSEED",
        ):
            if key in os.environ:
                env[key] = os.environ[key]
        # Ray (lab 08's federation) sizes its object store from the machine's memory, not the sandbox's: give it
        # a quarter of the sandbox's memory, which also keeps the store's file under the file-size limit.
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        share = min(self.memory_bytes / 4, self.file_bytes * 0.9) / total
        env["RAY_DEFAULT_OBJECT_STORE_MEMORY_PROPORTION"] = f"{min(0.3, share):.4f}"
        env.update(extra or {})
        return env


def _unique(paths) -> list[Path]:
    seen, out = set(), []
    for path in paths:
        key = str(path)
        if key not in seen and not any(key.startswith(str(p) + "/") for p in out if not p.is_symlink()):
            seen.add(key)
            out.append(path)
    return out


def _parents(path: Path, made: set[Path]) -> list[str]:
    """Create ``path``'s missing parents readable by anyone (bubblewrap would make them 0700)."""
    out: list[str] = []
    for parent in reversed(path.parents[:-1]):
        if parent not in made:
            made.add(parent)
            out += ["--perms", "0755", "--dir", str(parent)]
    return out


def available(bwrap: str = "bwrap") -> str | None:
    """None when bubblewrap can start a sandbox here, else one line saying why not."""
    exe = shutil.which(bwrap)
    if exe is None:
        return "bubblewrap (bwrap) is not installed; on Debian/Ubuntu: sudo apt-get install bubblewrap"
    try:
        done = subprocess.run(
            [
                exe,
                "--unshare-pid",
                "--unshare-net",
                "--ro-bind",
                "/",
                "/",
                "--dev",
                "/dev",
                "--proc",
                "/proc",
                "--die-with-parent",
                "--",
                "true",
            ]
            if os.geteuid() == 0
            else [
                exe,
                "--unshare-user",
                "--unshare-pid",
                "--unshare-net",
                "--ro-bind",
                "/",
                "/",
                "--dev",
                "/dev",
                "--proc",
                "/proc",
                "--",
                "true",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not start a sandbox: {exc}"
    if done.returncode != 0:
        return f"bubblewrap could not start a sandbox here: {done.stderr.strip()[:200]}"
    for tool in ("prlimit", "setpriv") if os.geteuid() == 0 else ("prlimit",):
        if shutil.which(tool) is None:
            return f"{tool} (util-linux) is missing; install util-linux"
    return None


def resolve(mode: str, **settings) -> Sandbox | None:
    """The sandbox for ``--sandbox MODE``: a :class:`Sandbox`, or None when grading runs unsandboxed."""
    if mode not in MODES:
        raise ValueError(f"--sandbox {mode!r}: choose one of {', '.join(MODES)}")
    if mode == "off":
        return None
    why = available(settings.get("bwrap", "bwrap"))
    if why is None:
        return Sandbox(**settings)
    if mode == "required":
        raise SandboxUnavailable(f"--sandbox required, but {why}")
    warnings.warn(
        f"\n{'!' * 78}\nNO SANDBOX: {why}.\nStudent code will run with your user's rights: it can read other "
        f"submissions, the tests and your files, and change grades.\nInstall bubblewrap, or pass --sandbox off "
        f"to say you accept this.\n{'!' * 78}",
        stacklevel=2,
    )
    return None
