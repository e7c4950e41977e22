"""The ``posproctor`` command: thin click wrappers around one function each.

Domain errors (a bad config file, a Commander that cannot be reached by
``probe``) print as one line on stderr and exit non-zero; tracebacks are
for bugs only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from shared import __version__, logsetup
from shared.cli_options import CONFIG_OPTION, one_line_errors


@click.group()
@click.version_option(__version__, prog_name="posproctor")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
)
def main(log_level: str) -> None:
    """Monitor a fleet of Verifone Commander site controllers."""
    logsetup.configure(log_level)


@main.command()
@CONFIG_OPTION
@one_line_errors
def check(config_path: Path) -> None:
    """Validate the configuration files and print what would run."""
    from shared.checkcmd import describe

    click.echo(describe(config_path))


@main.command()
@CONFIG_OPTION
@click.option(
    "--output",
    default=None,
    help="Write JSON lines to this file ('-' for stdout) instead of MQTT.",
)
@click.option("--once", is_flag=True, help="Poll one cycle, then exit.")
@one_line_errors
def agent(config_path: Path, output: str | None, once: bool) -> None:
    """Run an edge agent: poll this agent's stores and publish their status."""
    from agent.service import run_agent

    run_agent(config_path, output=output, once=once)


@main.command()
@click.argument("host")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="config.yaml with credentials, TLS and loyalty settings.",
)
@click.option("--raw", is_flag=True, help="Also print each command's raw XML.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@one_line_errors
def probe(host: str, config_path: Path | None, raw: bool, as_json: bool) -> None:
    """Query one Commander (HOST[:PORT]) and print what it reports."""
    from agent.probe import run_probe

    sys.exit(run_probe(host, config_path, raw=raw, as_json=as_json))


def _add_part_commands() -> None:
    """Add the commands that live with their own parts of the product."""
    from aggregator.cli import aggregator
    from shared.runcmd import demo, run
    from simulator.cli import simulate

    main.add_command(simulate)
    main.add_command(aggregator)
    main.add_command(run)
    main.add_command(demo)


_add_part_commands()


if __name__ == "__main__":
    main()
