"""``posproctor check``: validate every file and say what would run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from shared.config import load_all


def describe(config_path: Path) -> str:
    """Load and validate everything ``config_path`` names; return a summary."""
    loaded = load_all(config_path)
    config, inventory = loaded.config, loaded.inventory
    mine = inventory.for_agent(config.agent.id)
    groups = Counter(c.group for c in mine)
    counts = inventory.counts()
    insecure = config.insecure_scopes()
    mqtt = config.mqtt
    lines = [
        f"config          {config_path} OK",
        f"commanders      {inventory.path}: {counts.get(True, 0)} enabled, "
        f"{counts.get(False, 0)} disabled",
        f"agent           {config.agent.id}: polls {len(mine)} stores with "
        f"{config.agent.workers} workers every {config.scrape_interval_minutes:g} min "
        f"(timeout {config.timeout_seconds:g}s)",
        "groups          "
        + (", ".join(f"{g}={n}" for g, n in sorted(groups.items())) or "none"),
        f"loyalty FEPs    {', '.join(config.loyalty_names) or 'none'}",
        f"TLS insecure    {', '.join(insecure) if insecure else 'nowhere'}",
        f"MQTT            {mqtt.host}:{mqtt.port} (MQTT {mqtt.protocol}, "
        f"{'TLS' if mqtt.ca_file else 'plain'}, "
        f"user {mqtt.username or 'none'})",
        f"aggregator      /metrics on {config.aggregator.listen_host}:"
        f"{config.aggregator.listen_port}",
    ]
    return "\n".join(lines)
