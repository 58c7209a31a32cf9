"""Logging to stdout with every key-shaped string redacted, in message, args and traceback."""

from __future__ import annotations

import logging
import re
import sys
from urllib.parse import unquote

# Anything that starts like one of our keys and runs past the 4-character display prefix:
# a display prefix (genmb_sk_ + 4) may be logged, any longer fragment may not. The
# underscores and the characters may be percent-encoded (a key pasted into a URL).
_SEP = r"(?:_|%5[Ff])"
_CHAR = r"(?:[A-Za-z0-9_-]|%[0-9A-Fa-f]{2})"
KEY_SHAPE = re.compile(rf"genmb{_SEP}sk{_SEP}({_CHAR}{{4}}){_CHAR}+")
FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def redact(text: str) -> str:
    """Replace every key-shaped run with its display prefix and a marker."""
    return KEY_SHAPE.sub(lambda m: f"genmb_sk_{unquote(m.group(1))}…[redacted]", text)


class KeyRedactingFilter(logging.Filter):
    """Rewrites a record so that no raw key reaches any handler or formatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the rendered message and the traceback; always let the record through."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info:
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_filter(logger: logging.Logger) -> None:
    """Attach the filter to a logger and to each of its handlers (idempotent)."""
    for target in (logger, *logger.handlers):
        if not any(isinstance(f, KeyRedactingFilter) for f in target.filters):
            target.addFilter(KeyRedactingFilter())


def configure_logging(level: str = "INFO") -> None:
    """Log to stdout through the filter; also cover loggers that do not propagate to root."""
    root = logging.getLogger()
    if not any(getattr(h, "_genmb", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._genmb = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    for name in ("", "gunicorn.error", "gunicorn.access", "werkzeug"):
        install_filter(logging.getLogger(name))
