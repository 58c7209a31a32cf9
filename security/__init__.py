"""The request's way in: the gate and its hooks, credentials, CSRF, the edge, signed reports."""
