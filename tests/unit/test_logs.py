"""logs.py: every key-shaped string redacted to its display prefix, in messages, arguments,
tracebacks and stack info, on every handler the filter is installed on."""

from __future__ import annotations

import io
import logging
import uuid

import pytest

from logs import KeyRedactingFilter, install_filter, redact
from tests.helpers import a_key


def test_redact_keeps_display_prefix_alone():
    """genmb_sk_ plus exactly 4 characters is a display prefix and survives redaction."""
    text = "revoked prefix=genmb_sk_ABCD user=u1"
    assert redact(text) == text


@pytest.mark.parametrize("tail", ["E", "E-", "EFGH_ijkl", "x" * 28])
def test_redact_removes_anything_longer_than_prefix(tail):
    """Any key-shaped run longer than the display prefix is cut back to the prefix."""
    out = redact(f"got genmb_sk_ABCD{tail} here")
    assert f"genmb_sk_ABCD{tail}" not in out
    assert "genmb_sk_ABCD" in out
    assert out.endswith(" here")


def test_redact_handles_several_keys_in_one_string():
    """Every key in a string is redacted, not just the first."""
    first, second = a_key(), a_key()
    out = redact(f"{first},{second}")
    assert first not in out and second not in out
    assert first[:13] in out and second[:13] in out


@pytest.fixture
def captured():
    """A private logger with the redacting filter, writing formatted lines to a buffer."""
    stream = io.StringIO()
    logger = logging.getLogger(f"test.redact.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    install_filter(logger)
    yield logger, stream
    logger.removeHandler(handler)


def test_filter_redacts_message(captured):
    """A key inside the message text never reaches the output."""
    logger, stream = captured
    key = a_key()
    logger.warning(f"raw {key}")
    assert key not in stream.getvalue()
    assert key[:13] in stream.getvalue()


def test_filter_redacts_percent_args(captured):
    """A key passed as a %-argument is redacted after formatting."""
    logger, stream = captured
    key = a_key()
    logger.info("presented %s from %s", key, "1.2.3.4")
    out = stream.getvalue()
    assert key not in out
    assert "from 1.2.3.4" in out


def test_filter_redacts_dict_args(captured):
    """A key passed in a mapping argument (%(name)s style) is redacted."""
    logger, stream = captured
    key = a_key()
    logger.info("key=%(key)s ip=%(ip)s", {"key": key, "ip": "1.2.3.4"})
    out = stream.getvalue()
    assert key not in out
    assert "ip=1.2.3.4" in out


def test_filter_redacts_exception_traceback(captured):
    """A key in an exception message is redacted from the logged traceback."""
    logger, stream = captured
    key = a_key()
    try:
        raise ValueError(f"could not use {key}")
    except ValueError:
        logger.exception("request failed")
    out = stream.getvalue()
    assert "Traceback" in out and "ValueError" in out
    assert key not in out
    assert key[:13] in out


def test_filter_redacts_stack_info():
    """A key in a record's stack_info is redacted."""
    key = a_key()
    record = logging.LogRecord(
        "t",
        logging.INFO,
        __file__,
        1,
        "msg",
        None,
        None,
        sinfo=f"Stack (most recent call last):\n  use({key!r})",
    )
    assert KeyRedactingFilter().filter(record) is True
    assert key not in record.getMessage()  # the stack is folded into the one line
    assert key[:13] in record.getMessage() and record.stack_info is None


def test_filter_redacts_preformatted_exc_text():
    """A record that already carries exc_text (formatted elsewhere) is redacted too."""
    key = a_key()
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "msg", None, None)
    record.exc_text = f"Traceback...\nRuntimeError: {key}"
    KeyRedactingFilter().filter(record)
    assert key not in record.getMessage() and "RuntimeError" in record.getMessage()
    assert record.exc_text is None  # folded into the one line


def test_filter_survives_broken_format_string(captured):
    """A record whose args do not fit its format string is still logged, still redacted."""
    logger, stream = captured
    key = a_key()
    logger.info("%d items", key)
    out = stream.getvalue()
    assert out.strip()
    assert key not in out


def test_handler_filter_covers_propagated_child_records():
    """Records from a child logger, reaching the handler by propagation, are redacted."""
    stream = io.StringIO()
    parent = logging.getLogger(f"test.parent.{uuid.uuid4().hex}")
    parent.propagate = False
    handler = logging.StreamHandler(stream)
    parent.addHandler(handler)
    install_filter(parent)
    install_filter(parent)  # idempotent
    assert sum(isinstance(f, KeyRedactingFilter) for f in handler.filters) == 1
    child = logging.getLogger(parent.name + ".child")
    child.setLevel(logging.INFO)
    key = a_key()
    try:
        child.info("child saw %s", key)
    finally:
        parent.removeHandler(handler)
    assert "child saw" in stream.getvalue()
    assert key not in stream.getvalue()
