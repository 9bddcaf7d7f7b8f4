"""A small web site on loopback for egress tests: what a sandboxed connector may (or may not)
reach through its egress proxy."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Site(BaseHTTPRequestHandler):
    """`/hello` answers with a short text; `/away` redirects to `away` (for a test: another
    service of this machine, which the connector may not reach)."""

    away = ""

    def do_GET(self) -> None:
        if self.path == "/away":
            self.send_response(302)
            self.send_header("Location", self.away)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"hello from the allowed site"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def serve(away: str = "") -> int:
    """A site on 127.0.0.1 for the rest of this test process (redirecting `/away` to `away`);
    its port."""
    handler = type("Site", (Site,), {"away": away})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_address[1])
