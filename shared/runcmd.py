"""``posproctor run`` (embedded mode) and ``posproctor demo``."""

from __future__ import annotations

from pathlib import Path

import click

from shared.cli_options import CONFIG_OPTION, one_line_errors, run_until_signalled


@click.command("run")
@CONFIG_OPTION
@one_line_errors
def run(config_path: Path) -> None:
    """Run agent and aggregator in one process (a single-network site)."""
    from shared.embedded import run_embedded

    run_until_signalled(run_embedded, config_path)


@click.command("demo")
@click.option("--stores", type=click.IntRange(1, 5000), default=50, show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--interval",
    "interval_seconds",
    type=click.FloatRange(2, 3600),
    default=15.0,
    show_default=True,
    help="Seconds between poll cycles.",
)
@one_line_errors
def demo(stores: int, port: int, interval_seconds: float) -> None:
    """Run a simulated fleet, poll it, serve /metrics and show fleet health."""
    from shared.demo import DemoOptions, run_demo

    run_demo(DemoOptions(stores=stores, port=port, interval_seconds=interval_seconds))
