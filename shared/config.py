"""Configuration files, validated once at start into frozen typed objects.

Files (compatible with the first version): ``commanders.csv``,
``credentials.yaml`` and ``config.yaml``. Every error is a ``ConfigError``
whose message names the file, the line or key, and what is wrong, for
example ``commanders.csv:14: ip '10.0.0.300' is not an IP address``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Commander:
    """One row of ``commanders.csv``."""

    ip: str
    store: str
    group: str
    brand: str
    enabled: bool
    base_url: str  # "https://10.1.2.3", "https://10.1.2.3:8443" or the url column
    agent: str | None = None  # slug of the agent that polls it; None = any
    line: int = 0  # line in the file, for messages

    @property
    def slug(self) -> str:
        from shared.model import slugify

        return slugify(self.store)


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=<hidden>)"


@dataclass(frozen=True, slots=True)
class CredentialSet:
    """Default credentials with optional overrides per group and per store."""

    default: Credentials
    groups: dict[str, Credentials] = field(default_factory=dict)
    stores: dict[str, Credentials] = field(default_factory=dict)

    def for_commander(self, commander: Commander) -> Credentials:
        return (
            self.stores.get(commander.store)
            or self.groups.get(commander.group)
            or self.default
        )


@dataclass(frozen=True, slots=True)
class TlsPolicy:
    """How to trust one Commander's certificate.

    Exactly one of: ``fingerprint`` (SHA-256 of the DER certificate, hex,
    colons optional), ``ca_bundle`` (a PEM file), ``insecure`` (no check),
    or none of them (the system trust store).
    """

    ca_bundle: Path | None = None
    fingerprint: str | None = None  # lowercase hex, no colons
    insecure: bool = False


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """The global TLS policy with overrides per group and per store."""

    default: TlsPolicy = TlsPolicy()
    groups: dict[str, TlsPolicy] = field(default_factory=dict)
    stores: dict[str, TlsPolicy] = field(default_factory=dict)

    def for_commander(self, commander: Commander) -> TlsPolicy:
        return (
            self.stores.get(commander.store)
            or self.groups.get(commander.group)
            or self.default
        )


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    protocol: str = "5"  # "5" or "3.1.1"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None  # set: connect with TLS
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive: int = 30
    client_id: str | None = None  # default: posproctor-agent-{id} / -aggregator-{id}


@dataclass(frozen=True, slots=True)
class AgentSettings:
    id: str = "local"  # slug
    workers: int = 10
    commanders_file: Path = Path("commanders.csv")
    credentials_file: Path = Path("credentials.yaml")
    lockout_cooldown_minutes: float = 30.0
    start_jitter_seconds: float = 5.0
    password_warning_days: int = 14
    max_response_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class AggregatorSettings:
    id: str = "central"
    listen_host: str = "0.0.0.0"  # noqa: S104 - a metrics endpoint is meant to be scraped
    listen_port: int = 8000
    stale_after_intervals: float = 3.0
    agents: tuple[str, ...] = ()  # empty: every agent
    max_stores: int = 50_000


@dataclass(frozen=True, slots=True)
class Config:
    """Everything ``config.yaml`` says, with defaults filled in."""

    path: Path | None
    scrape_interval_minutes: float = 5.0
    timeout_seconds: float = 30.0
    loyalty_names: tuple[str, ...] = ("rewards 2 go",)
    tls: TlsSettings = TlsSettings()
    agent: AgentSettings = AgentSettings()
    mqtt: MqttSettings = MqttSettings()
    aggregator: AggregatorSettings = AggregatorSettings()

    @property
    def interval_seconds(self) -> float:
        return self.scrape_interval_minutes * 60.0
