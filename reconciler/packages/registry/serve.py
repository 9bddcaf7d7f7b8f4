"""`cloned registry serve DIR`: a registry folder over plain HTTP on loopback, read-only.

For local use, the demo and the tests: a threading `http.server` that answers GET and HEAD
with the files under DIR and nothing else (no folder listings, no writes). It refuses to listen
on anything but a loopback address: a registry served to a network belongs behind HTTPS."""

from __future__ import annotations

import ipaddress
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from reconciler.errors import ClonedError, UsageError


class _Handler(SimpleHTTPRequestHandler):
    def list_directory(self, path: Any) -> None:
        self.send_error(404, "Not Found")

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: the server prints its URL; per-request lines would drown a terminal or a test.
        return


class RegistryServer:
    """A running (or ready) server of one registry folder; `url` is its base URL."""

    def __init__(self, folder: Path, host: str, port: int) -> None:
        _check_loopback(host)
        if not (folder / "metadata").is_dir():
            raise ClonedError(f"{folder}: not a registry (no metadata/ folder)")
        handler = partial(_Handler, directory=str(folder.resolve()))
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise ClonedError(f"--port {port}: cannot listen on {host} ({exc.strerror})") from None
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """`http://HOST:PORT/`, the Registry `url` that reaches this server."""
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{name}]" if ":" in name else name
        return f"http://{shown}:{port}/"

    def serve_forever(self) -> None:
        """Serve until `shutdown()` (or Ctrl-C in the caller)."""
        self._server.serve_forever(poll_interval=0.2)

    def start(self) -> RegistryServer:
        """Serve in a background thread (tests, the demo); returns self."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise UsageError(
            f"--host {host}: registry serve listens on loopback only (127.0.0.1, ::1)",
            hint="serve a public registry from a real web server over HTTPS",
        )
