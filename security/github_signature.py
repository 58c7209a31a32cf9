"""GitHub's secret-scanning signatures: the public-keys document, cached, and the check.

A report is signed with ECDSA P-256 / SHA-256 over the raw request body; the signature is
base64 of DER, and `Github-Public-Key-Identifier` names which key of the document at
SECRET_SCANNING_KEYS_URL signed it. The document is rate limited by GitHub, so each process
keeps it an hour; a failed fetch keeps the last good copy; an identifier the copy does not
hold triggers one early refetch (GitHub rotated its key), at most MISS_REFETCHES a minute per
process, so forged identifiers cannot make the service hammer GitHub.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
import urllib.request
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

log = logging.getLogger("genmb.security")

USER_AGENT = "genmb-api-keys-secret-scanning/1.0"
CACHE_SECONDS = 3600
REFETCH_MIN_SECONDS = 60
MISS_REFETCHES = 3  # early fetches for unknown identifiers allowed per REFETCH_MIN_SECONDS
FETCH_TIMEOUT_SECONDS = 5
MAX_DOCUMENT_BYTES = 64 * 1024
MAX_HEADER_LENGTH = 512


@dataclass
class PublicKeys:
    """One process's copy of the keys document: identifier -> P-256 public key."""

    url: str
    max_age: float = CACHE_SECONDS  # a good copy is used this long
    retry_after: float = REFETCH_MIN_SECONDS  # fewest seconds between two early fetches
    keys: dict[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)
    fetched_at: float = float("-inf")  # monotonic time of the last good fetch
    tried_at: float = float("-inf")  # ... of the last fetch tried, good or not
    missed: list[float] = field(default_factory=list)  # ... of recent refetches on a miss
    lock: threading.Lock = field(default_factory=threading.Lock)

    def key(self, identifier: str) -> ec.EllipticCurvePublicKey | None:
        """The key named by identifier: from the copy, refreshed hourly or on a miss."""
        with self.lock:
            now = time.monotonic()
            if now - self.fetched_at >= self.max_age and now - self.tried_at >= min(
                self.retry_after, self.max_age
            ):
                self._refresh(now)  # stale or never fetched (a failing GitHub: once a minute)
            self.missed = [t for t in self.missed if now - t < self.retry_after]
            if (
                identifier not in self.keys
                and len(self.missed) < MISS_REFETCHES
                and self.tried_at != now
            ):
                self.missed.append(now)  # GitHub may have rotated its key: look once more
                self._refresh(now)
            return self.keys.get(identifier)

    def _refresh(self, now: float) -> None:
        """Fetch the document; keep the last good copy when it fails."""
        self.tried_at = now
        try:
            self.keys = fetch(self.url)
            self.fetched_at = now
        except Exception as exc:  # noqa: BLE001 - any failure keeps the last good copy
            log.warning(
                "secret_scanning.keys_fetch_failed error=%s kept=%d",
                exc.__class__.__name__,
                len(self.keys),
            )


def fetch(url: str) -> dict[str, ec.EllipticCurvePublicKey]:
    """Download and parse the keys document; raises on anything but a usable document."""
    request = urllib.request.Request(
        url, headers={"User-Agent": USER_AGENT, "Accept": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310
        body = response.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ValueError("keys document too large")
    return parse_document(json.loads(body))


def parse_document(document: object) -> dict[str, ec.EllipticCurvePublicKey]:
    """{"public_keys": [{"key_identifier", "key" (PEM), "is_current"}]} -> id -> P-256 key."""
    entries = document.get("public_keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("no public_keys list")
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        identifier, pem = entry.get("key_identifier"), entry.get("key")
        if not isinstance(identifier, str) or not isinstance(pem, str):
            continue
        try:
            key = serialization.load_pem_public_key(pem.encode())
        except ValueError:
            continue
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            keys[identifier] = key
    if not keys:
        raise ValueError("no usable P-256 key in the document")
    return keys


def verify(keys: PublicKeys, body: bytes, identifier: str | None, signature: str | None) -> bool:
    """Whether `signature` (base64 DER) over the raw `body` is by the key `identifier` names."""
    if (
        not identifier
        or not signature
        or len(identifier) > MAX_HEADER_LENGTH
        or len(signature) > MAX_HEADER_LENGTH
    ):
        return False
    try:
        der = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    key = keys.key(identifier.strip())
    if key is None:
        return False
    try:
        key.verify(der, body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True
