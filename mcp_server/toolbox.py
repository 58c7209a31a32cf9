"""The @tool wrapper: what every MCP tool call does around the tool's own body.

A tool body is a plain function of the request's Principal and the tool's arguments, named as
the tool is (its name is written once: the function's). Around it the wrapper finds the
principal the gate authenticated, runs the body inside the Flask app's context, turns an
expected failure (a domain refusal, invalid arguments, the per-user limit, Redis unavailable)
into a tool error result, and logs one line per call. The SDK builds each tool's input and
output schemas from the signature it is handed: Context first, then the body's arguments.
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from marshmallow import ValidationError
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations

import metrics
from errors import api_error, domain_error
from mcp_server import PRINCIPAL_ENVIRON_KEY
from security.principal import Principal
from services import limits
from store.errors import UNAVAILABLE, StoreError

log = logging.getLogger("genmb.mcp")

# A tool's description: fixed text, or text made from the app's settings (costs, limits).
Description = str | Callable[[Mapping[str, Any]], str]


class ToolRefusal:
    """A refusal to report as a tool error: code, human message and extra details."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        self.code, self.message, self.details = code, message, details

    def result(self) -> CallToolResult:
        """The tool result: isError, "code: message" as text, {"error": {...}} as structure."""
        error = {"code": self.code, "message": self.message, **self.details}
        return CallToolResult(
            content=[TextContent(type="text", text=f"{self.code}: {self.message}")],
            structured_content={"error": error},
            is_error=True,
        )


def refusal_for(exc: Exception) -> ToolRefusal | None:
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
        error = api_error("service_unavailable")
        return ToolRefusal(error.code, error.message)
    return None


def principal_of(ctx: Context) -> Principal:
    """The principal the gate authenticated for this HTTP request."""
    request = ctx.request_context.request
    environ = getattr(request, "scope", {}).get("wsgi_environ") or {}
    principal = environ.get(PRINCIPAL_ENVIRON_KEY)
    if not isinstance(principal, Principal):  # only reachable if the SDK is called around the view
        raise RuntimeError("MCP request without an authenticated principal")
    return principal


@dataclass(frozen=True)
class Tool:
    """A tool body with what the client is told about it."""

    body: Callable[..., Any]
    title: str
    annotations: ToolAnnotations
    description: Description

    @property
    def name(self) -> str:
        """The tool's name: its body's."""
        return self.body.__name__

    def describe(self, config: Mapping[str, Any]) -> str:
        """The description, with the app's settings where it names them."""
        return self.description if isinstance(self.description, str) else self.description(config)


@dataclass
class Toolbox:
    """The tools, in order; installed on an MCPServer for one Flask app."""

    tools: list[Tool] = field(default_factory=list)

    def tool(
        self, title: str, annotations: ToolAnnotations, description: Description
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorate a tool body `(principal, **arguments) -> output` to serve it as a tool."""

        def register(body: Callable[..., Any]) -> Callable[..., Any]:
            self.tools.append(Tool(body, title, annotations, description))
            return body

        return register

    def install(self, server: MCPServer, flask_app: Flask) -> None:
        """Serve every tool on `server`, running as the request's principal in `flask_app`."""
        for tool in self.tools:
            server.tool(
                name=tool.name,
                title=tool.title,
                annotations=tool.annotations,
                description=tool.describe(flask_app.config),
            )(_bound(tool, flask_app))


def _log(tool: str, principal: Principal, outcome: str) -> None:
    log.info(
        "mcp.tool tool=%s user_id=%s key_id=%s outcome=%s",
        tool,
        principal.user_id,
        principal.key_id,
        outcome,
    )


def _bound(tool: Tool, flask_app: Flask) -> Callable[..., Any]:
    """The function the SDK calls: (ctx, **arguments), with the body's arguments' types."""

    def call(ctx: Context, **arguments: Any) -> Any:
        principal = principal_of(ctx)
        with flask_app.app_context():
            try:
                result = tool.body(principal, **arguments)
            except Exception as exc:
                refusal = refusal_for(exc)
                metrics.mcp_tool_call(tool.name, refusal.code if refusal else "internal_error")
                if refusal is None:
                    raise
                _log(tool.name, principal, refusal.code)
                return refusal.result()
        metrics.mcp_tool_call(tool.name, "ok")
        _log(tool.name, principal, "ok")
        return result

    # The SDK reads the signature (and type hints) to build the tool's schemas and to find
    # where the Context goes: the body's, with the principal replaced by the Context.
    hints = typing.get_type_hints(tool.body, include_extras=True)
    arguments = list(inspect.signature(tool.body).parameters.values())[1:]
    context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Context)
    typed = [parameter.replace(annotation=hints[parameter.name]) for parameter in arguments]
    call.__name__ = call.__qualname__ = tool.name
    call.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [context, *typed], return_annotation=hints["return"]
    )
    call.__annotations__ = {
        "ctx": Context,
        **{parameter.name: parameter.annotation for parameter in typed},
        "return": hints["return"],
    }
    return call
