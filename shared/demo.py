"""``posproctor demo``: a simulated fleet, polled in embedded mode, on screen.

It starts about fifty simulated Commanders with a scenario where stores fail
and recover, writes the three configuration files a real install would
have into a scratch folder, runs the embedded agent+aggregator against them
with /metrics on port 8000, and redraws fleet health once a second. Ctrl-C
stops everything and removes the scratch folder.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from shared.config import load_config
from shared.demoview import Progress, render
from shared.embedded import Embedded
from shared.errors import ConfigError
from simulator import Simulator, generate_fleet
from simulator.scenario import Scenario

log = logging.getLogger(__name__)

DEMO_USER = "monitor"
DEMO_PASSWORD = "Demo-pass-2026"  # noqa: S105 - the simulated fleet's own login


def demo_scenario(period: float, stores: Collection[str]) -> Scenario:
    """Return a scenario where things break and recover within ``period`` s.

    Only faults for stores in ``stores`` are kept, so a small demo fleet
    still gets the ones that fit it.
    """
    step = period / 20
    faults = [
        ("Store 0001", "pump_offline", {"ids": ["3"]}),
        ("Store 0005", "price_display_offline", {"count": 1}),
        ("Store 0006", "dcr_offline", {"count": 2}),
        ("Store 0002", "loyalty_disconnected", {}),
        ("Store 0008", "fep_disconnected", {}),
        ("Store 0003", "controller_offline", {}),
        ("Store 0010", "connection_refused", {}),
        ("Store 0012", "wrong_credentials", {}),
        ("Store 0009", "slow_response", {"seconds": 30}),
        ("Store 0004", "fep_undetermined", {}),
    ]
    faults = [fault for fault in faults if fault[0] in stores]
    steps = []
    for i, (store, fault, params) in enumerate(faults):
        steps.append(
            {"at": step * (i + 1), "stores": [store], "set": fault, "params": params}
        )
        steps.append({"at": step * (i + 10), "stores": [store], "clear": fault})
    return Scenario.from_data({"repeat_every": period, "steps": steps}, "demo")


@dataclass(frozen=True, slots=True)
class DemoOptions:
    stores: int = 50
    port: int = 8000
    interval_seconds: float = 15.0
    latency_ms: float = 40.0
    seed: int = 1


def write_demo_files(folder: Path, sim: Simulator, options: DemoOptions) -> Path:
    """Write commanders.csv, credentials.yaml and config.yaml; return the last."""
    sim.write_csv(folder / "commanders.csv", agent="demo")
    credentials = folder / "credentials.yaml"
    credentials.write_text(
        f'credentials:\n  username: {DEMO_USER}\n  password: "{DEMO_PASSWORD}"\n'
    )
    credentials.chmod(0o600)
    config = folder / "config.yaml"
    config.write_text(
        f"scrape_interval_minutes: {options.interval_seconds / 60:.4f}\n"
        "timeout_seconds: 5\n"
        "loyalty_program:\n  names: ['rewards 2 go']\n"
        f"tls:\n  ca_bundle: {sim.ca_file}\n"
        "agent:\n  id: demo\n  workers: 20\n  start_jitter_seconds: 0\n"
        "  lockout_cooldown_minutes: 2\n"
        f"aggregator:\n  listen: 127.0.0.1:{options.port}\n"
    )
    return config


def run_demo(options: DemoOptions, out: TextIO = sys.stdout) -> None:
    """Run the demo until SIGINT/SIGTERM."""
    from shared.runtime import stop_on_signals

    stop = threading.Event()
    stop_on_signals(stop)
    folder = Path(tempfile.mkdtemp(prefix="posproctor-demo-"))
    fleet = generate_fleet(options.stores, seed=options.seed)
    scenario = demo_scenario(options.interval_seconds * 16, {s.name for s in fleet})
    sim = Simulator(
        fleet,
        username=DEMO_USER,
        password=DEMO_PASSWORD,
        latency=options.latency_ms / 1000,
        jitter=options.latency_ms / 2000,
        scenario=scenario,
        cert_dir=folder / "certs",
    )
    try:
        sim.start()
        config = load_config(write_demo_files(folder, sim, options))
        try:
            embedded = Embedded(config)
        except ConfigError as exc:
            raise ConfigError(f"{exc}; choose another with --port") from None
        embedded.start(stop, first_delay=0)
        try:
            _show(embedded, options, stop, out)
        finally:
            stop.set()
            embedded.stop()
    finally:
        sim.stop()
        shutil.rmtree(folder, ignore_errors=True)


class RecentLog(logging.Handler):
    """Keep the last few log lines for the live view instead of printing them."""

    def __init__(self, size: int = 8) -> None:
        super().__init__(logging.INFO)
        self.lines: deque[str] = deque(maxlen=size)
        self.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def _logs_into(handler: logging.Handler) -> Iterator[None]:
    """Route every log line to ``handler`` while the live view owns the screen."""
    root = logging.getLogger()
    saved = list(root.handlers)
    for old in saved:
        root.removeHandler(old)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for old in saved:
            root.addHandler(old)


def _show(
    embedded: Embedded, options: DemoOptions, stop: threading.Event, out: TextIO
) -> None:
    title = (
        f"POSProctor demo: {options.stores} simulated stores, polled every "
        f"{options.interval_seconds:g}s; metrics at {embedded.server.url}/metrics\n"
        "Ctrl-C stops the demo."
    )
    if out.isatty():
        recent = RecentLog()
        with _logs_into(recent):
            _show_live(embedded, title, stop, out, recent)
    else:
        _show_per_cycle(embedded, title, stop, out)


def _show_live(
    embedded: Embedded,
    title: str,
    stop: threading.Event,
    out: TextIO,
    recent: RecentLog,
) -> None:
    while True:
        progress = Progress(
            embedded.poller.cycle, embedded.sink.reported, embedded.poller.store_count
        )
        screen = render(embedded.state.snapshot(), title=title, progress=progress)
        events = "\n".join(recent.lines) or "(none yet)"
        out.write(f"\x1b[H\x1b[2J{screen}\n\nrecent events\n{events}\n")
        out.flush()
        first_cycle = embedded.sink.last_cycle is None
        if stop.wait(0.2 if first_cycle else 1.0):
            return


def _show_per_cycle(
    embedded: Embedded, title: str, stop: threading.Event, out: TextIO
) -> None:
    last_cycle = 0
    while not stop.wait(1.0):
        finished = embedded.sink.last_cycle
        if finished is not None and finished.cycle != last_cycle:
            last_cycle = finished.cycle
            screen = render(embedded.state.snapshot(), title=title, progress=None)
            out.write(screen + "\n\n")
            out.flush()
