"""Security events (services/security_events.py): one log line per event, key=value, escaped."""

from __future__ import annotations

import logging

from services.security_events import log_event


def messages(caplog) -> list[tuple[int, str]]:
    """(level, message) of every genmb.security record."""
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "genmb.security"]


def test_fields_in_order_and_empty_ones_left_out(caplog):
    """`event k=v ...` in the caller's order; None and "" are not written at all."""
    with caplog.at_level(logging.INFO, logger="genmb.security"):
        log_event("auth.failed", reason="invalid_api_key", prefix="", key_id=None, ip="10.0.0.1")
    assert messages(caplog) == [(logging.INFO, "auth.failed reason=invalid_api_key ip=10.0.0.1")]


def test_control_characters_are_escaped(caplog):
    """A value cannot end the line: a client's newline becomes a visible \\n."""
    with caplog.at_level(logging.INFO, logger="genmb.security"):
        log_event("auth.cross_site_refused", path="/auth/x\nauth.login user_id=usr_forged")
    [(_, message)] = messages(caplog)
    assert "\n" not in message
    assert message == "auth.cross_site_refused path=/auth/x\\nauth.login user_id=usr_forged"


def test_level_is_the_callers(caplog):
    """A warning stays a warning (an unrecorded event, say)."""
    with caplog.at_level(logging.INFO, logger="genmb.security"):
        log_event("security_log.unrecorded", logging.WARNING, type="auth.login", count=0)
    assert messages(caplog) == [
        (logging.WARNING, "security_log.unrecorded type=auth.login count=0")
    ]
