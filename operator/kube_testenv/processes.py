"""Child processes that cannot outlive the Python process that started them.

A test run that leaves etcd and kube-apiserver behind poisons the next one (ports, memory, confusing
``ps`` output), and test runs end in every possible way: normally, by a failing fixture, by Ctrl-C, by
SIGTERM from CI, by SIGKILL from an OOM killer or a timeout. Each way has its own guard here:

* every child runs in its own process group (``setsid``), so stopping it reaches anything it forked, and a
  terminal's Ctrl-C reaches only us: we decide the order (controller-manager, apiserver, etcd);
* :meth:`ManagedProcess.stop` sends SIGTERM to the group, then SIGKILL after a grace period;
* an ``atexit`` hook stops whatever is still running when the interpreter exits;
* SIGTERM and SIGINT handlers stop the children first, then behave as before (KeyboardInterrupt for
  SIGINT; ``SystemExit`` for SIGTERM, so ``finally`` blocks and atexit still run);
* a signal that arrives while the main thread is already stopping children (a second Ctrl-C, or CI's
  SIGTERM during a teardown) SIGKILLs every live group at once instead of stopping them again: a nested
  stop would block forever on the lock that the interrupted ``Popen.wait`` holds;
* on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` in the child makes the kernel kill it when its parent
  dies, which covers SIGKILL of the parent, where no Python code runs at all.

PDEATHSIG fires when the *thread* that forked the child exits, not the process. A control plane started
from a short-lived thread (``asyncio.to_thread``, a thread pool) would lose its children when that thread
ended, so every fork happens on one long-lived daemon thread owned by this module.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import itertools
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from types import FrameType

_PR_SET_PDEATHSIG = 1
# Resolved before any fork: the child must not load libraries between fork and exec.
_prctl: Callable[..., int] | None = None
if sys.platform == "linux":
    _prctl = ctypes.CDLL(None, use_errno=True).prctl


def _in_child_after_fork(parent_pid: int) -> None:
    """Runs in the child between fork and exec."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork and prctl; then nobody would ever kill us.
        if os.getppid() != parent_pid:
            os._exit(1)


class _Spawner:
    """The one thread that forks every child (see the module docstring for why)."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[
            tuple[Callable[[], subprocess.Popen[bytes]], Future[subprocess.Popen[bytes]]]
        ] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _run(self) -> None:
        while True:
            spawn, future = self._requests.get()
            try:
                future.set_result(spawn())
            except BaseException as exc:  # the caller re-raises it in its own thread
                future.set_exception(exc)

    def spawn(self, spawn: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None:
                # A daemon thread is never joined at interpreter exit, so it (and PDEATHSIG's parent)
                # lives until the process itself ends, after our atexit hook has stopped the children.
                self._thread = threading.Thread(target=self._run, name="kube-testenv-spawner", daemon=True)
                self._thread.start()
        future: Future[subprocess.Popen[bytes]] = Future()
        self._requests.put((spawn, future))
        return future.result()


_spawner = _Spawner()
_live: set[ManagedProcess] = set()
_start_order = itertools.count(1)
# Re-entrant: the signal handler runs stop_all() in the main thread, possibly while that same thread holds
# the lock inside start(); a plain Lock would deadlock there.
_live_lock = threading.RLock()
_previous_handlers: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}
# Per thread: how many ManagedProcess.stop calls are under way in it. The signal handlers run in the main
# thread and read the main thread's count.
_stopping = threading.local()
DEFAULT_GRACE_SECONDS = 5.0


class ManagedProcess:
    """One long-running child (etcd, kube-apiserver, ...) with its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None
        self._sequence = 0

    def __repr__(self) -> str:
        return f"ManagedProcess({self.name!r}, pid={self.pid})"

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def start(self) -> None:
        if self._popen is not None:
            raise RuntimeError(f"{self.name} already started")
        _install_exit_guards()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        parent_pid = os.getpid()
        with open(self.log_path, "ab") as log:

            def spawn() -> subprocess.Popen[bytes]:
                return subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,
                    preexec_fn=functools.partial(_in_child_after_fork, parent_pid),
                )

            with _live_lock:
                self._popen = _spawner.spawn(spawn)
                self._sequence = next(_start_order)
                _live.add(self)

    def poll(self) -> int | None:
        """The exit code if the process has ended, otherwise None."""
        if self._popen is None:
            raise RuntimeError(f"{self.name} not started")
        return self._popen.poll()

    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 64 * 1024))
                data = f.read()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(data.decode(errors="replace").splitlines()[-lines:])

    def stop(self, grace: float = DEFAULT_GRACE_SECONDS) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; returns the exit code."""
        popen = self._popen
        if popen is None:
            return None
        _stopping.depth = getattr(_stopping, "depth", 0) + 1
        try:
            if popen.poll() is None:
                _signal_group(popen.pid, signal.SIGTERM)
                try:
                    popen.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    _signal_group(popen.pid, signal.SIGKILL)
                    popen.wait()
            # Anything the child forked into its group and left behind (a wrapper script's children).
            _signal_group(popen.pid, signal.SIGKILL)
            return popen.returncode
        finally:
            _stopping.depth -= 1
            with _live_lock:
                _live.discard(self)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    # The group may already be gone (the leader exited and nothing else was in it).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def live_processes() -> list[ManagedProcess]:
    """Children started by this module and not yet stopped, oldest first."""
    with _live_lock:
        return sorted(_live, key=lambda p: p._sequence)


def stop_all(grace: float = DEFAULT_GRACE_SECONDS) -> None:
    """Stop every live child, newest first (dependants before what they depend on)."""
    for process in reversed(live_processes()):
        process.stop(grace)


def _kill_all_now() -> None:
    """SIGKILL every live child's group without waiting: safe to call from a signal handler at any point."""
    for process in live_processes():
        pid = process.pid
        if pid is not None:
            _signal_group(pid, signal.SIGKILL)


_atexit_registered = False
_signal_handlers_installed = False
_guards_lock = threading.Lock()


def _install_exit_guards() -> None:
    global _atexit_registered, _signal_handlers_installed
    with _guards_lock:
        if not _atexit_registered:
            atexit.register(stop_all)
            _atexit_registered = True
        # signal.signal only works in the main thread; a start from another thread relies on atexit and
        # PDEATHSIG until the next start from the main thread installs the handlers.
        if _signal_handlers_installed or threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)
            # An ignored signal stays ignored (nohup, or SIGINT for a shell's background job): whoever
            # arranged that does not want us to stop on it.
            if previous == signal.SIG_IGN:
                continue
            _previous_handlers[signum] = previous
            signal.signal(signum, _on_signal)
        _signal_handlers_installed = True


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if getattr(_stopping, "depth", 0):
        # The interrupted stop holds its Popen's waitpid lock, so stopping again here would wait for
        # ourselves. Killing is enough: the interrupted wait, or atexit's stop_all, reaps what is left.
        _kill_all_now()
    else:
        stop_all()
    previous = _previous_handlers.get(signum)
    if callable(previous):
        previous(signum, frame)
    else:
        # SIG_DFL would end the process without running finally blocks or atexit (temp dirs would stay);
        # SystemExit ends it too, but through them.
        raise SystemExit(128 + signum)


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago.

    All sockets are bound before any is closed, so the ports differ from each other; another process may
    still take one before the server binds it, which the caller handles by retrying.
    """
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_for(
    what: str,
    check: Callable[[], bool],
    *,
    timeout: float,
    watched: Sequence[ManagedProcess] = (),
    interval: float = 0.1,
) -> None:
    """Poll ``check`` until it returns True; fail fast if a watched process exits meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        for process in watched:
            code = process.poll()
            if code is not None:
                raise ProcessExitedError(process, code, what)
        if check():
            return
        if time.monotonic() >= deadline:
            raise StartTimeoutError(what, timeout, watched)
        time.sleep(interval)


class ProcessError(RuntimeError):
    """A child did not come up; the message carries the tail of its log."""


class ProcessExitedError(ProcessError):
    def __init__(self, process: ManagedProcess, code: int, waiting_for: str) -> None:
        self.process = process
        self.code = code
        super().__init__(
            f"{process.name} exited with code {code} while waiting for {waiting_for}; "
            f"log {process.log_path}, last lines:\n{process.log_tail()}"
        )


class StartTimeoutError(ProcessError):
    def __init__(self, what: str, timeout: float, watched: Sequence[ManagedProcess]) -> None:
        tails = "\n".join(f"--- {p.name} ({p.log_path}):\n{p.log_tail()}" for p in watched)
        super().__init__(f"timed out after {timeout:.0f}s waiting for {what}\n{tails}")
