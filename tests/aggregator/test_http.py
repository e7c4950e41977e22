"""The HTTP endpoint on its own: routes, health and the runtime collectors."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from aggregator.http import MetricsServer
from aggregator.service import EmbeddedFeed, build_embedded
from shared.config import AggregatorSettings, Config
from tests.aggregator.helpers import status


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


@pytest.fixture
def embedded():
    config = Config(
        path=None, aggregator=AggregatorSettings(listen_host="127.0.0.1", listen_port=0)
    )
    state, server = build_embedded(config)
    server.start()
    try:
        yield state, server
    finally:
        server.stop()


def test_metrics_serves_fleet_and_process_metrics(embedded):
    state, server = embedded
    feed = EmbeddedFeed(state, "local")
    assert feed.publish(status("Main St")) == "applied"
    code, content_type, body = _get(server.url + "/metrics")
    assert code == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    assert 'posproctor_controller_status{store="Main St"' in body
    assert 'agent="local"' in body
    assert "process_cpu_seconds_total" in body
    assert "python_gc_objects_collected_total" in body
    assert "python_info" in body


def test_embedded_health_is_ok(embedded):
    _, server = embedded
    code, _, body = _get(server.url + "/healthz")
    assert code == 200
    assert body.startswith("ok")
    assert '"embedded"' in body


def test_unknown_path_is_404(embedded):
    _, server = embedded
    assert _get(server.url + "/nope")[0] == 404


def test_unhealthy_link_is_503():
    server = MetricsServer(lambda: b"", lambda: (False, {"mqtt": "disconnected"}))
    server.start()
    try:
        code, _, body = _get(server.url + "/healthz")
    finally:
        server.stop()
    assert code == 503
    assert "disconnected" in body


def test_embedded_feed_removes_stores(embedded):
    state, _ = embedded
    feed = EmbeddedFeed(state, "local")
    feed.publish(status("Main St"))
    assert feed.remove("Main St")
    assert state.snapshot().stores == ()


def test_failing_render_is_500_and_server_keeps_serving():
    def broken() -> bytes:
        raise RuntimeError("boom")

    server = MetricsServer(broken, lambda: (True, {}))
    server.start()
    try:
        assert _get(server.url + "/metrics")[0] == 500
        assert _get(server.url + "/healthz")[0] == 200
    finally:
        server.stop()
