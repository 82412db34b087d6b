"""A PostgreSQL cluster of the test's own, to stop and start at will.

The shared server on 127.0.0.1:5432 serves every other test running at the same time, so the
scenario that restarts PostgreSQL gets a cluster of its own: `initdb` into a temporary directory,
trust authentication, loopback only, on a free port, without fsync (nothing here must survive a
power cut). PostgreSQL refuses to run as root, so when the test runs as root the cluster belongs to
the `postgres` user and its commands run through `runuser`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from bench.fanout_broker import free_port

BIN = Path(os.environ.get("BROKKR_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
_OWNER = "postgres"
_COMMAND_TIMEOUT_SECONDS = 60


class OwnPostgres:
    """`start()`, `stop()` and `start()` again; `destroy()` stops it and removes its files."""

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="brokkr-faults-pg-"))
        self.data = self.directory / "data"
        self.log_file = self.directory / "postgres.log"
        if os.geteuid() == 0:
            owner = pwd.getpwnam(_OWNER)
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        self._run(BIN / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def libpq(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(BIN / "pg_ctl", "-D", self.data, "-l", self.log_file, "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; "fast" ends every connection at once, as a restart or failover does."""
        self._run(BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.libpq(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                self._as_owner(BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"),
                check=False,
                capture_output=True,
                timeout=_COMMAND_TIMEOUT_SECONDS,
            )
        shutil.rmtree(self.directory, ignore_errors=True)

    def _run(self, *command: object) -> None:
        done = subprocess.run(
            self._as_owner(*command), capture_output=True, text=True, timeout=_COMMAND_TIMEOUT_SECONDS
        )
        if done.returncode != 0:
            log = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
            raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr}\n{log[-2000:]}")

    @staticmethod
    def _as_owner(*command: object) -> list[str]:
        arguments = [str(part) for part in command]
        return ["runuser", "-u", _OWNER, "--", *arguments] if os.geteuid() == 0 else arguments
