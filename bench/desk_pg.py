"""A throwaway PostgreSQL cluster for the desk benchmarks (Debian binaries, loopback port).

Production-like durability: fsync and synchronous_commit stay on (unlike the test fixture).
Use ``--database-url`` on the benchmark scripts to run against an existing server instead.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


class Cluster:
    def __init__(self, shared_buffers: str = "256MB"):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise SystemExit("PostgreSQL binaries not found (apt-get install postgresql) - or pass --database-url")
        self.bindir = Path(found[-1]).parent
        self.root = Path(tempfile.mkdtemp(prefix="stopline-bench-pg-"))
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.data = self.root / "data"
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c shared_buffers={shared_buffers} "
                "-c max_connections=100")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", opts, "-w", "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "desk")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/desk"

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=300)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the postmaster and its children so far: the live ones', and
        that of the connections already closed (the postmaster's reaped children)."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return float("nan")
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # fields[1] is ppid, [11] utime, [12] stime, [13] cutime, [14] cstime (after the command name)
            if stat.parent.name == str(pid):
                total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
            elif fields[1] == str(pid):
                total += int(fields[11]) + int(fields[12])
        return total / tick

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
