"""bakery certs: the export line, every certificate's expiry, renewal; and what certs.py refuses."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bakery import certs
from bakery.cli import main
from bakery.errors import UserError

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BAKERY_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("BAKERY_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "state" / "default"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def render(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, str]:
    code, out, err = run(capsys, "render", *argv)
    assert code == 0, err
    return {f["path"]: f["content"] for f in yaml.safe_load(out)["write_files"]}


def a_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    render(capsys, "--role", "worker", "--name", "w1")
    render(capsys, "--role", "manager", "--name", "m1", "--address", "10.0.0.5")
    render(capsys, "--role", "consul", "--name", "c1")


def pem_of(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_stdout_is_only_the_export_line_and_evaluates(state, capsys, monkeypatch):
    a_cluster(capsys)
    code, out, err = run(capsys, "certs")
    assert code == 0
    assert out.count("\n") == 1
    odd = state.parent.parent / "my state's dir"  # eval "$(bakery certs)" must survive any path
    state.parent.rename(odd)
    monkeypatch.setenv("BAKERY_STATE_DIR", str(odd))
    _, quoted, _ = run(capsys, "certs")
    for line, where in ((out, state), (quoted, odd / "default")):
        shown = subprocess.run(["sh", "-c", 'eval "$1"; echo "$DOCKER_HOST|$DOCKER_TLS_VERIFY|$DOCKER_CERT_PATH"',
                                "sh", line], capture_output=True, text=True, check=True).stdout
        assert shown == f"tcp://seed:2376|1|{where / 'client'}\n"
    rows = [line.split()[:2] for line in err.splitlines() if line.startswith("  ")]
    assert rows[0] == ["certificate", "subject"]
    assert [" ".join(r) for r in rows[1:]] == ["cluster CA", "join CA", "client bakery-operator", "c1 server",
                                              "m1 server", "m1 join", "w1 server", "w1 join"]
    assert "WARNING" not in err


def test_json_lists_every_certificate_and_the_exports(state, capsys):
    a_cluster(capsys)
    code, out, _ = run(capsys, "certs", "--output", "json")
    assert code == 0
    info = json.loads(out)
    assert info["env"] == {"DOCKER_HOST": "tcp://seed:2376", "DOCKER_TLS_VERIFY": "1",
                           "DOCKER_CERT_PATH": str(state / "client")}
    _, text_out, _ = run(capsys, "certs")
    assert text_out == " ".join(["export", *(f"{k}={v}" for k, v in info["env"].items())]) + "\n"
    got = {c["what"]: (c["subject"], c["class"], c["sans"], c["status"]) for c in info["certificates"]}
    assert got == {
        "cluster CA": ("bakery default cluster CA", None, [], "ok"),
        "join CA": ("bakery default join CA", None, [], "ok"),
        "client": ("bakery-operator", "operator", [], "ok"),
        "c1 server": ("c1", None, ["c1", "localhost", "127.0.0.1", "::1"], "ok"),
        "m1 server": ("m1", None, ["localhost", "m1", "10.0.0.5", "127.0.0.1", "::1"], "ok"),
        "m1 join": ("m1", "manager", [], "ok"),
        "w1 server": ("w1", None, ["localhost", "w1", "127.0.0.1", "::1"], "ok"),
        "w1 join": ("w1", "worker", [], "ok"),
    }
    days = {c["what"]: c["days_left"] for c in info["certificates"]}
    assert days["cluster CA"] in (certs.CA_DAYS - 1, certs.CA_DAYS) and days["w1 join"] in (824, 825)
    for c in info["certificates"]:
        assert pem_of(Path(c["path"])).not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ") == c["not_after"]
    assert info["warnings"] == [] and info["renewed"] == []


@pytest.mark.parametrize(("left", "status", "days"), [
    (dt.timedelta(days=3650), "ok", 3650),
    (dt.timedelta(days=30, seconds=1), "ok", 30),
    (dt.timedelta(days=30), "expiring", 30),
    (dt.timedelta(hours=23), "expiring", 0),
    (dt.timedelta(0), "expired", 0),
    (-dt.timedelta(days=2), "expired", -2),
])
def test_expiry_status(left, status, days):
    info = certs.CertInfo("w1 server", "w1", Path("x"), "w1", None, (), NOW + left)
    assert (info.status(NOW), info.days_left(NOW)) == (status, days)


def test_expiring_and_expired_certificates_are_warned_and_exit_0(state, capsys, monkeypatch):
    monkeypatch.setattr(certs, "LEAF_DAYS", 10)
    a_cluster(capsys)
    # w1's join certificate, re-signed by the join CA so that it expired yesterday
    join_ca_key = serialization.load_pem_private_key((state / "join-ca" / "ca-key.pem").read_bytes(), None)
    old = pem_of(state / "nodes" / "w1" / "join-cert.pem")
    now = dt.datetime.now(dt.UTC)
    expired = (x509.CertificateBuilder().subject_name(old.subject).issuer_name(old.issuer)
               .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=30)).not_valid_after(now - dt.timedelta(days=1))
               .sign(join_ca_key, hashes.SHA256()))
    (state / "nodes" / "w1" / "join-cert.pem").write_bytes(expired.public_bytes(serialization.Encoding.PEM))
    code, out, err = run(capsys, "certs")
    assert code == 0 and out.startswith("export DOCKER_HOST=")
    warnings = [line for line in err.splitlines() if "WARNING" in line]
    assert "bakery certs: WARNING: the w1 server certificate expires in 9 days" in warnings[-2]
    assert warnings[-2].endswith("bakery certs --renew --nodes w1, then re-render and roll w1")
    assert "the w1 join certificate expired on" in warnings[-1]
    assert any("the client certificate expires in 9 days" in w and w.endswith("bakery certs --renew")
               for w in warnings)
    code, out, _ = run(capsys, "certs", "--output", "json")
    info = json.loads(out)
    status = {c["what"]: c["status"] for c in info["certificates"]}
    assert code == 0 and status["w1 join"] == "expired" and status["w1 server"] == "expiring"
    assert status["cluster CA"] == "ok" and len(info["warnings"]) == 6  # client, c1, m1 x2, w1 x2


def test_a_ca_near_its_end_is_warned_and_caps_what_it_issues(state, capsys, monkeypatch):
    monkeypatch.setattr(certs, "CA_DAYS", 20)
    render(capsys, "--role", "worker", "--name", "w1")
    ca_end = pem_of(state / "ca" / "ca.pem").not_valid_after_utc
    for leaf in ("client/cert.pem", "nodes/w1/server-cert.pem"):
        assert pem_of(state / leaf).not_valid_after_utc <= ca_end, leaf
    code, _, err = run(capsys, "certs")
    assert code == 0
    assert "WARNING: the cluster CA certificate expires in 19 days" in err
    assert "rotate the CAs, every node with them (see bakery certs --help)" in err


def node_files(state: Path, name: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((state / "nodes" / name).iterdir())}


def test_renew_named_nodes_keeps_sans_and_class_and_a_new_render_carries_them(state, capsys):
    first = render(capsys, "--role", "worker", "--name", "w1", "--address", "10.0.0.9")
    render(capsys, "--role", "manager", "--name", "m1")
    before_w1, before_m1 = node_files(state, "w1"), node_files(state, "m1")
    client = (state / "client" / "cert.pem").read_bytes()
    code, out, err = run(capsys, "certs", "--renew", "--nodes", "w1")
    assert code == 0 and out.startswith("export ")
    assert "bakery certs: renewed node w1; re-render it with the flags it had before and roll it" in err
    after = node_files(state, "w1")
    assert after["meta.json"] == before_w1["meta.json"]
    for name in ("server-cert.pem", "server-key.pem", "join-cert.pem", "join-key.pem"):
        assert after[name] != before_w1[name], name
    old, new = (x509.load_pem_x509_certificate(d["server-cert.pem"]) for d in (before_w1, after))
    assert new.subject == old.subject and new.serial_number != old.serial_number
    san = x509.SubjectAlternativeName
    assert new.extensions.get_extension_for_class(san) == old.extensions.get_extension_for_class(san)
    old_join, new_join = (x509.load_pem_x509_certificate(d["join-cert.pem"]) for d in (before_w1, after))
    assert new_join.subject == old_join.subject  # OU: the class, worker
    new_join.verify_directly_issued_by(pem_of(state / "join-ca" / "ca.pem"))
    assert node_files(state, "m1") == before_m1 and (state / "client" / "cert.pem").read_bytes() == client
    again = render(capsys, "--role", "worker", "--name", "w1", "--address", "10.0.0.9")
    assert again["/etc/bakery/tls/server-cert.pem"] == after["server-cert.pem"].decode()
    assert again["/etc/bakery/tls/join-key.pem"] == after["join-key.pem"].decode()
    assert again["/etc/bakery/tls/server-cert.pem"] != first["/etc/bakery/tls/server-cert.pem"]


def test_renew_without_nodes_renews_every_node_and_the_client(state, capsys):
    a_cluster(capsys)
    before = {n: node_files(state, n) for n in ("c1", "m1", "w1")}
    client = (state / "client" / "cert.pem").read_bytes()
    code, out, _ = run(capsys, "certs", "--renew", "--output", "json")
    assert code == 0 and json.loads(out)["renewed"] == ["client", "c1", "m1", "w1"]
    assert all(node_files(state, n)["server-cert.pem"] != before[n]["server-cert.pem"] for n in before)
    assert "join-cert.pem" not in node_files(state, "c1")  # consul nodes never join: still none
    assert (state / "client" / "cert.pem").read_bytes() != client


@pytest.mark.parametrize(("argv", "code", "says"), [
    (["--renew", "--nodes", "w9"], 2, "no node 'w9' in"),
    (["--renew", "--nodes", "../ca"], 2, "is not a valid node name"),
    (["--nodes", "w1"], 2, "--nodes only goes with --renew"),
])
def test_renew_mistakes_are_one_line(argv, code, says, state, capsys):
    render(capsys, "--role", "worker", "--name", "w1")
    got, _, err = run(capsys, "certs", *argv)
    assert got == code and says in err and len(err.strip().splitlines()) == 1, err


def test_renew_needs_the_ca_key(state, capsys):
    render(capsys, "--role", "worker", "--name", "w1")
    (state / "ca" / "ca-key.pem").rename(state / "offline-key.pem")
    got, _, err = run(capsys, "certs", "--renew", "--nodes", "w1")
    assert got == 4 and "kept offline?" in err


@pytest.mark.parametrize(("key", "render_argv"), [
    ("ca/ca-key.pem", ["--role", "worker", "--name", "w1"]),
    ("join-ca/ca-key.pem", ["--role", "worker", "--name", "w1"]),
    ("client/key.pem", ["--role", "worker", "--name", "w1"]),
    ("nodes/w1/server-key.pem", ["--role", "worker", "--name", "w1"]),
    ("nodes/w1/join-key.pem", ["--role", "worker", "--name", "w1"]),
    ("consul/gossip.key", ["--role", "consul", "--name", "c1"]),
])
@pytest.mark.parametrize("loose", [0o644, 0o640])
def test_a_loose_key_file_is_refused_with_the_fix(key, render_argv, loose, state, capsys):
    a_cluster(capsys)
    (state / key).chmod(loose)
    for argv in (["render", *render_argv], ["certs"]):
        code, _, err = run(capsys, *argv)
        assert code == 2, (argv, err)
        assert err.strip().splitlines() == [
            f"bakery {argv[0]}: error: {state / key} is mode {loose:04o}: a key file must be readable by its owner "
            f"only, so bakery will not use it (chmod 600 {state / key})"]


@pytest.mark.parametrize("name", ["..", ".", "../escape", "nodes/../../x", "a/b", "", "-x", "x" * 64, "w\n1"])
def test_ensure_node_refuses_names_that_are_not_dns_labels(name, tmp_path):
    cdir = tmp_path / "state" / "default"
    certs.ensure_cluster(cdir, "default")
    with pytest.raises(UserError, match="is not a valid node name"):
        certs.ensure_node(cdir, name, "worker", ["localhost"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]
    assert sorted(p.name for p in cdir.iterdir()) == [".lock", "ca", "client", "join-ca"]


def test_an_existing_ca_key_is_never_replaced(state, capsys):
    (state / "ca").mkdir(parents=True)
    (state / "ca" / "ca-key.pem").write_bytes(b"a key whose certificate was lost")
    (state / "ca" / "ca-key.pem").chmod(0o600)
    code, _, err = run(capsys, "render", "--role", "worker", "--name", "w1")
    assert code == 2 and "holds ca-key.pem but no ca.pem; bakery never replaces a CA's files" in err
    assert (state / "ca" / "ca-key.pem").read_bytes() == b"a key whose certificate was lost"


@pytest.mark.parametrize(("argv", "warns"), [
    (["--role", "worker"], "this worker is node 'worker', and every worker rendered without --name shares its key"),
    (["--role", "manager"], "this manager is node 'manager'"),
    (["--role", "consul"], "this consul is node 'consul'"),
    (["--role", "worker", "--name", "worker-1"], None),
    (["--role", "seed", "--form"], None),
])
def test_a_node_without_name_is_told_it_shares_a_key_pair(argv, warns, state, capsys):
    code, _, err = run(capsys, "render", *argv)
    assert code == 0
    if warns:
        assert f"bakery render: WARNING: no --name: {warns}" in err and "--name " in err.split("give each")[1]
    else:
        assert "WARNING" not in err


def test_unnamed_workers_do_share_one_key_pair(state, capsys):
    first, second = render(capsys, "--role", "worker"), render(capsys, "--role", "worker")
    assert first["/etc/bakery/tls/server-key.pem"] == second["/etc/bakery/tls/server-key.pem"]
    assert render(capsys, "--role", "worker", "--name", "worker-2")["/etc/bakery/tls/server-key.pem"] != \
        first["/etc/bakery/tls/server-key.pem"]


def _break(path: Path, how: str) -> None:
    if how == "garbage":
        path.write_text("garbage\n")
    elif how == "empty":
        path.write_text("")
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif how == "json":
        path.write_text("{")
    elif how == "list":
        path.write_text("[]")


@pytest.mark.parametrize(("file", "how", "command", "says"), [
    ("ca/ca.pem", "garbage", ["render", "--role", "worker", "--name", "w2"], "ca.pem is not a PEM certificate"),
    ("ca/ca.pem", "garbage", ["certs"], "restore"),
    ("ca/ca-key.pem", "empty", ["certs", "--renew"], "ca-key.pem is not a PEM private key"),
    ("nodes/m1/server-cert.pem", "truncated", ["render", "--role", "manager", "--name", "m1"],
     "bakery certs --renew --nodes m1"),
    ("nodes/m1/server-cert.pem", "truncated", ["certs"], "server-cert.pem is not a PEM certificate"),
    ("nodes/m1/server-key.pem", "garbage", ["render", "--role", "manager", "--name", "m1"], "not a PEM private key"),
    ("nodes/m1/meta.json", "json", ["render", "--role", "manager", "--name", "m1"], "not bakery's record of node m1"),
    ("nodes/m1/meta.json", "list", ["certs", "--renew"], "remove"),
    ("client/cert.pem", "garbage", ["certs"], "bakery certs --renew"),
])
def test_a_damaged_state_file_is_named_with_the_way_back(file, how, command, says, state, capsys):
    render(capsys, "--role", "manager", "--name", "m1")
    path = state / file
    mode = path.stat().st_mode & 0o777
    _break(path, how)
    path.chmod(mode)
    code, out, err = run(capsys, *command)
    assert code == 2, err
    assert says in err and str(path) in err and "Traceback" not in err


def test_a_lost_ca_is_never_silently_replaced_under_what_it_signed(state, capsys):
    render(capsys, "--role", "manager", "--name", "m1")
    for f in (state / "ca").iterdir():
        f.unlink()
    code, out, err = run(capsys, "render", "--role", "worker", "--name", "w1")
    assert code == 2 and "is missing, but certificates it signed remain (m1, client)" in err
    assert not (state / "ca" / "ca.pem").exists()


def _pairs_match(node: Path) -> bool:
    for kind in ("server", "join"):
        cert = x509.load_pem_x509_certificate((node / f"{kind}-cert.pem").read_bytes())
        key = serialization.load_pem_private_key((node / f"{kind}-key.pem").read_bytes(), None)
        if cert.public_key().public_numbers() != key.public_key().public_numbers():
            return False
    return True


class _Killed(BaseException):
    """Stands for SIGKILL: raised from inside the write, it skips every except Exception on the way."""


@pytest.mark.parametrize("nth", range(1, 8))
def test_renew_stopped_at_any_write_never_leaves_a_key_beside_another_keys_certificate(nth, state, capsys,
                                                                                        monkeypatch):
    """Stop `certs --renew` at its nth file write: each node keeps its old set or gets the new one whole."""
    from bakery import state as state_module

    for name in ("m1", "m2"):
        render(capsys, "--role", "manager", "--name", name)
    real, calls = state_module._write_new, []

    def write(path: Path, data: bytes, mode: int) -> None:
        calls.append(path)
        if len(calls) == nth:
            raise _Killed
        real(path, data, mode)

    monkeypatch.setattr(state_module, "_write_new", write)
    with pytest.raises(_Killed):
        certs.renew(state, ["m1", "m2"])
    monkeypatch.setattr(state_module, "_write_new", real)
    for name in ("m1", "m2"):
        assert _pairs_match(state / "nodes" / name), (nth, name, calls[-1])
    render(capsys, "--role", "manager", "--name", "m1")
    assert not [p for p in (state / "nodes").iterdir() if p.name.startswith(".")]


def test_a_node_is_never_silently_given_another_identity(state, capsys, tmp_path):
    """Rendering an existing node with other flags (a forgotten --address, another role given the same
    --name) replaced its key pair and certificates without a word."""
    render(capsys, "--role", "manager", "--name", "manager-1", "--address", "10.0.0.11")
    key = (state / "nodes" / "manager-1" / "server-key.pem").read_bytes()
    code, _, err = run(capsys, "render", "--role", "manager", "--name", "manager-1")
    assert code == 2 and "would drop 10.0.0.11" in err and "--reissue" in err
    code, _, err = run(capsys, "render", "--role", "worker", "--name", "manager-1", "--address", "10.0.0.11")
    assert code == 2 and "exists as a manager; this render would make it a worker" in err
    assert (state / "nodes" / "manager-1" / "server-key.pem").read_bytes() == key
    render(capsys, "--role", "manager", "--name", "manager-1", "--address", "10.0.0.12", "--reissue")
    assert (state / "nodes" / "manager-1" / "server-key.pem").read_bytes() != key
    assert json.loads((state / "nodes" / "manager-1" / "meta.json").read_text())["sans"].count("10.0.0.12") == 1


def test_a_named_manager_must_name_its_address_among_the_managers(state, capsys, tmp_path):
    cfg = tmp_path / "bakery.yml"
    cfg.write_text("swarm: {seed: 10.0.0.10, managers: [10.0.0.11, 10.0.0.12]}\n")
    code, _, err = run(capsys, "render", "--role", "manager", "--name", "manager-1", "-c", str(cfg))
    assert code == 2 and "would name none of swarm.managers (10.0.0.11, 10.0.0.12)" in err
    assert "--address 10.0.0.11" in err
    render(capsys, "--role", "manager", "--name", "manager-1", "--address", "10.0.0.11", "-c", str(cfg))


def test_a_seed_that_can_never_start_is_warned(state, capsys):
    code, _, err = run(capsys, "render", "--role", "seed")
    assert code == 0 and "WARNING: this seed may not form a swarm" in err


def test_a_ca_certificate_that_is_not_its_keys_is_refused(state, capsys, tmp_path):
    render(capsys, "--role", "worker", "--name", "w1")
    other = tmp_path / "other"
    assert main(["render", "--role", "worker", "--name", "w1", "--state-dir", str(other)]) == 0
    capsys.readouterr()
    (state / "ca" / "ca.pem").write_bytes((other / "default" / "ca" / "ca.pem").read_bytes())
    code, _, err = run(capsys, "render", "--role", "worker", "--name", "w2")
    assert code == 2 and "is not the certificate of" in err


def test_a_missing_node_file_says_how_to_renew(state, capsys):
    render(capsys, "--role", "worker", "--name", "w1")
    (state / "nodes" / "w1" / "server-key.pem").unlink()
    code, _, err = run(capsys, "render", "--role", "worker", "--name", "w1")
    assert code == 2 and "it is missing" in err and "bakery certs --renew --nodes w1" in err


def test_extra_sans_are_for_managers_only(state, capsys, tmp_path):
    """tls.sans name the managers' front (a load balancer, floating IPs): a worker's certificate for
    them would let a worker's key pose as the cluster's API."""
    cfg = tmp_path / "bakery.yml"
    cfg.write_text("tls: {sans: [swarm.example.com, 203.0.113.10]}\n")
    for role, name in (("manager", "m1"), ("worker", "w1")):
        render(capsys, "--role", role, "--name", name, "-c", str(cfg))
    sans = {n: json.loads((state / "nodes" / n / "meta.json").read_text())["sans"] for n in ("m1", "w1")}
    assert "swarm.example.com" in sans["m1"] and "203.0.113.10" in sans["m1"]
    assert "swarm.example.com" not in sans["w1"] and "203.0.113.10" not in sans["w1"]


@pytest.mark.parametrize("meta", ['{"join_class": 5, "sans": null}', '{"join_class": "worker", "sans": "abc"}',
                                  '{"join_class": "worker", "sans": [1, {"a": 2}]}',
                                  '{"join_class": "root", "sans": []}',
                                  '{"join_class": "worker", "sans": ["a b", "*.example.com"]}'])
def test_renew_refuses_a_record_edited_by_hand(meta, state, capsys):
    render(capsys, "--role", "worker", "--name", "w1")
    (state / "nodes" / "w1" / "meta.json").write_text(meta)
    code, _, err = run(capsys, "certs", "--renew")
    assert code == 2 and "is not bakery's record of node w1" in err and "Traceback" not in err


def test_symbolic_links_in_the_state_dir_are_refused(state, capsys, tmp_path):
    render(capsys, "--role", "worker", "--name", "w1")
    key = state / "nodes" / "w1" / "server-key.pem"
    planted = tmp_path / "ssh-key"
    planted.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n")
    planted.chmod(0o600)
    key.unlink()
    key.symlink_to(planted)
    code, out, err = run(capsys, "render", "--role", "worker", "--name", "w1")
    assert code == 2 and "is a symbolic link" in err and "OPENSSH" not in out
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    nodes = state / "nodes"
    import shutil

    shutil.rmtree(nodes)
    nodes.symlink_to(elsewhere)
    code, _, err = run(capsys, "render", "--role", "worker", "--name", "w2")
    assert code == 2 and "is a symbolic link" in err
    assert elsewhere.stat().st_mode & 0o777 == 0o755 and not list(elsewhere.iterdir())


@pytest.mark.skipif(os.geteuid() != 0, reason="`bakery nodes --provider local` needs root")
def test_nodes_warns_about_node_certificates_ending_within_30_days(state, capsys, monkeypatch):
    from bakery.providers.local.state import ClusterRecord, NodeRecord

    render(capsys, "--role", "manager", "--name", "manager-1", "--address", "10.0.0.5")  # 825 days
    monkeypatch.setattr(certs, "LEAF_DAYS", 10)
    render(capsys, "--role", "worker", "--name", "worker-1")
    rec = ClusterRecord(cluster="default", workdir=str(state / "local"),
                        nodes=[NodeRecord("manager-1", "manager", str(state / "local/nodes/manager-1"), stopped=True),
                               NodeRecord("worker-1", "worker", str(state / "local/nodes/worker-1"), stopped=True),
                               NodeRecord("worker-9", "worker", str(state / "local/nodes/worker-9"), stopped=True)])
    rec.save(state / "local.json")
    code, out, err = run(capsys, "nodes", "--output", "json")
    assert code == 0, out + err
    rows = {r["name"]: r for r in json.loads(out)["nodes"]}
    assert code == 0
    assert rows["worker-1"]["cert_days_left"] == 9 and rows["manager-1"]["cert_days_left"] >= 800
    assert rows["worker-9"]["cert_not_after"] is None  # bakery holds no certificate for it
    warnings = [line for line in err.splitlines() if "WARNING" in line]
    assert len(warnings) == 1, err
    assert warnings[0].startswith("bakery nodes: WARNING: worker-1's server certificate expires in 9 days")
    assert warnings[0].endswith("bakery roll --nodes worker-1 (its replacement gets a new certificate)")


def test_nodes_reports_the_certificate_a_node_runs_with_not_one_renewed_since(tmp_path):
    """After `certs --renew`, the node keeps its old certificate until it is replaced: `bakery nodes` reads
    the node's own files (a local node's root) and so still warns when that one is ending."""
    import shutil

    from bakery.commands.nodes import cert_notes

    cdir = tmp_path / "state" / "c1"
    certs.ensure_cluster(cdir, "c1")
    certs.ensure_node(cdir, "w1", "worker", ["localhost"])
    node_tls = tmp_path / "w1-root" / "etc" / "bakery" / "tls"
    node_tls.mkdir(parents=True)
    for kind in ("server", "join"):
        shutil.copy(cdir / "nodes" / "w1" / f"{kind}-cert.pem", node_tls / f"{kind}-cert.pem")
    old = min(c.not_after for c in certs.on_node("w1", node_tls))
    import time

    time.sleep(1.1)  # the renewed certificate ends at least a second later
    certs.renew(cdir, ["w1"])
    issued = min(c.not_after for c in certs.inventory(cdir) if c.node == "w1")
    assert issued > old
    rows = [{"name": "w1"}]
    cert_notes("c1", tmp_path / "state", rows, "local", {"w1": node_tls})
    assert rows[0]["cert_not_after"] == old.strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = [{"name": "w1"}]
    cert_notes("c1", tmp_path / "state", rows, "local", {"w1": tmp_path / "nothing"})  # no files: the issued one
    assert rows[0]["cert_not_after"] == issued.strftime("%Y-%m-%dT%H:%M:%SZ")
