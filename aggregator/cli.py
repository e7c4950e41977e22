"""``posproctor aggregator``: the central aggregator's command."""

from __future__ import annotations

from pathlib import Path

import click

from shared.cli_options import CONFIG_OPTION, one_line_errors, run_until_signalled


@click.command("aggregator")
@CONFIG_OPTION
@one_line_errors
def aggregator(config_path: Path) -> None:
    """Run the central aggregator: MQTT reports in, /metrics out."""
    from aggregator.service import run_aggregator

    run_until_signalled(run_aggregator, config_path)
