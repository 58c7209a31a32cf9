"""The request gate: credentials parsing, the one-round-trip check, CSRF and passwords."""
