"""The production topology: gunicorn settings, the nginx template, make stack and its settings."""
