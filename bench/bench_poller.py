"""Agent poll-cycle benchmark: a simulated fleet with real latency over HTTPS.

    python -m bench.bench_poller [--stores 1000] [--latency-ms 200] [--workers 100]

The simulator runs in its own process (``posproctor simulate``) so that its
CPU is not counted against the agent. The agent runs in a second child
process that polls back-to-back cycles with the real Poller and a sink that
drops what it gets, and reports per-cycle wall time and CPU seconds and its
peak RSS. The ideal cycle is requests per store x latency x
ceil(stores / workers): what perfect parallelism with zero overhead would
take. Targets (after the first cycle, which also logs in): ratio <= 1.15,
RSS <= 150 MB, CPU <= 3 ms per store per cycle.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REQUESTS_PER_STORE = 3  # vforecourtdiagnostics, vpaymentdiagnostics, vposdiagnostics
TARGET_RATIO = 1.15
TARGET_RSS_MB = 150.0
TARGET_CPU_MS = 3.0
USER, PASSWORD = "bench", "Bench-pass-1"


def _start_simulator(folder: Path, args: argparse.Namespace) -> subprocess.Popen:
    csv, ca = folder / "commanders.csv", folder / "ca.pem"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "shared.cli", "--log-level", "WARNING"),
            *("simulate", "--stores", str(args.stores)),
            *("--latency-ms", str(args.latency_ms)),
            *("--csv-out", str(csv), "--ca-out", str(ca)),
            *("--username", USER, "--password", PASSWORD),
        ],
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (csv.exists() and ca.exists()):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the simulator did not start")
        time.sleep(0.2)
    time.sleep(0.5)  # the files are written once every store listens
    return proc


def _write_config(folder: Path, args: argparse.Namespace) -> Path:
    (folder / "credentials.yaml").write_text(
        f'credentials:\n  username: {USER}\n  password: "{PASSWORD}"\n'
    )
    (folder / "credentials.yaml").chmod(0o600)
    config = folder / "config.yaml"
    config.write_text(
        "timeout_seconds: 30\n"
        f"tls:\n  ca_bundle: {folder / 'ca.pem'}\n"
        f"agent:\n  workers: {args.workers}\n  start_jitter_seconds: 0\n"
    )
    return config


class _DropSink:
    def store_status(self, status: object) -> None:
        pass

    def cycle_done(self, summary: object) -> None:
        pass

    def stores_removed(self, stores: object) -> None:
        pass


def _child(config_path: Path, cycles: int) -> None:
    """Run in the agent's process: poll ``cycles`` cycles, print figures."""
    from agent.poller import Poller
    from shared.config import load_config
    from shared.runtime import raise_fd_limit

    poller = Poller(load_config(config_path), _DropSink())
    poller.load_inventory()
    raise_fd_limit(poller.store_count + 256)
    rows = []
    for _ in range(cycles):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        summary = poller.run_cycle()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        rows.append(
            {"wall": wall, "cpu": cpu, "ok": summary.ok, "failed": summary.failed}
        )
    poller.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"cycles": rows, "rss_mb": rss_mb}))


def _report(args: argparse.Namespace, result: dict) -> dict:
    ideal = (
        REQUESTS_PER_STORE
        * args.latency_ms
        / 1000
        * math.ceil(args.stores / args.workers)
    )
    later = result["cycles"][1:] or result["cycles"]
    wall = sum(c["wall"] for c in later) / len(later)
    cpu_ms = 1000 * sum(c["cpu"] for c in later) / len(later) / args.stores
    figures = {
        "stores": args.stores,
        "latency_ms": args.latency_ms,
        "workers": args.workers,
        "first_cycle_s": round(result["cycles"][0]["wall"], 3),
        "cycle_s": round(wall, 3),
        "ideal_s": round(ideal, 3),
        "ratio": round(wall / ideal, 3),
        "rss_mb": round(result["rss_mb"], 1),
        "cpu_ms_per_store": round(cpu_ms, 3),
        "failed": sum(c["failed"] for c in result["cycles"]),
    }
    rows = [
        (
            "cycle time (after the first)",
            f"{wall:.2f} s",
            f"ideal {ideal:.2f} s",
            f"ratio {wall / ideal:.3f}",
            f"target <= {TARGET_RATIO}",
        ),
        ("first cycle (logs in)", f"{figures['first_cycle_s']:.2f} s", "", "", ""),
        (
            "agent peak RSS",
            f"{figures['rss_mb']:.1f} MB",
            "",
            "",
            f"target <= {TARGET_RSS_MB:.0f} MB",
        ),
        (
            "agent CPU per store per cycle",
            f"{cpu_ms:.2f} ms",
            "",
            "",
            f"target <= {TARGET_CPU_MS} ms",
        ),
        ("failed polls (all cycles)", str(figures["failed"]), "", "", "target 0"),
    ]
    print(
        f"poll benchmark: {args.stores} stores, {args.latency_ms:g} ms per request, "
        f"{args.workers} workers"
    )
    for row in rows:
        print(f"  {row[0]:<32}{row[1]:>12}  {row[2]:<16}{row[3]:<14}{row[4]}")
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.cycles)
        return
    with tempfile.TemporaryDirectory(prefix="posproctor-bench-") as tmp:
        folder = Path(tmp)
        sim = _start_simulator(folder, args)
        try:
            config = _write_config(folder, args)
            child = subprocess.run(
                [
                    *(sys.executable, "-m", "bench.bench_poller"),
                    *("--child", str(config), "--cycles", str(args.cycles)),
                ],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
        finally:
            sim.send_signal(signal.SIGTERM)
            sim.wait(timeout=30)
    figures = _report(args, json.loads(child.stdout.strip().splitlines()[-1]))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
