"""Issue #15: GET /api/me answers without flask-smorest's response machinery, byte for byte
what MeSchema would have answered, and /openapi.json still documents it from MeSchema."""

from __future__ import annotations

import pytest
from flask import jsonify
from flask_smorest import Blueprint

from blueprints.account import MeSchema, me_body, me_bytes
from openapi import KEY_OR_SESSION, documentation_only
from security.principal import Principal
from store.gate import Identity
from tests.helpers import create_key, login

IDENTITIES = [
    (
        "api_key",
        Identity("usr_0123456789abcdef", "a@example.com", "pro", "key_0123456789abcdef", 0),
    ),
    ("session", Identity("usr_0123456789abcdef", "a@example.com", "pro", None, 17)),
    ("api_key", Identity("usr_1", "zoë.ünïcødé@exämple.com", "business", "key_1", 10_000)),
    ("api_key", Identity("usr_2", 'q"uote\\back\nslash</script>\u2028@x.io', "pro", "k", 5_000)),
    ("session", Identity("usr_3", "e@x.io", "free", None, 60)),  # over its allowance
    ("session", Identity("usr_4", "e@x.io", "retired-plan", None, 3)),  # unknown: limit 0
    ("api_key", Identity("", "", "pro", "", 2**53)),
]


@pytest.mark.parametrize(("method", "identity"), IDENTITIES)
def test_fast_body_is_the_schema_dump(fake_app, method, identity):
    """The same bytes as jsonify(MeSchema().dump(...)), which declares the same content type."""
    principal = Principal(identity, method, "token" if method == "session" else None)
    with fake_app.test_request_context("/api/me"):
        body = me_body(principal, fake_app.config["PLANS"])
        schema = jsonify(MeSchema().dump(body))
        assert me_bytes(body) == schema.get_data()
        assert schema.content_type == "application/json"  # what both paths declare


def test_live_answer_is_the_schema_dump(app, make_user):
    """Through the whole app, by key and by session: what the schema would have written."""
    user = make_user("pro")
    web = app.test_client()
    csrf = login(web, user.email)
    key = create_key(web, csrf)["key"]
    for response in (
        web.get("/api/me"),
        app.test_client().get("/api/me", headers={"Authorization": f"Bearer {key}"}),
    ):
        assert response.status_code == 200
        with app.test_request_context("/api/me"):
            assert response.data == jsonify(MeSchema().dump(response.json)).get_data()


def test_documentation_only_keeps_the_documentation():
    """A decorator applied for its documentation writes the same _apidoc as applied in full."""
    bp = Blueprint("probe", __name__)
    for decorator in (bp.response(200, MeSchema), bp.doc(security=KEY_OR_SESSION)):

        def view():
            return None

        kept = documentation_only(decorator)(view)
        assert kept is view
        assert kept._apidoc == decorator(lambda: None)._apidoc


def test_openapi_documents_me_from_the_schema(fake_app):
    """/openapi.json: GET /api/me's 200 is MeSchema, with its security and error statuses."""
    document = fake_app.test_client().get("/openapi.json").json
    operation = document["paths"]["/api/me"]["get"]
    assert operation["responses"]["200"] == {
        "description": "OK",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Me"}}},
    }
    assert set(operation["responses"]) == {"200", "401", "403", "421", "429", "503"}
    assert operation["security"] == KEY_OR_SESSION
    me = document["components"]["schemas"]["Me"]["properties"]
    assert set(me) == set(MeSchema().fields)
