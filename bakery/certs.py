"""The cluster's certificates, made once and persisted.

Two CAs keep the powers apart (Magnum gave every node one certificate that
could do everything; we do not):

- the cluster CA signs node *server* certificates (dockerd on 2376 and the
  join service on 2378 present them) and the operator's *client* certificate.
  dockerd trusts only this CA for clients, and nodes hold no client
  certificate of it, so no node can drive another node's Docker API.
- the join CA signs each node's join-service client certificate, whose OU is
  the node's join class (manager or worker). The join service trusts only the
  join CA and hands out the token of the class in the certificate: a worker
  cannot obtain the manager token, and its certificate opens no Docker API.

The CA keys never leave the state directory. cryptography is imported only
when something has to be created; rendering with existing material only
reads PEM files.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .state import private_dir, write_private, write_public

CA_DAYS = 3650
LEAF_DAYS = 825


@dataclass(frozen=True)
class NodeMaterial:
    """What one node's user-data carries. Keys are secrets: never log them."""

    ca_pem: str  # cluster CA certificate (public)
    server_cert: str
    server_key: str
    join_cert: str | None  # None for nodes that never join (consul)
    join_key: str | None
    join_ca_pem: str | None  # only managers serve the join service

    def __repr__(self) -> str:  # keys must never reach a log or traceback
        return "NodeMaterial(<redacted>)"


def _crypto() -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    return x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID


def _key_pem(key: Any) -> bytes:
    _, _, serialization, _, _, _ = _crypto()
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem


def _new_key() -> Any:
    _, _, _, ec, _, _ = _crypto()
    # P-256 keeps certificates small: user-data has a 49 KB budget.
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str, ou: str | None = None) -> Any:
    x509, _, _, _, _, NameOID = _crypto()
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bakery")]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def ensure_ca(directory: Path, common_name: str) -> None:
    if (directory / "ca.pem").exists() and (directory / "ca-key.pem").exists():
        return
    x509, hashes, serialization, _, _, _ = _crypto()
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    private_dir(directory)
    write_private(directory / "ca-key.pem", _key_pem(key))
    write_public(directory / "ca.pem", cert.public_bytes(serialization.Encoding.PEM))


def _issue(
    ca_dir: Path,
    cn: str,
    *,
    ou: str | None,
    server: bool,
    sans: list[str],
) -> tuple[bytes, bytes]:
    key_path = ca_dir / "ca-key.pem"
    if not key_path.exists():
        from .errors import EnvironmentMissing

        raise EnvironmentMissing(
            f"issuing {cn}'s certificate needs the CA key {key_path}, which is not there (kept offline?); put it "
            "back for this render and remove it again after (nodes whose certificates exist render without it)")
    x509, hashes, serialization, _, EKU, _ = _crypto()
    ca_key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, ou))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True
        )
        .add_extension(
            x509.ExtendedKeyUsage([EKU.SERVER_AUTH if server else EKU.CLIENT_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False
        )
    )
    if sans:
        names: list[Any] = []
        for san in sans:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(san)))
            except ValueError:
                names.append(x509.DNSName(san))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _read(path: Path) -> str:
    return path.read_text(encoding="ascii")


def ensure_cluster(cluster_dir: Path, cluster: str) -> bool:
    """Create the two CAs and the operator's client certificate if missing.

    Returns True when anything was created (the CLI says so on stderr).
    """
    created = False
    private_dir(cluster_dir)
    ca, join_ca, client = cluster_dir / "ca", cluster_dir / "join-ca", cluster_dir / "client"
    for directory, cn in ((ca, f"bakery {cluster} cluster CA"), (join_ca, f"bakery {cluster} join CA")):
        if not (directory / "ca.pem").exists():
            ensure_ca(directory, cn)
            created = True
    if not (client / "cert.pem").exists():
        cert, key = _issue(ca, "bakery-operator", ou="operator", server=False, sans=[])
        write_private(client / "key.pem", key)
        write_public(client / "cert.pem", cert)
        write_public(client / "ca.pem", (ca / "ca.pem").read_bytes())
        created = True
    return created


def ensure_node(
    cluster_dir: Path, name: str, join_class: str | None, sans: list[str]
) -> NodeMaterial:
    """The node's material, issued once; reissued only when its SANs or class change."""
    node_dir = cluster_dir / "nodes" / name
    meta_path = node_dir / "meta.json"
    want_sans = sorted(set(sans))
    want: dict[str, Any] = {"join_class": join_class, "sans": want_sans}
    have: dict[str, Any] | None = None
    if meta_path.exists():
        have = json.loads(meta_path.read_text())
    ca, join_ca = cluster_dir / "ca", cluster_dir / "join-ca"
    if have != want:
        cert, key = _issue(ca, name, ou=None, server=True, sans=want_sans)
        write_private(node_dir / "server-key.pem", key)
        write_public(node_dir / "server-cert.pem", cert)
        if join_class:
            cert, key = _issue(join_ca, name, ou=join_class, server=False, sans=[])
            write_private(node_dir / "join-key.pem", key)
            write_public(node_dir / "join-cert.pem", cert)
        write_public(meta_path, (json.dumps(want, sort_keys=True) + "\n").encode())
    return NodeMaterial(
        ca_pem=_read(ca / "ca.pem"),
        server_cert=_read(node_dir / "server-cert.pem"),
        server_key=_read(node_dir / "server-key.pem"),
        join_cert=_read(node_dir / "join-cert.pem") if join_class else None,
        join_key=_read(node_dir / "join-key.pem") if join_class else None,
        join_ca_pem=_read(join_ca / "ca.pem") if join_class == "manager" else None,
    )


def ensure_gossip_key(cluster_dir: Path) -> str:
    path = cluster_dir / "consul" / "gossip.key"
    if not path.exists():
        import base64
        import secrets

        write_private(path, base64.b64encode(secrets.token_bytes(32)) + b"\n")
    return path.read_text().strip()
