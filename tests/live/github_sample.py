"""GitHub's published secret-scanning sample request, and the public keys that sign it.

Copied byte for byte from GitHub's documentation, "Secret scanning partner program",
section "Implement signature verification in your secret alert service" (the sample HTTP
POST: Content-Length 104), as the github/docs repository has it. The two keys
are the entries of GitHub's keys document (https://api.github.com/meta/public_keys/
secret_scanning) as quoted by public test suites of getsentry/sentry and octokit/octokit.net;
tests/live/test_secret_scanning.py checks that the sample verifies with the second one.
"""

from __future__ import annotations

SAMPLE_BODY = (
    b'[{"source":"commit","token":"some_token","type":"some_type",'
    b'"url":"https://example.com/base-repo-url/"}]'
)
SAMPLE_KEY_IDENTIFIER = "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c"
SAMPLE_SIGNATURE = (
    "MEQCIQDaMKqrGnE27S0kgMrEK0eYBmyG0LeZismAEz/BgZyt7AIfXt9fErtRS4XaeSt/AO1RtBY66YcAdjxji410"
    "VQV4xg=="
)

GITHUB_PUBLIC_KEYS = {
    "public_keys": [
        {
            "key_identifier": "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a",
            "key": "-----BEGIN PUBLIC KEY-----\n"
            "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9MJJHnMfn2+H4xL4YaPDA4RpJqUq\n"
            "kCmRCBnYERxZanmcpzQSXs1X/AljlKkbJ8qpVIW4clayyef9gWhFbNHWAA==\n"
            "-----END PUBLIC KEY-----\n",
            "is_current": False,
        },
        {
            "key_identifier": SAMPLE_KEY_IDENTIFIER,
            "key": "-----BEGIN PUBLIC KEY-----\n"
            "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYAGMWO8XgCamYKMJS6jc/qgvSlAd\n"
            "AjPuDPRcXU22YxgBrz+zoN19MzuRyW87qEt9/AmtoNP5GrobzUvQSyJFVw==\n"
            "-----END PUBLIC KEY-----\n",
            "is_current": True,
        },
    ]
}
