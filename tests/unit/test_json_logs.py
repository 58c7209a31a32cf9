"""Issue #17, item 2: LOG_FORMAT=json, one JSON object per line, redacted and escaped; the
default stays the human-readable line."""

from __future__ import annotations

import io
import json
import logging

import pytest

import logs
from tests.helpers import make_app

KEY = "genmb_sk_" + "Zq8w" + "x" * 28


@pytest.fixture
def captured():
    """The app's stdout handler (logs.configure_logging) pointed at a buffer."""
    logs.configure_logging()
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_genmb", False))
    buffer = io.StringIO()
    old = handler.setStream(buffer)
    yield buffer
    handler.setStream(old)
    logs.configure_logging()  # text again for the tests after this one


def _records(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_security_event_is_one_json_object_with_its_fields(captured):
    """An unknown key: `auth.failed` with reason, prefix, ip and path as fields; the key
    redacted to its display prefix; a newline and U+2028 in the path escaped, on one line."""
    app = make_app("memory://", LOG_FORMAT="json")
    path = "/api/x%0a2026-01-01%20INFO%20fake%20line%E2%80%A8" + KEY  # decoded by the server
    app.test_client().get(path, headers={"Authorization": f"Bearer {KEY}"})
    text = captured.getvalue()
    assert KEY not in text and "x" * 28 not in text
    events = [r for r in _records(captured) if r["event"] == "auth.failed"]
    assert len(events) == 1, text
    event = events[0]
    assert set(event) == {
        "time",
        "level",
        "logger",
        "pid",
        "event",
        "reason",
        "prefix",
        "ip",
        "path",
    }
    assert event["level"] == "info" and event["logger"] == "genmb.security"
    assert event["reason"] == "invalid_api_key" and event["prefix"] == "genmb_sk_Zq8w"
    assert event["time"].endswith("+00:00")
    assert "\\n" in event["path"] and "\n" not in event["path"]
    assert "\\u2028" in event["path"] and "genmb_sk_Zq8w…[redacted]" in event["path"]
    assert len(text.splitlines()) == len(_records(captured))


def test_fields_come_from_the_code_not_the_message():
    """A value holding " key=value" stays inside its field; a format without fields, or one
    that is not an event, has none."""
    found = logs.event_fields("auth.failed ip=%s path=%s", ("10.0.0.1", "/a ip=6.6.6.6"))
    assert found == ("auth.failed", {"ip": "10.0.0.1", "path": "/a ip=6.6.6.6"})
    literal = logs.event_fields("api_key.revoked reason=leaked key_id=%s", ("key_1",))
    assert literal == ("api_key.revoked", {"reason": "leaked", "key_id": "key_1"})
    assert logs.event_fields("replicas=%d/%d", (1, 2)) is None  # no event name first
    assert logs.event_fields("storage unavailable: %s", ("X",)) is None
    assert logs.event_fields("auth.failed ip=%s", ()) is None  # arguments do not match
    assert logs.event_fields("auth.failed time=%s", ("forged",)) is None  # a reserved name
    two = logs.event_fields("x.y replicas=%d/%d", (1, 2))
    assert two == ("x.y", {"replicas": "1/2"})


def test_a_traceback_stays_on_its_line(captured):
    """An exception logged in json mode: one object, the traceback folded into `event`."""
    logs.configure_logging(log_format="json")
    try:
        raise ValueError(f"boom {KEY}")
    except ValueError:
        logging.getLogger("genmb.test").exception("failed\nbadly")
    (record,) = _records(captured)
    assert record["level"] == "error" and "Traceback" in record["event"]
    assert KEY not in captured.getvalue()


def test_default_is_the_human_readable_line(captured):
    """Without LOG_FORMAT: the text line, as before."""
    make_app("memory://")
    logging.getLogger("genmb.security").info("auth.failed reason=%s", "invalid_api_key")
    line = captured.getvalue().strip().splitlines()[-1]
    assert line.endswith("genmb.security: auth.failed reason=invalid_api_key")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
