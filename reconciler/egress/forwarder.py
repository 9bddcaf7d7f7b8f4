"""The forwarder inside a connector's sandbox: TCP 127.0.0.1:PORT to the egress proxy's socket.

A sandboxed connector has loopback only. Its `HTTP(S)_PROXY` names `http://127.0.0.1:PORT`,
where this forwarder listens; it carries each TCP connection, byte for byte, to the Unix socket
of the connector's `EgressProxy` (bound into the sandbox), which decides. It knows no rule.

It runs with the system python as `python -I -S forwarder.py SOCKET PORT [-- COMMAND...]`, so
this file imports nothing but the standard library, and the gateway's side (`forwarder_command`,
`proxy_env`) lives here too, with no reconciler import. Two ways to run it:

- `... SOCKET PORT -- COMMAND...` (what the sandbox runs, the launcher): binds 127.0.0.1:PORT
  first, then forks. The child serves; the parent sets the proxy variables (with the port it
  bound: PORT 0 picks one) and execs COMMAND, so the connector keeps the process id, the stdio
  and the process group the supervisor gave it, and no request can come before the listener
  exists. The serving child closes the connector's stdio (the supervisor sees EOF when the
  connector exits, not when the forwarder does), is in the same process group (the
  supervisor's and the reaper's group kill take it too) and exits when the connector exits
  (`PR_SET_PDEATHSIG`, and a parent check each half second where prctl is missing). This is
  chosen over `sh -c 'forwarder & exec connector'`, which races the connector's first request
  against the forwarder's bind and leaves the forwarder holding the connector's stdout.
- `... SOCKET PORT` alone: serves in the foreground, printing the bound port on its first line
  of stdout, and exits when its parent does (tests, and a wrapper of the sandbox's own)."""

from __future__ import annotations

import os
import socket
import sys

# The launcher's path to exec'ing the connector imports only os, socket and sys (not even
# typing: the annotations below are strings, of builtin types): every
# millisecond here is added to each connector start (tests/bench/bench_sandbox.py). What only
# the serving child needs (threading, signal, ctypes) is imported there, after the fork.

SCRIPT = os.path.realpath(__file__)
"""This file: what the sandbox binds read-only and runs with the system python."""

CHUNK = 64 * 1024
PR_SET_PDEATHSIG = 1


def forwarder_command(
    socket_path: str | os.PathLike[str],
    port: int,
    *,
    then: list[str] | tuple[str, ...] = (),
    python: str | None = None,
    script: str | os.PathLike[str] = SCRIPT,
) -> list[str]:
    """The command that runs the forwarder on 127.0.0.1:`port` to `socket_path`; with `then`,
    the launcher that starts the forwarder and then execs `then` (see the module)."""
    interpreter = python or os.path.realpath(sys.executable)
    command = [interpreter, "-I", "-S", os.fspath(script), os.fspath(socket_path), str(port)]
    return [*command, "--", *then] if then else command


def proxy_env(port: int) -> dict[str, str]:
    """The variables a sandboxed connector gets: every proxy variable names the forwarder."""
    url = f"http://127.0.0.1:{port}"
    names = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
    return {**dict.fromkeys(names, url), "NO_PROXY": "", "no_proxy": ""}


def main(argv: list[str] | tuple[str, ...]) -> int:
    """`SOCKET PORT [-- COMMAND...]`: serve, or serve in a child and exec COMMAND."""
    args = list(argv)
    then = args[args.index("--") + 1 :] if "--" in args else []
    args = args[: args.index("--")] if "--" in args else args
    if len(args) != 2 or not args[1].isdigit() or ("--" in argv and not then):
        print("usage: forwarder.py SOCKET PORT [-- COMMAND...]", file=sys.stderr)
        return 2
    target = _Target(args[0])
    try:
        listener = socket.create_server(("127.0.0.1", int(args[1])), backlog=128)
    except OSError as exc:
        print(f"forwarder: cannot listen on 127.0.0.1:{args[1]}: {exc}", file=sys.stderr)
        return 1
    port = int(listener.getsockname()[1])
    if not then:
        print(port, flush=True)
        _serve(listener, target, os.getppid())
        return 0
    parent = os.getpid()
    if os.fork() == 0:
        _detach_stdio()
        _serve(listener, target, parent)
        os._exit(0)
    listener.close()
    os.environ.update(proxy_env(port))
    try:
        os.execvp(then[0], then)  # noqa: S606 - the connector, as the sandbox gives it
    except OSError as exc:
        print(f"forwarder: cannot run {then[0]}: {exc}", file=sys.stderr)
    return 127


class _Target:
    """The proxy's Unix socket; a path too long for a socket address goes through /proc."""

    def __init__(self, path: str) -> None:
        self.address = path
        if len(os.fsencode(path)) >= 100:
            folder, name = os.path.split(path)
            self._fd = os.open(folder, os.O_PATH | os.O_DIRECTORY)
            self.address = f"/proc/self/fd/{self._fd}/{name}"

    def connect(self) -> socket.socket:
        """A new connection to the proxy."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.address)
        except OSError:
            sock.close()
            raise
        return sock


def _serve(listener: socket.socket, target: _Target, parent: int) -> None:
    """Accept and forward until the parent process is gone."""
    import threading

    _die_with(parent)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_forward, args=(client, target), daemon=True).start()


def _forward(client: socket.socket, target: _Target) -> None:
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        upstream = target.connect()
    except OSError:
        client.close()  # the proxy is gone: the connector sees a reset connection
        return
    import threading

    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy until `source` ends, then half-close `sink` (the other direction goes on)."""
    try:
        while data := source.recv(CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    try:  # noqa: SIM105 - contextlib costs the launcher 3 ms of imports
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _die_with(parent: int) -> None:
    """Exit when process `parent` exits: the kernel's death signal, and a check as backup."""
    import signal
    import threading

    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:  # noqa: BLE001, S110 - no ctypes, or not Linux: the check below remains
        pass
    if os.getppid() != parent:
        os._exit(0)  # it exited before the death signal was set

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _detach_stdio() -> None:
    """Give the connector's stdin, stdout and stderr back: the forwarder holds none of them."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
