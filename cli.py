"""Operator commands: flask --app app users create|set-plan, keys revoke|revoke-token."""

from __future__ import annotations

import json

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from config import SIGNUP_PLAN, plan_names
from extensions import storage
from services import security_events
from services.revocation import revoke_by_operator
from store import apikeys, users
from store.apikeys import OwnedKey
from store.client import Storage
from store.errors import EmailTaken, NotFound, RevocationUnconfirmed

users_cli = AppGroup("users", help="Manage users.")
keys_cli = AppGroup("keys", help="Revoke API keys as the operator.")
PLAN_CHOICE = click.Choice(plan_names())
UNCONFIRMED_EXIT = 3  # set-plan: the change is made, but too few replicas confirmed it
EMBEDDED_REFUSAL = (
    "REDIS_URL=memory:// is the embedded store: it lives inside the server's own process, so "
    "this command could only change a store of its own that the server never sees. Sign up "
    "through POST /auth/signup (free plan), or run the server with a Redis (REDIS_URL)."
)


def shared_storage() -> Storage:
    """The app's store, refusing the embedded one (this process's memory, not the server's)."""
    store = storage()
    if store.embedded:
        raise click.ClickException(EMBEDDED_REFUSAL)
    return store


@users_cli.command("create")
@click.argument("email")
@click.option("--plan", type=PLAN_CHOICE, default=SIGNUP_PLAN, show_default=True)
@click.option("--password", required=True, help="At least 8 characters.")
def create_user(email: str, plan: str, password: str) -> None:
    """Create a user and print it as JSON."""
    if len(password) < 8:
        raise click.ClickException("password must be at least 8 characters")
    if "@" not in email:
        raise click.ClickException(f"not an email address: {email}")
    try:
        user = users.create(
            shared_storage(), email, password, plan, current_app.config["PASSWORD_SCRYPT_N"]
        )
    except EmailTaken:
        raise click.ClickException(f"email already taken: {email}") from None
    click.echo(json.dumps({"id": user.id, "email": user.email, "plan": user.plan}))


@users_cli.command("set-plan")
@click.argument("email")
@click.argument("plan", type=PLAN_CHOICE)
def set_plan(email: str, plan: str) -> None:
    """Move a user to another plan; it applies from their next request.

    Like a revocation, the change waits for replicas (REVOKE_MIN_REPLICAS, REVOKE_WAIT_MS);
    when too few confirm it, the JSON is still printed (the primary has the change) and the
    command exits 3, so a script can run it again (it is idempotent).
    """
    try:
        user, replication = users.set_plan(shared_storage(), email, plan)
    except NotFound:
        raise click.ClickException(f"no user with email {email}") from None
    security_events.record(user.id, "plan.changed", security_events.OPERATOR, plan=plan)
    click.echo(
        json.dumps(
            {
                "id": user.id,
                "email": user.email,
                "plan": user.plan,
                "replicas": {"needed": replication.needed, "confirmed": replication.confirmed},
            }
        )
    )
    if not replication.confirmed_enough:
        click.echo(
            f"warning: {replication.confirmed} of {replication.needed} replicas confirmed "
            "the change in time; a failover now could undo it: run the command again",
            err=True,
        )
        raise SystemExit(UNCONFIRMED_EXIT)


def _describe(key: OwnedKey) -> str:
    """One line about a key: never the key itself, only its display prefix."""
    return f"{key.id}  {key.prefix}…  {key.name!r}  user {key.user_id}  created {key.created_at}"


def _revoke(keys: list[OwnedKey]) -> None:
    """Revoke each key through the owner's path; exit 3 when replicas did not confirm one."""
    unconfirmed = False
    for key in keys:
        try:
            revoke_by_operator(key)
        except NotFound:
            click.echo(f"already gone: {key.id}", err=True)
            continue
        except RevocationUnconfirmed as exc:
            unconfirmed = True
            click.echo(
                f"warning: {key.id} is refused already, but only {exc.confirmed} of "
                f"{exc.needed} replicas confirmed it in time",
                err=True,
            )
        click.echo(json.dumps({"revoked": key.id, "prefix": key.prefix, "user_id": key.user_id}))
    if unconfirmed:
        raise SystemExit(UNCONFIRMED_EXIT)


@keys_cli.command("revoke")
@click.option("--id", "key_id", help="The key's id (key_...).")
@click.option("--prefix", help="The key's display prefix, e.g. genmb_sk_Ab3d.")
@click.option("--yes", is_flag=True, help="Do not ask before revoking.")
def revoke_key(key_id: str | None, prefix: str | None, yes: bool) -> None:
    """Revoke a key by id or display prefix, whoever owns it (recorded in the owner's log).

    Keys are found by SCAN over every key record: fine for an operator, never on a request.
    The matches are listed and confirmed first (unless --yes).
    """
    if bool(key_id) == bool(prefix):
        raise click.UsageError("give exactly one of --id or --prefix")
    if prefix and (
        not prefix.startswith(apikeys.KEY_PREFIX) or len(prefix) <= len(apikeys.KEY_PREFIX)
    ):
        raise click.UsageError(
            f"--prefix must start with {apikeys.KEY_PREFIX} and go on, e.g. genmb_sk_Ab3d"
        )
    if key_id and not key_id.startswith("key_"):
        raise click.UsageError("--id must be a key id (key_...)")
    matches = apikeys.scan_keys(storage(), key_id=key_id, prefix=prefix)
    if not matches:
        raise click.ClickException("no live key matches")
    for key in matches:
        click.echo(_describe(key), err=True)
    if not yes and not click.confirm(f"Revoke {len(matches)} key(s)?", err=True):
        raise click.ClickException("nothing revoked")
    _revoke(matches)


@keys_cli.command("revoke-token")
@click.argument("source", type=click.File("r"))
def revoke_token(source) -> None:  # noqa: ANN001 - click's file object
    """Revoke the key whose raw token is read from SOURCE ("-" for standard input).

    For a key someone sent in by email: the token is hashed, never printed or logged.
    """
    token = source.read(4096).strip()
    key = apikeys.live_key_for_token(storage(), token)
    if key is None:
        shown = token[: len(apikeys.KEY_PREFIX) + 4] if apikeys.is_well_formed(token) else ""
        raise click.ClickException(
            f"no live key matches {shown + '…' if shown else 'that input (not a key)'}"
        )
    click.echo(_describe(key), err=True)
    _revoke([key])


def init_app(app: Flask) -> None:
    """Register the operator commands."""
    app.cli.add_command(users_cli)
    app.cli.add_command(keys_cli)
