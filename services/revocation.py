"""Revocations that are not the owner's own click: a leak reported by GitHub, an operator.

Both go through the owner's path (store.apikeys.revoke: the script, then the replica WAIT;
RevocationUnconfirmed when too few replicas confirmed it) and are recorded in the owner's
security log. A raw token is only ever hashed here: it reaches no log line and no record.
"""

from __future__ import annotations

import metrics
from extensions import storage
from services import security_events
from store import apikeys
from store.apikeys import OwnedKey
from store.errors import NotFound, RevocationUnconfirmed
from store.security_log import LEAKED

OPERATOR_ATTEMPTS = 3  # an operator's revoke repeats an unconfirmed replica wait this often


def revoke_leaked(token: str, url: str, source: str) -> bool:
    """Revoke the live key a leaked token is; True when there was one to revoke.

    Unknown, malformed and already revoked tokens all answer False. A revocation whose
    replica wait fell short earlier is confirmed again (RevocationUnconfirmed if still short).
    """
    key = apikeys.live_key_for_token(storage(), token)
    if key is None:
        apikeys.reconfirm_revoked_token(storage(), token)
        return False
    try:
        apikeys.revoke(storage(), key.user_id, key.id)
    except NotFound:
        return False  # revoked meanwhile by someone else
    except RevocationUnconfirmed:
        _record_leak(key, url, source)  # refused already: the owner should know now
        raise
    _record_leak(key, url, source)
    return True


def _record_leak(key: OwnedKey, url: str, source: str) -> None:
    _record(key, "leaked", LEAKED, security_events.SCANNER, {"source": source}, alert=True, url=url)


def _record(
    key: OwnedKey, reason: str, event: str, actor: str, logged: dict[str, str], **recorded: object
) -> None:
    """Count, log and record in the owner's security log a revocation the owner did not make."""
    metrics.key_revoked(reason)
    security_events.log_event(
        "api_key.revoked",
        reason=reason,
        key_id=key.id,
        prefix=key.prefix,
        user_id=key.user_id,
        **logged,
    )
    security_events.record(
        key.user_id,
        event,
        actor,
        key_id=key.id,
        key_prefix=key.prefix,
        key_name=key.name,
        **{**recorded, **logged},
    )


def revoke_by_operator(key: OwnedKey) -> None:
    """Revoke a key for the operator (CLI); recorded in the owner's log without an IP."""
    for attempt in range(OPERATOR_ATTEMPTS):
        try:
            apikeys.revoke(storage(), key.user_id, key.id)
            break
        except RevocationUnconfirmed:
            # Refused already; a repeat writes and waits again (the record is gone, so the
            # operator could not name the key a second time: repeat here instead).
            if attempt == OPERATOR_ATTEMPTS - 1:
                _record_operator(key)
                raise
    _record_operator(key)


def _record_operator(key: OwnedKey) -> None:
    _record(key, "operator", "api_key.revoked", security_events.OPERATOR, {}, ip="")
