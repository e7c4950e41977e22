"""Options and error handling every ``posproctor`` command shares."""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from shared.errors import PosProctorError

if TYPE_CHECKING:
    from shared.config import Config

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="config.yaml (it names commanders.csv and credentials.yaml).",
)


def one_line_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn project errors into one stderr line and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PosProctorError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper


def run_until_signalled(
    target: Callable[[Config, threading.Event], None], config_path: Path
) -> None:
    """Load ``config_path`` and run ``target`` until SIGINT or SIGTERM."""
    from shared.config import load_config
    from shared.runtime import stop_on_signals

    config = load_config(config_path)
    stop = threading.Event()
    stop_on_signals(stop)
    target(config, stop)
