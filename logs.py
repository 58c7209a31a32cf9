"""Logging to stdout: every key-shaped string redacted, every record on exactly one line."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any
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


# LOG_FORMAT=json. A security event is logged as "<event> key=%s key=%s ..." (or a literal
# value): its field names come from that format string, which is our code, and each value
# from its argument, redacted and escaped. Fields are never parsed out of the formatted text,
# where a client-supplied value ("path=/x ip=6.6.6.6") could forge one.
_EVENT = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")
_FIELD = re.compile(r"([a-z][a-z0-9_]*)=(.*)")
_CONVERSION = re.compile(r"%[-#0 +]*\d*(?:\.\d+)?[sdirf]")
# gunicorn's access-log atoms, by the field name each gets (never the query or a header).
ACCESS_FIELDS = {
    "h": "remote",
    "m": "method",
    "U": "path",
    "H": "protocol",
    "s": "status",
    "b": "bytes",
    "M": "ms",
    "a": "user_agent",
}
RESERVED = frozenset({"time", "level", "logger", "pid", "event"})
_json_lines = False  # set by use_json(); the filter only extracts fields when it is on


def event_fields(msg: object, args: Any) -> tuple[str, dict[str, str]] | None:
    """(event, fields) of a record logged as "<event> key=%s ...", or None for any other."""
    if not isinstance(msg, str) or "%%" in msg:
        return None
    head, *tokens = msg.split(" ")
    if not _EVENT.fullmatch(head):
        return None
    args = args if isinstance(args, tuple) else ()
    fields: dict[str, str] = {}
    used = 0
    for token in tokens:
        match = _FIELD.fullmatch(token)
        if match is None or match[1] in RESERVED:
            return None
        name, value = match[1], match[2]
        count = len(_CONVERSION.findall(value))
        if value.count("%") != count:
            return None
        try:
            value = value % tuple(args[used : used + count]) if count else value
        except (TypeError, ValueError):
            return None
        used += count
        fields[name] = log_safe(value)
    return (head, fields) if used == len(args) else None


def access_fields(args: Any) -> dict[str, str] | None:
    """The access line's fields from gunicorn's atoms (redacted and escaped)."""
    if not isinstance(args, dict):
        return None
    return {name: log_safe(str(args.get(atom, "-"))) for atom, name in ACCESS_FIELDS.items()}


class KeyRedactingFilter(logging.Filter):
    """Rewrites a record so that no raw key reaches any handler, and it prints as one line.

    A client controls parts of many messages (gunicorn's access log writes the decoded path):
    a newline there would let it write a line that looks like a real security event. So the
    message is escaped, and a traceback or stack is folded into the same line, escaped too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact and escape message, traceback and stack; always let the record through."""
        if _json_lines and not getattr(record, "genmb_done", False):
            # Once per record (the filter sits on loggers and handlers): a second pass would
            # see the formatted text, where a client's value could pose as a field.
            record.genmb_done = True
            given = getattr(record, "genmb_fields", None)  # security_events.log_event's
            if given is not None:
                fields = {k: log_safe(str(v)) for k, v in given.items() if k not in RESERVED}
                record.genmb_fields = fields
            else:
                found = event_fields(record.msg, record.args)
                if found is None and record.name == "gunicorn.access":
                    found = ("http.access", access_fields(record.args) or {})
                record.genmb_event, record.genmb_fields = found or (None, None)
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


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, pid, event and the event's fields.

    The message was redacted and escaped by the filter already; json.dumps escapes again
    whatever JSON needs (ensure_ascii: U+2028 too), so a record stays one line."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "event": getattr(record, "genmb_event", None) or record.getMessage(),
        }
        line.update(getattr(record, "genmb_fields", None) or {})
        return json.dumps(line)


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of LOG_FORMAT (`text`: the human-readable FORMAT; `json`)."""
    global _json_lines
    _json_lines = log_format == "json"
    return JsonFormatter() if _json_lines else logging.Formatter(FORMAT)


def install_filter(logger: logging.Logger) -> None:
    """Attach the filter to a logger and to each of its handlers (idempotent)."""
    for target in (logger, *logger.handlers):
        if not any(isinstance(f, KeyRedactingFilter) for f in target.filters):
            target.addFilter(KeyRedactingFilter())


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Log to stdout through the filter; also cover loggers that do not propagate to root."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_genmb", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stdout)
        handler._genmb = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.setFormatter(formatter(log_format))
    root.setLevel(level)
    for name in ("", "gunicorn.error", "gunicorn.access", "werkzeug"):
        install_filter(logging.getLogger(name))
