"""Embedded PostgreSQL 16 from the `pgserver` wheel: the local default when no DATABASE_URL.

The wheel ships the binaries; this module runs them. The server is a child process of whoever
starts it (the `postgres` part of `tekoa up`, a `tekoa backtest`, a test session) and stops
with it; that owner is recorded in the data directory. A server whose owner is gone (a run
killed where no parent-death signal stopped it) is stopped before a new one starts on the same
data; a server whose owner lives (`tekoa up`, while a backtest reads its candles) is used as
it is, and left running. The data directory persists
across runs; the server listens only on a Unix socket, so no TCP port can clash with another
PostgreSQL on the machine. As root, the server runs as a `pgserver` user (PostgreSQL refuses
to run as root), as the wheel itself does.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tekoa.local.process import die_with_parent
from tekoa.observability import logger

APP_DATABASE = "tekoa"
SUPERUSER = "postgres"
SYSTEM_USER_AS_ROOT = "pgserver"
_SOCKET_PATH_MAX = 100  # sun_path is 104-108 bytes depending on the OS
_FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")
OWNER_FILE = "tekoa-owner"
"""In the data directory: `<pid> <start time>` of the process that owns the running server."""


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded database needs the `pgserver` wheel (the `local` extra)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `data_dir`.

    `durable=False` turns off fsync and full-page writes: for throwaway test databases only.
    """

    def __init__(self, data_dir: Path, *, durable: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.durable = durable
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def socket_dir(self) -> Path:
        """Where the server's Unix socket lives: the data directory, unless its path is too long."""
        if len(str(self.data_dir / ".s.PGSQL.5432")) <= _SOCKET_PATH_MAX:
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"tekoa-pg-{digest}"

    @property
    def admin_conninfo(self) -> str:
        """Conninfo of the server's `postgres` database as the superuser."""
        return make_conninfo(host=str(self.socket_dir), user=SUPERUSER, dbname="postgres")

    def start(self, timeout_s: float = 60.0) -> str:
        """Start the server as a child of this process, or use the one another live process runs
        on this data; return the admin conninfo once it answers."""
        if self.prepare() is not None:
            wait_until_ready(self.admin_conninfo, timeout_s)
            return self.admin_conninfo
        log = (self.data_dir / "server.log").open("ab")
        parent = os.getpid()
        _record_owner(self.data_dir, parent)
        # The server dies with this process (fast shutdown), so a killed test run or a crashed
        # part leaves no server behind.
        self._process = subprocess.Popen(  # noqa: S603 - fixed binary, arguments built here
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            user=_system_user(),
            preexec_fn=lambda: die_with_parent(signal.SIGINT, expected_parent=parent),
        )
        log.close()
        wait_until_ready(self.admin_conninfo, timeout_s, self._process)
        logger.info("embedded postgres started", extra={"data_dir": str(self.data_dir)})
        return self.admin_conninfo

    def stop(self, timeout_s: float = 30.0) -> None:
        """Fast shutdown (rolls back open transactions, disconnects clients)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def prepare(self) -> int | None:
        """Create the cluster on first use, and stop a server a killed run left on this data;
        return the pid of a server another live process runs on it (None: none runs now)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        user = _system_user()
        if user is not None:
            _grant_system_user(user, self.data_dir, self.socket_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(  # noqa: S603 - fixed binary, arguments built here
                [str(_bin_dir() / "initdb"), "-D", str(self.data_dir), "--auth=trust", "--encoding=utf8",
                 "-U", SUPERUSER],
                check=True,
                capture_output=True,
                user=user,
            )  # fmt: skip
        return stop_leftover_server(self.data_dir)

    def command(self) -> list[str]:
        """The `postgres` command line: no TCP listener, socket in `socket_dir`."""
        settings = ("listen_addresses=", *(() if self.durable else _FAST_SETTINGS))
        options = [arg for setting in settings for arg in ("-c", setting)]
        return [str(_bin_dir() / "postgres"), "-D", str(self.data_dir), "-k", str(self.socket_dir), *options]

    def exec(self) -> None:
        """Become the server (the `postgres` part: its process is the postmaster itself)."""
        in_use = self.prepare()
        if in_use is not None:
            raise RuntimeError(f"the database in {self.data_dir} is in use by another process (pid {in_use})")
        owner = _supervisor_pid()
        _record_owner(self.data_dir, owner if owner is not None else os.getpid())
        user = _system_user()
        if user is not None:
            import pwd

            entry = pwd.getpwnam(user)
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
        # A change of user id clears the parent-death signal: set it (again) as the server's own.
        die_with_parent(signal.SIGINT, expected_parent=_supervisor_pid())
        command = self.command()
        os.execv(command[0], command)  # noqa: S606 - fixed binary


def wait_until_ready(conninfo: str, timeout_s: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Block until the server accepts connections; raise if it exits or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(conninfo, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"postgres exited with status {process.returncode}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def stop_leftover_server(data_dir: Path, timeout_s: float = 30.0) -> int | None:
    """Stop the server `postmaster.pid` names if a killed run left it on `data_dir`; return its
    pid instead if its owner still lives (None: no server runs on `data_dir` now).

    A pid file naming a process that is not a server of this data (the pid was reused) is
    stale and removed, because PostgreSQL would refuse to start while that process lives.
    """
    import psutil

    pid_file = data_dir / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
        process = psutil.Process(pid)
        ours = process.name() == "postgres" and Path(process.cwd()) == data_dir
    except (FileNotFoundError, ValueError, psutil.NoSuchProcess):
        return None
    except psutil.AccessDenied:
        return None  # another user's server: PostgreSQL itself will refuse to share the data
    if not ours:
        pid_file.unlink(missing_ok=True)
        return None
    if _owner_alive(data_dir):
        return pid
    logger.warning("stopping a server left running by an earlier run", extra={"pid": pid})
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)  # fast shutdown
    with contextlib.suppress(psutil.NoSuchProcess):
        try:
            process.wait(timeout_s)
        except psutil.TimeoutExpired:
            process.kill()
    return None


def _record_owner(data_dir: Path, pid: int) -> None:
    import psutil

    (data_dir / OWNER_FILE).write_text(f"{pid} {psutil.Process(pid).create_time()!r}\n")


def _owner_alive(data_dir: Path) -> bool:
    """Whether the process recorded as the server's owner still runs (the same process: its
    start time matches, so a reused pid does not count)."""
    import psutil

    try:
        pid_text, started = (data_dir / OWNER_FILE).read_text().split()
        return bool(psutil.Process(int(pid_text)).create_time() == float(started))
    except (FileNotFoundError, ValueError, psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _system_user() -> str | None:
    return SYSTEM_USER_AS_ROOT if os.geteuid() == 0 else None


def _supervisor_pid() -> int | None:
    value = os.environ.get("TEKOA_SUPERVISOR_PID")
    return int(value) if value else None


def _grant_system_user(user: str, data_dir: Path, socket_dir: Path) -> None:
    import pwd
    import stat
    import warnings

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); harmless here.
        warnings.simplefilter("ignore")
        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(user)
    entry = pwd.getpwnam(user)
    ensure_prefix_permissions(data_dir)
    bin_dir = _bin_dir()
    readable, executable = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(bin_dir, readable | executable)
    ensure_folder_permissions(bin_dir.parent / "lib", readable)
    if not (data_dir / "PG_VERSION").exists():
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    if socket_dir != data_dir:
        socket_dir.mkdir(exist_ok=True)
        socket_dir.chmod(0o777)


def database_url(admin_conninfo: str, dbname: str) -> str:
    """The same server's conninfo with another database name."""
    params = conninfo_to_dict(admin_conninfo)
    params["dbname"] = dbname
    return make_conninfo("", **params)


def ensure_database(admin_conninfo: str, dbname: str = APP_DATABASE, template: str | None = None) -> str:
    """Create `dbname` if missing (optionally from a template); return its conninfo."""
    with psycopg.connect(admin_conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if exists is None:
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
            if template is not None:
                statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(dbname), sql.Identifier(template)
                )
            conn.execute(statement)
    return database_url(admin_conninfo, dbname)


def drop_database(admin_conninfo: str, dbname: str) -> None:
    """Drop `dbname`, disconnecting whoever still uses it."""
    with psycopg.connect(admin_conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def serve() -> None:
    """Entry point of the `postgres` part of `tekoa up`: the server on `<data_dir>/pgdata`."""
    from tekoa.settings import get_settings

    EmbeddedPostgres(get_settings().data_dir / "pgdata").exec()
