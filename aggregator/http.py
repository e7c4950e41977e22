"""The aggregator's HTTP endpoint: ``/metrics`` and ``/healthz``, stdlib only.

``/metrics`` is the fleet collector's own text followed by a private
registry holding the process, platform and GC collectors; nothing here
touches prometheus_client's global registry.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.registry import CollectorRegistry

from shared.errors import ConfigError

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Health = Callable[[], tuple[bool, Mapping[str, Any]]]


def runtime_registry() -> CollectorRegistry:
    """Return a private registry with the process, platform and GC collectors."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def metrics_renderer(
    fleet: Callable[[], bytes], registry: CollectorRegistry
) -> Callable[[], bytes]:
    """Return a function rendering the fleet's text, then the registry's."""

    def render() -> bytes:
        return fleet() + generate_latest(registry)

    return render


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._metrics()
        elif path == "/healthz":
            self._health()
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def _metrics(self) -> None:
        try:
            body = self.server.render()
        except Exception:
            log.exception("rendering /metrics failed")
            self._send(500, "text/plain; charset=utf-8", b"metrics unavailable\n")
            return
        self._send(200, CONTENT_TYPE, body)

    def _health(self) -> None:
        ok, detail = self.server.health()
        body = ("ok\n" if ok else "unavailable\n") + json.dumps(detail) + "\n"
        self._send(200 if ok else 503, "text/plain; charset=utf-8", body.encode())

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s", format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], render: Callable[[], bytes], health: Health
    ) -> None:
        self.render = render
        self.health = health
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("http request failed client=%s", client_address[0])


class MetricsServer:
    """Serve ``/metrics`` and ``/healthz`` from a thread until ``stop()``."""

    def __init__(
        self,
        render: Callable[[], bytes],
        health: Health,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        try:
            self._server = _Server((host, port), render, health)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve /metrics on {host}:{port}: {exc.strerror}"
            ) from exc
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """Return the bound port (the real one when asked for port 0)."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Start serving in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="aggregator-http",
            daemon=True,
        )
        self._thread.start()
        log.info("metrics server listening host=%s port=%d", self.host, self.port)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
