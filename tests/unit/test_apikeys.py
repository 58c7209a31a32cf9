"""store/apikeys.py and its Lua scripts on the embedded store (fakeredis): the whole key
lifecycle, the key cap and the plan check, through the app."""

from __future__ import annotations

import pytest

from extensions import STORAGE_EXTENSION
from security.credentials import MCP_HEADER
from store import apikeys, users
from store.errors import KeyLimitReached, PlanRequired
from tests.helpers import FAST_HASH, PASSWORD


def test_key_lifecycle_on_fakeredis(fake_app):
    """Create, list, use, revoke a key with the Lua scripts running on fakeredis."""
    storage = fake_app.extensions[STORAGE_EXTENSION]
    user = users.create(storage, "life@example.test", PASSWORD, "pro", FAST_HASH)
    web = fake_app.test_client()
    login = web.post("/auth/login", json={"email": user.email, "password": PASSWORD})
    assert login.status_code == 200
    csrf = {"X-CSRF-Token": login.json["csrf_token"]}

    created = web.post("/api/keys", json={"name": " lifecycle "}, headers=csrf)
    assert created.status_code == 201
    assert created.headers["Cache-Control"] == "no-store"
    raw, key_id = created.json["key"], created.json["id"]
    assert apikeys.is_well_formed(raw)
    assert created.json["name"] == "lifecycle"
    assert created.json["prefix"] == raw[:13]
    assert created.json["last_used_at"] is None

    listed = web.get("/api/keys").json["keys"]
    assert [k["id"] for k in listed] == [key_id]
    assert "key" not in listed[0] and listed[0]["last_used_at"] is None

    api = fake_app.test_client()
    me = api.get("/api/me", headers={"Authorization": f"Bearer {raw}"})
    assert me.status_code == 200
    assert me.json["auth"] == {"method": "api_key", "key_id": key_id}
    assert me.json["id"] == user.id
    used_at = web.get("/api/keys").json["keys"][0]["last_used_at"]
    assert used_at is not None and used_at.endswith("Z")

    # Redis holds only the digest, never the raw key or its random part.
    everything = []
    for name in storage.redis.keys("*"):
        everything.append(name)
        kind = storage.redis.type(name)
        if kind == "hash":
            everything.extend(storage.redis.hgetall(name).values())
        elif kind == "string":
            everything.append(storage.redis.get(name))
    blob = "\n".join(map(str, everything))
    assert raw not in blob and raw[len("genmb_sk_") :] not in blob
    assert apikeys.digest(raw) in blob

    assert web.delete(f"/api/keys/{key_id}", headers=csrf).status_code == 204
    gone = api.get("/api/me", headers={MCP_HEADER: raw})
    assert gone.status_code == 401
    assert gone.json["error"]["code"] == "invalid_api_key"
    assert 'error="invalid_token"' in gone.headers["WWW-Authenticate"]
    assert web.get("/api/keys").json["keys"] == []
    # Repeating a revoke is safe (docs/storage.md, "Writes that must survive a failover"); an
    # id the user never held is 404.
    assert web.delete(f"/api/keys/{key_id}", headers=csrf).status_code == 204
    assert web.delete("/api/keys/key_0123456789abcdef", headers=csrf).status_code == 404


def test_key_cap_and_plan_check_on_fakeredis(fake_app):
    """The create_key script enforces the per-user cap and the plan on fakeredis too."""
    storage = fake_app.extensions[STORAGE_EXTENSION]
    cap = fake_app.config["MAX_KEYS_PER_USER"]
    pro = users.create(storage, "cap@example.test", PASSWORD, "pro", FAST_HASH)
    free = users.create(storage, "free@example.test", PASSWORD, "free", FAST_HASH)
    plans = ["pro", "business"]
    for i in range(cap):
        apikeys.create(storage, pro.id, f"k{i}", cap, plans)
    with pytest.raises(KeyLimitReached):
        apikeys.create(storage, pro.id, "one too many", cap, plans)
    assert len(apikeys.list_for_user(storage, pro.id)) == cap
    with pytest.raises(PlanRequired):
        apikeys.create(storage, free.id, "free key", cap, plans)
    assert apikeys.list_for_user(storage, free.id) == []
