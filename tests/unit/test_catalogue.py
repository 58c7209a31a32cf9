"""Issue 16: every error code defined once (errors.CATALOGUE), raised by name, and the
OpenAPI error descriptions generated from it, with the app's own MAX_CONTENT_LENGTH."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from werkzeug.exceptions import RequestEntityTooLarge

import errors
import openapi
from app import create_app
from errors import CATALOGUE, ErrorKind, api_error, http_exception_response, payload_too_large

ROOT = Path(__file__).resolve().parents[2]
APPLICATION = [
    path
    for folder in ("", "blueprints", "security", "services", "store", "mcp_server", "schemas")
    for path in sorted((ROOT / folder).glob("*.py"))
]


def _calls(name: str) -> list[tuple[str, ast.Call]]:
    """Every call of `name` (a plain name or an attribute) in the application's modules."""
    found = []
    for path in APPLICATION:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if called == name:
                    found.append((str(path.relative_to(ROOT)), node))
    return found


def _app(**overrides):
    config = {"REDIS_URL": "memory://", "TESTING": True, "SECRET_KEY": "x", **overrides}
    return create_app(config)


def test_no_error_is_written_out_by_hand():
    """No ApiError(<status>, "<code>", ...) outside errors.py: errors are raised by name."""
    literal = [f"{path}:{call.lineno}" for path, call in _calls("ApiError") if path != "errors.py"]
    assert literal == []


def test_every_code_raised_by_name_is_catalogued():
    """api_error("<code>") names a catalogued code everywhere (a typo would be a KeyError
    at the worst moment: while answering an error)."""
    named = {
        call.args[0].value
        for _, call in _calls("api_error")
        if call.args and isinstance(call.args[0], ast.Constant)
    }
    assert {"csrf_failed", "session_required", "invalid_signature"} <= named
    assert named - set(CATALOGUE) == set()
    mapped = {*errors.DOMAIN_CODES.values(), *errors.HTTP_STATUS_CODES.values()}
    assert mapped - set(CATALOGUE) == set()


def test_each_documented_status_lists_every_code_it_can_mean():
    """A status's shared description is built from the catalogue: every code of it, each
    with its `when` (codes only answered outside /openapi.json left out)."""
    for code, kind in CATALOGUE.items():
        for status, when in kind.occasions():
            text = openapi.DESCRIPTIONS[status]
            if code in openapi.UNDOCUMENTED_CODES:
                assert f"`{code}`" not in text
            else:
                assert f"`{code}`: {when}" in text, (code, status)


def test_a_changed_when_changes_the_document(monkeypatch):
    """The description follows the catalogue: no second copy of the text to forget."""
    changed = ErrorKind(409, "key_rolling", "m", "a brand-new explanation")
    monkeypatch.setitem(CATALOGUE, "key_rolling", changed)
    assert openapi.describe(409, ["key_rolling"]) == "`key_rolling`: a brand-new explanation."


def test_a_named_code_documents_only_itself():
    """A view naming a code of a status lists that code alone under it."""
    statuses, texts = openapi._statuses_and_texts(("not_found", "email_taken", 429), None)
    assert statuses == [404, 409, 429]
    assert texts[409] == openapi.describe(409, ["email_taken"])
    assert "key_limit_reached" not in texts[409]
    assert texts[429] == openapi.DESCRIPTIONS[429]
    overridden = openapi._statuses_and_texts((404,), {404: "custom"})[1]
    assert overridden == {404: "custom"}


def test_a_status_a_code_never_has_is_refused():
    """api_error(status=...) only picks among the statuses the catalogue gives the code."""
    assert api_error("validation_error", status=422).status == 422
    assert api_error("validation_error").status == 400
    with pytest.raises(ValueError):
        api_error("not_found", status=500)


def _too_large_descriptions(app) -> set[str]:
    document = app.test_client().get("/openapi.json").get_json()
    return {
        operation["responses"]["413"]["description"]
        for methods in document["paths"].values()
        for operation in methods.values()
        if isinstance(operation, dict) and "413" in operation.get("responses", {})
    }


@pytest.mark.parametrize("limit", [2048, 5 * 1024 * 1024])
def test_max_content_length_is_what_the_413s_say(limit):
    """Issue 16, bug 3: the messages and /openapi.json say the configured limit, not 1 MiB."""
    app = _app(MAX_CONTENT_LENGTH=limit)
    texts = _too_large_descriptions(app)
    assert texts and all(f"over {limit} bytes" in text for text in texts), texts
    with app.test_request_context("/api/apps", method="POST"):
        assert payload_too_large().message == f"Request body is larger than {limit} bytes."
        werkzeug = http_exception_response(RequestEntityTooLarge()).get_json()["error"]
        assert werkzeug == {
            "code": "payload_too_large",
            "message": f"Request body is larger than {limit} bytes.",
        }
    # The body check before any view (security/body.py) says it too.
    refused = app.test_client().post(
        "/auth/signup", data=b"{" + b" " * limit + b"}", content_type="application/json"
    )
    assert refused.status_code == 413 and refused.get_json()["error"] == {
        "code": "payload_too_large",
        "message": f"Request body is larger than {limit} bytes.",
    }
    # The next app's document has its own limit: the shared view docs were not rewritten.
    assert all("over 1048576 bytes" in text for text in _too_large_descriptions(_app()))


def test_the_secret_scanning_cap_is_what_its_413_says():
    """The partner endpoint's own cap (SECRET_SCANNING_MAX_BYTES) is named in its 413."""
    app = _app(SECRET_SCANNING_MAX_BYTES=1024)
    response = app.test_client().post("/api/secret-scanning/github", data=b"[" + b" " * 2048 + b"]")
    assert response.status_code == 413
    assert response.get_json()["error"] == {
        "code": "payload_too_large",
        "message": "Request body is larger than 1024 bytes.",
    }


def test_groups_may_overlap():
    """A code in two groups of one view is documented once, in catalogue order."""
    _, texts = openapi._statuses_and_texts(
        (openapi.SESSION_ONLY_WRITE, "csrf_failed", "plan_required"), None
    )
    assert texts[403].count("`csrf_failed`") == 1
    codes = [line.split("`")[1] for line in texts[403].splitlines()]
    assert codes == sorted(codes, key=list(CATALOGUE).index)
