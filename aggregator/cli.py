"""``posproctor aggregator``: the central aggregator's command."""

from __future__ import annotations

import threading
from pathlib import Path

import click

from shared.cli_options import CONFIG_OPTION, one_line_errors


@click.command("aggregator")
@CONFIG_OPTION
@one_line_errors
def aggregator(config_path: Path) -> None:
    """Run the central aggregator: MQTT reports in, /metrics out."""
    from aggregator.service import run_aggregator
    from shared.config import load_config
    from shared.runtime import stop_on_signals

    config = load_config(config_path)
    stop = threading.Event()
    stop_on_signals(stop)
    run_aggregator(config, stop)
