"""Is an address free, and is our server answering on it? For scripts/run.sh and make stack.

    python -m deploy.listen free        # print BIND (or 127.0.0.1:$PORT) if it is free; exit 1
                                        # with one line if another server holds it
    python -m deploy.listen wait PID [READY_FILE]
                                        # until the server at that address answers HTTP
                                        # (exit 0), or process PID ends (exit 1), bounded;
                                        # with READY_FILE, only once PID wrote its pid there
                                        # (gunicorn.conf.py's when_ready: it holds the address)

Both read BIND and PORT through config.SETTINGS (a bad one: one line, exit 2).
"""

from __future__ import annotations

import os
import socket
import sys
import time

from config import SettingError, parse_bind, read_setting

WAIT_TIMEOUT = 60.0


def address() -> str:
    """BIND, or 127.0.0.1:$PORT as gunicorn.conf.py builds it."""
    return read_setting("BIND") or f"127.0.0.1:{read_setting('PORT')}"


def port_free(host: str, port: int) -> bool:
    """True when a server could listen on host:port now (as gunicorn does: SO_REUSEADDR, so a
    port left in TIME_WAIT counts as free)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _connect(bind: str, timeout: float) -> socket.socket:
    where = parse_bind(bind)
    if isinstance(where, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(where)
        except OSError:
            s.close()
            raise
        return s
    host, port = where
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    return socket.create_connection((host, port), timeout=timeout)


def is_free(bind: str) -> bool:
    """Nobody listens on `bind` (a unix socket nobody answers on counts as free: gunicorn
    replaces a stale socket file)."""
    where = parse_bind(bind)
    if isinstance(where, str):
        try:
            _connect(bind, 1.0).close()
        except OSError:
            return True
        return False
    return port_free(*where)


def answers_http(bind: str) -> bool:
    """True when something on `bind` answers GET /healthz with an HTTP status line."""
    try:
        with _connect(bind, 2.0) as s:
            s.sendall(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            return s.recv(16).startswith(b"HTTP/1.")
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) has ended too.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def holds_address(pid: int, ready_file: str | None) -> bool:
    """True when `ready_file` is not asked for, or PID wrote its pid in it: that gunicorn has
    bound the address, so what answers there is ours, not a server that took the address
    after `free` said it was (a second `make run` started at the same moment)."""
    if ready_file is None:
        return True
    try:
        with open(ready_file) as f:
            return f.read().strip() == str(pid)
    except OSError:
        return False


def main(argv: list[str]) -> int:
    """The command line: free | wait PID."""
    try:
        bind = address()
    except SettingError as exc:
        print(f"genmb: cannot start: {exc}", file=sys.stderr)
        return 2
    if argv[:1] == ["free"]:
        if is_free(bind):
            print(bind)
            return 0
        print(
            f"error: {bind} is already in use by another server (set PORT or BIND)", file=sys.stderr
        )
        return 1
    if argv[:1] == ["wait"] and len(argv) in (2, 3):
        pid = int(argv[1])
        ready_file = argv[2] if len(argv) == 3 else None
        deadline = time.monotonic() + WAIT_TIMEOUT
        while time.monotonic() < deadline:
            if not _alive(pid):
                return 1
            if holds_address(pid, ready_file) and answers_http(bind):
                return 0
            time.sleep(0.1)
        print(f"error: nothing answers on {bind} after {WAIT_TIMEOUT:.0f} s", file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:  # Ctrl-C while run.sh waits: run.sh stops gunicorn
        sys.exit(130)
