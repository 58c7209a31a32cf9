"""Operator commands: flask --app app users create|set-plan."""

from __future__ import annotations

import json

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from extensions import storage
from store import users
from store.client import Storage
from store.errors import EmailTaken, NotFound

users_cli = AppGroup("users", help="Manage users.")
PLAN_CHOICE = click.Choice(users.PLANS)
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
@click.option("--plan", type=PLAN_CHOICE, default="free", show_default=True)
@click.option("--password", required=True, help="At least 8 characters.")
def create_user(email: str, plan: str, password: str) -> None:
    """Create a user and print it as JSON."""
    if len(password) < 8:
        raise click.ClickException("password must be at least 8 characters")
    if "@" not in email:
        raise click.ClickException(f"not an email address: {email}")
    try:
        user = users.create(shared_storage(), email, password, plan,
                            current_app.config["PASSWORD_SCRYPT_N"])
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
    click.echo(json.dumps({"id": user.id, "email": user.email, "plan": user.plan,
                           "replicas": {"needed": replication.needed,
                                        "confirmed": replication.confirmed}}))
    if not replication.confirmed_enough:
        click.echo(f"warning: {replication.confirmed} of {replication.needed} replicas confirmed "
                   "the change in time; a failover now could undo it: run the command again",
                   err=True)
        raise SystemExit(UNCONFIRMED_EXIT)


def init_app(app: Flask) -> None:
    """Register the operator commands."""
    app.cli.add_command(users_cli)
