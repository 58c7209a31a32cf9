"""The MCP tools: what an AI client holding an API key may do, acting as the key's owner.

Every tool runs the same code as the REST API: the store functions, the marshmallow schemas
(validation and output), services.jobs (credit charge and job record, atomically) and
services.limits (the per-user codegen/deploy limits, one bucket for REST and MCP).

The caller's identity comes from the gate, not from the MCP layer: blueprints/mcp.py puts the
request's Principal into the WSGI environ under PRINCIPAL_ENVIRON_KEY (a key no client header
can produce: headers arrive as HTTP_*), and the ASGI scope carries that environ here.
A refusal (insufficient credits, limit, unknown app, bad arguments) is a tool result with
isError set, the error code and message as text, and {"error": {...}} as structured content.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

from flask import Flask
from marshmallow import ValidationError
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field
from typing_extensions import TypedDict

import metrics
from config import app_caps
from errors import CATALOGUE, domain_error
from extensions import storage
from mcp_server import PRINCIPAL_ENVIRON_KEY
from schemas.apps import AppCreateSchema, AppSchema, CodegenSchema, JobSchema
from security.gate import Principal
from services import jobs, limits
from services.credits import summary
from store import apps
from store.errors import UNAVAILABLE, StoreError

log = logging.getLogger("genmb.mcp")

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


class ToolRefusal:
    """A refusal to report as a tool error: code, human message and extra details."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        self.code, self.message, self.details = code, message, details


def principal_of(ctx: Context) -> Principal:
    """The principal the gate authenticated for this HTTP request."""
    request = ctx.request_context.request
    environ = getattr(request, "scope", {}).get("wsgi_environ") or {}
    principal = environ.get(PRINCIPAL_ENVIRON_KEY)
    if not isinstance(principal, Principal):  # only reachable if the SDK is called around the view
        raise RuntimeError("MCP request without an authenticated principal")
    return principal


def _refusal(exc: Exception) -> ToolRefusal | None:
    """The tool error for an expected failure, or None for a bug (the SDK hides those)."""
    if isinstance(exc, StoreError) and (error := domain_error(exc)) is not None:
        return ToolRefusal(error.code, error.message)
    if isinstance(exc, ValidationError):
        return ToolRefusal("validation_error", "The arguments are invalid.", fields=exc.messages)
    if isinstance(exc, limits.EndpointLimited):
        return ToolRefusal(
            "rate_limited", exc.args[0], limit=exc.limit, retry_after=exc.retry_after
        )
    if isinstance(exc, UNAVAILABLE):
        metrics.redis_error(exc)
        return ToolRefusal("service_unavailable", CATALOGUE["service_unavailable"].message)
    return None


def _tool_error(refusal: ToolRefusal) -> CallToolResult:
    error = {"code": refusal.code, "message": refusal.message, **refusal.details}
    return CallToolResult(
        content=[TextContent(type="text", text=f"{refusal.code}: {refusal.message}")],
        structured_content={"error": error},
        is_error=True,
    )


def build_server(flask_app: Flask) -> MCPServer:
    """The MCPServer with the GenMB tools, bound to one Flask app (its settings and store)."""
    config = flask_app.config
    server: MCPServer = MCPServer(
        name="genmb",
        title="GenMB",
        version=config.get("API_VERSION", "1.0"),
        instructions=INSTRUCTIONS,
        # No subscriptions/listen: at 2026-07-28 it is an endless event stream, which would
        # pin a sync worker; the tool list never changes at run time anyway.
        subscriptions=False,
    )

    def run(tool: str, ctx: Context, action: Callable[[Principal], Any]) -> Any:
        """Run one tool call as the request's principal, inside the Flask app's context."""
        principal = principal_of(ctx)
        with flask_app.app_context():
            try:
                result = action(principal)
            except Exception as exc:
                refusal = _refusal(exc)
                metrics.mcp_tool_call(tool, refusal.code if refusal else "internal_error")
                if refusal is None:
                    raise
                log.info(
                    "mcp.tool tool=%s user_id=%s key_id=%s outcome=%s",
                    tool,
                    principal.user_id,
                    principal.key_id,
                    refusal.code,
                )
                return _tool_error(refusal)
        metrics.mcp_tool_call(tool, "ok")
        log.info(
            "mcp.tool tool=%s user_id=%s key_id=%s outcome=ok",
            tool,
            principal.user_id,
            principal.key_id,
        )
        return result

    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(
        name="list_apps",
        title="List apps",
        annotations=read_only,
        description="List the apps in the account that owns this API key, oldest first, each "
        "with its id, name and creation time. Free.",
    )
    def list_apps(ctx: Context) -> AppList:
        return run(
            "list_apps",
            ctx,
            lambda p: {
                "apps": AppSchema(many=True).dump(apps.list_for_user(storage(), p.user_id)),
            },
        )

    @server.tool(
        name="create_app",
        title="Create an app",
        annotations=ToolAnnotations(
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=False,
        ),
        description="Create a new, empty app in the account and return it; its id is what "
        "start_codegen and start_deploy take. Free.",
    )
    def create_app(
        ctx: Context,
        name: Annotated[
            str,
            Field(
                description="Display name of the app, 1-100 characters.",
                min_length=1,
                max_length=100,
            ),
        ],
    ) -> AppInfo:
        def action(p: Principal) -> Any:
            body = AppCreateSchema().load({"name": name})
            return AppSchema().dump(
                apps.create(storage(), p.user_id, body["name"], app_caps(config["PLANS"]))
            )

        return run("create_app", ctx, action)

    job_annotations = ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
    )

    @server.tool(
        name="start_codegen",
        title="Generate code",
        annotations=job_annotations,
        description=f"Start a code generation job for one of the account's apps from a "
        f"natural-language prompt. Costs {config['COST_CODEGEN']} credits per job "
        f"(nothing is charged if it is refused) and is limited to "
        f"{config['RATELIMIT_CODEGEN']} per user, shared with the REST API. "
        f"Returns the queued job.",
    )
    def start_codegen(
        ctx: Context,
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
        def action(p: Principal) -> Any:
            body = CodegenSchema().load({"prompt": prompt})
            limits.hit("codegen", p.user_id)
            job = jobs.start(p, app_id, "codegen", prompt=body["prompt"])
            return {"job": JobSchema().dump(job)}

        return run("start_codegen", ctx, action)

    @server.tool(
        name="start_deploy",
        title="Deploy an app",
        annotations=job_annotations,
        description=f"Start a deploy job for one of the account's apps. Costs "
        f"{config['COST_DEPLOY']} credits per job (nothing is charged if it is "
        f"refused) and is limited to {config['RATELIMIT_DEPLOY']} per user, shared "
        f"with the REST API. Returns the queued job.",
    )
    def start_deploy(ctx: Context, app_id: AppId) -> JobResult:
        def action(p: Principal) -> Any:
            limits.hit("deploy", p.user_id)
            return {"job": JobSchema().dump(jobs.start(p, app_id, "deploy"))}

        return run("start_deploy", ctx, action)

    @server.tool(
        name="get_usage",
        title="Plan and credits",
        annotations=read_only,
        description="Report the account's plan and this month's credits: the monthly limit, "
        "how many are used and remaining, and when they reset (UTC). Free.",
    )
    def get_usage(ctx: Context) -> Usage:
        return run(
            "get_usage",
            ctx,
            lambda p: {
                "email": p.identity.email,
                "plan": p.identity.plan,
                "credits": summary(p.identity.plan, p.identity.credits_used),
            },
        )

    return server
