"""Configs we ship but cannot run here are checked against their documented form."""

from __future__ import annotations

import getpass
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import trustme
import yaml

from tests.support.mosquitto import MOSQUITTO, MOSQUITTO_PASSWD
from tests.support.ports import free_port, wait_listening

ROOT = Path(__file__).resolve().parents[2]


def test_grafana_datasources_have_fixed_uids_and_the_documented_keys():
    doc = yaml.safe_load(
        (ROOT / "grafana-provisioning/datasources/datasources.yaml").read_text()
    )
    assert doc["apiVersion"] == 1
    by_uid = {ds["uid"]: ds for ds in doc["datasources"]}
    assert set(by_uid) == {"posproctor-prometheus", "posproctor-loki"}
    assert by_uid["posproctor-prometheus"]["type"] == "prometheus"
    assert by_uid["posproctor-loki"]["type"] == "loki"
    for ds in doc["datasources"]:
        assert set(ds) <= {
            "name",
            "uid",
            "type",
            "access",
            "url",
            "isDefault",
            "jsonData",
        }
        assert ds["access"] == "proxy"
        assert ds["url"].startswith("http://")
    assert sum(bool(ds.get("isDefault")) for ds in doc["datasources"]) == 1


def _shipped_broker(root: Path) -> tuple[subprocess.Popen, int, int, Path]:
    """Start Mosquitto on the shipped config, with paths and ports moved here."""
    plain, tls = free_port(), free_port()
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    (root / "data").mkdir()
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    leaf.cert_chain_pems[0].write_to_path(str(root / "server.pem"))
    leaf.private_key_pem.write_to_path(str(root / "server.key"))
    subprocess.run(
        [MOSQUITTO_PASSWD, "-b", "-c", str(root / "passwd"), "edge-1", "pw-edge-1"],
        check=True,
        capture_output=True,
    )
    (root / "acl").write_text((ROOT / "deploy/central/mosquitto/acl").read_text())
    text = (ROOT / "deploy/central/mosquitto/mosquitto.conf").read_text()
    moved = {"config": root, "data": root / "data", "certs": root}
    for folder, here in moved.items():
        text = text.replace(f"/mosquitto/{folder}/", f"{here}/")
    text = text.replace("listener 1883 127.0.0.1", f"listener {plain} 127.0.0.1")
    text = text.replace("listener 8883", f"listener {tls} 127.0.0.1")
    conf = root / "mosquitto.conf"
    conf.write_text(f"user {getpass.getuser()}\n{text}")
    proc = subprocess.Popen(
        [MOSQUITTO, "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_listening(plain)
    wait_listening(tls)
    return proc, plain, tls, root / "ca.pem"


def _connect(port: int, user: str | None, password: str | None, ca: Path | None) -> str:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    result: list[str] = []
    done = threading.Event()

    def on_connect(_c, _u, _f, reason, _p) -> None:
        result.append(str(reason))
        done.set()

    client.on_connect = on_connect
    if user:
        client.username_pw_set(user, password)
    if ca:
        client.tls_set(ca_certs=str(ca))
    client.connect("127.0.0.1", port)
    client.loop_start()
    done.wait(10)
    client.loop_stop()
    client.disconnect()
    return result[0] if result else "no answer"


def test_shipped_broker_config_runs_and_refuses_anonymous_clients(tmp_path):
    proc, plain, tls, ca = _shipped_broker(tmp_path)
    try:
        assert _connect(plain, None, None, None) != "Success"
        assert _connect(tls, "edge-1", "wrong", ca) != "Success"
        assert _connect(tls, "edge-1", "pw-edge-1", ca) == "Success"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
