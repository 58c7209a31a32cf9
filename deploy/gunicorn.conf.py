"""gunicorn settings, from the environment; logs go to stdout/stderr through the key redactor."""

from __future__ import annotations

import os

from gunicorn.glogging import Logger

from logs import install_filter


class RedactingLogger(Logger):
    """gunicorn's logger with the key-redacting filter on its error and access logs."""

    def setup(self, cfg):  # noqa: ANN001 - gunicorn's signature
        """Set up gunicorn's handlers, then put the filter on them."""
        super().setup(cfg)
        install_filter(self.error_log)
        install_filter(self.access_log)


bind = os.environ.get("BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WORKERS", "2"))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 10
keepalive = 5
logger_class = RedactingLogger
accesslog = os.environ.get("ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# The request line is logged (through the redactor); headers, including Authorization, are not.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
# gunicorn's control socket lives at one fixed path per user; several instances on one
# machine (make stack, the tests) would fight over it, and nothing here uses it.
control_socket_disable = True
