"""The benchmark behind `make bench`: our gate against a bare and a common Flask app."""
