"""Issue 16: the MCP tools' one wrapper (mcp_server/toolbox.py), their outputs against the
REST schemas, and their billable descriptions from config.BILLABLE_ACTIONS."""

from __future__ import annotations

import asyncio
import inspect
import typing
from types import SimpleNamespace

import pytest
from marshmallow import Schema, ValidationError, fields
from mcp.server.mcpserver import Context

import config
import metrics
from app import create_app
from mcp_server import tools
from mcp_server.toolbox import refusal_for
from schemas.account import CreditsSchema, MeSchema
from schemas.apps import AppListSchema, AppSchema, JobEnvelopeSchema, JobSchema
from services import jobs, limits
from store.errors import UNAVAILABLE, KeyLimitReached, NotFound

# Each tool output type, the REST schema it mirrors, and the schema's REST-only fields.
OUTPUTS: list[tuple[type, type[Schema], set[str]]] = [
    (tools.AppInfo, AppSchema, set()),
    (tools.AppList, AppListSchema, {"next_cursor"}),  # list_apps answers in one page
    (tools.JobInfo, JobSchema, set()),
    (tools.JobResult, JobEnvelopeSchema, set()),
    (tools.Credits, CreditsSchema, set()),
    (tools.Usage, MeSchema, {"id", "auth"}),  # the tool is about plan and credits
]
SCALARS = {fields.String: str, fields.Integer: int}


def _app(**overrides):
    return create_app({"REDIS_URL": "memory://", "TESTING": True, "SECRET_KEY": "x", **overrides})


def _listed(app) -> dict:
    server = tools.build_server(app)
    return {tool.name: tool for tool in asyncio.run(server.list_tools())}


def _matches(typed: type, schema: Schema, rest_only: set[str]) -> None:
    """Same field names, and each field of the same kind (nested ones compared in turn)."""
    hints = typing.get_type_hints(typed)
    assert set(hints) == set(schema.fields) - rest_only, typed.__name__
    for name, hint in hints.items():
        field = schema.fields[name]
        if isinstance(field, fields.List):
            assert typing.get_origin(hint) is list, (typed.__name__, name)
            hint, field = typing.get_args(hint)[0], field.inner
        if isinstance(field, fields.Nested):
            _matches(hint, field.schema, set())
        else:
            assert SCALARS[type(field)] is hint, (typed.__name__, name)


@pytest.mark.parametrize(
    "typed, schema, rest_only", OUTPUTS, ids=lambda v: getattr(v, "__name__", "")
)
def test_each_tool_output_matches_its_rest_schema(typed, schema, rest_only):
    """A field added to a REST schema (or a TypedDict) alone fails here."""
    _matches(typed, schema(), rest_only)


def test_every_tool_output_is_paired_with_a_schema():
    """No tool returns a type without its REST schema in OUTPUTS."""
    paired = {typed for typed, _, _ in OUTPUTS}
    for tool in tools.toolbox.tools:
        assert typing.get_type_hints(tool.body)["return"] in paired, tool.name


def test_tool_names_are_written_once():
    """Each tool is served under its body's name, with the principal replaced by a Context."""
    listed = _listed(_app())
    assert list(listed) == [tool.body.__name__ for tool in tools.toolbox.tools]
    assert list(listed) == ["list_apps", "create_app", "start_codegen", "start_deploy", "get_usage"]
    assert set(listed["start_codegen"].input_schema["properties"]) == {"app_id", "prompt"}
    assert listed["list_apps"].input_schema["properties"] == {}


def test_billable_descriptions_come_from_the_actions_table(monkeypatch):
    """What the action does from the table; its cost and limit from the app's settings."""
    monkeypatch.setitem(
        config.BILLABLE_ACTIONS,
        "deploy",
        config.BillableAction("deploy", "Ship it somewhere.", cost=5, limit="5 per minute"),
    )
    listed = _listed(_app(COST_CODEGEN=3, RATELIMIT_CODEGEN="2 per hour", COST_DEPLOY=9))
    codegen = listed["start_codegen"].description
    assert codegen.startswith(config.BILLABLE_ACTIONS["codegen"].description)
    assert "Costs 3 credits per job" in codegen and "limited to 2 per hour per user" in codegen
    deploy = listed["start_deploy"].description
    assert deploy.startswith("Ship it somewhere. Costs 9 credits per job"), deploy


def test_an_action_added_to_the_table_has_its_limit_and_cost(monkeypatch):
    """services.limits and services.jobs read the table, not lists of their own."""
    publish = config.BillableAction("publish", "Publish.", cost=2, limit="1 per day")
    monkeypatch.setitem(config.BILLABLE_ACTIONS, "publish", publish)
    charged = {}

    def start_job(_storage, _user, _app, kind, cost, *_rest):
        charged[kind] = cost
        return SimpleNamespace(credits=cost)  # what metrics.counts_jobs reads of a job

    monkeypatch.setattr(jobs.apps, "start_job", start_job)
    # METRICS off: "publish" is an action of this test's table only, and the run's final
    # label scan (tests/live/test_metrics.py) allows only the real table's actions.
    monkeypatch.setattr(metrics, "_enabled", metrics._enabled)  # restored after the test
    app = _app(RATELIMIT_PUBLISH="7 per hour", COST_PUBLISH=4, METRICS="off")
    principal = SimpleNamespace(user_id="usr_1", identity=SimpleNamespace(plan="pro"))
    with app.app_context():
        assert limits.limit_string("publish") == "7 per hour"
        assert limits.limit_string("codegen") == app.config["RATELIMIT_CODEGEN"]
        jobs.start(principal, "app_0123456789abcdef", "publish")
        jobs.start(principal, "app_0123456789abcdef", "deploy")
    assert charged == {"publish": 4, "deploy": app.config["COST_DEPLOY"]}


@pytest.mark.parametrize("kind", UNAVAILABLE, ids=lambda k: k.__name__)
def test_every_redis_outage_is_service_unavailable(kind):
    """The one UNAVAILABLE tuple: each member is a service_unavailable tool error."""
    refusal = refusal_for(kind.__new__(kind))
    assert refusal is not None and refusal.code == "service_unavailable"


def test_refusals_map_like_the_rest_api():
    """Domain refusals by their catalogued code; validation with its fields; bugs are None."""
    with _app().app_context():
        assert refusal_for(NotFound("x")).code == "not_found"
        assert refusal_for(KeyLimitReached("x")).code == "key_limit_reached"
    invalid = refusal_for(ValidationError({"name": ["Too long."]}))
    assert invalid.code == "validation_error" and invalid.details == {
        "fields": {"name": ["Too long."]}
    }
    assert refusal_for(ValueError("a bug")) is None
    result = refusal_for(NotFound("x")).result()
    assert result.is_error and result.structured_content["error"]["code"] == "not_found"


def test_the_sdk_is_handed_the_context_first():
    """The wrapper's signature: ctx (a Context), then exactly the body's arguments."""
    app = _app()
    server = tools.build_server(app)
    tool = server._tool_manager.get_tool("create_app")
    parameters = inspect.signature(tool.fn).parameters
    assert list(parameters) == ["ctx", "name"]
    assert parameters["ctx"].annotation is Context
    assert tool.context_kwarg == "ctx"
