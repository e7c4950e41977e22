"""``posproctor probe``: poll one Commander once and show what it says."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import urlsplit

import click

from agent.client import ClientSettings, CommanderClient
from agent.sinks import to_jsonable
from shared.config import Commander, load_all
from shared.errors import ConfigError
from shared.model import Device, StoreStatus

log = logging.getLogger(__name__)


def run_probe(
    host: str, config_path: Path | None, *, raw: bool = False, as_json: bool = False
) -> int:
    """Poll ``host`` once; print the status; return the exit status (0 = ok)."""
    if config_path is None:
        raise ConfigError("probe needs --config to find the credentials to log in with")
    loaded = load_all(config_path)
    config = loaded.config
    commander = _find_commander(loaded.inventory.commanders, host)
    tls = config.tls.for_commander(commander)
    client = CommanderClient(
        commander,
        loaded.credentials.for_commander(commander),
        tls,
        ClientSettings.from_config(config),
        on_body=_print_raw if raw else None,
    )
    try:
        status = client.poll()
    finally:
        client.release()
    if as_json:
        click.echo(json.dumps(to_jsonable(status), indent=2, sort_keys=True))
    else:
        click.echo(format_status(status))
    if not status.ok:
        click.echo(f"error: {status.error_type}: {status.error}", err=True)
        return 1
    return 0


def _find_commander(commanders: tuple[Commander, ...], host: str) -> Commander:
    """Return the inventory row for ``host`` (ip or ip:port), or a bare one."""
    for commander in commanders:
        netloc = commander.base_url.split("://", 1)[1].rstrip("/")
        if host in (commander.ip, netloc):
            return commander
    return Commander(
        ip=urlsplit(f"https://{host}").hostname or host,
        store=host,
        group="-",
        brand="-",
        enabled=True,
        base_url=f"https://{host}",
    )


def _print_raw(cmd: str, body: bytes) -> None:
    click.echo(f"--- {cmd} ({len(body)} bytes)")
    click.echo(body.decode("utf-8", errors="replace"))


def _device_line(label: str, devices: tuple[Device, ...]) -> str:
    if not devices:
        return f"{label:<15} none reported"
    down = [d.id for d in devices if not d.online]
    state = f"{len(devices) - len(down)}/{len(devices)} online"
    return f"{label:<15} {state}" + (f"; down: {', '.join(down)}" if down else "")


def format_status(status: StoreStatus) -> str:
    """Return a short human-readable report of one store's status."""
    result = "ok" if status.ok else f"{status.error_type}: {status.error}"
    lines = [
        f"store           {status.store} ({status.ip}) group={status.group} "
        f"brand={status.brand}",
        f"result          {result}",
    ]
    if status.controller is not None:
        online = "online" if status.controller.online else "OFFLINE"
        lines.append(f"controller      {online} ({status.controller.status})")
    lines.append(_device_line("pumps", status.pumps))
    lines.append(_device_line("DCRs", status.dcrs))
    lines.append(_device_line("price displays", status.price_displays))
    lines.append(_device_line("registers", status.registers))
    lines.append(_device_line("pin pads", status.pinpads))
    for label, fep in (
        ("primary FEP", status.primary_fep),
        ("loyalty FEP", status.loyalty_fep),
    ):
        if fep is not None:
            state = {True: "connected", False: "DISCONNECTED", None: "unknown"}[
                fep.connected
            ]
            lines.append(f"{label:<15} {fep.name}: {state} ({fep.status})")
    if status.password_days is not None:
        lines.append(f"password        expires in {status.password_days} days")
    timings = ", ".join(f"{k}={v * 1000:.0f}ms" for k, v in status.durations.items())
    lines.append(f"durations       {timings or 'none'}")
    return "\n".join(lines)
