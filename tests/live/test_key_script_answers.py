"""Issue 16, bug 4: only a digest collision makes key creation (or a roll) draw again; any
other answer of create_key.lua / roll_key.lua is raised at once."""

from __future__ import annotations

import fakeredis
import pytest

from store import apikeys
from store.client import Storage
from store.durability import Replication
from store.errors import KeyLimitReached, KeyRolling
from store.names import KeyNames

USER = "usr_0123456789abcdef"
KEY_ID = "key_0123456789abcdef"


@pytest.fixture
def storage() -> Storage:
    """A Storage on a fresh fakeredis (no script runs: each test scripts the answers)."""
    return Storage(fakeredis.FakeRedis(decode_responses=True), KeyNames())


@pytest.fixture
def answers(monkeypatch):
    """Make every replicated script answer `answers.reply`; `answers.calls` counts them."""

    class Scripted:
        reply: object = "ok"
        calls = 0

        def __call__(self, storage, script, keys, args):
            self.calls += 1
            return self.reply, Replication(0, 0)

    scripted = Scripted()
    monkeypatch.setattr(apikeys, "run_replicated", scripted)
    return scripted


def _create(storage: Storage):
    return apikeys.create(storage, USER, "name", 5, ["pro", "business"])


def _roll(storage: Storage):
    return apikeys.roll(storage, USER, KEY_ID, 0, ["pro", "business"])


def _owner_claims(storage: Storage) -> list[str]:
    return list(storage.redis.scan_iter(match="genmb:keyowner:*"))


@pytest.mark.parametrize(
    "call, reply", [(_create, "surprise"), (_create, None), (_roll, ["surprise"])]
)
def test_an_undocumented_answer_is_raised_at_once(storage, answers, call, reply):
    """Not retried, not reported as a collision: the script's own answer is named."""
    answers.reply = reply
    with pytest.raises(RuntimeError, match="answered") as raised:
        call(storage)
    assert "unique" not in str(raised.value)
    assert answers.calls == 1
    assert _owner_claims(storage) == []  # the claimed digest is given back


@pytest.mark.parametrize(
    "call, reply, error",
    [
        (_create, "key_limit_reached", KeyLimitReached),
        (_roll, ["rolling"], KeyRolling),
        (_roll, ["predecessor_rolling"], KeyRolling),
    ],
)
def test_a_refusal_is_its_domain_error_at_once(storage, answers, call, reply, error):
    """A documented refusal is raised as its domain error after one script call."""
    answers.reply = reply
    with pytest.raises(error):
        call(storage)
    assert answers.calls == 1


@pytest.mark.parametrize("call, reply", [(_create, "collision"), (_roll, ["collision"])])
def test_only_a_collision_draws_again(storage, answers, call, reply):
    """A collision draws a new key, a bounded number of times, then gives up."""
    answers.reply = reply
    with pytest.raises(RuntimeError, match="could not allocate a unique key"):
        call(storage)
    assert answers.calls == apikeys.NEW_KEY_DRAWS > 1
    assert _owner_claims(storage) == []
