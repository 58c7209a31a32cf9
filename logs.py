"""Logging to stdout: every key-shaped string redacted, every record on exactly one line."""

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
# Characters that could end a log line or fake one on a terminal: Unicode control characters
# (C0, DEL, C1: \n, \r, \x1b, \x85...), the line and paragraph separators, and lone
# surrogates (which a UTF-8 stream cannot even encode).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def redact(text: str) -> str:
    """Replace every key-shaped run with its display prefix and a marker."""
    return KEY_SHAPE.sub(lambda m: f"genmb_sk_{unquote(m.group(1))}…[redacted]", text)


# In an answer to a client not even the display prefix of a key is shown (the key's owner
# sees it in KeyInfo; anyone else who sent a key back has no business seeing part of it).
REDACTED_KEY = "genmb_sk_…[redacted]"


def remove_keys(text: str) -> str:
    """Replace every key-shaped run, display prefix included: for text sent to a client."""
    return KEY_SHAPE.sub(REDACTED_KEY, text)


def escape_controls(text: str) -> str:
    """Control characters as visible escapes (\\n, \\x1b, \\u2028): text stays on one line."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def log_safe(text: str) -> str:
    """Redacted and escaped: what may be written into one log line."""
    return escape_controls(redact(text))


class KeyRedactingFilter(logging.Filter):
    """Rewrites a record so that no raw key reaches any handler, and it prints as one line.

    A client controls parts of many messages (gunicorn's access log writes the decoded path):
    a newline there would let it write a line that looks like a real security event. So the
    message is escaped, and a traceback or stack is folded into the same line, escaped too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact and escape message, traceback and stack; always let the record through."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            message = f"{record.msg!r} {record.args!r}"
        parts = [message]
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
        record.msg = " | ".join(log_safe(part.rstrip("\n")) for part in parts)
        record.args, record.exc_info, record.exc_text, record.stack_info = None, None, None, None
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
