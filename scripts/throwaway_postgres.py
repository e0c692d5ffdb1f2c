"""A throwaway PostgreSQL cluster for tests and benchmarks: its own data directory, a free loopback port, trust auth.

    server = PostgresServer()
    server.start()
    engine = create_engine(server.url("postgres"))
    ...
    server.stop()

The server binaries come from Debian's `postgresql` package (`scripts/install-system-packages.sh` installs it):
the highest version under /usr/lib/postgresql/*/bin, else `pg_config --bindir`, else `initdb` on PATH; the
environment variable POSTGRES_BINDIR overrides them. PostgreSQL refuses to run as root, and CI runs as root: then
`initdb` and `pg_ctl` run as the `postgres` OS user (created by the Debian package), in a directory it owns.
Durability is switched off (fsync, full-page writes, synchronous commit): the cluster lives for one test or benchmark
run.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "postgres"
OS_USER_WHEN_ROOT = "postgres"
START_TIMEOUT_S = 60
PORT_ATTEMPTS = 3


class PostgresServerError(RuntimeError):
    """The throwaway server could not be set up, started or stopped; the message carries its output and log."""


def find_bindir() -> Path:
    """Return the directory holding `initdb`, `pg_ctl` and `postgres` (the highest installed version)."""
    override = os.environ.get("POSTGRES_BINDIR")
    if override:
        if not (Path(override) / "initdb").is_file():
            raise PostgresServerError(f"POSTGRES_BINDIR={override} holds no initdb")
        return Path(override)
    candidates = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if (Path(p) / "initdb").is_file()]
    if candidates:
        return max(candidates, key=lambda p: _version_key(p.parent.name))
    if shutil.which("pg_config"):
        result = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        bindir = Path(result.stdout.strip())
        if result.returncode == 0 and (bindir / "initdb").is_file():
            return bindir
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise PostgresServerError(
        "PostgreSQL server binaries not found (no initdb under /usr/lib/postgresql/*/bin, pg_config or PATH); "
        "install them with `bash scripts/install-system-packages.sh` (Debian package `postgresql`)"
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _traversable_by_others(path: Path) -> bool:
    """Return whether every directory from / down to `path` lets other users through (o+x)."""
    path = path.resolve()
    return all(os.stat(directory).st_mode & stat.S_IXOTH for directory in [path, *path.parents])


class PostgresServer:
    """One throwaway PostgreSQL cluster: `start()`, `url(dbname)`, `stop()`."""

    def __init__(self) -> None:
        self.port: int | None = None
        self.root: Path | None = None
        self.bindir: Path | None = None
        self._run_as: list[str] = []
        self._os_user: pwd.struct_passwd | None = None
        self._running = False

    # -- paths ---------------------------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self._require_root() / "data"

    @property
    def socket_dir(self) -> Path:
        return self._require_root() / "sockets"

    @property
    def log_file(self) -> Path:
        return self._require_root() / "server.log"

    def _require_root(self) -> Path:
        if self.root is None:
            raise PostgresServerError("the server has not been started")
        return self.root

    # -- public interface ----------------------------------------------------------------------------------------
    def url(self, dbname: str) -> str:
        """Return the SQLAlchemy URL of database `dbname` on this server, as its superuser."""
        if not self._running or self.port is None:
            raise PostgresServerError("the server is not running")
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        """Create a cluster in a new temporary directory and start it on a free loopback port."""
        if self._running:
            return
        self.bindir = find_bindir()
        self._prepare_user()
        self.root = self._make_root()
        try:
            self._initdb()
            self._start_on_free_port()
        except BaseException:
            # A start that timed out may have left a postmaster behind.
            if self.data_dir.joinpath("postmaster.pid").exists():
                self._run([self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"])
            self._remove_root()
            raise
        atexit.register(self.stop)

    def stop(self) -> None:
        """Stop the server at once (no checkpoint: nothing here is worth keeping) and delete its directory."""
        try:
            if self._running:
                self._running = False
                result = self._run([self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"])
                if result.returncode != 0:
                    raise PostgresServerError(self._failure("pg_ctl stop failed", result))
        finally:
            self._remove_root()
            atexit.unregister(self.stop)

    # -- steps ---------------------------------------------------------------------------------------------------
    def _prepare_user(self) -> None:
        if os.geteuid() != 0:
            self._run_as, self._os_user = [], None
            return
        try:
            self._os_user = pwd.getpwnam(OS_USER_WHEN_ROOT)
        except KeyError:
            raise PostgresServerError(
                f"running as root, and PostgreSQL refuses to run as root, but there is no `{OS_USER_WHEN_ROOT}` "
                "OS user to run it as (Debian's `postgresql` package creates it: "
                "`bash scripts/install-system-packages.sh`)"
            ) from None
        if shutil.which("runuser"):
            self._run_as = ["runuser", "-u", OS_USER_WHEN_ROOT, "--"]
        else:
            self._run_as = ["su", OS_USER_WHEN_ROOT, "-s", "/bin/sh", "-c"]

    def _make_root(self) -> Path:
        base = Path(tempfile.gettempdir())
        if self._os_user is not None and not _traversable_by_others(base):
            # The postgres user must reach its directory through every parent: a TMPDIR inside a 0700 directory
            # (say, under /root) would shut it out.
            base = next((Path(p) for p in ("/tmp", "/var/tmp", "/dev/shm") if _traversable_by_others(Path(p))), base)
        root = Path(tempfile.mkdtemp(prefix="needle-pg-", dir=base))
        (root / "sockets").mkdir()
        if self._os_user is not None:
            for path in (root, root / "sockets"):
                os.chown(path, self._os_user.pw_uid, self._os_user.pw_gid)
        return root

    def _initdb(self) -> None:
        result = self._run(
            [
                self._bin("initdb"),
                "-D", str(self.data_dir),
                "-U", SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )  # fmt: skip
        if result.returncode != 0:
            raise PostgresServerError(self._failure("initdb failed", result))

    def _start_on_free_port(self) -> None:
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self.port = free_port()
            self.log_file.unlink(missing_ok=True)
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-p {self.port}",
                    f"-k {shlex.quote(str(self.socket_dir))}",
                    "-c fsync=off",
                    "-c full_page_writes=off",
                    "-c synchronous_commit=off",
                ]
            )
            result = self._run(
                [
                    self._bin("pg_ctl"),
                    "-D", str(self.data_dir),
                    "-l", str(self.log_file),
                    "-o", options,
                    "-w", "-t", str(START_TIMEOUT_S),
                    "start",
                ]
            )  # fmt: skip
            if result.returncode == 0:
                self._running = True
                return
            log = self._read_log()
            # Another process may have taken the port between free_port() and the server's bind: try another one.
            if attempt < PORT_ATTEMPTS and "Address already in use" in log:
                self._run([self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"])
                continue
            raise PostgresServerError(self._failure(f"pg_ctl start failed on port {self.port}", result))

    # -- helpers -------------------------------------------------------------------------------------------------
    def _bin(self, name: str) -> str:
        assert self.bindir is not None
        return str(self.bindir / name)

    def _run(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env["LC_ALL"] = "C"
        if self._run_as and self._run_as[-1] == "-c":  # su ... -c "one shell command"
            full = [*self._run_as, shlex.join(command)]
        else:
            full = [*self._run_as, *command]
        # The postgres user may not be allowed into the caller's working directory: run from the cluster's own.
        return subprocess.run(
            full,
            cwd=self.root,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=START_TIMEOUT_S + 30,
        )

    def _read_log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def _failure(self, what: str, result: subprocess.CompletedProcess[str]) -> str:
        parts = [f"{what} (exit status {result.returncode}): {shlex.join(result.args)}"]
        if result.stdout.strip():
            parts.append(f"--- output ---\n{result.stdout.strip()}")
        if result.stderr.strip():
            parts.append(f"--- errors ---\n{result.stderr.strip()}")
        log = self._read_log().strip()
        if log:
            parts.append(f"--- server log {self.log_file} ---\n{log}")
        return "\n".join(parts)

    def _remove_root(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
