"""A small process supervisor: each part of the local platform is its own process.

A part is one declaration (`Part`): a name, an entry point (`module:function`, run by
`tekoa.local.part` in a fresh Python process), its ports, how to tell it is ready, and which
parts must be ready before it starts. The supervisor

* checks every declared port before anything starts (a port in TIME_WAIT is free: the probe
  binds with SO_REUSEADDR, as the servers themselves do);
* starts parts as soon as what they need is ready, so independent parts start together;
* prefixes every line a part prints with its name, in one log stream;
* restarts a part that exits unexpectedly, alone, after a back-off that grows with repeated
  crashes (and re-runs the one-shot parts that depend on it: their effects may be gone);
* stops parts newest-dependency first, each with its own signal and time budget.

Parts run in their own session, so a terminal's Ctrl-C reaches only the supervisor, which
then stops them in order; each part dies with the supervisor (`tekoa.local.process`), so even
a SIGKILL of the supervisor leaves nothing running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from tekoa.settings import Settings

Probe = Callable[[], bool]


class StartupError(RuntimeError):
    """A part could not start; the message says which and why."""


def _no_ports(_: Settings) -> dict[int, str]:
    return {}


def _always(_: Settings) -> bool:
    return True


@dataclass(frozen=True)
class Part:
    """One process of the platform.

    - `entry`: `module:function` to call in the new process.
    - `ports`: the TCP ports on 127.0.0.1 it binds, each with the setting that moves it.
    - `ready`: a probe answering whether it serves yet (None: running is ready).
    - `after`: parts that must be ready (or, for one-shot parts, done) before it starts.
    - `once`: it runs to completion (exit 0) instead of staying up.
    - `enabled`: whether this configuration runs it at all.
    - `where`: what the start-up table says about it.
    """

    name: str
    entry: str
    ports: Callable[[Settings], dict[int, str]] = _no_ports
    ready: Callable[[Settings], Probe] | None = None
    after: tuple[str, ...] = ()
    once: bool = False
    enabled: Callable[[Settings], bool] = _always
    where: Callable[[Settings], str] = lambda _: ""
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout_s: float = 15.0
    start_timeout_s: float = 120.0


@dataclass
class _Running:
    part: Part
    process: subprocess.Popen[bytes]
    started_at: float
    ready: bool = False
    crashes: int = 0  # consecutive crashes, for the back-off
    restart_at: float | None = None
    reader: threading.Thread | None = None


RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
STABLE_AFTER_S = 30.0
"""A part that ran this long before crashing is restarted at the first back-off step again."""


def ensure_ports_free(ports: Mapping[int, str], host: str = "127.0.0.1") -> None:
    """Fail with a clear message naming every taken port and the setting that moves it.

    The probe binds like the servers do (SO_REUSEADDR): a port whose last connections are in
    TIME_WAIT after a stop or a crash is free to listen on, and is reported free.
    """
    taken = []
    for port, setting in sorted(ports.items()):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                taken.append(f"  {host}:{port} ({setting})")
    if taken:
        raise StartupError(
            "These ports are already in use — is another `tekoa up` running?\n"
            + "\n".join(taken)
            + "\nStop it, or choose other ports with the settings named."
        )


def start_order(parts: Sequence[Part]) -> list[Part]:
    """`parts` with every part after the parts it needs (stable); an unknown or cyclic
    dependency is an error."""
    by_name = {part.name: part for part in parts}
    ordered: list[Part] = []
    visiting: set[str] = set()

    def visit(part: Part) -> None:
        if part in ordered:
            return
        if part.name in visiting:
            raise ValueError(f"parts depend on each other in a cycle through {part.name!r}")
        visiting.add(part.name)
        for name in part.after:
            if name not in by_name:
                raise ValueError(f"part {part.name!r} needs unknown part {name!r}")
            visit(by_name[name])
        visiting.discard(part.name)
        ordered.append(part)

    for part in parts:
        visit(part)
    return ordered


class Supervisor:
    """Runs `parts` (those enabled for `settings`) with `env` added to the environment."""

    def __init__(
        self,
        parts: Sequence[Part],
        settings: Settings,
        env: Mapping[str, str],
        *,
        log: IO[str] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.settings = settings
        self.parts = [part for part in start_order(parts) if part.enabled(settings)]
        enabled = {part.name for part in self.parts}
        # A dependency on a part this configuration does not run (e.g. the embedded database
        # when DATABASE_URL is given) is met by whatever replaces it.
        self._needs = {part.name: tuple(n for n in part.after if n in enabled) for part in self.parts}
        # Every part that needs it, directly or through others (a one-shot part in between too).
        self._needed_by: dict[str, set[str]] = {part.name: set() for part in self.parts}
        for part in reversed(self.parts):  # dependents come later in start order
            for name in self._needs[part.name]:
                self._needed_by[name] |= {part.name} | self._needed_by[part.name]
        self.env = {**os.environ, **env, "TEKOA_SUPERVISOR_PID": str(os.getpid()), "PYTHONUNBUFFERED": "1"}
        self.log = log or sys.stdout
        self.python = python
        self.running: dict[str, _Running] = {}
        self.done: set[str] = set()
        self._log_lock = threading.Lock()
        self._width = max((len(part.name) for part in self.parts), default=0)
        self._probes = {part.name: part.ready(settings) for part in self.parts if part.ready is not None}

    # -- start ------------------------------------------------------------------------------

    def ports(self) -> dict[int, str]:
        """Every port the enabled parts bind, with the setting that moves it."""
        return {port: setting for part in self.parts for port, setting in part.ports(self.settings).items()}

    def start(self, stopping: threading.Event | None = None) -> None:
        """Check the ports, then start every part, each once what it needs is ready.

        StartupError (after stopping what started) if a part exits, fails or is not ready in
        time; returns early if `stopping` is set meanwhile.
        """
        ensure_ports_free(self.ports())
        try:
            self._start_all(stopping or threading.Event())
        except BaseException:
            self.stop()
            raise

    def _start_all(self, stopping: threading.Event) -> None:
        deadline: dict[str, float] = {}
        while not stopping.is_set():
            pending = [p for p in self.parts if p.name not in self.done and not self._is_ready(p.name)]
            if not pending:
                return
            for part in pending:
                if part.name not in self.running and all(self._met(name) for name in self._needs[part.name]):
                    self._spawn(part)
                    deadline[part.name] = time.monotonic() + part.start_timeout_s
            for name in list(self.running):
                self._check_start(self.running[name], deadline[name])
            time.sleep(0.05)

    def _met(self, name: str) -> bool:
        return name in self.done or self._is_ready(name)

    def _is_ready(self, name: str) -> bool:
        running = self.running.get(name)
        return running is not None and running.ready

    def _check_start(self, running: _Running, deadline: float) -> None:
        part = running.part
        code = running.process.poll()
        if part.once and code == 0:
            self._reap(running)
            self.done.add(part.name)
            del self.running[part.name]
            return
        if code is not None:
            raise StartupError(f"{part.name} exited with status {code} while starting (its log is above)")
        if not running.ready:
            probe = self._probes.get(part.name)
            running.ready = not part.once and (probe is None or probe())
        if not running.ready and time.monotonic() > deadline:
            raise StartupError(f"{part.name} was not ready within {part.start_timeout_s:.0f} s")

    def _spawn(self, part: Part) -> _Running:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [self.python, "-m", "tekoa.local.part", part.entry],
            env={**self.env, "TEKOA_PART": part.name},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Its own session: a terminal's Ctrl-C reaches the supervisor only, which stops the
            # parts in order.
            start_new_session=True,
        )
        running = _Running(part=part, process=process, started_at=time.monotonic())
        running.reader = threading.Thread(
            target=self._copy_log, args=(part.name, process), name=f"log:{part.name}", daemon=True
        )
        running.reader.start()
        previous = self.running.get(part.name)
        if previous is not None:
            running.crashes = previous.crashes
        self.running[part.name] = running
        return running

    def _copy_log(self, name: str, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        tag = name.ljust(self._width)
        for raw in iter(process.stdout.readline, b""):
            self.say(tag, raw.decode(errors="replace").rstrip("\n"))

    def say(self, tag: str, line: str) -> None:
        """One line of the log stream, tagged."""
        with self._log_lock:
            self.log.write(f"{tag} | {line}\n")
            self.log.flush()

    # -- run ----------------------------------------------------------------------------------

    def supervise(self, stopping: threading.Event, poll_s: float = 0.2) -> None:
        """Restart parts that exit, alone and with back-off, until `stopping` is set."""
        while not stopping.wait(poll_s):
            now = time.monotonic()
            for running in list(self.running.values()):
                if running.restart_at is not None:
                    if now >= running.restart_at:
                        self._restart(running.part)
                    continue
                code = running.process.poll()
                if code is None:
                    if not running.ready and not running.part.once:
                        probe = self._probes.get(running.part.name)
                        running.ready = probe is None or probe()
                    continue
                self._reap(running)
                if running.part.once and code == 0:
                    self.running.pop(running.part.name)
                    self.done.add(running.part.name)
                    continue
                ran_s = now - running.started_at
                running.crashes = 1 if ran_s >= STABLE_AFTER_S else running.crashes + 1
                delay = RESTART_BACKOFF_S[min(running.crashes, len(RESTART_BACKOFF_S)) - 1]
                running.restart_at = now + delay
                running.ready = False
                self.say(
                    self._tag("supervisor"),
                    f"{running.part.name} (pid {running.process.pid}) exited with status {code}; "
                    f"restarting it in {delay:g} s",
                )
            # One-shot parts whose work was undone run again once what they need is back.
            for part in self.parts:
                undone = part.once and part.name not in self.done and part.name not in self.running
                if undone and all(self._met(name) for name in self._needs[part.name]):
                    self._spawn(part)

    def _restart(self, part: Part) -> None:
        running = self._spawn(part)
        self.say(self._tag("supervisor"), f"{part.name} restarted (pid {running.process.pid})")
        # One-shot parts that depend on it redo their work once it is ready: the restarted part
        # may have lost it (e.g. the local AWS endpoint keeps its resources in memory).
        for dependent in self.parts:
            if dependent.once and part.name in self._needs[dependent.name]:
                self.done.discard(dependent.name)

    def _reap(self, running: _Running) -> None:
        running.process.wait()
        if running.reader is not None:
            running.reader.join(timeout=5)

    def _tag(self, name: str) -> str:
        return name.ljust(self._width)

    # -- stop ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every running part, dependents first: each wave (the parts no other running
        part needs) is signalled at once, then awaited, each part with its own time budget."""
        while self.running:
            running = [self.running[part.name] for part in self.parts if part.name in self.running]
            wave = [
                r
                for r in running
                if not any(other.part.name in self._needed_by[r.part.name] for other in running)
            ]
            for stopping in wave:
                if stopping.process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(stopping.process.pid, stopping.part.stop_signal)
            for stopping in wave:
                try:
                    stopping.process.wait(stopping.part.stop_timeout_s)
                except subprocess.TimeoutExpired:
                    self.say(
                        self._tag("supervisor"), f"{stopping.part.name} did not stop in time; killing it"
                    )
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(stopping.process.pid, signal.SIGKILL)
                self._reap(stopping)
                del self.running[stopping.part.name]

    # -- what runs where ----------------------------------------------------------------------

    def pids(self) -> dict[str, int]:
        """The process id of every running part."""
        return {name: running.process.pid for name, running in self.running.items()}

    def table(self, parts: Iterable[Part] | None = None) -> str:
        """What runs where, with process ids."""
        rows = [
            (part.name, str(self.running[part.name].process.pid), part.where(self.settings))
            for part in (parts or self.parts)
            if part.name in self.running
        ]
        name_width = max((len(row[0]) for row in rows), default=0)
        pid_width = max((len(row[1]) for row in rows), default=0)
        return "\n".join(
            f"  {name.ljust(name_width)}  pid {pid.rjust(pid_width)}  {where}" for name, pid, where in rows
        )
