"""Marshmallow schemas: one module per resource; server-set fields are dump_only."""
