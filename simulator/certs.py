"""Certificates for the simulated Commanders, made fresh at every start.

One private CA (ECDSA P-256: quick to make and to handshake with) signs one
leaf per served address, with that address as an IP SAN. All leaves share
one key; real Commanders each have their own self-signed certificate, but
clients only pin the certificate, so one key is enough here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALID_DAYS = 365
_UNSPECIFIED = {"0.0.0.0", "::"}  # noqa: S104 - names "any address", binds nothing


@dataclass(frozen=True, slots=True)
class Leaf:
    """One server certificate: its files and its SHA-256 fingerprint."""

    cert_file: Path
    key_file: Path
    fingerprint: str  # sha256 of the DER, lowercase hex, no colons


@dataclass(frozen=True, slots=True)
class CertBundle:
    """The CA file and one leaf per served address."""

    ca_file: Path
    leaves: dict[str, Leaf]


def make_certs(directory: Path, addresses: Sequence[str]) -> CertBundle:
    """Write a CA and one leaf per address into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _ca_certificate(ca_key, now)
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    key_file = directory / "leaf.key"
    _write_private(key_file, leaf_key)
    leaves = {}
    for index, address in enumerate(dict.fromkeys(addresses)):
        cert = _leaf_certificate(ca_key, ca_cert, leaf_key, address, now)
        cert_file = directory / f"leaf-{index}.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        der = cert.public_bytes(serialization.Encoding.DER)
        leaves[address] = Leaf(cert_file, key_file, hashlib.sha256(der).hexdigest())
    return CertBundle(ca_file, leaves)


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)


def _ca_certificate(
    key: ec.EllipticCurvePrivateKey, now: dt.datetime
) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "POSProctor simulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, "POSProctor simulator CA"),
        ]
    )
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _leaf_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    address: str,
    now: dt.datetime,
) -> x509.Certificate:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "POSProctor simulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Commander {address}"),
        ]
    )
    ca_public = ca_key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(x509.SubjectAlternativeName(_san(address)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _san(address: str) -> list[x509.GeneralName]:
    """Name the address; an any-address bind gets loopback and localhost."""
    if address in _UNSPECIFIED:
        address = "127.0.0.1"
    return [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(address))]


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
