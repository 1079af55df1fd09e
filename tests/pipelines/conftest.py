"""Servers the Dagster tests start themselves: a real PostgreSQL from Debian's packages.

CI starts no services, so the test set-up runs initdb + pg_ctl on a private data folder and a
free loopback port, and removes both afterwards, also when the test fails.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

INSTALL_HINT = ("`make test` installs it (Debian package postgresql, as root with apt-get); "
                "by hand: sudo apt-get install postgresql")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if not found:
        pytest.fail("PostgreSQL server not installed (no /usr/lib/postgresql/*/bin/initdb): "
                    + INSTALL_HINT, pytrace=False)
    return Path(found[-1]).parent


@dataclass
class PgServer:
    host: str
    port: int
    superuser: str
    password: str

    def dsn(self, db: str = "postgres", user: str | None = None, password: str | None = None):
        return {"host": self.host, "port": self.port, "dbname": db,
                "user": user or self.superuser,
                "password": self.password if password is None else password}


def _as_server_user(cmd: list[str]) -> list[str]:
    # postgres refuses to run as root; Debian's package creates the `postgres` account
    if os.geteuid() != 0:
        return cmd
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root but there is no `postgres` user to run the server as: "
                    + INSTALL_HINT, pytrace=False)
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    if Path(runuser).is_file():
        return [runuser, "-u", "postgres", "--", *cmd]
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *cmd]


def _run(cmd: list[str], what: str, timeout: int = 60) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{what} failed ({res.returncode}): {res.stderr[-2000:] or res.stdout[-2000:]}")


@pytest.fixture(scope="module")
def postgres_server():
    """A PostgreSQL server on 127.0.0.1:<free port>, password auth, stopped and deleted after."""
    bindir = postgres_bin()
    # not pytest's tmp_path: its parents are private to root and the server user must reach it
    root = Path(tempfile.mkdtemp(prefix="clinpipe-pg-"))
    data = root / "data"
    server = PgServer(host="127.0.0.1", port=free_port(), superuser="clinpipe_admin",
                      password="admin-test-password")
    pwfile = root / "pw"
    pwfile.write_text(server.password + "\n")
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
    started = False
    try:
        _run(_as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", server.superuser,
                              f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8",
                              "--locale=C", "--no-sync"]), "initdb")
        # a throwaway server: durability off for speed, no unix socket (nothing to clean up)
        opts = (f"-c listen_addresses=127.0.0.1 -p {server.port} -c unix_socket_directories='' "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        _run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"),
                              "-o", opts, "-w", "-t", "30", "start"]), "pg_ctl start")
        started = True
        yield server
    finally:
        if started:
            try:
                _run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast",
                                      "-w", "-t", "30", "stop"]), "pg_ctl stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                _kill_postmaster(data)
        shutil.rmtree(root, ignore_errors=True)


def _kill_postmaster(data: Path) -> None:
    pidfile = data / "postmaster.pid"
    if pidfile.is_file():
        try:
            os.kill(int(pidfile.read_text().split()[0]), 9)
        except (ProcessLookupError, ValueError):
            pass
