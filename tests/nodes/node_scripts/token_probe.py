"""Run inside a booted node (python3 -c, tokens on stdin): the join service, and where tokens leak.

stdin: {"tokens": {"worker": ..., "manager": ...}, "fetch": bool}. With fetch,
asks the seed's join service for both tokens with this node's join
certificate. Then looks for the tokens in the journal, cloud-init's logs and
every world-readable regular file under /etc, /var/lib/bakery and /run.
Prints JSON that names where a token was found, never a token.
"""

import glob
import http.client
import json
import os
import ssl
import stat
import subprocess
import sys

SCANNED = ("/etc", "/var/lib/bakery", "/run")
LIMIT = 8 << 20  # bytes read per file


def fetch(cfg: dict, cls: str, given: str) -> dict:
    ctx = ssl.create_default_context(cafile=cfg["tls"]["ca"])
    ctx.load_cert_chain(cfg["tls"]["join_cert"], cfg["tls"]["join_key"])
    conn = http.client.HTTPSConnection(cfg["seed"], cfg["join_port"], context=ctx, timeout=15)
    try:
        conn.request("GET", "/v1/token/" + cls)
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    token = json.loads(body).get("token") if resp.status == 200 else None
    return {"status": resp.status, "token_matches": token == given, "token_in_body": given.encode() in body}


def needles(tokens: dict) -> dict:
    # The whole token and its secret part alone (SWMTKN-1-<CA digest>-<secret>).
    out = {}
    for cls, token in tokens.items():
        out[cls] = token.encode()
        out[cls + " secret"] = token.rsplit("-", 1)[1].encode()
    return out


def found_in(data: bytes, wanted: dict) -> list:
    return sorted(name for name, needle in wanted.items() if needle in data)


def scan_files(wanted: dict) -> tuple:
    hits, scanned = [], 0
    for top in SCANNED:
        for root, _dirs, files in os.walk(top):
            for name in files:
                path = os.path.join(root, name)
                try:
                    st = os.lstat(path)
                    if not stat.S_ISREG(st.st_mode) or not st.st_mode & stat.S_IROTH:
                        continue
                    with open(path, "rb") as f:
                        data = f.read(LIMIT)
                except OSError:
                    continue  # nsfs bind mounts and files gone meanwhile
                scanned += 1
                hits += [(path, what) for what in found_in(data, wanted)]
    return hits, scanned


def main() -> None:
    given = json.load(sys.stdin)
    tokens = given["tokens"]
    out: dict = {}
    if given["fetch"]:
        with open("/etc/bakery/join.json") as f:
            cfg = json.load(f)
        out["fetch"] = {cls: fetch(cfg, cls, tokens[cls]) for cls in ("worker", "manager")}
    wanted = needles(tokens)
    journal = subprocess.run(["journalctl", "--no-pager", "--all", "-o", "json"],
                             capture_output=True, check=True).stdout
    out["journal_lines"] = journal.count(b"\n")
    out["journal_has_join"] = b"bakery-join" in journal
    out["journal_leaks"] = found_in(journal, wanted)
    logs = sorted(glob.glob("/var/log/cloud-init*.log"))
    out["cloud_init_logs"] = logs
    out["log_leaks"] = []
    for path in logs:
        with open(path, "rb") as f:
            out["log_leaks"] += [(path, what) for what in found_in(f.read(), wanted)]
    out["file_leaks"], out["files_scanned"] = scan_files(wanted)
    print(json.dumps(out, sort_keys=True))


main()
