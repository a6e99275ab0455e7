"""Measure kompose's dump formats side by side: export time, size, import time (not part of the tests).

Builds a database in a throwaway PostgreSQL container (pgbench plus a table of
realistic text, so compression ratios are honest), then runs the real CLI, alternating
the variants, REPEAT times each, and prints medians. Run it with scripts/bench-compression.
"""

from __future__ import annotations

import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker

IMAGE = os.environ.get("KOMPOSE_PG_IMAGE", "kompose/postgres:15")
SCALE = int(os.environ.get("BENCH_SCALE", "20"))  # pgbench scale: ~15 MB of plain dump per unit
NOTES = int(os.environ.get("BENCH_NOTES", "600000"))  # rows of text
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
VARIANTS = [
    ("plain", []),
    ("gzip (level 1, in pg_dump)", ["--compress", "gzip"]),
    ("gzip:6 (in pg_dump)", ["--compress", "gzip:6"]),
    ("zstd (level 3, on the host)", ["--compress", "zstd"]),
    ("zstd:9 (on the host)", ["--compress", "zstd:9"]),
    ("custom (pg_dump -Fc)", ["--format", "custom"]),
]


class CpuMeter:
    """CPU seconds spent by the database container (its cgroup), by dockerd and the
    container's shim (the exec stream's cost; dockerd also serves everyone else on the
    host), and by kompose with its children (zstd). Wall time on a shared machine is noisy;
    CPU seconds say what each variant costs."""

    def __init__(self, container_id: str):
        self.cgroup = next((Path(p) for p in (f"/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage",
                                              f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cpu.stat",
                                              f"/sys/fs/cgroup/docker/{container_id}/cpu.stat") if Path(p).exists()), None)
        self.daemons = [int(p) for p in subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True).stdout.split()]
        self.daemons += [int(p) for p in subprocess.run(["pgrep", "-f", f"containerd-shim.*{container_id}"],
                                                        capture_output=True).stdout.split()]
        self.tick = os.sysconf("SC_CLK_TCK")

    def _container(self) -> float:
        if self.cgroup is None:
            return float("nan")
        text = self.cgroup.read_text()
        if self.cgroup.name == "cpuacct.usage":
            return int(text) / 1e9
        return int(dict(line.split() for line in text.splitlines())["usage_usec"]) / 1e6

    def _daemons(self) -> float:
        total = 0
        for pid in self.daemons:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except OSError:
                pass
        return total / self.tick

    def read(self) -> tuple[float, float, float]:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return self._container(), self._daemons(), usage.ru_utime + usage.ru_stime


def kompose(root: Path, meter: CpuMeter, *args: str) -> tuple[float, tuple[float, float, float]]:
    """Run the CLI; (wall seconds, CPU seconds: container, dockerd+shim, kompose+children)."""
    before = meter.read()
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "kompose", "--root", str(root), *args],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"kompose {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    after = meter.read()
    return elapsed, tuple(b - a for a, b in zip(before, after))


def main() -> None:
    client = docker.from_env(timeout=300)
    name = f"kbench-{secrets.token_hex(3)}"
    password = secrets.token_hex(8)
    container = client.containers.run(IMAGE, name=name, detach=True, tmpfs={"/var/lib/postgresql/data": "rw"},
                                      environment={"POSTGRES_PASSWORD": password, "POSTGRES_DB": "bench"})
    try:
        for _ in range(120):
            if container.exec_run(["pg_isready", "-q", "-h", "127.0.0.1", "-U", "postgres"]).exit_code == 0:
                break
            time.sleep(0.5)
        print(f"building the database (pgbench -s {SCALE}, {NOTES} rows of text)...", flush=True)
        code, out = container.exec_run(["pgbench", "-i", "-q", "-s", str(SCALE), "-U", "postgres", "bench"])
        assert code == 0, out
        code, out = container.exec_run(["psql", "-U", "postgres", "-d", "bench", "-v", "ON_ERROR_STOP=1", "-c", (
            "CREATE TABLE notes AS SELECT g AS id, now() - g * interval '1 minute' AS created, "
            "md5(g::text) || ' ' || repeat('lorem ipsum dolor sit amet, consectetur adipiscing elit ', 1 + g % 5) "
            f"|| md5((g * 7)::text) AS body FROM generate_series(1, {NOTES}) g")])
        assert code == 0, out
        size = container.exec_run(["psql", "-U", "postgres", "-tAc", "SELECT pg_size_pretty(pg_database_size('bench'))"])
        print(f"database size: {size.output.decode().strip()}", flush=True)

        with tempfile.TemporaryDirectory(prefix="kbench-") as tmp:
            root = Path(tmp)
            stack = root / "bench"
            stack.mkdir()
            (stack / "compose.yaml").write_text("services: {}\n")
            (stack / ".env").write_text(f"DB_CONTAINER={name}\nDB_NAME=bench\nDB_USER=postgres\nDB_PASSWORD={password}\n")

            started = time.monotonic()
            with open(stack / "raw.sql", "wb") as handle:
                subprocess.run(["docker", "exec", "-e", f"PGPASSWORD={password}", name, "pg_dump", "-h", "127.0.0.1",
                                "-U", "postgres", "bench"], stdout=handle, check=True)
            raw = time.monotonic() - started
            plain_size = (stack / "raw.sql").stat().st_size
            (stack / "raw.sql").unlink()

            meter = CpuMeter(container.id)
            exports: dict[str, list[float]] = {label: [] for label, _ in VARIANTS}
            cpu: dict[str, list[tuple[float, float, float]]] = {label: [] for label, _ in VARIANTS}
            imports: dict[str, list[float]] = {label: [] for label, _ in VARIANTS}
            sizes: dict[str, int] = {}
            for round_number in range(REPEAT):
                for label, args in VARIANTS:
                    wall, used = kompose(root, meter, "bench", "db:export", *args)
                    exports[label].append(wall)
                    cpu[label].append(used)
                    newest = max((p for p in stack.iterdir() if p.name.startswith("bench_") and not p.name.endswith(".json")),
                                 key=lambda p: p.name)
                    sizes[label] = newest.stat().st_size
                    imports[label].append(kompose(root, meter, "bench", "db:import", newest.name)[0])
                    for path in stack.glob("bench_*"):
                        path.unlink()
                print(f"round {round_number + 1}/{REPEAT} done", flush=True)

        print()
        print(f"`docker exec pg_dump > file` (plain, for reference): {raw:.1f} s, {plain_size / 1e6:.0f} MB")
        print(f"medians of {REPEAT} runs, each variant in turn:")
        print("| variant | export (s) | export CPU (s): container + dockerd/shim + kompose = total | size (MB) "
              "| of plain | import (s) |")
        print("|---|---:|---|---:|---:|---:|")
        for label, _ in VARIANTS:
            parts = [statistics.median(c[i] for c in cpu[label]) for i in range(3)]
            total = statistics.median(sum(c) for c in cpu[label])
            print(f"| {label} | {statistics.median(exports[label]):.1f} | "
                  f"{parts[0]:.1f} + {parts[1]:.1f} + {parts[2]:.1f} = {total:.1f} | {sizes[label] / 1e6:.0f} | "
                  f"{sizes[label] / plain_size:.0%} | {statistics.median(imports[label]):.1f} |")
    finally:
        container.remove(force=True, v=True)


if __name__ == "__main__":
    main()
