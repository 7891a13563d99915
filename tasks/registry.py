"""The adapter registry: the gate's decision and the promotion it leads to.

``decide`` compares the candidate's metrics with the domain's ``gate:`` thresholds and with the current
champion's metrics on the same items; every check carries its value, threshold and verdict, so the
decision explains itself. ``apply_decision`` records it in one DuckDB transaction (old champion →
``retired``, candidate → ``promoted`` or ``rejected``, a ``promotions`` row) and then moves the stable
pointer ``$LORAFORGE_HOME/adapters/<domain>/promoted`` atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from schemas.config import GateConfig
from schemas.example import content_hash
from tasks import store


def champion(db: Path, domain: str, candidate_id: str) -> dict | None:
    """The domain's promoted adapter, unless it is the candidate itself (then there is nothing to beat)."""
    current = store.promoted_adapter(db, domain)
    return current if current and current["adapter_id"] != candidate_id else None


def _check(name: str, value: float | None, threshold: float | None, passed: bool) -> dict:
    return {"name": name, "value": value, "threshold": threshold, "passed": bool(passed)}


def decide(candidate: dict, champion: dict | None, gate: GateConfig) -> dict:
    """Gate decision: ``{"promote": bool, "checks": [...], "reasons": [failed check names]}``."""
    checks = [
        _check("min_compile_rate", candidate["compile_rate"], gate.min_compile_rate,
               candidate["compile_rate"] >= gate.min_compile_rate),
        _check("min_semantic_accuracy", candidate["semantic_accuracy"], gate.min_semantic_accuracy,
               candidate["semantic_accuracy"] >= gate.min_semantic_accuracy),
    ]
    if gate.max_mean_output_tokens is not None:
        checks.append(_check("max_mean_output_tokens", candidate["mean_output_tokens"], gate.max_mean_output_tokens,
                             candidate["mean_output_tokens"] <= gate.max_mean_output_tokens))
    if champion is not None:
        delta = round(candidate["semantic_accuracy"] - champion["semantic_accuracy"], 4)
        checks.append(_check("min_improvement_over_champion", delta, gate.min_improvement_over_champion,
                             delta >= gate.min_improvement_over_champion))
    failed = [c["name"] for c in checks if not c["passed"]]
    return {"promote": not failed, "checks": checks, "reasons": failed}


def pointer_path(adapters_dir: Path, domain: str) -> Path:
    return Path(adapters_dir) / domain / "promoted"


def move_pointer(adapters_dir: Path, domain: str, target: str) -> None:
    """Atomically repoint ``adapters/<domain>/promoted`` (a symlink) at ``target``."""
    link = pointer_path(adapters_dir, domain)
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".promoted.{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def apply_decision(db: Path, adapters_dir: Path, *, run_id: str, domain: str, adapter: dict,
                   champion: dict | None, decision: dict) -> str:
    """Record the decision and move the pointer; returns the adapter's new status."""
    promotion = {
        "promotion_id": content_hash("promotion", run_id, adapter["adapter_id"]), "run_id": run_id,
        "domain": domain, "adapter_id": adapter["adapter_id"],
        "previous_adapter_id": champion["adapter_id"] if champion else None,
        "decision": "promoted" if decision["promote"] else "rejected", "decision_json": json.dumps(decision),
    }
    store.record_gate_decision(db, promotion, promote=decision["promote"])
    if decision["promote"]:
        move_pointer(adapters_dir, domain, adapter["path"])
    return promotion["decision"]
