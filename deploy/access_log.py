"""gunicorn's access line for less: only the atoms the format names are computed (issue #15).

gunicorn's `Logger.access` builds every atom it knows for every request (the time in Apache
format, every request and response header, every environ entry: some 60 entries), copies
them once more to escape quotes, and then the format picks eight. This computes those eight
(any other format falls back to gunicorn's own dict), with the same values and escaping, so
the line is byte for byte what gunicorn would write. Redaction is unchanged: the line still
goes through logs.KeyRedactingFilter on the access logger.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from gunicorn.glogging import Logger

Atom = Callable[[Any, dict[str, Any], Any], Any]  # (response, environ, request_time) -> value


def _status(resp: Any, environ: dict[str, Any], request_time: Any) -> Any:
    """The status code alone, as gunicorn's %(s)s."""
    status = resp.status
    return status.split(None, 1)[0] if isinstance(status, str) else status


# gunicorn.glogging.Logger.atoms, for the atoms that need neither the headers nor the clock.
ATOMS: dict[str, Atom] = {
    "h": lambda resp, environ, rt: environ.get("REMOTE_ADDR", "-"),
    "l": lambda resp, environ, rt: "-",
    "r": lambda resp, environ, rt: (
        f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}"
    ),
    "s": _status,
    "m": lambda resp, environ, rt: environ.get("REQUEST_METHOD"),
    "U": lambda resp, environ, rt: environ.get("PATH_INFO"),
    "q": lambda resp, environ, rt: environ.get("QUERY_STRING"),
    "H": lambda resp, environ, rt: environ.get("SERVER_PROTOCOL"),
    "b": lambda resp, environ, rt: (
        getattr(resp, "sent", None) is not None and str(resp.sent) or "-"
    ),
    "B": lambda resp, environ, rt: getattr(resp, "sent", None),
    "f": lambda resp, environ, rt: environ.get("HTTP_REFERER", "-"),
    "a": lambda resp, environ, rt: environ.get("HTTP_USER_AGENT", "-"),
    "T": lambda resp, environ, rt: rt.seconds,
    "D": lambda resp, environ, rt: rt.seconds * 1000000 + rt.microseconds,
    "M": lambda resp, environ, rt: rt.seconds * 1000 + int(rt.microseconds / 1000),
    "L": lambda resp, environ, rt: f"{rt.seconds}.{rt.microseconds:06d}",
}
_NAMES = re.compile(r"%\(([^)]*)\)")


def format_atoms(access_format: str) -> tuple[str, ...] | None:
    """The atoms a format names, when ATOMS computes them all; else None (gunicorn's way)."""
    names = tuple(dict.fromkeys(_NAMES.findall(access_format)))
    return names if names and all(name in ATOMS for name in names) else None


class LeanAccess(Logger):
    """gunicorn's Logger whose access line computes only the atoms its format names."""

    _lean_for: tuple[str, tuple[str, ...] | None] = ("", None)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        """Log one access line (as gunicorn does, for less)."""
        if not self.access_log_enabled:
            return
        access_format = self.cfg.access_log_format
        if self._lean_for[0] != access_format:  # once per format (a HUP may change it)
            self._lean_for = (access_format, format_atoms(access_format))
        names = self._lean_for[1]
        if names is None:
            super().access(resp, req, environ, request_time)
            return
        atoms: Mapping[str, Any] = {
            name: _escaped(ATOMS[name](resp, environ, request_time)) for name in names
        }
        try:
            self.access_log.info(access_format, atoms)
        except Exception:  # noqa: BLE001 - as gunicorn: a broken line must not fail the request
            self.error(traceback.format_exc())


def _escaped(value: Any) -> Any:
    """gunicorn's SafeAtoms escaping: a double quote in a text atom is backslashed."""
    return value.replace('"', '\\"') if isinstance(value, str) else value
