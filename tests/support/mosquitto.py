"""A real Mosquitto broker per test, on free loopback ports.

Each broker gets a generated password file, the ACL shipped in
``deploy/central/mosquitto/acl`` (agent X writes only under
``posproctor/v1/agents/X/``, the aggregator reads everything),
a plain listener and a TLS listener with certificates from ``trustme``.
Persistence is on, in the broker's own folder, so a restart keeps retained
messages and persistent sessions as a production broker would.
"""

from __future__ import annotations

import getpass
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import trustme

from tests.support.ports import free_port, wait_listening

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"

# The ACL we ship is the one under test.
ACL_FILE = Path(__file__).resolve().parents[2] / "deploy/central/mosquitto/acl"


@dataclass
class Broker:
    """One running (or stopped) Mosquitto with its users and certificates."""

    root: Path
    users: dict[str, str]
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = self.root / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        self.cert_file = self.root / "server.pem"
        self.key_file = self.root / "server.key"
        leaf.cert_chain_pems[0].write_to_path(str(self.cert_file))
        leaf.private_key_pem.write_to_path(str(self.key_file))
        self._write_passwords()
        (self.root / "acl").write_text(ACL_FILE.read_text())
        (self.root / "mosquitto.conf").write_text(self._config())

    def _write_passwords(self) -> None:
        path = self.root / "passwd"
        path.write_text("")
        for user, password in self.users.items():
            subprocess.run(
                [MOSQUITTO_PASSWD, "-b", str(path), user, password],
                check=True,
                capture_output=True,
            )

    def _config(self) -> str:
        # Run as whoever runs the tests: as root, Mosquitto would otherwise
        # switch to the "mosquitto" user, who cannot read this folder.
        user = getpass.getuser()
        return f"""\
user {user}
per_listener_settings false
allow_anonymous false
password_file {self.root / "passwd"}
acl_file {self.root / "acl"}
persistence true
persistence_location {self.root}/
max_queued_messages 200000
max_inflight_messages 100
log_dest file {self.root / "mosquitto.log"}
log_type error
log_type warning
log_type notice
log_type information

listener {self.port} 127.0.0.1

listener {self.tls_port} 127.0.0.1
cafile {self.ca_file}
certfile {self.cert_file}
keyfile {self.key_file}
"""

    def start(self) -> None:
        """Start the broker and wait until both listeners accept."""
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.root / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_listening(self.port)
        wait_listening(self.tls_port)

    def stop(self) -> None:
        """Stop the broker gracefully, so it saves its persistence file."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def log(self) -> str:
        path = self.root / "mosquitto.log"
        return path.read_text() if path.exists() else ""
