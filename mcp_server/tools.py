"""The MCP tools: what an AI client holding an API key may do, acting as the key's owner.

Every tool runs the same code as the REST API: the store functions, the marshmallow schemas
(validation and output), services.jobs (credit charge and job record, atomically) and
services.limits (the per-user codegen/deploy limits, one bucket for REST and MCP).

The caller's identity comes from the gate, not from the MCP layer: blueprints/mcp.py puts the
request's Principal into the WSGI environ under PRINCIPAL_ENVIRON_KEY (a key no client header
can produce: headers arrive as HTTP_*), and the ASGI scope carries that environ here.
A refusal (insufficient credits, limit, unknown app, bad arguments) is a tool result with
isError set, the error code and message as text, and {"error": {...}} as structured content
(mcp_server/toolbox.py: the wrapper every tool runs in).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

from flask import Flask, current_app
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field
from typing_extensions import TypedDict

from config import BILLABLE_ACTIONS, app_caps
from extensions import storage
from mcp_server.toolbox import Toolbox
from schemas.apps import AppCreateSchema, AppSchema, CodegenSchema, JobSchema
from security.principal import Principal
from services import jobs, limits
from services.credits import summary
from store import apps

INSTRUCTIONS = (
    "GenMB builds and deploys apps. These tools act as the owner of the API key: list_apps and "
    "create_app manage apps; start_codegen and start_deploy start jobs that cost credits; "
    "get_usage reports the plan and the credits left this month."
)


class AppInfo(TypedDict):
    """An app, as GET /api/apps/<id> shows it."""

    id: str
    name: str
    created_at: str


class AppList(TypedDict):
    """The account's apps, oldest first."""

    apps: list[AppInfo]


class JobInfo(TypedDict):
    """A recorded codegen or deploy job."""

    id: str
    app_id: str
    kind: str
    status: str
    credits: int
    created_at: str


class JobResult(TypedDict):
    """The job that was started."""

    job: JobInfo


class Credits(TypedDict):
    """This month's credits (calendar month, UTC)."""

    limit: int
    used: int
    remaining: int
    resets_at: str


class Usage(TypedDict):
    """The account's plan and this month's credits."""

    email: str
    plan: str
    credits: Credits


# Ids have one shape (store.clock.new_id): the store refuses anything else as not_found
# before any Redis call, so a secret pasted by mistake as an id never reaches Redis. (No
# schema pattern here: the SDK's validation error would echo the value back to the client.)
AppId = Annotated[
    str,
    Field(
        description="The app's id (app_ and 16 hex digits), as list_apps or create_app return it."
    ),
]


toolbox = Toolbox()
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
CREATES = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
STARTS_A_JOB = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)


def billable(action: str) -> Callable[[Mapping[str, Any]], str]:
    """A billable tool's description: what the action does (config.BILLABLE_ACTIONS), then
    what it costs and its limit, as the app is configured."""

    def describe(config: Mapping[str, Any]) -> str:
        spec = BILLABLE_ACTIONS[action]
        return (
            f"{spec.description} Costs {config[spec.cost_setting]} credits per job (nothing is "
            f"charged if it is refused) and is limited to {config[spec.limit_setting]} per user, "
            "shared with the REST API. Returns the queued job."
        )

    return describe


def _start_job(p: Principal, action: str, app_id: str, prompt: str | None = None) -> Any:
    """Count the per-user limit, then charge and record the job (arguments checked first)."""
    limits.hit(action, p.user_id)
    return {"job": JobSchema().dump(jobs.start(p, app_id, action, prompt=prompt))}


@toolbox.tool(
    "List apps",
    READ_ONLY,
    "List the apps in the account that owns this API key, oldest first, each with its id, "
    "name and creation time. Free.",
)
def list_apps(p: Principal) -> AppList:
    """The account's apps, oldest first."""
    return {"apps": AppSchema(many=True).dump(apps.list_for_user(storage(), p.user_id))}


@toolbox.tool(
    "Create an app",
    CREATES,
    "Create a new, empty app in the account and return it; its id is what start_codegen and "
    "start_deploy take. Free.",
)
def create_app(
    p: Principal,
    name: Annotated[
        str,
        Field(
            description="Display name of the app, 1-100 characters.",
            min_length=1,
            max_length=100,
        ),
    ],
) -> AppInfo:
    """A new app in the account, within the plan's app cap."""
    body = AppCreateSchema().load({"name": name})
    caps = app_caps(current_app.config["PLANS"])
    return AppSchema().dump(apps.create(storage(), p.user_id, body["name"], caps))


@toolbox.tool("Generate code", STARTS_A_JOB, billable("codegen"))
def start_codegen(
    p: Principal,
    app_id: AppId,
    prompt: Annotated[
        str,
        Field(
            description="What to build or change, in plain words (1-20000 characters).",
            min_length=1,
            max_length=20000,
        ),
    ],
) -> JobResult:
    """A code generation job for one of the account's apps."""
    body = CodegenSchema().load({"prompt": prompt})
    return _start_job(p, "codegen", app_id, prompt=body["prompt"])


@toolbox.tool("Deploy an app", STARTS_A_JOB, billable("deploy"))
def start_deploy(p: Principal, app_id: AppId) -> JobResult:
    """A deploy job for one of the account's apps."""
    return _start_job(p, "deploy", app_id)


@toolbox.tool(
    "Plan and credits",
    READ_ONLY,
    "Report the account's plan and this month's credits: the monthly limit, how many are "
    "used and remaining, and when they reset (UTC). Free.",
)
def get_usage(p: Principal) -> Usage:
    """The account's plan and this month's credits."""
    ident = p.identity
    return {
        "email": ident.email,
        "plan": ident.plan,
        "credits": summary(current_app.config["PLANS"], ident.plan, ident.credits_used),
    }


def build_server(flask_app: Flask) -> MCPServer:
    """The MCPServer with the GenMB tools, bound to one Flask app (its settings and store)."""
    server: MCPServer = MCPServer(
        name="genmb",
        title="GenMB",
        version=flask_app.config.get("API_VERSION", "1.0"),
        instructions=INSTRUCTIONS,
        # No subscriptions/listen: at 2026-07-28 it is an endless event stream, which would
        # pin a sync worker; the tool list never changes at run time anyway.
        subscriptions=False,
    )
    toolbox.install(server, flask_app)
    return server
