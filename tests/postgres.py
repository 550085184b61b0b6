"""A throwaway PostgreSQL cluster for the PostgreSQL slice of the suite and bench/postgres.py.

``initdb`` in a temp dir, listening on 127.0.0.1 at a free port (its unix socket in the same
temp dir), trust auth for local and 127.0.0.1 only; stopped with ``pg_ctl stop -m fast`` and
removed by ``stop()``. initdb and postgres refuse to run as root, so as root every PostgreSQL
binary runs as the ``postgres`` OS user (``runuser``, else ``su``), which owns the temp dir.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from trace_tui.server.embedded import HOST, free_port

PG_USER = "postgres"  # the OS user as root, and the cluster's superuser role


class PostgresUnavailable(Exception):
    """This machine cannot run a PostgreSQL cluster (tests skip with this reason)."""


def pg_bin(name: str) -> str:
    """Path of a PostgreSQL server binary: PATH first, else the newest Debian layout."""
    found = shutil.which(name)
    if found:
        return found
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        candidate = Path(bindir) / name
        if candidate.exists():
            return str(candidate)
    raise PostgresUnavailable(f"{name} is not on PATH (install PostgreSQL server binaries)")


def run_as_prefix() -> tuple[list[str], pwd.struct_passwd | None]:
    """Command prefix that drops root to the postgres user, and that user (None: not root)."""
    if os.geteuid() != 0:
        return [], None
    try:
        user = pwd.getpwnam(PG_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root and there is no {PG_USER!r} OS user; initdb refuses to run as "
            "root") from None
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", PG_USER, "--"], user
    if shutil.which("su"):
        return ["su", PG_USER, "-s", "/bin/sh", "-c"], user  # the command follows as one arg
    raise PostgresUnavailable("running as root with neither runuser nor su to drop to "
                              f"the {PG_USER!r} user")


@dataclass
class PgCluster:
    """One PostgreSQL cluster in ``root``. ``durable=False`` turns fsync off (tests only)."""

    root: Path
    port: int = field(default_factory=free_port)
    durable: bool = False
    prefix: list[str] = field(default_factory=list)
    running: bool = False

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def uri(self, database: str) -> str:
        return f"postgresql://{PG_USER}@{HOST}:{self.port}/{database}"

    @classmethod
    def start_new(cls, *, durable: bool = False, timeout_s: float = 60.0) -> PgCluster:
        """initdb + start; raises PostgresUnavailable when this machine cannot run one."""
        initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
        prefix, user = run_as_prefix()
        # As root, under /tmp: the postgres user must be able to reach the dir ($TMPDIR may
        # sit under root's 0700 home).
        root = Path(tempfile.mkdtemp(prefix="trace-tui-pg-", dir="/tmp" if user else None))
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
        cluster = cls(root, durable=durable, prefix=prefix)
        try:
            cluster._run([initdb, "-D", str(cluster.data_dir), "-U", PG_USER, "-A", "trust",
                          "-E", "UTF8", "--locale=C.UTF-8", *([] if durable else ["-N"])],
                         timeout_s)
            cluster._configure()
            cluster._run([pg_ctl, "-D", str(cluster.data_dir), "-l", str(cluster.log_path),
                          "-w", "-t", str(int(timeout_s)), "start"], timeout_s + 10)
            cluster.running = True
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _configure(self) -> None:
        settings = [f"listen_addresses = '{HOST}'", f"port = {self.port}",
                    f"unix_socket_directories = '{self.root}'"]
        if not self.durable:  # a throwaway cluster: durability buys nothing
            settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        conf = self.data_dir / "postgresql.conf"
        hba = self.data_dir / "pg_hba.conf"
        # Appended/replaced by the owner of the files (the postgres user when we are root).
        self._write(conf, conf.read_text() + "\n# trace-tui test cluster\n"
                    + "\n".join(settings) + "\n")
        self._write(hba, f"local all all trust\nhost all all {HOST}/32 trust\n")

    def _write(self, path: Path, text: str) -> None:
        stat = path.stat()
        path.write_text(text)
        os.chown(path, stat.st_uid, stat.st_gid)

    def _run(self, cmd: list[str], timeout_s: float) -> None:
        argv = [*self.prefix, shlex.join(cmd)] if self.prefix[-1:] == ["-c"] \
            else [*self.prefix, *cmd]
        out = subprocess.run(argv, cwd=self.root, capture_output=True, text=True,
                             timeout=timeout_s, stdin=subprocess.DEVNULL)
        if out.returncode:
            log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            tail = "\n".join((out.stdout + out.stderr + log).splitlines()[-15:])
            raise RuntimeError(f"{Path(cmd[0]).name} failed ({out.returncode}):\n{tail}")

    def create_database(self, name: str) -> str:
        """Create database ``name``; returns its SQLAlchemy URI for ``mlflow server``."""
        import psycopg2
        from psycopg2 import sql

        conn = psycopg2.connect(host=HOST, port=self.port, user=PG_USER, dbname="postgres",
                                connect_timeout=10)
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            conn.close()
        return self.uri(name)

    def stop(self) -> None:
        """``pg_ctl stop -m fast``, then remove the temp dir. Safe to call twice."""
        if self.running or (self.data_dir / "postmaster.pid").exists():
            try:
                self._run([pg_bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w",
                           "-t", "30", "stop"], 40)
            except (RuntimeError, subprocess.TimeoutExpired):
                self._kill_postmaster()
            self.running = False
        shutil.rmtree(self.root, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 9)
        except (OSError, ValueError, IndexError):
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.1)

    def __enter__(self) -> PgCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
