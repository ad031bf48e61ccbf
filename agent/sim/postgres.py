"""A real PostgreSQL server (Debian's package) for the benchmarks and demos: its own data
folder, a Unix socket only (no TCP port to collide with anyone's), started and stopped with
`pg_ctl`.

initdb refuses root, so as root the server runs as the `postgres` user, in a folder of its
own under /tmp that this user owns (a 0700 folder above it would keep it out)."""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from agent.errors import AgentError
from agent.sim.service import Service


def postgres_bin() -> Path | None:
    """The newest installed server's bin folder, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


class Postgres(Service):
    """One server; `url()` connects to a database in it through the socket."""

    def __init__(self, *, fsync: bool = True, settings: dict[str, str] | None = None) -> None:
        where = postgres_bin()
        if where is None:
            raise AgentError("PostgreSQL is not installed", "apt-get install postgresql")
        self.bin = where
        self.fsync = fsync
        self.settings = settings or {}
        self.folder = Path(tempfile.mkdtemp(prefix="sim-pg-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._started = False
        self._names = itertools.count(1)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql:///{database}?host={self.folder}&user=edge"

    def _run(self, *args: str) -> None:
        proc = subprocess.run(
            [*self.as_user, *args], capture_output=True, text=True, timeout=120, check=False
        )
        if proc.returncode != 0:
            raise AgentError(
                f"{Path(args[0]).name} failed: {proc.stderr.strip()[-500:]}",
                f"see {self.folder / 'pg.log'}",
            )

    def start(self) -> Postgres:
        if not self.data.exists():
            self._run(
                str(self.bin / "initdb"), "-D", str(self.data), "-U", "edge", "--auth=trust",
                "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
            )  # fmt: skip
        options = f"-k {self.folder} -c listen_addresses=''"
        if not self.fsync:
            options += " -c fsync=off"
        for name, value in self.settings.items():
            options += f" -c {name}={value}"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "pg.log"),
            "-w", "-o", options, "start",
        )  # fmt: skip
        if not self._started:
            atexit.register(self.stop)  # a script that dies must not leave a server behind
        self._started = True
        return self

    def create_database(self, name: str = "") -> str:
        """A new empty database (named in turn if no name is given); its name."""
        name = name or f"t{next(self._names)}"
        self._run(str(self.bin / "createdb"), "-h", str(self.folder), "-U", "edge", name)
        return name

    def drop_database(self, name: str) -> None:
        self._run(
            str(self.bin / "dropdb"), "-h", str(self.folder), "-U", "edge", "--force",
            "--if-exists", name,
        )  # fmt: skip

    def pids(self) -> list[int]:
        """The postmaster and every process it started (backends, writers)."""
        try:
            main = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        found = [main]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == main:
                found.append(int(stat.parent.name))
        return found

    def stop(self, mode: str = "fast") -> None:
        """`mode` as pg_ctl's: "immediate" is a crash (no checkpoint), as a lost host."""
        if self._started and (self.data / "postmaster.pid").exists():
            subprocess.run(
                [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode,
                 "-w", "stop"],
                capture_output=True, timeout=60, check=False,
            )  # fmt: skip
        self._started = False

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
