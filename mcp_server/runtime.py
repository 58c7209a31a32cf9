"""One MCP runtime per worker process: an event loop thread, the SDK's session manager, a2wsgi.

The SDK's streamable-HTTP app is ASGI; gunicorn's workers are sync WSGI. a2wsgi bridges the
two: each /mcp request (already authenticated by the Flask gate) is handed to the ASGI app on
an event loop that runs in a daemon thread of the worker, and the Flask view waits for the
answer. The session manager is stateless (no Mcp-Session-Id, no server-side session: any
worker answers any request) and answers with application/json (no event stream pins the
sync worker).

The runtime is built lazily, on the first /mcp request a process serves: never at import
and never in a gunicorn master (threads and event loops do not survive fork). A process that
finds a runtime built by another pid (a fork after first use) builds its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Iterable
from typing import Any

from a2wsgi import ASGIMiddleware
from flask import Flask
from mcp.server.transport_security import TransportSecuritySettings

from http_names import MCP_PATH
from mcp_server.tools import build_server

EXTENSION = "genmb_mcp_runtime"
START_TIMEOUT = 10.0  # seconds for the session manager to start on the new loop
# After the response is complete a2wsgi waits this long for the ASGI task to wind down;
# bounded so that nothing in the SDK can ever hold a sync worker.
ASGI_WAIT = 5.0

_lock = threading.Lock()

# The SDK logs "Terminating session: None" at INFO after every stateless request.
QUIET_LOGGERS = ("mcp.server.streamable_http",)


class McpRuntime:
    """The SDK's streamable-HTTP app running on this process's event loop, as a WSGI app."""

    def __init__(self, flask_app: Flask) -> None:
        config = flask_app.config
        self.pid = os.getpid()
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        self.server = build_server(flask_app)
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=list(config["MCP_ALLOWED_HOSTS"]),
            allowed_origins=list(config["MCP_ALLOWED_ORIGINS"]),
        )
        asgi_app = self.server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=True,
            json_response=True,
            transport_security=security,
            max_request_body_size=config["MAX_CONTENT_LENGTH"],
        )
        self.loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="genmb-mcp-loop", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(START_TIMEOUT)
        self.wsgi = ASGIMiddleware(asgi_app, wait_time=ASGI_WAIT, loop=self.loop)  # type: ignore[arg-type]

    async def _start(self) -> None:
        """Start the session manager in a task of its own and wait until it runs."""
        started = asyncio.Event()
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._serve(started))
        await started.wait()

    async def _serve(self, started: asyncio.Event) -> None:
        """Hold the session manager's run() context (its task group) until stop()."""
        assert self._stop is not None
        async with self.server.session_manager.run():
            started.set()
            await self._stop.wait()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """The WSGI entry point: one MCP POST in, the SDK's answer out."""
        return self.wsgi(environ, start_response)

    def stop(self) -> None:
        """Stop the session manager and the loop (tests; a worker simply exits)."""
        if self._stop is not None:
            stop = self._stop
            self.loop.call_soon_threadsafe(stop.set)
            asyncio.run_coroutine_threadsafe(asyncio.wait([self._task]), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


def runtime_for(flask_app: Flask) -> McpRuntime:
    """This process's runtime for the app, built on first use."""
    runtime: McpRuntime | None = flask_app.extensions.get(EXTENSION)
    if runtime is not None and runtime.pid == os.getpid():
        return runtime
    with _lock:
        runtime = flask_app.extensions.get(EXTENSION)
        if runtime is None or runtime.pid != os.getpid():
            runtime = McpRuntime(flask_app)
            flask_app.extensions[EXTENSION] = runtime
        return runtime
