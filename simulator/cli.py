"""``posproctor simulate``: serve simulated Commanders until told to stop.

The lead's CLI registers ``simulate`` under the main group and configures
logging; this module only parses options and calls ``serve``.
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import click

from shared.config import load_credentials
from shared.errors import ConfigError
from simulator.fleet import SimStore, fleet_from_csv, generate_fleet
from simulator.scenario import Scenario
from simulator.server import Simulator

logger = logging.getLogger(__name__)

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_OUT = click.Path(dir_okay=False, writable=True, path_type=Path)


@dataclass(frozen=True, slots=True)
class Outputs:
    """Files to write once the simulator listens."""

    csv_out: Path | None = None
    ca_out: Path | None = None
    agent: str | None = None


@click.command("simulate")
@click.option(
    "--stores", "store_count", type=click.IntRange(1), help="Generate N stores [10]."
)
@click.option(
    "--csv", "csv_in", type=_FILE, help="Simulate the stores of a commanders.csv."
)
@click.option(
    "--csv-out", type=_OUT, help="Write a commanders.csv for the served stores."
)
@click.option("--csv-agent", help="Fill the agent column of --csv-out with this id.")
@click.option("--ca-out", type=_OUT, help="Copy the CA certificate (PEM) here.")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address in port mode."
)
@click.option(
    "--base-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="First store's port; 0 picks free ports.",
)
@click.option(
    "--loopback-per-store",
    is_flag=True,
    help="Give each store its own 127.10.x.y address instead of a port.",
)
@click.option(
    "--loopback-port",
    type=click.IntRange(1, 65535),
    default=443,
    show_default=True,
    help="Port in loopback mode.",
)
@click.option("--username", default="monitor", show_default=True)
@click.option("--password", default="monitor-pass", help="Password the stores accept.")
@click.option("--credentials", type=_FILE, help="credentials.yaml to take logins from.")
@click.option("--latency-ms", type=click.FloatRange(0), default=0.0, show_default=True)
@click.option("--jitter-ms", type=click.FloatRange(0), default=0.0, show_default=True)
@click.option("--scenario", type=_FILE, help="YAML file of timed faults.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--cookie-ttl",
    type=click.FloatRange(0, min_open=True),
    default=900.0,
    show_default=True,
    help="Idle seconds before a cookie expires.",
)
@click.option("--session-limit", type=click.IntRange(1), default=5, show_default=True)
@click.option(
    "--session-policy",
    type=click.Choice(["refuse", "evict"]),
    default="refuse",
    show_default=True,
)
@click.option(
    "--lockout-threshold", type=click.IntRange(1), default=6, show_default=True
)
@click.option(
    "--lockout-minutes", type=click.FloatRange(0), default=30.0, show_default=True
)
@click.option("--password-days", type=int, default=60, show_default=True)
@click.option(
    "--cert-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep certificates here instead of a temporary folder.",
)
def simulate(  # noqa: PLR0917 - one parameter per option is click's way
    store_count: int | None,
    csv_in: Path | None,
    csv_out: Path | None,
    csv_agent: str | None,
    ca_out: Path | None,
    host: str,
    base_port: int,
    loopback_per_store: bool,
    loopback_port: int,
    username: str,
    password: str,
    credentials: Path | None,
    latency_ms: float,
    jitter_ms: float,
    scenario: Path | None,
    seed: int,
    cookie_ttl: float,
    session_limit: int,
    session_policy: str,
    lockout_threshold: int,
    lockout_minutes: float,
    password_days: int,
    cert_dir: Path | None,
) -> None:
    """Serve simulated Verifone Commanders over HTTPS until SIGINT or SIGTERM."""
    try:
        sim = Simulator(
            _fleet(store_count, csv_in, seed),
            username=username,
            password=password,
            credentials=load_credentials(credentials) if credentials else None,
            host=host,
            base_port=base_port,
            loopback_per_store=loopback_per_store,
            loopback_port=loopback_port,
            latency=latency_ms / 1000.0,
            jitter=jitter_ms / 1000.0,
            cookie_ttl=cookie_ttl,
            session_limit=session_limit,
            session_policy=session_policy,
            lockout_threshold=lockout_threshold,
            lockout_seconds=lockout_minutes * 60.0,
            password_days=password_days,
            cert_dir=cert_dir,
            scenario=Scenario.load(scenario) if scenario else None,
            seed=seed,
        )
        serve(sim, Outputs(csv_out, ca_out, csv_agent))
    except (ConfigError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


def _fleet(count: int | None, csv_in: Path | None, seed: int) -> list[SimStore]:
    if count is not None and csv_in is not None:
        raise click.UsageError("give --stores or --csv, not both")
    if csv_in is not None:
        return fleet_from_csv(csv_in)
    return generate_fleet(count or 10, seed)


def serve(
    sim: Simulator, outputs: Outputs, stop: threading.Event | None = None
) -> None:
    """Start ``sim``, write the outputs, and run until a signal or ``stop``."""
    stop = stop or threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {
        sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        sim.start()
        _write_outputs(sim, outputs)
        _log_summary(sim, outputs)
        while not stop.wait(0.5):
            pass
        logger.info("simulator stopping stores=%d", len(sim.stores))
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _write_outputs(sim: Simulator, outputs: Outputs) -> None:
    if outputs.ca_out is not None:
        temp = outputs.ca_out.with_name(f".{outputs.ca_out.name}.tmp")
        shutil.copyfile(sim.ca_file, temp)
        temp.replace(outputs.ca_out)
    if outputs.csv_out is not None:
        sim.write_csv(outputs.csv_out, outputs.agent)


def _log_summary(sim: Simulator, outputs: Outputs) -> None:
    first, last = sim.stores[0].name, sim.stores[-1].name
    logger.info(
        "simulating stores=%d first=%s last=%s ca=%s csv=%s",
        len(sim.stores),
        sim.base_url(first),
        sim.base_url(last),
        outputs.ca_out or sim.ca_file,
        outputs.csv_out or "-",
    )


if __name__ == "__main__":  # pragma: no cover - `python -m simulator.cli`, for tests
    simulate()
