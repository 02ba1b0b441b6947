"""A minimal apt proxy on the bridge address, for nodes that install Docker at boot (docs/local-nodes.md).

Nodes have no route out and must not get one. apt sends absolute-URI GETs to
its proxy; this forwards GET and HEAD to the allowed mirror hosts only (the
ones the image was built from) and refuses everything else, so the node's
only reachable peer is the host's bridge address.

    python -m bakery.providers.local.aptproxy --listen 10.213.0.1:3142 --allow deb.debian.org
"""

from __future__ import annotations

import argparse
import http.client
import shutil
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


def make_handler(allowed: frozenset[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._forward()

        def do_HEAD(self) -> None:  # noqa: N802
            self._forward()

        def _forward(self) -> None:
            url = urlsplit(self.path)
            if url.scheme != "http" or url.hostname not in allowed:
                self.send_error(403, f"only http://{' '.join(sorted(allowed))} is proxied")
                return
            conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=60)
            path = url.path + (f"?{url.query}" if url.query else "")
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            try:
                conn.request(self.command, path, headers=headers)
                resp = conn.getresponse()
            except OSError as exc:
                self.send_error(502, f"mirror unreachable: {exc}")
                return
            self.send_response(resp.status, resp.reason)
            for key, value in resp.getheaders():
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            if resp.getheader("Content-Length") is None:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command == "GET":
                shutil.copyfileobj(resp, self.wfile, 1 << 16)
            conn.close()

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, metavar="ADDR:PORT")
    parser.add_argument("--allow", action="append", required=True, metavar="HOST")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), make_handler(frozenset(args.allow)))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
