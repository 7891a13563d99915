"""Gate, promotion and rollback flows: decide from recorded evaluations, update the registry atomically,
leave the decision as a Prefect markdown artifact and emit an event an automation can react to.

Events: ``loraforge.adapter.promoted`` / ``.rejected`` / ``.rolled_back``; the resource is the adapter
(``loraforge.adapter.<id>``, with ``loraforge.domain``), related resources are the domain
(``loraforge.domain.<domain>``, role ``domain``) and the champion it replaced (role ``previous-champion``).
"""

from __future__ import annotations

import json
import uuid

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event

from flows._common import run_config
from flows.evaluate import evaluate_adapter
from schemas.config import DomainName
from schemas.run import Home
from tasks import failures, focus, registry, store


def emit_adapter_event(status: str, domain: str, adapter_id: str, previous_id: str | None, payload: dict) -> None:
    related = [{"prefect.resource.id": f"loraforge.domain.{domain}", "prefect.resource.role": "domain",
                "prefect.resource.name": domain}]
    if previous_id:
        related.append({"prefect.resource.id": f"loraforge.adapter.{previous_id}",
                        "prefect.resource.role": "previous-champion", "prefect.resource.name": previous_id})
    emit_event(event=f"loraforge.adapter.{status}", related=related, payload=payload,
               resource={"prefect.resource.id": f"loraforge.adapter.{adapter_id}", "prefect.resource.name": adapter_id,
                         "loraforge.domain": domain})


def decision_markdown(status: str, adapter_id: str, domain: str, decision: dict, previous_id: str | None) -> str:
    lines = [f"## Gate: **{status}** `{adapter_id}` ({domain})", ""]
    if decision.get("forced"):
        lines += [f"Forced promotion — {decision['reasons'][0]}. No checks were run.", ""]
    lines += [f"Champion before: `{previous_id}`" if previous_id else "Champion before: none (empty slot)", ""]
    if decision.get("base_precision"):
        lines += [f"Measured on the base model in {decision['base_precision']} (the precision the adapter was"
                  " trained on).", ""]
    if decision["checks"]:
        lines += ["| check | value | threshold | result |", "|---|---|---|---|"]
        for c in decision["checks"]:
            result = "skipped (" + c["skipped"] + ")" if c.get("skipped") else ("pass" if c["passed"] else "**FAIL**")
            lines.append(f"| {c['name']} | {c['value']} | {c['threshold']} | {result} |")
    for key, other, where in (("bootstrap", "champion", "held-out items"), ("golden_bootstrap", "base model",
                                                                               "golden items")):
        boot = decision.get(key)
        if boot:
            lines += ["", f"Paired bootstrap ({boot['resamples']} resamples, seed {boot['seed']}, {boot['n']} {where}):"
                          f" candidate − {other} semantic accuracy {boot['delta']:+.4f},"
                          f" {round(boot['confidence'] * 100)} % CI [{boot['ci'][0]:+.4f}, {boot['ci'][1]:+.4f}]"]
    focus = decision.get("focus")
    if focus:
        lines += ["", f"Focused run (the champion's failures; targeted slices: "
                      f"{', '.join(f'`{s}`' for s in focus['targeted_slices']) or 'none'}, the mined items left out):"]
        for part in ("targeted", "rest"):
            b = focus[part]
            lines.append(f"- {part}: candidate − champion {b['delta']:+.4f}, {round(b['confidence'] * 100)} % CI"
                         f" [{b['ci'][0]:+.4f}, {b['ci'][1]:+.4f}] over {b['n']} paired items")
    if decision["reasons"] and not decision.get("forced"):
        lines += ["", "Reasons:", *[f"- {r}" for r in decision["reasons"]]]
    return "\n".join(lines) + "\n"


def _pairs(h: Home, candidate: dict, other: dict) -> tuple[list[int], list[int]]:
    """Per-item semantic scores of two evaluations (M with ``eval_id``) on the items both scored, in id order."""
    cand = store.scored_items(h.db, candidate["eval_id"])
    champ = store.scored_items(h.db, other["eval_id"])
    common = sorted(cand.keys() & champ.keys())
    return [int(cand[i]["semantic_ok"]) for i in common], [int(champ[i]["semantic_ok"]) for i in common]


def recorded_base_golden(h: Home, candidate: dict) -> dict | None:
    """The base model's golden-set M recorded by the evaluation that scored the candidate's golden set (same run,
    same items), or None when there is none."""
    golden = candidate.get("golden") or {}
    ev = store.get_evaluation(h.db, golden["eval_id"]) if golden.get("eval_id") else None
    if ev is None:
        return None
    rows = [r for r in store.list_evaluations(h.db, run_id=ev["run_id"])
            if r["role"] == "base" and r["eval_set"] == "golden" and r["dataset_id"] == ev["dataset_id"]]
    return json.loads(rows[-1]["metrics_json"]) if rows and rows[-1]["metrics_json"] else None


def _report(h: Home, domain: str, adapter_id: str, promotion: dict, decision: dict) -> None:
    status = promotion["decision"]
    create_markdown_artifact(key=f"gate-decision-{domain}", description=f"Gate decision for {adapter_id}",
                             markdown=decision_markdown(status, adapter_id, domain, decision,
                                                        promotion["previous_adapter_id"]))
    emit_adapter_event(status, domain, adapter_id, promotion["previous_adapter_id"], {
        "run_id": promotion["run_id"], "promotion_id": promotion["promotion_id"], "forced": decision.get("forced"),
        "failed": decision["failed"], "reasons": decision["reasons"], "bootstrap": decision.get("bootstrap"),
        "golden_bootstrap": decision.get("golden_bootstrap")})
    print(f"gate: {status} {adapter_id} ({'; '.join(decision['reasons']) or 'all checks passed'})")


@flow(name="gate-and-promote", log_prints=True)
def gate_and_promote(run_id: str, adapter_id: str, candidate: dict | None = None, champion: dict | None = None,
                     home: str | None = None, attempt: str | None = None, base: dict | None = None) -> dict:
    """Promote the candidate if it clears the domain's gate, beats the base model on the golden set and is
    significantly better than the champion. A focused run's decision also reports candidate vs champion on the
    targeted slices and on the rest apart (``focus``).

    ``candidate``/``champion``/``base`` are the evaluation's metrics (``base`` defaults to the base model's golden
    results recorded beside the candidate's); when they are missing, or the champion changed since they were
    measured, the adapter is evaluated again (cached results make that cheap)."""
    h = Home.from_env(home)
    cfg = run_config(h, run_id)
    registry.reconcile(h.db, h.adapters, cfg.name)
    adapter = store.get_adapter(h.db, adapter_id)
    current = registry.champion(h.db, cfg.name, adapter_id)
    stale = current is not None and (champion or {}).get("model_ref") != current["adapter_id"]
    cand_golden = (candidate or {}).get("golden") or {}
    base_golden = (base or {}).get("golden") or (recorded_base_golden(h, candidate) if candidate else None)
    no_base = bool(cand_golden.get("n")) and not (base_golden or {}).get("eval_id")
    if candidate is None or "eval_id" not in candidate or stale or no_base:
        evals = evaluate_adapter(run_id, adapter_id, home=str(h.root))
        candidate, champion = evals["candidate"], evals["champion"]
        base_golden = (evals["base"] or {}).get("golden")
    champion = champion if current else None
    cand_golden = candidate.get("golden") or {}
    golden_pairs = _pairs(h, cand_golden, base_golden) if cand_golden.get("n") and base_golden else None
    decision = registry.decide(candidate, champion, cfg.gate,
                               pairs=_pairs(h, candidate, champion) if champion else None,
                               golden_pairs=golden_pairs, base_golden=base_golden)
    decision |= {"candidate_eval_id": candidate["eval_id"], "champion_eval_id": (champion or {}).get("eval_id"),
                 "base_golden_eval_id": (base_golden or {}).get("eval_id"),
                 "base_precision": candidate.get("base_precision")}  # the base the figures were measured on
    fplan = store.focus_plan(h.db, run_id) if cfg.dataset.focus == "failures" else None
    if fplan and champion:  # a focused candidate: the targeted slices and the rest, apart
        parts = failures.split_pairs(store.scored_items(h.db, candidate["eval_id"]),
                                     store.scored_items(h.db, champion["eval_id"]), fplan["report"]["targeted"],
                                     focus.mined_prompts(fplan))
        decision["focus"] = registry.slice_comparison(parts, cfg.gate, fplan["report"]["targeted"])
    promotion = registry.apply_decision(h.db, h.adapters, run_id=run_id, domain=cfg.name, adapter=adapter,
                                        decision=decision, key=attempt)
    _report(h, cfg.name, adapter_id, promotion, decision)
    return {"status": promotion["decision"], "promotion_id": promotion["promotion_id"],
            "previous_adapter_id": promotion["previous_adapter_id"], **decision}


@flow(name="promote-adapter", log_prints=True)
def promote_adapter(domain: DomainName, adapter_id: str, force: bool = False, reason: str | None = None,
                    home: str | None = None) -> dict:
    """``loraforge promote``: run the gate for an adapter (or, with ``force`` and a reason, promote it anyway).

    Args:
        domain: The adapter's domain.
        adapter_id: The adapter to gate (see `loraforge adapters ls`).
        force: Promote without running the gate (needs a reason).
        reason: Why a forced promotion is right; recorded in the registry.
        home: State directory (default: $LORAFORGE_HOME, else ./.loraforge on the worker).
    """
    h = Home.from_env(home)
    registry.reconcile(h.db, h.adapters, domain)
    adapter = store.get_adapter(h.db, adapter_id)
    if adapter is None:
        raise registry.RegistryError(f"unknown adapter {adapter_id!r}; see `loraforge adapters ls`")
    if adapter["domain"] != domain:
        raise registry.RegistryError(f"adapter {adapter_id!r} belongs to domain {adapter['domain']!r}, not {domain!r}")
    if adapter["status"] == "promoted":
        return {"status": "promoted", "promotion_id": None, "previous_adapter_id": None, "promote": True,
                "forced": False, "checks": [], "failed": [], "reasons": ["already the promoted adapter"]}
    if force:
        decision = registry.forced_decision(reason or "")
        promotion = registry.apply_decision(h.db, h.adapters, run_id=adapter["run_id"], domain=domain,
                                            adapter=adapter, decision=decision, reason=reason, key=uuid.uuid4().hex)
        _report(h, domain, adapter_id, promotion, decision)
        return {"status": promotion["decision"], "promotion_id": promotion["promotion_id"],
                "previous_adapter_id": promotion["previous_adapter_id"], **decision}
    return gate_and_promote(adapter["run_id"], adapter_id, home=str(h.root), attempt=uuid.uuid4().hex)


@flow(name="rollback-adapter", log_prints=True)
def rollback_adapter(domain: DomainName, home: str | None = None) -> dict:
    """``loraforge rollback``: restore the previous champion (one transaction + atomic pointer).

    Args:
        domain: The domain whose champion is rolled back.
        home: State directory (default: $LORAFORGE_HOME, else ./.loraforge on the worker).
    """
    h = Home.from_env(home)
    promotion = registry.rollback(h.db, h.adapters, domain)
    restored, retired = promotion["adapter_id"], promotion["previous_adapter_id"]
    create_markdown_artifact(key=f"rollback-{domain}", description=f"Rollback of {domain}", markdown=(
        f"## Rollback: `{retired}` → `{restored}` ({domain})\n\n`{restored}` is promoted again; `{retired}` is"
        f" retired. Pointer: `adapters/{domain}/promoted` → `{registry.read_pointer(h.adapters, domain)}`\n"))
    emit_adapter_event("rolled_back", domain, restored, retired, {"promotion_id": promotion["promotion_id"],
                                                                  "rolled_back_from": retired, "restored": restored})
    print(f"rollback: {domain} champion {retired} -> {restored}")
    return {"domain": domain, "status": "rolled_back", "restored": restored, "rolled_back_from": retired,
            "promotion_id": promotion["promotion_id"], "decision": json.loads(promotion["decision_json"])}
