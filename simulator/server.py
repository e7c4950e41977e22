"""Serve a fleet of simulated Commanders over HTTPS from one event loop.

One asyncio loop in one background thread serves every store: a thread per
store would not scale to a thousand stores on two cores. Each store gets
its own listener, either a port on one address or its own loopback address
(Linux routes all of 127.0.0.0/8 to ``lo``). Public methods may be called
from any other thread; they hop onto the loop and wait for the result.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from shared.config import CredentialSet
from shared.errors import ConfigError
from shared.runtime import raise_fd_limit
from simulator.certs import CertBundle, make_certs
from simulator.commander import Account, Reply, SimCommander, StoreCounters
from simulator.faults import FAULTS, check_params, resolve
from simulator.fleet import CsvRow, SimStore, write_commanders_csv
from simulator.httpio import (
    HTML_TYPE,
    BadRequest,
    parse_head,
    reason,
    request_params,
    response_head,
)
from simulator.scenario import Scenario, ScenarioRunner, Step
from simulator.sessions import SessionPolicy, SessionRules
from simulator.xmlgen import html_error

logger = logging.getLogger(__name__)

T = TypeVar("T")
_LOOPBACK_PER_OCTET = 250
_IDLE_SECONDS = 30.0  # drop a keep-alive connection idle this long
_TICK_SECONDS = 0.2  # how often the scenario looks at the clock
_ANY = {"0.0.0.0", "::"}  # noqa: S104 - names "any address", binds nothing


def loopback_address(index: int) -> str:
    """Return store ``index``'s own address: 127.10.0.1, 127.10.0.2, ..."""
    high, low = divmod(index, _LOOPBACK_PER_OCTET)
    if high > 255:
        raise ValueError(f"loopback mode serves at most {256 * _LOOPBACK_PER_OCTET}")
    return f"127.10.{high}.{low + 1}"


@dataclass(slots=True)
class _Slot:
    """One store's listener and connections."""

    commander: SimCommander
    host: str
    port: int
    server: asyncio.Server | None = None
    writers: set[asyncio.StreamWriter] = field(default_factory=set)


class Simulator:
    """Serve simulated Verifone Commanders over HTTPS; a context manager."""

    def __init__(
        self,
        stores: Sequence[SimStore],
        *,
        username: str = "monitor",
        password: str = "monitor-pass",  # noqa: S107 - the simulator's demo login
        host: str = "127.0.0.1",
        base_port: int = 0,
        loopback_per_store: bool = False,
        loopback_port: int = 443,
        latency: float = 0.0,
        jitter: float = 0.0,
        cookie_ttl: float = 900.0,
        session_limit: int = 5,
        session_policy: str = "refuse",
        lockout_threshold: int = 6,
        lockout_seconds: float = 1800.0,
        password_days: int = 60,
        clock: Callable[[], float] = time.monotonic,
        cert_dir: Path | None = None,
        scenario: Scenario | None = None,
        seed: int = 1,
        credentials: CredentialSet | None = None,
    ) -> None:
        _check_numbers(latency, jitter, cookie_ttl, session_limit, lockout_threshold)
        self.stores = list(stores)
        self._latency, self._jitter = latency, jitter
        self._clock = clock
        self._cert_dir = cert_dir
        self._scenario = scenario
        self._rng = random.Random(seed)  # noqa: S311 - jitter and fault picks
        self._loopback = loopback_per_store
        rules = SessionRules(
            cookie_ttl,
            session_limit,
            _policy(session_policy),
            lockout_threshold,
            lockout_seconds,
        )
        self._slots = self._make_slots(
            rules=rules,
            password_days=password_days,
            host=host,
            base_port=base_port,
            loopback_port=loopback_port,
            credentials=credentials,
            account=Account(username, password),
        )
        if scenario is not None:
            scenario.check(self.stores)
        self._certs: CertBundle | None = None
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._temp_dir: Path | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: ScenarioRunner | None = None
        self._tick: asyncio.Task[None] | None = None
        self._step_lock: asyncio.Lock | None = None

    def _make_slots(
        self,
        *,
        rules: SessionRules,
        password_days: int,
        host: str,
        base_port: int,
        loopback_port: int,
        credentials: CredentialSet | None,
        account: Account,
    ) -> dict[str, _Slot]:
        if not self.stores:
            raise ValueError("the simulator needs at least one store")
        if not 0 <= base_port <= 65535 - len(self.stores) + 1:
            raise ValueError(f"base port {base_port} leaves no room for the fleet")
        slots: dict[str, _Slot] = {}
        for index, store in enumerate(self.stores):
            if store.name in slots:
                raise ValueError(f"two stores are named {store.name!r}")
            commander = SimCommander(
                store,
                _account(credentials, store, account),
                rules,
                self._clock,
                password_days,
            )
            if self._loopback:
                slots[store.name] = _Slot(
                    commander, loopback_address(index), loopback_port
                )
            else:
                port = base_port + index if base_port else 0
                slots[store.name] = _Slot(commander, host, port)
        return slots

    # -- life cycle -----------------------------------------------------

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Make certificates, open every listener and start the scenario."""
        if self._loop is not None:
            raise RuntimeError("the simulator is already running")
        raise_fd_limit(len(self._slots) + 512)
        self._certs = self._make_certs()
        contexts = {a: _server_context(leaf) for a, leaf in self._certs.leaves.items()}
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name="simulator-loop", daemon=True
        )
        self._thread.start()
        try:
            self._run(self._open_all(contexts))
        except BaseException:
            self.stop()
            raise
        logger.debug(
            "simulator started stores=%d first=%s last=%s ca=%s",
            len(self._slots),
            self.base_url(self.stores[0].name),
            self.base_url(self.stores[-1].name),
            self._certs.ca_file,
        )

    def _make_certs(self) -> CertBundle:
        directory = self._cert_dir
        if directory is None:
            self._temp_dir = Path(tempfile.mkdtemp(prefix="posproctor-sim-"))
            directory = self._temp_dir
        return make_certs(directory, [slot.host for slot in self._slots.values()])

    def stop(self) -> None:
        """Close every listener and connection and end the loop thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(30)
            except Exception:
                logger.exception("simulator shutdown failed")
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = None
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None
        logger.debug("simulator stopped stores=%d", len(self._slots))

    async def _open_all(self, contexts: Mapping[str, ssl.SSLContext]) -> None:
        self._contexts = dict(contexts)
        self._step_lock = asyncio.Lock()
        for slot in self._slots.values():
            await self._listen(slot)  # even a refused store needs its port
            if "connection_refused" in slot.commander.faults:
                await self._close(slot)
        if self._scenario is not None:
            self._runner = ScenarioRunner(self._scenario, self._clock())
            self._tick = asyncio.get_running_loop().create_task(self._scenario_loop())

    async def _shutdown(self) -> None:
        if self._tick is not None:
            self._tick.cancel()
        for slot in self._slots.values():
            await self._close(slot)
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _listen(self, slot: _Slot) -> None:
        if slot.server is not None:
            return
        try:
            slot.server = await asyncio.start_server(
                partial(self._serve, slot),
                slot.host,
                slot.port,
                ssl=self._contexts[slot.host],
                backlog=256,
                reuse_address=True,
            )
        except OSError as exc:
            where = f"{slot.host}:{slot.port}"
            raise ConfigError(f"cannot listen on {where}: {exc.strerror}") from exc
        slot.port = slot.server.sockets[0].getsockname()[1]

    async def _close(self, slot: _Slot) -> None:
        server, slot.server = slot.server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        for writer in list(slot.writers):
            writer.transport.abort()
        slot.writers.clear()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop (or on a private one before start)."""
        loop = self._loop
        if loop is None:
            return asyncio.run(coro)
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("call the simulator from another thread than its loop")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    # -- addresses and certificates --------------------------------------

    def _slot(self, store: str) -> _Slot:
        try:
            return self._slots[store]
        except KeyError:
            raise ValueError(f"unknown store {store!r}") from None

    def address(self, store: str) -> tuple[str, int]:
        """Return the (address, port) clients connect to for ``store``."""
        slot = self._slot(store)
        return ("127.0.0.1" if slot.host in _ANY else slot.host), slot.port

    def base_url(self, store: str) -> str:
        """Return ``https://address[:port]`` for ``store``."""
        host, port = self.address(store)
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
        return f"https://{host}" if port == 443 else f"https://{host}:{port}"

    @property
    def ca_file(self) -> Path:
        """Return the PEM file of the CA that signed every store's certificate."""
        if self._certs is None:
            raise RuntimeError("certificates are made at start()")
        return self._certs.ca_file

    def fingerprint(self, store: str) -> str:
        """Return the SHA-256 of ``store``'s certificate (hex, no colons)."""
        if self._certs is None:
            raise RuntimeError("certificates are made at start()")
        return self._certs.leaves[self._slot(store).host].fingerprint

    def write_csv(self, path: Path, agent: str | None = None) -> None:
        """Write a ``commanders.csv`` listing every store at its address."""
        rows = []
        for store in self.stores:
            host, port = self.address(store.name)
            if port == 0:
                raise RuntimeError("ports are chosen at start(); start first")
            rows.append(
                CsvRow(
                    host,
                    store.name,
                    store.group,
                    store.brand,
                    store.enabled,
                    None if port == 443 else port,
                )
            )
        write_commanders_csv(Path(path), rows, agent)

    # -- faults, truth and counters --------------------------------------

    def set_fault(
        self, fault: str, stores: Sequence[str] | None = None, **params: Any
    ) -> None:
        """Turn ``fault`` on for ``stores`` (every store when None)."""
        clean = check_params(fault, params)
        names = self._names(stores)
        self._run(self._apply(fault, names, clean, clear=False))
        logger.info("fault set fault=%s stores=%d", fault, len(names))

    def clear_fault(self, fault: str, stores: Sequence[str] | None = None) -> None:
        """Turn ``fault`` off for ``stores`` (every store when None)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r} (known: {', '.join(FAULTS)})")
        names = self._names(stores)
        self._run(self._apply(fault, names, {}, clear=True))
        logger.info("fault cleared fault=%s stores=%d", fault, len(names))

    def _names(self, stores: Sequence[str] | None) -> list[str]:
        if stores is None:
            return list(self._slots)
        if isinstance(stores, str):
            stores = [stores]
        for name in stores:
            self._slot(name)
        return list(stores)

    async def _apply(
        self, fault: str, names: Sequence[str], params: Mapping[str, Any], clear: bool
    ) -> None:
        running = self._loop is not None
        for name in names:
            slot = self._slots[name]
            if clear:
                slot.commander.clear_fault(fault)
            else:
                chosen = resolve(fault, params, slot.commander.store, self._rng)
                slot.commander.set_fault(fault, chosen)
            if fault == "connection_refused" and running:
                await (self._listen(slot) if clear else self._close(slot))

    def expected(self, store: str) -> dict[str, Any]:
        """Return the device states a correct poller must report for ``store``."""
        commander = self._slot(store).commander
        return self._run(_call(commander.expected))

    def counters(self, store: str) -> StoreCounters:
        """Return a snapshot of ``store``'s counters."""
        commander = self._slot(store).commander
        return self._run(_call(commander.counters))

    def faults(self, store: str) -> dict[str, dict[str, Any]]:
        """Return ``store``'s active faults with their resolved parameters."""
        commander = self._slot(store).commander
        return self._run(
            _call(lambda: {k: dict(v) for k, v in commander.faults.items()})
        )

    def stores_in_group(self, group: str) -> list[str]:
        """Return the names of the stores in ``group``."""
        return [store.name for store in self.stores if store.group == group]

    # -- scenario ----------------------------------------------------------

    def run_due_steps(self) -> int:
        """Apply the scenario steps due by the clock now; return how many."""
        return self._run(self._due_steps())

    async def _scenario_loop(self) -> None:
        while True:
            await asyncio.sleep(_TICK_SECONDS)
            try:
                await self._due_steps()
            except Exception:
                logger.exception("scenario step failed")

    async def _due_steps(self) -> int:
        runner, lock = self._runner, self._step_lock
        if runner is None or lock is None:
            return 0
        async with lock:
            steps = runner.due(self._clock())
            for step in steps:
                await self._apply_step(step)
        return len(steps)

    async def _apply_step(self, step: Step) -> None:
        names = step.targets(self.stores)
        await self._apply(step.fault, names, step.params, clear=step.clear)
        logger.info(
            "scenario step=%d at=%g %s fault=%s stores=%d",
            step.index,
            step.at,
            "clear" if step.clear else "set",
            step.fault,
            len(names),
        )

    # -- HTTP -----------------------------------------------------------

    async def _serve(
        self, slot: _Slot, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        slot.commander.count_connection()
        slot.writers.add(writer)
        try:
            while await self._one_request(slot, reader, writer):
                pass
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Stopping: end quietly. A cancelled handler task makes asyncio's
            # stream callback log a spurious error on Python 3.11.
            pass
        finally:
            slot.writers.discard(writer)
            writer.close()

    async def _one_request(
        self, slot: _Slot, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        try:
            async with asyncio.timeout(_IDLE_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            await _send_error(writer, 431)
            return False
        except (asyncio.IncompleteReadError, TimeoutError):
            return False
        try:
            request = parse_head(head)
        except BadRequest as exc:
            await _send_error(writer, exc.status)
            return False
        body = b""
        if request.content_length:
            body = await reader.readexactly(request.content_length)
        if request.method not in ("GET", "POST"):
            await _send_error(writer, 405)
            return False
        reply = await self._answer(
            slot, request.path, request_params(request.query, body)
        )
        await _send(writer, reply, request.keep_alive)
        return request.keep_alive and not reply.cut

    async def _answer(self, slot: _Slot, path: str, params: dict[str, str]) -> Reply:
        runner = self._runner
        if runner is not None and runner.pending(self._clock()):
            await self._due_steps()
        commander = slot.commander
        delay = commander.extra_delay(params.get("cmd", ""))
        if self._latency or self._jitter:
            delay += self._latency + self._rng.uniform(0.0, self._jitter)
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            return commander.handle(path, params)
        except Exception:
            logger.exception("request failed store=%s", commander.store.name)
            return Reply(
                500, html_error(500, reason(500), "simulator error"), HTML_TYPE
            )


async def _call(func: Callable[[], T]) -> T:
    return func()


async def _send(writer: asyncio.StreamWriter, reply: Reply, keep_alive: bool) -> None:
    body = reply.body
    if reply.cut:
        head = response_head(reply.status, reply.content_type, len(body), False)
        writer.write(head + body[: len(body) // 2])
        await writer.drain()
        writer.close()
        return
    head = response_head(reply.status, reply.content_type, len(body), keep_alive)
    writer.write(head + body)
    await writer.drain()


async def _send_error(writer: asyncio.StreamWriter, status: int) -> None:
    body = html_error(status, reason(status), "Your browser sent a request we refuse.")
    writer.write(response_head(status, HTML_TYPE, len(body), False) + body)
    await writer.drain()


def _server_context(leaf: Any) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(leaf.cert_file, leaf.key_file)
    return context


def _account(
    credentials: CredentialSet | None, store: SimStore, default: Account
) -> Account:
    if credentials is None:
        return default
    chosen = (
        credentials.stores.get(store.name)
        or credentials.groups.get(store.group)
        or credentials.default
    )
    return Account(chosen.username, chosen.password)


def _policy(value: str) -> SessionPolicy:
    try:
        return SessionPolicy(value)
    except ValueError:
        raise ValueError(
            f"session policy must be 'refuse' or 'evict', got {value!r}"
        ) from None


def _check_numbers(
    latency: float, jitter: float, ttl: float, limit: int, threshold: int
) -> None:
    if latency < 0 or jitter < 0:
        raise ValueError("latency and jitter must be >= 0")
    if ttl <= 0:
        raise ValueError(f"cookie TTL must be > 0 seconds, got {ttl}")
    if limit < 1 or threshold < 1:
        raise ValueError("session limit and lockout threshold must be >= 1")
