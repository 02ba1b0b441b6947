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
when something has to be created or a certificate is read for its dates
(`inventory`); rendering with existing material only reads PEM files.

Everything that creates or issues holds the cluster's lock (state.locked), so
parallel renders on a fresh state dir make one pair of CAs and sign with it. A
CA appears whole (built in a temporary directory and renamed into place) and is
never replaced; key files found with a looser mode than 0600 are refused.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import check_node_name, is_host
from .errors import EnvironmentMissing, UserError
from .state import check_private, locked, private_dir, read_private, write_private, write_public

CA_DAYS = 3650
LEAF_DAYS = 825  # never past the CA's own end: a leaf is capped at its CA's not_after
EXPIRY_WARN_DAYS = 30
CA_DIRS = {"ca": "cluster CA", "join-ca": "join CA"}


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


def _create_ca(directory: Path, common_name: str) -> bool:
    """Create the CA in `directory` unless its ca.pem exists (its key may be kept offline). Under the lock.

    The pair is built in a temporary directory and renamed into place, so a CA is never seen half
    made and an existing one (or a stray key without its certificate) is never replaced.
    """
    if (directory / "ca.pem").exists():
        return False
    if directory.exists() and any(directory.iterdir()):
        held = ", ".join(sorted(p.name for p in directory.iterdir()))
        raise UserError(f"{directory} holds {held} but no ca.pem; bakery never replaces a CA's files",
                        fix=f"restore {directory / 'ca.pem'}, or remove {directory} if no node was issued from it")
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
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}-"))  # 0700
    try:
        write_private(tmp / "ca-key.pem", _key_pem(key))
        write_public(tmp / "ca.pem", cert.public_bytes(serialization.Encoding.PEM))
        os.rename(tmp, directory)  # replaces at most an empty directory, atomically
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return True


def _damaged(path: Path, what: str) -> UserError:
    """A file of the state dir that does not parse: name it and the way back."""
    node_dir = path.parent
    if node_dir.parent.name == "nodes":
        fix = (f"bakery certs --renew --nodes {node_dir.name} (a new key pair and certificates for that node), "
               "then render it again")
    elif node_dir.name == "client":
        fix = "bakery certs --renew (the operator's client certificate is reissued)"
    else:
        fix = f"restore {path} from a backup: every certificate of the cluster hangs on it"
    return UserError(f"{path} is not a {what} (damaged or not bakery's)", fix=fix)


def _load_cert(path: Path) -> Any:
    x509 = _crypto()[0]
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError:
        raise _damaged(path, "PEM certificate") from None


def _load_key(path: Path) -> Any:
    serialization = _crypto()[2]
    try:
        return serialization.load_pem_private_key(read_private(path), None)
    except (ValueError, TypeError):
        raise _damaged(path, "PEM private key without a passphrase") from None


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
        raise EnvironmentMissing(
            f"issuing {cn}'s certificate needs the CA key {key_path}, which is not there (kept offline?); put it "
            "back for this render and remove it again after (nodes whose certificates exist render without it)")
    x509, hashes, serialization, _, EKU, _ = _crypto()
    ca_key = _load_key(key_path)
    ca_cert = _load_cert(ca_dir / "ca.pem")
    if ca_cert.public_key().public_numbers() != ca_key.public_key().public_numbers():
        raise UserError(f"{ca_dir / 'ca.pem'} is not the certificate of {key_path}: what it signs would not verify "
                        "against the CA the nodes trust", fix=f"restore the matching pair in {ca_dir} from a backup")
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    ca_end = ca_cert.not_valid_after_utc
    if ca_end <= now + dt.timedelta(days=1):
        raise UserError(f"the {CA_DIRS.get(ca_dir.name, 'CA')} in {ca_dir} expires {ca_end:%Y-%m-%d}: it cannot "
                        f"issue {cn}'s certificate", fix="rotate the CAs (see bakery certs --help)")
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, ou))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=LEAF_DAYS), ca_end))
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


def _pem(path: Path, what: str, read: Callable[[Path], bytes]) -> str:
    """A PEM file as text, its framing checked (cheap: render does not import cryptography for this)."""
    try:
        text = read(path).decode("ascii")
    except UnicodeDecodeError:
        text = ""
    except FileNotFoundError:
        raise _damaged(path, "file that is there (it is missing)") from None
    if "-----BEGIN " not in text or "-----END " not in text:
        raise _damaged(path, what)
    return text


def _read(path: Path) -> str:
    return _pem(path, "PEM file", Path.read_bytes)


def _read_key(path: Path) -> str:
    return _pem(path, "PEM private key", read_private)


def _issue_client(cluster_dir: Path) -> None:
    ca, client = cluster_dir / "ca", cluster_dir / "client"
    cert, key = _issue(ca, "bakery-operator", ou="operator", server=False, sans=[])
    write_private(client / "key.pem", key)
    write_public(client / "cert.pem", cert)
    write_public(client / "ca.pem", (ca / "ca.pem").read_bytes())


def _issue_node(cluster_dir: Path, name: str, join_class: str | None, sans: list[str]) -> None:
    """New key pairs and certificates for the node's server (and its join client, if it joins), and its
    meta.json, swapped in as one directory: a kill at any point leaves the old set or the new one, never
    a key beside another key's certificate (at worst no directory, and the next render issues afresh)."""
    nodes = cluster_dir / "nodes"
    node_dir = nodes / name
    server_cert, server_key = _issue(cluster_dir / "ca", name, ou=None, server=True, sans=sans)
    join = _issue(cluster_dir / "join-ca", name, ou=join_class, server=False, sans=[]) if join_class else None
    private_dir(nodes)
    for stale in nodes.glob(f".{name}-*"):  # left by a run killed mid-swap
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=nodes, prefix=f".{name}-new-"))
    try:
        write_private(tmp / "server-key.pem", server_key)
        write_public(tmp / "server-cert.pem", server_cert)
        if join:
            write_private(tmp / "join-key.pem", join[1])
            write_public(tmp / "join-cert.pem", join[0])
        meta = {"join_class": join_class, "sans": sorted(set(sans))}
        write_public(tmp / "meta.json", (json.dumps(meta, sort_keys=True) + "\n").encode())
        old = None
        if node_dir.exists():
            old = Path(tempfile.mkdtemp(dir=nodes, prefix=f".{name}-old-"))
            os.rename(node_dir, old / "x")
        os.rename(tmp, node_dir)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def ensure_cluster(cluster_dir: Path, cluster: str) -> list[str]:
    """Create the two CAs and the operator's client certificate if missing.

    Returns what was created ("cluster CA", "join CA", "client certificate"; the CLI says so on stderr).
    """
    created: list[str] = []
    with locked(cluster_dir):
        for sub in (*CA_DIRS, "client"):
            check_private(cluster_dir / sub / ("key.pem" if sub == "client" else "ca-key.pem"))
        for sub, what in CA_DIRS.items():
            missing = not (cluster_dir / sub / "ca.pem").exists()
            issued = (node_names(cluster_dir) + (["client"] if (cluster_dir / "client" / "cert.pem").exists() else [])
                      if missing else [])  # listed only when a CA is missing: not on every render
            if issued:
                raise UserError(
                    f"the {what} ({cluster_dir / sub / 'ca.pem'}) is missing, but certificates it signed remain "
                    f"({', '.join(issued[:5])}{', ...' if len(issued) > 5 else ''}): a new CA would not verify them",
                    fix=f"restore {cluster_dir / sub} from a backup, or remove {cluster_dir} to start the cluster "
                        "over (every node then needs new user-data)")
            if _create_ca(cluster_dir / sub, f"bakery {cluster} {what}"):
                created.append(what)
        if not (cluster_dir / "client" / "cert.pem").exists():
            _issue_client(cluster_dir)
            created.append("client certificate")
    return created


def _meta(node_dir: Path) -> dict[str, Any] | None:
    path = node_dir / "meta.json"
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        meta = None
    sans = meta.get("sans") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or meta.get("join_class") not in (None, "manager", "worker") \
            or not isinstance(sans, list) or not all(isinstance(x, str) and is_host(x) for x in sans):
        raise UserError(f"{path} is not bakery's record of node {node_dir.name} (damaged, or edited by hand)",
                        fix=f"remove {node_dir} and render {node_dir.name} again (it gets a new key pair)")
    return meta


def ensure_node(
    cluster_dir: Path, name: str, join_class: str | None, sans: list[str], *, reissue: bool = False
) -> NodeMaterial:
    """The node's material, issued once. A node that exists with another join class or other SANs is
    refused unless `reissue` (a new key pair): a render with forgotten flags, or another role's node
    given the same --name, would otherwise silently replace that node's identity."""
    check_node_name(name, "node name")  # a DNS label: never '..', never a path out of nodes/
    node_dir = cluster_dir / "nodes" / name
    want: dict[str, Any] = {"join_class": join_class, "sans": sorted(set(sans))}
    ca, join_ca = cluster_dir / "ca", cluster_dir / "join-ca"
    with locked(cluster_dir):
        had = _meta(node_dir)
        if had is not None and had != want and not reissue:
            raise _identity_changed(name, had, want)
        if had != want:
            _issue_node(cluster_dir, name, join_class, want["sans"])
        return NodeMaterial(
            ca_pem=_read(ca / "ca.pem"),
            server_cert=_read(node_dir / "server-cert.pem"),
            server_key=_read_key(node_dir / "server-key.pem"),
            join_cert=_read(node_dir / "join-cert.pem") if join_class else None,
            join_key=_read_key(node_dir / "join-key.pem") if join_class else None,
            join_ca_pem=_read(join_ca / "ca.pem") if join_class == "manager" else None,
        )


def issued_sans(cluster_dir: Path, name: str) -> list[str] | None:
    """The names and addresses node `name`'s certificate was issued for, None if it has none yet."""
    check_node_name(name, "node name")
    meta = _meta(cluster_dir / "nodes" / name)
    return None if meta is None else list(meta["sans"])


def _identity_changed(name: str, had: dict[str, Any], want: dict[str, Any]) -> UserError:
    kind = {None: "a node that never joins (consul)", "manager": "a manager", "worker": "a worker"}
    if had.get("join_class") != want["join_class"]:
        what = (f"node {name!r} exists as {kind.get(had.get('join_class'), 'another kind')}; this render would "
                f"make it {kind.get(want['join_class'], 'another kind')} (another node's --name?)")
    else:
        gone = sorted(set(had.get("sans", [])) - set(want["sans"]))
        new = sorted(set(want["sans"]) - set(had.get("sans", [])))
        what = (f"node {name!r} has certificates for {', '.join(had.get('sans', []))}; this render would "
                f"{'drop ' + ', '.join(gone) if gone else ''}{' and ' if gone and new else ''}"
                f"{'add ' + ', '.join(new) if new else ''}")
    return UserError(what, fix="render it with the flags it had (e.g. the same --role and --address), or pass "
                               "--reissue to give it new certificates and a new key pair")


def node_names(cluster_dir: Path) -> list[str]:
    """The nodes that have material in the state dir, sorted."""
    nodes = cluster_dir / "nodes"
    if not nodes.is_dir():
        return []
    return sorted(d.name for d in nodes.iterdir() if not d.name.startswith(".") and (d / "meta.json").is_file())


def forget(cluster_dir: Path, name: str) -> None:
    """Remove a deleted node's material (its keys lived only on it and here); a later node of the same
    name gets new ones."""
    import shutil

    check_node_name(name, "node name")
    with locked(cluster_dir):
        shutil.rmtree(cluster_dir / "nodes" / name, ignore_errors=True)


def renew(cluster_dir: Path, nodes: Sequence[str] | None = None) -> list[str]:
    """Re-issue from the existing CAs, keeping SANs and class: the named nodes, or every node and the client.

    New key pairs too. Returns what was renewed ("client", node names). The nodes still run the old
    certificates until they are re-rendered and rolled; bakery does not reach into running nodes.
    """
    for name in nodes or ():
        check_node_name(name, "--nodes")
    renewed = []
    with locked(cluster_dir):
        known = node_names(cluster_dir)
        missing = [n for n in nodes or () if n not in known]
        if missing:
            raise UserError(f"no node {', '.join(map(repr, missing))} in {cluster_dir / 'nodes'}",
                            fix=f"known nodes: {', '.join(known)}" if known else "render a node first")
        if nodes is None and (cluster_dir / "client" / "cert.pem").exists():
            _issue_client(cluster_dir)
            renewed.append("client")
        for name in known if nodes is None else sorted(set(nodes)):
            meta = _meta(cluster_dir / "nodes" / name) or {}
            _issue_node(cluster_dir, name, meta.get("join_class"), list(meta.get("sans", [])))
            renewed.append(name)
    return renewed


def ensure_gossip_key(cluster_dir: Path) -> str:
    path = cluster_dir / "consul" / "gossip.key"
    with locked(cluster_dir):
        if not path.exists():
            import base64
            import secrets

            write_private(path, base64.b64encode(secrets.token_bytes(32)) + b"\n")
        return read_private(path).decode("ascii").strip()


def check_keys(cluster_dir: Path) -> None:
    """Refuse the state dir if any key file in it (CA, client, node, gossip) is readable by others."""
    paths = [cluster_dir / sub / "ca-key.pem" for sub in CA_DIRS]
    paths += [cluster_dir / "client" / "key.pem", cluster_dir / "consul" / "gossip.key"]
    paths += [cluster_dir / "nodes" / n / f"{kind}-key.pem" for n in node_names(cluster_dir)
              for kind in ("server", "join")]
    for path in paths:
        check_private(path)


@dataclass(frozen=True)
class CertInfo:
    """One certificate in the state dir, read for its expiry (public data only)."""

    what: str  # "cluster CA", "join CA", "client", "NODE server", "NODE join"
    node: str | None
    path: Path
    subject: str  # CN
    cert_class: str | None  # OU: operator, manager, worker
    sans: tuple[str, ...]
    not_after: dt.datetime

    def days_left(self, now: dt.datetime) -> int:
        return (self.not_after - now) // dt.timedelta(days=1)

    def status(self, now: dt.datetime) -> str:
        if self.not_after <= now:
            return "expired"
        if self.not_after - now <= dt.timedelta(days=EXPIRY_WARN_DAYS):
            return "expiring"
        return "ok"


def _cert_info(what: str, node: str | None, path: Path) -> CertInfo:
    x509, _, _, _, _, NameOID = _crypto()
    cert = _load_cert(path)

    def attr(oid: Any) -> str | None:
        found = cert.subject.get_attributes_for_oid(oid)
        return str(found[0].value) if found else None

    try:
        san_ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = tuple(str(v) for v in (*san_ext.get_values_for_type(x509.DNSName),
                                      *san_ext.get_values_for_type(x509.IPAddress)))
    except x509.ExtensionNotFound:
        sans = ()
    return CertInfo(what, node, path, attr(NameOID.COMMON_NAME) or "", attr(NameOID.ORGANIZATIONAL_UNIT_NAME),
                    sans, cert.not_valid_after_utc)


def on_node(name: str, tls_dir: Path) -> list[CertInfo]:
    """The server and join certificates a node runs with, read from its own TLS folder (a local node's
    root is on this machine): after `certs --renew` they are still the old ones until the node is replaced."""
    out = []
    for kind in ("server", "join"):
        path = tls_dir / f"{kind}-cert.pem"
        try:
            out.append(_cert_info(f"{name} {kind}", name, path))
        except (OSError, ValueError, UserError):
            continue
    return out


def inventory(cluster_dir: Path) -> list[CertInfo]:
    """Every certificate of the cluster: the CAs, the client, each node's server and join certificates."""
    found: list[tuple[str, str | None, Path]] = [(what, None, cluster_dir / sub / "ca.pem")
                                                 for sub, what in CA_DIRS.items()]
    found.append(("client", None, cluster_dir / "client" / "cert.pem"))
    for name in node_names(cluster_dir):
        for kind in ("server", "join"):
            found.append((f"{name} {kind}", name, cluster_dir / "nodes" / name / f"{kind}-cert.pem"))
    return [_cert_info(what, node, path) for what, node, path in found if path.exists()]
