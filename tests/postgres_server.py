"""A throwaway PostgreSQL server on loopback, for searches whose workers share a study through a database server.

Uses the server binaries of Debian's `postgresql` package (or any `initdb` on PATH); the server refuses to run
as root, so as root it runs as the `postgres` user. Each `database()` is a fresh, empty database.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

BIN_DIRS = [Path(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]


def binary(name: str) -> str | None:
    found = [str(d / name) for d in BIN_DIRS if (d / name).is_file()]
    return found[0] if found else shutil.which(name)


class PostgresServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tunelab-pg-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.names = itertools.count(1)  # next() is atomic: tests may ask from several threads

    @staticmethod
    def available() -> bool:
        """Server binaries here, and a way to run them (not as root without a `postgres` user)."""
        if binary("initdb") is None or binary("pg_ctl") is None:
            return False
        return os.geteuid() != 0 or subprocess.run(["id", "postgres"], capture_output=True).returncode == 0

    def run(self, *command: str) -> None:
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_user, *command], check=True, capture_output=True, text=True, timeout=120)

    def __enter__(self) -> PostgresServer:
        data = self.dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.run(binary("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=300"
        self.run(binary("pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.dir / "log"), "-w", "start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.run(binary("pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def database(self) -> str:
        """A new, empty database: its URL for Optuna (through psycopg)."""
        import psycopg

        name = f"study{next(self.names)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"
