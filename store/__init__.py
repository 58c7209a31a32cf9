"""The Redis data model: one module per concept, every key name defined in names.py."""
