"""The scale row's data: many users, key records and live client windows, loaded straight into
its Redis, so the same GET /api/me can be measured against a full store (issue #15).

Records are written in the store's own layout (store/names.py names, the fields the store
writes) through one raw pipeline with replies off (as `redis-cli --pipe` does), without the
HTTP API or scrypt: a million keys in seconds. The
client windows are made by the gate's own window script, one request per address, then kept
alive (a longer TTL) for the length of the run. INFO memory before and after each part gives
what each record costs Redis.
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

from store.apikeys import KEY_PREFIX
from store.client import Storage
from store.gate import WINDOW_SLICES
from store.names import KeyNames

BATCH = 10_000  # commands per pipeline round trip
SETTLE_CALLS = 50_000  # RANDOMKEY calls per script run (about 20 ms)
FINISH_REHASH = "for _ = 1, tonumber(ARGV[1]) do redis.call('RANDOMKEY') end"
WINDOW_KEEP_MS = 3_600_000  # the loaded windows outlive the run (a real one lives a minute)
CREATED_AT = "2026-12-01T00:00:00Z"
# A real scrypt$n$salt$hash string's length (security/passwords.py: 16-byte salt, 64-byte
# hash, base64): computing 100,000 real ones would take minutes and change nothing.
PASSWORD_HASH = "scrypt$16384$" + "S" * 24 + "$" + "H" * 88


@dataclass(frozen=True)
class Volume:
    """How much to load."""

    users: int
    keys: int
    windows: int


def _data_memory(client: redis.Redis) -> int:
    """Redis's used_memory less its clients' buffers, in bytes, with the key table settled.

    A key table that grew is rehashed a bucket at a time by the commands that touch it, both
    tables held until it is done (16 MB more past two million keys): a part's delta could
    hold the old table, or the next part's the freeing of it. RANDOMKEY takes up to 20 of
    those steps, so a script calling it dbsize / 10 times finishes any rehash first.
    """
    steps = client.dbsize() // 10 + 1000
    for _ in range(0, steps, SETTLE_CALLS):
        client.eval(FINISH_REHASH, 0, SETTLE_CALLS)
    memory = client.info("memory")
    return int(memory["used_memory"]) - int(memory["mem_clients_normal"])


def _user_id(n: int) -> str:
    """The n-th loaded user's id (the shape of store.clock.new_id)."""
    return f"usr_{n:016x}"


def _flat(record: dict[str, str]) -> list[str]:
    """A hash's fields and values, one after the other."""
    return [item for pair in record.items() for item in pair]


def _write_raw(client: redis.Redis, commands: Iterable[tuple[str, ...]]) -> None:
    """Send commands (ASCII strings) on a socket of their own with CLIENT REPLY OFF, then
    wait for Redis to have run them all (a PING's answer comes after every one of them).
    Nothing is answered, so nothing is parsed: the caller checks the outcome (DBSIZE)."""
    kwargs = client.connection_pool.connection_kwargs
    with socket.create_connection((kwargs["host"], kwargs["port"]), timeout=60) as sock:
        sock.sendall(_resp(("CLIENT", "REPLY", "OFF")))
        batch: list[bytes] = []
        for n, command in enumerate(commands, 1):
            batch.append(_resp(command))
            if n % BATCH == 0:
                sock.sendall(b"".join(batch))
                batch.clear()
        sock.sendall(b"".join(batch) + _resp(("CLIENT", "REPLY", "ON")) + _resp(("PING",)))
        answer = b""
        while not answer.endswith(b"+PONG\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                raise RuntimeError(f"Redis closed the loading connection: {answer!r}")
            answer += chunk
        if answer != b"+OK\r\n+PONG\r\n":
            raise RuntimeError(f"loading failed: {answer[:500]!r}")


def _resp(args: tuple[str, ...]) -> bytes:
    """One command in Redis's protocol (ASCII arguments)."""
    parts = [f"*{len(args)}\r\n"]
    for arg in args:
        parts.append(f"${len(arg)}\r\n{arg}\r\n")
    return "".join(parts).encode()


def _users(names: KeyNames, count: int):
    """A user hash and its email index per user."""
    for n in range(count):
        user_id = _user_id(n)
        email = f"scale{n}@example.com"
        record = {
            "id": user_id,
            "email": email,
            "plan": "pro",
            "password_hash": PASSWORD_HASH,
            "created_at": CREATED_AT,
        }
        yield ("HSET", names.user(user_id), *_flat(record))
        yield ("SET", names.user_by_email(email), user_id)


def _keys(names: KeyNames, count: int, users: int):
    """Key records spread evenly over the users: the record, its owner index and its entry
    in the user's key index, as create_key.lua and apikeys.create write them (plus a
    last_used_at, as after a first use)."""
    for n in range(count):
        user_id = _user_id(n % users)
        key_id = f"key_{n:016x}"
        digest = hashlib.sha256(f"scale key {n}".encode()).hexdigest()
        record = {
            "id": key_id,
            "user_id": user_id,
            "name": f"key {n}",
            "prefix": KEY_PREFIX + f"{n:04x}"[-4:],
            "created_at": CREATED_AT,
            "last_used_at": CREATED_AT,
        }
        yield ("HSET", names.api_key(user_id, digest), *_flat(record))
        yield ("SET", names.key_owner(digest), user_id)
        yield ("HSET", names.user_keys(user_id), key_id, digest)


def window_address(n: int) -> str:
    """The n-th loaded client: 100.64.0.0/10 (shared address space), never a load address."""
    return f"100.{64 + (n >> 16) % 64}.{(n >> 8) % 256}.{n % 256}"


def _send(client: redis.Redis, commands) -> None:
    """Send (method, args, kwargs) triples through pipelines of BATCH commands."""
    pipe = client.pipeline(transaction=False)
    for n, (method, args, kwargs) in enumerate(commands, 1):
        getattr(pipe, method)(*args, **kwargs)
        if n % BATCH == 0:
            pipe.execute()
    pipe.execute()


def _windows(storage: Storage, count: int, limit: int, window_ms: int) -> None:
    """One request per address through the gate's own window script (gate_window.lua),
    then a TTL long enough for the run."""
    script = storage.scripts["gate_window"]
    storage.redis.script_load(script.script)
    keys = [storage.names.ip_window(window_address(n)) for n in range(count)]
    _send(
        storage.redis,
        (("evalsha", (script.sha, 1, key, limit, window_ms, WINDOW_SLICES), {}) for key in keys),
    )
    _send(storage.redis, (("pexpire", (key, WINDOW_KEEP_MS), {}) for key in keys))


def load(storage: Storage, volume: Volume, limit: int, window_ms: int) -> dict[str, Any]:
    """Load the volume; returns the seconds each part took and its bytes per record."""
    client, names = storage.redis, storage.names
    report: dict[str, Any] = {"users": volume.users, "keys": volume.keys}
    report["windows"] = volume.windows
    parts = (
        ("user", volume.users, lambda: _write_raw(client, _users(names, volume.users))),
        ("key", volume.keys, lambda: _write_raw(client, _keys(names, volume.keys, volume.users))),
        ("window", volume.windows, lambda: _windows(storage, volume.windows, limit, window_ms)),
    )
    for name, count, write in parts:
        before, started = _data_memory(client), time.monotonic()
        write()
        report[f"{name}_seconds"] = round(time.monotonic() - started, 1)
        report[f"bytes_per_{name}"] = round((_data_memory(client) - before) / max(count, 1))
    report["dbsize"] = client.dbsize()
    expected = 2 * volume.users + 2 * volume.keys + volume.windows
    if report["dbsize"] < expected:  # (plus whatever the row's own seeding wrote)
        raise RuntimeError(f"loaded {report['dbsize']} keys, expected {expected} at least")
    report["used_memory"] = int(client.info("memory")["used_memory"])
    return report
