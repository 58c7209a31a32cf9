"""Starting codegen and deploy jobs: per-user limit, credit charge and record."""

from __future__ import annotations

from flask import current_app

import metrics
from config import BILLABLE_ACTIONS
from extensions import storage
from security.principal import Principal
from services.credits import allowance
from store import apps


@metrics.counts_jobs
def start(principal: Principal, app_id: str, kind: str, prompt: str | None = None) -> apps.Job:
    """Charge the action's credits and record the job, atomically; raises domain errors."""
    cost = current_app.config[BILLABLE_ACTIONS[kind].cost_setting]
    return apps.start_job(
        storage(),
        principal.user_id,
        app_id,
        kind,
        cost,
        allowance(current_app.config["PLANS"], principal.identity.plan),
        prompt,
    )
