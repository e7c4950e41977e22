"""Configuration files, validated once at start into frozen typed objects.

Files (compatible with the first version): ``commanders.csv``,
``credentials.yaml`` and ``config.yaml``. Every error is a ``ConfigError``
whose message names the file, the line or key, and what is wrong, for
example ``commanders.csv:14: ip '10.0.0.300' is not an IP address``.

A loader collects every problem in a file before it raises, one problem per
line of the message, so a user fixes a file in one go. Unknown YAML keys and
other doubtful but harmless settings are warnings: logged once at WARNING by
the loader that found them and kept in the loaded object's ``warnings``.
Passwords never appear in a message, a log line or a ``repr``.
"""

from __future__ import annotations

import csv
import difflib
import io
import ipaddress
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml

from shared.errors import ConfigError
from shared.model import slugify

log = logging.getLogger(__name__)

MQTT_PASSWORD_ENV = "POSPROCTOR_MQTT_PASSWORD"  # noqa: S105 - a variable name

_T = TypeVar("_T")


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
        return slugify(self.store)


@dataclass(frozen=True, slots=True)
class Inventory:
    """Every row of ``commanders.csv``, enabled or not, in file order."""

    commanders: tuple[Commander, ...]
    path: Path | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def enabled(self) -> tuple[Commander, ...]:
        """Return the rows to poll."""
        return tuple(c for c in self.commanders if c.enabled)

    def for_agent(self, agent_id: str) -> tuple[Commander, ...]:
        """Return the enabled rows that agent ``agent_id`` polls."""
        return tuple(c for c in self.enabled() if c.agent in (None, agent_id))

    def counts(self) -> dict[bool, int]:
        """Return how many rows are enabled (True) and disabled (False)."""
        enabled = len(self.enabled())
        return {True: enabled, False: len(self.commanders) - enabled}


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
    path: Path | None = field(default=None, compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def for_commander(self, commander: Commander) -> Credentials:
        """Return the store's override, else its group's, else the default."""
        return _most_specific(self.stores, self.groups, self.default, commander)


def _most_specific(
    stores: Mapping[str, _T],
    groups: Mapping[str, _T],
    default: _T,
    commander: Commander,
) -> _T:
    """Return the setting for the commander's store, else its group, else default."""
    if commander.store in stores:
        return stores[commander.store]
    return groups.get(commander.group, default)


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
        """Return the store's policy, else its group's, else the global one."""
        return _most_specific(self.stores, self.groups, self.default, commander)


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
    listen_port: int = 8000  # 0: any free port
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
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def interval_seconds(self) -> float:
        return self.scrape_interval_minutes * 60.0

    def insecure_scopes(self) -> list[str]:
        """Name where certificate checks are off: "global", "group X", "store Y"."""
        scopes = ["global"] if self.tls.default.insecure else []
        scopes += [f"group {n}" for n, p in self.tls.groups.items() if p.insecure]
        scopes += [f"store {n}" for n, p in self.tls.stores.items() if p.insecure]
        return scopes


@dataclass(frozen=True, slots=True)
class Loaded:
    """A validated config with the inventory and credentials it names."""

    config: Config
    inventory: Inventory
    credentials: CredentialSet
    warnings: tuple[str, ...] = field(default=(), compare=False)


class FileWatch:
    """Tell whether a file changed since the last look (mtime, size, inode).

    Create the watch *before* reading the file, so that a rewrite between
    the read and the first look counts as a change. One owner thread.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen = self._signature()

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def changed(self) -> bool:
        """Return True once after each change (a missing file is a state too)."""
        current = self._signature()
        if current == self._seen:
            return False
        self._seen = current
        return True


# --------------------------------------------------------------------------
# Reading files


def _read_text(path: Path, label: str) -> str:
    """Return the file's text; unreadable or non-UTF-8 files are ConfigErrors."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{label}:{line}: byte 0x{data[exc.start]:02x} is not UTF-8;"
            " save the file as UTF-8"
        ) from exc


class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _load_yaml(path: Path, label: str) -> Any:
    """Parse a YAML file; syntax errors name the file and line, never content."""
    text = _read_text(path, label)
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{label}:{mark.line + 1}" if mark else label
        what = exc.problem or exc.context or "not valid YAML"
        raise ConfigError(f"{where}: {what}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label}: not valid YAML") from exc


# --------------------------------------------------------------------------
# commanders.csv

_REQUIRED_COLUMNS = ("ip", "store", "group", "brand", "enabled")
_OPTIONAL_COLUMNS = ("agent", "port", "url")
_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})


class _RowError(Exception):
    """One problem with one cell; caught and listed by the loader."""


def load_commanders(path: Path) -> Inventory:
    """Read and validate ``commanders.csv``; raise one ConfigError listing all rows."""
    label = str(path)
    rows = list(_csv_rows(_read_text(path, label), label))
    if not rows:
        raise ConfigError(f"{label}: no stores (the file is empty)")
    header_line, header = rows[0]
    columns, warnings = _header(header, label, header_line)
    if len(rows) == 1:
        raise ConfigError(f"{label}: no stores (only a header)")
    problems: list[tuple[int, str]] = []
    commanders: list[Commander] = []
    for line, cells in rows[1:]:
        if len(cells) != len(columns):
            problems.append(
                (line, f"{len(cells)} cells, but the header has {len(columns)}")
            )
            continue
        values = dict(zip(columns, cells, strict=True))
        commander = _commander(values, line, problems)
        if commander is not None:
            commanders.append(commander)
    problems += _duplicates(rows[1:], columns)
    if problems:
        problems.sort(key=lambda item: item[0])
        raise ConfigError("\n".join(f"{label}:{n}: {m}" for n, m in problems))
    for warning in warnings:
        log.warning("%s", warning)
    return Inventory(tuple(commanders), path, tuple(warnings))


def _csv_rows(text: str, label: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (first line number, stripped cells) for every non-blank row."""
    reader = csv.reader(io.StringIO(text, newline=""))
    previous = 0
    try:
        for cells in reader:
            start, previous = previous + 1, reader.line_num
            stripped = [cell.strip() for cell in cells]
            if any(stripped):
                yield start, stripped
    except csv.Error as exc:
        raise ConfigError(f"{label}:{reader.line_num}: {exc}") from exc


def _header(cells: list[str], label: str, line: int) -> tuple[list[str], list[str]]:
    """Return the lowercased column names and warnings about unknown ones."""
    columns = [cell.lower() for cell in cells]
    missing = [name for name in _REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise ConfigError(
            f"{label}:{line}: missing column {', '.join(map(repr, missing))}"
            f" (the header is {','.join(cells)})"
        )
    doubled = sorted({name for name in columns if name and columns.count(name) > 1})
    if doubled:
        raise ConfigError(f"{label}:{line}: column {doubled[0]!r} appears twice")
    known = set(_REQUIRED_COLUMNS) | set(_OPTIONAL_COLUMNS)
    warnings = [
        f"{label}:{line}: unknown column {name!r} ignored"
        for name in columns
        if name not in known
    ]
    return columns, warnings


def _commander(
    values: dict[str, str], line: int, problems: list[tuple[int, str]]
) -> Commander | None:
    """Build one Commander from a row, or record every problem it has."""
    parsed: dict[str, Any] = {}
    for name, parse in _CELL_PARSERS:
        try:
            parsed[name] = parse(values.get(name, ""))
        except _RowError as exc:
            problems.append((line, str(exc)))
    url, port, ip = values.get("url", ""), values.get("port", ""), parsed.get("ip")
    if url and port:
        problems.append((line, "url and port are both set; put the port in the url"))
        return None
    try:
        base_url = _check_url(url) if url else _ip_url(ip, parsed.get("port"))
    except _RowError as exc:
        problems.append((line, str(exc)))
        return None
    if len(parsed) < len(_CELL_PARSERS):
        return None
    del parsed["port"]
    parsed["ip"] = str(parsed["ip"])
    return Commander(base_url=base_url, line=line, **parsed)


def _cell_ip(cell: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if not cell:
        raise _RowError("ip is empty")
    try:
        return ipaddress.ip_address(cell)
    except ValueError:
        raise _RowError(f"ip {cell!r} is not an IP address") from None


def _cell_store(cell: str) -> str:
    if not cell:
        raise _RowError("store is empty")
    try:
        slugify(cell)
    except ValueError:
        raise _RowError(f"store {cell!r} has no letters or digits") from None
    return cell


def _cell_required(name: str) -> Callable[[str], str]:
    def parse(cell: str) -> str:
        if not cell:
            raise _RowError(f"{name} is empty")
        return cell

    return parse


def _cell_enabled(cell: str) -> bool:
    word = cell.lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _RowError(f"enabled {cell!r} is not one of true/false, yes/no, 1/0, on/off")


def _cell_agent(cell: str) -> str | None:
    if not cell:
        return None
    if not _is_slug(cell):
        raise _RowError(
            f"agent {cell!r} is not an agent id"
            " (lowercase letters, digits, '-' and '_' only)"
        )
    return cell


def _cell_port(cell: str) -> int | None:
    if not cell:
        return None
    if not cell.isdigit() or not 1 <= int(cell) <= 65535:
        raise _RowError(f"port {cell!r} is not a number from 1 to 65535")
    return int(cell)


_CELL_PARSERS = (
    ("ip", _cell_ip),
    ("store", _cell_store),
    ("group", _cell_required("group")),
    ("brand", _cell_required("brand")),
    ("enabled", _cell_enabled),
    ("agent", _cell_agent),
    ("port", _cell_port),
)


def _ip_url(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None, port: int | None
) -> str:
    """Return ``https://ip[:port]`` with IPv6 in brackets."""
    host = str(ip).replace("%", "%25")
    if isinstance(ip, ipaddress.IPv6Address):
        host = f"[{host}]"
    return f"https://{host}:{port}" if port else f"https://{host}"


def _check_url(url: str) -> str:
    """Return the url column as a base URL, or raise what is wrong with it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _RowError("url has a bad host or port") from None
    if parts.username is not None or parts.password is not None:
        raise _RowError("url must not hold a user name or password")
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise _RowError(f"url {url!r} must look like https://HOST or https://HOST:PORT")
    if port == 0 or parts.netloc.endswith(":"):
        raise _RowError(f"url {url!r} has a port outside 1-65535")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise _RowError(f"url {url!r} must not have a path or query")
    return f"{scheme}://{parts.netloc}"


def _duplicates(
    rows: list[tuple[int, list[str]]], columns: list[str]
) -> list[tuple[int, str]]:
    """Report store slugs and (agent, address) pairs that appear on two rows."""
    problems: list[tuple[int, str]] = []
    slugs: dict[str, tuple[int, str]] = {}
    pairs: dict[tuple[str | None, str], int] = {}
    for line, cells in rows:
        if len(cells) != len(columns):
            continue
        values = dict(zip(columns, cells, strict=True))
        problems += _slug_clash(values.get("store", ""), line, slugs)
        problems += _pair_clash(values, line, pairs)
    return problems


def _slug_clash(
    store: str, line: int, slugs: dict[str, tuple[int, str]]
) -> list[tuple[int, str]]:
    try:
        slug = slugify(store)
    except ValueError:
        return []
    if slug not in slugs:
        slugs[slug] = (line, store)
        return []
    first_line, first = slugs[slug]
    if first == store:
        return [(line, f"store {store!r} is already on line {first_line}")]
    return [
        (
            line,
            f"store {store!r} clashes with {first!r} on line {first_line}"
            f" (both become {slug!r}); rename one",
        )
    ]


def _pair_clash(
    values: dict[str, str], line: int, pairs: dict[tuple[str | None, str], int]
) -> list[tuple[int, str]]:
    """Report a second row for the same agent and Commander address.

    The address is the ip with its port (or the url): stores behind one NAT
    address on different ports are different Commanders.
    """
    try:
        ip = str(ipaddress.ip_address(values.get("ip", "")))
    except ValueError:
        return []
    url = values.get("url", "").strip().rstrip("/").lower()
    port = values.get("port", "").strip()
    where = url or (f"{ip} port {port}" if port else ip)
    agent = values.get("agent") or None
    first_line = pairs.setdefault((agent, where), line)
    if first_line == line:
        return []
    owner = f"agent {agent}" if agent else "no agent"
    label = f"url {url}" if url else f"ip {where}"
    return [(line, f"{label} ({owner}) is already on line {first_line}")]


def _is_slug(text: str) -> bool:
    try:
        return slugify(text) == text
    except ValueError:
        return False


# --------------------------------------------------------------------------
# YAML reading helpers


class _Problems:
    """Collect errors and warnings about one file, then raise or log them."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def error(self, key: str, message: str) -> None:
        self.errors.append(f"{self.label}: {key}: {message}")

    def warn(self, key: str, message: str) -> None:
        self.warnings.append(f"{self.label}: {key}: {message}")

    def finish(self) -> tuple[str, ...]:
        """Raise every error at once, else log each warning; return the warnings."""
        if self.errors:
            raise ConfigError("\n".join(self.errors))
        for warning in self.warnings:
            log.warning("%s", warning)
        return tuple(self.warnings)


class _Map:
    """One YAML mapping being read: its key path, and the keys it used."""

    def __init__(self, problems: _Problems, data: Mapping[Any, Any], prefix: str):
        self.problems = problems
        self.data = data
        self.prefix = prefix
        self.used: set[str | int] = set()

    def key(self, name: str | int) -> str:
        return f"{self.prefix}{name}"

    def raw(self, name: str | int) -> Any:
        """Return the value at ``name`` (None when absent or null)."""
        self.used.add(name)
        return self.data.get(name)

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def error(self, name: str | int, message: str) -> None:
        self.problems.error(self.key(name), message)

    def sub(self, name: str | int) -> _Map | None:
        # YAML reads an unquoted store name such as 12 as an int key.
        """Return the mapping at ``name``, or None (absent, or wrong type)."""
        value = self.raw(name)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            kind = type(value).__name__  # not the value: it may be a password
            self.error(name, f"expected a mapping of settings, got a {kind}")
            return None
        return _Map(self.problems, value, self.key(name) + ".")

    def entries(self, name: str) -> Iterator[tuple[str, _Map]]:
        """Yield (name, settings) for a mapping of named sections (groups, stores)."""
        section = self.sub(name)
        if section is None:
            return
        for raw_key in section.data:
            if isinstance(raw_key, bool) or not isinstance(raw_key, str | int):
                section.error(str(raw_key), "expected a group or store name")
                continue
            child = section.sub(raw_key)
            if child is not None:
                yield str(raw_key), child

    def finish(self, silent: Iterable[str] = ()) -> None:
        """Warn about every key that nothing read."""
        known = self.used | set(silent)
        for name in self.data:
            if name in known:
                continue
            hint = difflib.get_close_matches(
                str(name), sorted(str(k) for k in known), n=1
            )
            more = f"; did you mean {hint[0]!r}?" if hint else ""
            self.problems.warn(self.key(str(name)), f"unknown key, ignored{more}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(m: _Map, name: str, default: float, low: float, strict: bool) -> float:
    """Read a number above ``low`` (strict) or at least ``low``."""
    value = m.raw(name)
    if value is None:
        return default
    if _is_number(value) and (value > low if strict else value >= low):
        return float(value)
    bound = f"> {low:g}" if strict else f">= {low:g}"
    m.error(name, f"expected a number {bound}, got {value!r}")
    return default


def _integer(m: _Map, name: str, default: int, low: int, high: int | None) -> int:
    """Read a whole number from ``low`` to ``high`` (None: no upper bound)."""
    value = m.raw(name)
    if value is None:
        return default
    whole = isinstance(value, int) and not isinstance(value, bool)
    if whole and value >= low and (high is None or value <= high):
        return value
    bound = f"from {low} to {high}" if high is not None else f">= {low}"
    m.error(name, f"expected a whole number {bound}, got {value!r}")
    return default


def _boolean(m: _Map, name: str, default: bool) -> bool:
    value = m.raw(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    m.error(name, f"expected true or false, got {value!r}")
    return default


def _text(m: _Map, name: str, default: str | None) -> str | None:
    value = m.raw(name)
    if value is None:
        return default
    if isinstance(value, str) and value.strip():
        return value.strip()
    m.error(name, f"expected a non-empty string, got {value!r}")
    return default


def _slug(m: _Map, name: str, default: str) -> str:
    value = m.raw(name)
    if value is None:
        return default
    if isinstance(value, str) and _is_slug(value):
        return value
    m.error(name, f"expected an id of a-z, 0-9, '-' and '_', got {value!r}")
    return default


def _path(m: _Map, name: str, default: Path | None, base: Path) -> Path | None:
    """Read a path; a relative one is taken from the config file's folder."""
    value = m.raw(name)
    if value is None:
        return base / default if default is not None else None
    if not isinstance(value, str) or not value.strip():
        m.error(name, f"expected a file path, got {value!r}")
        return default
    return base / Path(value.strip()).expanduser()


def _existing(m: _Map, name: str, base: Path) -> Path | None:
    """Read a path to a file that must exist."""
    path = _path(m, name, None, base)
    if path is not None and not path.is_file():
        m.error(name, f"file {str(path)!r} does not exist")
    return path


def _secret(m: _Map, name: str) -> str | None:
    """Read a password; the message never repeats the value."""
    value = m.raw(name)
    if value is None:
        return None
    if isinstance(value, str) and value:
        return value
    m.error(name, "expected a non-empty string (put the password in quotes)")
    return None


# --------------------------------------------------------------------------
# credentials.yaml


def load_credentials(path: Path) -> CredentialSet:
    """Read ``credentials.yaml``: a default login with group and store overrides."""
    label = str(path)
    problems = _Problems(label)
    top = _top_map(_load_yaml(path, label), problems)
    default = _login(top, "credentials", None)
    if default is None and not top.has("credentials"):
        top.error("credentials", "missing")
    base = default or Credentials("", "")
    groups = {n: c for n, s in top.entries("groups") if (c := _override(s, base))}
    stores = {n: c for n, s in top.entries("stores") if (c := _override(s, base))}
    top.finish()
    _check_mode(path, problems)
    warnings = problems.finish()
    assert default is not None  # finish() raised otherwise
    return CredentialSet(default, groups, stores, path, warnings)


def _top_map(data: Any, problems: _Problems) -> _Map:
    """Wrap the document's top level; an empty file is an empty mapping."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        kind = type(data).__name__
        raise ConfigError(
            f"{problems.label}: expected a mapping of settings, got a {kind}"
        )
    return _Map(problems, data, "")


def _login(top: _Map, name: str, inherit: Credentials | None) -> Credentials | None:
    """Read ``{username, password}`` at ``name``; username may be inherited."""
    section = top.sub(name)
    if section is None:
        return None
    username = _text(section, "username", inherit.username if inherit else None)
    password = _secret(section, "password")
    if username is None and not section.has("username"):
        section.error("username", "missing")
    if password is None and not section.has("password"):
        section.error("password", "missing")
    section.finish()
    if username is None or password is None:
        return None
    return Credentials(username, password)


def _override(section: _Map, default: Credentials) -> Credentials | None:
    """Read one group or store override: a password, and maybe a username."""
    username = _text(section, "username", default.username)
    password = _secret(section, "password")
    if password is None and not section.has("password"):
        section.error("password", "missing")
    section.finish()
    if username is None or password is None:
        return None
    return Credentials(username, password)


def _check_mode(path: Path, problems: _Problems) -> None:
    """Warn when group or others may read the credentials file."""
    if os.name != "posix":
        return
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return
    if mode & 0o077:
        problems.warnings.append(
            f"{problems.label}: readable by group or others (mode {mode:03o});"
            f" run: chmod 600 {path}"
        )


# --------------------------------------------------------------------------
# config.yaml

_MQTT_PROTOCOLS = {
    "5": "5",
    "5.0": "5",
    "v5": "5",
    "mqttv5": "5",
    "3.1.1": "3.1.1",
    "311": "3.1.1",
    "v311": "3.1.1",
    "v3.1.1": "3.1.1",
    "mqttv311": "3.1.1",
}
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_RESERVED_SECTIONS = ("syslog", "spool")


def load_config(path: Path | None, env: Mapping[str, str] | None = None) -> Config:
    """Read ``config.yaml`` (None: all defaults); ``env`` defaults to os.environ."""
    environ = os.environ if env is None else env
    if path is None:
        password = environ.get(MQTT_PASSWORD_ENV) or None
        return Config(path=None, mqtt=MqttSettings(password=password))
    label = str(path)
    problems = _Problems(label)
    top = _top_map(_load_yaml(path, label), problems)
    base = path.parent
    config = Config(
        path=path,
        scrape_interval_minutes=_number(top, "scrape_interval_minutes", 5.0, 0, True),
        timeout_seconds=_number(top, "timeout_seconds", 30.0, 0, True),
        loyalty_names=_loyalty(top),
        tls=_tls(top, base),
        agent=_agent(top.sub("agent"), base),
        mqtt=_mqtt(top.sub("mqtt"), base, environ),
        aggregator=_aggregator(top.sub("aggregator")),
    )
    for name in _RESERVED_SECTIONS:
        top.sub(name)  # a later release reads these; only the type is checked now
    top.finish()
    return replace(config, warnings=problems.finish())


def _loyalty(top: _Map) -> tuple[str, ...]:
    default = Config(path=None).loyalty_names
    section = top.sub("loyalty_program")
    if section is None:
        return default
    names = section.raw("names")
    section.finish()
    if names is None:
        return default
    if not isinstance(names, list) or not all(
        isinstance(n, str) and n.strip() for n in names
    ):
        section.error("names", f"expected a list of names, got {names!r}")
        return default
    return tuple(n.strip().lower() for n in names)


def _tls(top: _Map, base: Path) -> TlsSettings:
    section = top.sub("tls")
    if section is None:
        return TlsSettings()
    default = _tls_policy(section, base)
    groups = {n: _tls_policy(s, base) for n, s in section.entries("groups")}
    stores = {n: _tls_policy(s, base) for n, s in section.entries("stores")}
    section.finish()
    return TlsSettings(default, groups, stores)


def _tls_policy(m: _Map, base: Path) -> TlsPolicy:
    """Read one TLS policy; at most one of ca_bundle, fingerprint, insecure."""
    policy = TlsPolicy(
        ca_bundle=_existing(m, "ca_bundle", base),
        fingerprint=_fingerprint(m),
        insecure=_boolean(m, "insecure", False),
    )
    chosen = [
        name
        for name, on in (
            ("ca_bundle", policy.ca_bundle is not None),
            ("fingerprint", policy.fingerprint is not None),
            ("insecure", policy.insecure),
        )
        if on
    ]
    if len(chosen) > 1:
        m.problems.error(
            m.prefix.rstrip(".") or "tls",
            f"choose one of ca_bundle, fingerprint, insecure (got {', '.join(chosen)})",
        )
    if m.prefix != "tls.":
        m.finish()
    return policy


def _fingerprint(m: _Map) -> str | None:
    value = m.raw("fingerprint")
    if value is None:
        return None
    if isinstance(value, str):
        digits = value.strip().replace(":", "").lower()
        if _FINGERPRINT.fullmatch(digits):
            return digits
    m.error(
        "fingerprint",
        "expected a quoted SHA-256 fingerprint (64 hex digits, colons optional),"
        f" got {value!r}",
    )
    return None


def _agent(m: _Map | None, base: Path) -> AgentSettings:
    d = AgentSettings()
    if m is None:
        return replace(
            d,
            commanders_file=base / d.commanders_file,
            credentials_file=base / d.credentials_file,
        )
    settings = AgentSettings(
        id=_slug(m, "id", d.id),
        workers=_integer(m, "workers", d.workers, 1, 1000),
        commanders_file=_path(m, "commanders_file", d.commanders_file, base)
        or d.commanders_file,
        credentials_file=_path(m, "credentials_file", d.credentials_file, base)
        or d.credentials_file,
        lockout_cooldown_minutes=_number(
            m, "lockout_cooldown_minutes", d.lockout_cooldown_minutes, 0, True
        ),
        start_jitter_seconds=_number(
            m, "start_jitter_seconds", d.start_jitter_seconds, 0, False
        ),
        password_warning_days=_integer(
            m, "password_warning_days", d.password_warning_days, 0, None
        ),
        max_response_bytes=_integer(
            m, "max_response_bytes", d.max_response_bytes, 1024, None
        ),
    )
    m.finish()
    return settings


def _mqtt(m: _Map | None, base: Path, environ: Mapping[str, str]) -> MqttSettings:
    d = MqttSettings()
    if m is None:
        return replace(d, password=environ.get(MQTT_PASSWORD_ENV) or None)
    ca_file = _existing(m, "ca_file", base)
    cert_file = _existing(m, "cert_file", base)
    key_file = _existing(m, "key_file", base)
    if (cert_file is None) != (key_file is None):
        m.error("cert_file", "set cert_file and key_file together, or neither")
    if cert_file is not None and ca_file is None:
        m.error("cert_file", "a client certificate needs ca_file (TLS is on with it)")
    settings = MqttSettings(
        host=_text(m, "host", d.host) or d.host,
        port=_integer(m, "port", 8883 if ca_file else d.port, 1, 65535),
        protocol=_protocol(m),
        username=_text(m, "username", None),
        password=_mqtt_password(m, base, environ),
        ca_file=ca_file,
        cert_file=cert_file,
        key_file=key_file,
        keepalive=_integer(m, "keepalive", d.keepalive, 5, 3600),
        client_id=_text(m, "client_id", None),
    )
    m.finish()
    return settings


def _protocol(m: _Map) -> str:
    value = m.raw("protocol")
    if value is None:
        return MqttSettings().protocol
    if not isinstance(value, bool):
        found = _MQTT_PROTOCOLS.get(str(value).strip().lower())
        if found:
            return found
    m.error("protocol", f"expected 5 or 3.1.1, got {value!r}")
    return MqttSettings().protocol


def _mqtt_password(m: _Map, base: Path, environ: Mapping[str, str]) -> str | None:
    """Return the password from the file, the password file or the environment."""
    if m.has("password") and m.has("password_file"):
        m.error("password", "set password or password_file, not both")
    password = _secret(m, "password")
    path = _existing(m, "password_file", base)
    if password is None and path is not None and path.is_file():
        password = _read_secret_file(m, path)
    if password is None and not m.has("password") and not m.has("password_file"):
        password = environ.get(MQTT_PASSWORD_ENV) or None
    return password


def _read_secret_file(m: _Map, path: Path) -> str | None:
    try:
        password = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        m.error("password_file", f"cannot read {str(path)!r}: {type(exc).__name__}")
        return None
    if not password:
        m.error("password_file", f"file {str(path)!r} is empty")
        return None
    return password


def _aggregator(m: _Map | None) -> AggregatorSettings:
    d = AggregatorSettings()
    if m is None:
        return d
    host, port = _listen(m, d)
    settings = AggregatorSettings(
        id=_slug(m, "id", d.id),
        listen_host=host,
        listen_port=port,
        stale_after_intervals=_number(
            m, "stale_after_intervals", d.stale_after_intervals, 1, False
        ),
        agents=_agent_list(m),
        max_stores=_integer(m, "max_stores", d.max_stores, 1, None),
    )
    m.finish()
    return settings


def _listen(m: _Map, d: AggregatorSettings) -> tuple[str, int]:
    """Read ``listen: host:port`` or ``listen_host`` / ``listen_port``."""
    host = _text(m, "listen_host", d.listen_host) or d.listen_host
    port = _integer(m, "listen_port", d.listen_port, 0, 65535)
    value = m.raw("listen")
    if value is None:
        return host, port
    if m.has("listen_host") or m.has("listen_port"):
        m.error("listen", "set listen or listen_host/listen_port, not both")
    text = value if isinstance(value, str) else ""
    host, _, port_text = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]") or d.listen_host
    if not port_text.isdigit() or int(port_text) > 65535:
        m.error("listen", f"expected HOST:PORT such as 0.0.0.0:8000, got {value!r}")
        return d.listen_host, d.listen_port
    return host, int(port_text)


def _agent_list(m: _Map) -> tuple[str, ...]:
    value = m.raw("agents")
    if value is None:
        return ()
    if isinstance(value, list) and all(
        isinstance(v, str) and _is_slug(v) for v in value
    ):
        return tuple(value)
    m.error("agents", f"expected a list of agent ids, got {value!r}")
    return ()


# --------------------------------------------------------------------------
# Everything at once


def load_all(config_path: Path, env: Mapping[str, str] | None = None) -> Loaded:
    """Load config.yaml and the commanders and credentials files it names."""
    config = load_config(config_path, env)
    errors: list[str] = []
    inventory = _collect(load_commanders, config.agent.commanders_file, errors)
    credentials = _collect(load_credentials, config.agent.credentials_file, errors)
    if errors:
        raise ConfigError("\n".join(errors))
    assert inventory is not None
    assert credentials is not None
    unused = _unused_overrides(config, inventory, credentials)
    for warning in unused:
        log.warning("%s", warning)
    warnings = config.warnings + inventory.warnings + credentials.warnings + unused
    return Loaded(config, inventory, credentials, warnings)


def _collect(loader: Callable[[Path], _T], path: Path, errors: list[str]) -> _T | None:
    """Call ``loader(path)``; on a ConfigError keep its message and return None."""
    try:
        return loader(path)
    except ConfigError as exc:
        errors.append(str(exc))
        return None


def _unused_overrides(
    config: Config, inventory: Inventory, credentials: CredentialSet
) -> tuple[str, ...]:
    """Warn about group or store overrides that name nothing in the inventory."""
    stores = {c.store for c in inventory.commanders}
    groups = {c.group for c in inventory.commanders}
    where = str(inventory.path)
    found: list[str] = []
    for label, kind, names, known in (
        (str(credentials.path), "groups", credentials.groups, groups),
        (str(credentials.path), "stores", credentials.stores, stores),
        (str(config.path), "tls.groups", config.tls.groups, groups),
        (str(config.path), "tls.stores", config.tls.stores, stores),
    ):
        found += [
            f"{label}: {kind}.{name}: matches no {kind.split('.')[-1][:-1]}"
            f" in {where}; this override is unused"
            for name in names
            if name not in known
        ]
    return tuple(found)
