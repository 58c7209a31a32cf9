"""Fuzzing from the OpenAPI document (/openapi.json) with schemathesis, in-process against the
WSGI app on the real redis-server.

For every documented operation, schema-valid (positive) and, where it takes a body, invalid
(negative) requests, each checked by schemathesis's standard checks: no server error, status
code documented, content type and body match the document, documented headers present,
invalid data refused, valid data accepted, and declared authentication really enforced
(ignored_auth sends the case again without credentials and with wrong ones).

- authenticated: the credentials the operation declares (an API key, or the session cookie
  with its X-CSRF-Token for key management);
- unauthenticated: no credentials; every operation that declares one must answer 401.

Example counts are bounded (FUZZ_MAX_EXAMPLES, default 50) and generation is derandomized, so
the run is fast and repeatable; a deeper local run: FUZZ_MAX_EXAMPLES=500 make test
PYTEST_ARGS=tests/live/test_fuzz.py. What the fuzzing found and what was done: docs/deploy.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app
from extensions import SCHEME_BEARER, SCHEME_SESSION
from security import csrf
from store import apikeys, apps, sessions, users
from tests.helpers import FAST_HASH, PASSWORD, make_app

pytestmark = pytest.mark.integration

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "50"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    positive_data_acceptance,
]
METHODS = ("get", "post", "put", "patch", "delete")


def _document() -> dict[str, Any]:
    """/openapi.json of an app on the embedded store (the document needs no Redis)."""
    app = create_app({"REDIS_URL": "memory://", "TESTING": True, "SECRET_KEY": "doc"})
    return app.test_client().get("/openapi.json").get_json()


DOCUMENT = _document()
OPERATIONS = {
    f"{method.upper()} {path}": operation
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
    if method in METHODS
}


def _requires_credentials(label: str) -> bool:
    """True when every security alternative of the operation names a credential."""
    security = OPERATIONS[label].get("security", [])
    return bool(security) and all(requirement for requirement in security)


def _takes_body(label: str) -> bool:
    return "requestBody" in OPERATIONS[label]


@dataclass
class Account:
    """A pro user with an API key, a session (and its CSRF token), an app."""

    key: str
    key_id: str
    session: str
    csrf: str
    app_id: str

    def credentials(self, label: str) -> dict[str, Any]:
        """Headers and cookies for the credential the operation declares first."""
        first = (OPERATIONS[label].get("security") or [{}])[0]
        if SCHEME_BEARER in first:
            return {"headers": {"Authorization": f"Bearer {self.key}"}}
        if SCHEME_SESSION in first:
            return {
                "headers": {"X-CSRF-Token": self.csrf},
                "cookies": {"genmb_session": self.session},
            }
        return {}

    def path_parameters(self, label: str) -> dict[str, str]:
        """Ids that exist, so that positive cases also reach the views' success paths."""
        path = label.split(" ", 1)[1]
        return {
            name: value
            for name, value in (("app_id", self.app_id), ("key_id", self.key_id))
            if "{" + name + "}" in path
        }


@pytest.fixture
def fuzz_app(redis_url: str):
    """The app on the emptied real Redis; the per-IP limit out of the way of the fuzzer."""
    return make_app(redis_url, RATELIMIT_GLOBAL="100000 per minute")


@pytest.fixture
def account(fuzz_app, storage) -> Account:
    """A fresh pro account with a key, a session and an app."""
    user = users.create(storage, "fuzz@example.test", PASSWORD, "pro", FAST_HASH)
    info, raw = apikeys.create(storage, user.id, "fuzz", 5, ["pro", "business"])
    token = sessions.create(storage, user.id, 3600)
    app = apps.create(storage, user.id, "fuzzed app")
    with fuzz_app.app_context():
        token_csrf = csrf.token_for(token)
    return Account(raw, info.id, token, token_csrf, app.id)


def _fuzz(
    fuzz_app,
    label: str,
    mode: GenerationMode,
    call: Callable[[Any], None],
    fixed: dict[str, str] | None = None,
) -> None:
    """Run `call` on up to MAX_EXAMPLES cases of one operation (and the fixed ids, if any)."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app)
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label
    strategy = operation.as_strategy(generation_mode=mode)
    if fixed:
        strategy = st.one_of(
            strategy, operation.as_strategy(generation_mode=mode, path_parameters=fixed)
        )

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    def run(case: Any) -> None:
        call(case)

    run()


def _modes(label: str) -> list[GenerationMode]:
    return [GenerationMode.POSITIVE, *([GenerationMode.NEGATIVE] if _takes_body(label) else [])]


@pytest.mark.parametrize("label", OPERATIONS)
def test_fuzz_authenticated(label: str, fuzz_app, account: Account) -> None:
    """With the declared credential: the standard checks, and auth really enforced."""
    credentials = account.credentials(label)
    checks = [*CHECKS, *([ignored_auth] if _requires_credentials(label) else [])]
    for mode in _modes(label):
        _fuzz(
            fuzz_app,
            label,
            mode,
            lambda case: case.call_and_validate(checks=checks, **credentials),
            account.path_parameters(label) if mode == GenerationMode.POSITIVE else None,
        )


@pytest.mark.parametrize("label", OPERATIONS)
def test_fuzz_unauthenticated(label: str, fuzz_app, account: Account) -> None:
    """Without credentials: the standard checks, and a 401 wherever a credential is declared."""
    refused = _requires_credentials(label)

    def call(case: Any) -> None:
        response = case.call_and_validate(checks=CHECKS)
        if refused:
            assert response.status_code == 401, (label, response.status_code, response.text)
            assert response.json()["error"]["code"] in (
                "missing_credentials",
                "invalid_api_key",
                "not_logged_in",
            )

    for mode in _modes(label):
        _fuzz(fuzz_app, label, mode, call, account.path_parameters(label))


def test_document_declares_credentials_and_error_envelope() -> None:
    """Every /api operation declares its credentials; every error response is the envelope."""
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert set(schemes) == {"apiKeyBearer", "apiKeyHeader", "session", "csrfToken"}
    assert schemes["apiKeyHeader"]["name"] == "X-MCP-API-Key"
    for label, operation in OPERATIONS.items():
        path = label.split(" ", 1)[1]
        if path.startswith("/api/"):
            assert _requires_credentials(label), label
        assert "default" not in operation["responses"], label
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                ref = (
                    response.get("$ref")
                    or response["content"]["application/json"]["schema"]["$ref"]
                )
                if ref.startswith("#/components/responses/"):
                    ref = DOCUMENT["components"]["responses"][ref.rsplit("/", 1)[1]]["content"][
                        "application/json"
                    ]["schema"]["$ref"]
                assert ref == "#/components/schemas/Error", (label, status)
        # The probes are not rate limited: no 429 there. /healthz is liveness: it never asks
        # Redis, so it has no 503 either; /readyz answers 503 while Redis cannot serve.
        expected = {"/healthz": (), "/readyz": ("503",)}.get(path, ("429", "503"))
        for status in expected:
            assert status in operation["responses"], (label, status)
        if path == "/healthz":
            assert "503" not in operation["responses"], label
    error = DOCUMENT["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
