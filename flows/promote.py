"""Gate-and-promote stage: decide from the recorded evaluations and update the registry atomically."""

from __future__ import annotations

import json

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event

from flows._common import run_config
from schemas.run import Home
from tasks import registry, store
from tasks.registry import apply_decision, decide


@flow(name="gate-and-promote", log_prints=True)
def gate_and_promote(run_id: str, adapter_id: str, candidate: dict, champion: dict | None = None,
                     home: str | None = None) -> dict:
    """Promote the candidate if it clears the domain's gate and beats the champion; otherwise reject it."""
    h = Home.from_env(home)
    cfg = run_config(h, run_id)
    adapter = store.get_adapter(h.db, adapter_id)
    current = registry.champion(h.db, cfg.name, adapter_id)
    decision = decide(candidate, champion if current else None, cfg.gate)
    status = apply_decision(h.db, h.adapters, run_id=run_id, domain=cfg.name, adapter=adapter, champion=current,
                            decision=decision)
    rows = "\n".join(f"| {c['name']} | {c['value']} | {c['threshold']} | {'pass' if c['passed'] else 'FAIL'} |"
                     for c in decision["checks"])
    create_markdown_artifact(key="gate-decision", description=f"Gate decision for {adapter_id}", markdown=(
        f"## Gate: **{status}** `{adapter_id}`\n\n| check | value | threshold | result |\n|---|---|---|---|\n{rows}\n"))
    emit_event(event=f"loraforge.adapter.{status}", resource={"prefect.resource.id": f"loraforge.adapter.{adapter_id}",
                                                              "loraforge.domain": cfg.name},
               payload={"run_id": run_id, "decision": json.loads(json.dumps(decision))})
    print(f"gate: {status} ({', '.join(decision['reasons']) or 'all checks passed'})")
    return {"status": status, **decision}
