"""The adapter registry: the gate's decision, promotion, rollback and the stable pointer.

``decide`` checks the candidate's metrics against the domain's ``gate:`` policy (the generic checks, and the
kind's own from its gate section: ``GateConfig.candidate_checks`` / ``champion_checks``) and, when a champion exists,
compares the two on the very same items with a seeded **paired bootstrap** of the per-item difference
(candidate − champion): the candidate is better only when the CI's lower bound clears the configured margin,
otherwise the decision says "no significant improvement". The hand-written golden set judges every candidate,
over an empty slot too: its semantic accuracy must reach a floor, and a paired bootstrap of (candidate − base
model) over the golden items must clear a margin, so an adapter that only echoes its teacher's grammar is refused.
Every check carries its value, threshold and verdict.

``promote`` / ``rollback`` change the registry in one DuckDB transaction (the domain's old champion → ``retired``,
the new one → ``promoted``, a ``promotions`` row) and then move the pointer
``$LORAFORGE_HOME/adapters/<domain>/promoted`` (a symlink) atomically with write-then-rename. A crash between
the two steps leaves DuckDB ahead of the pointer; ``reconcile`` — run at the start of every registry
command — repoints it from DuckDB, which is the source of truth, and retires extra promoted rows, so at most
one adapter per domain is promoted and the pointer agrees with DuckDB after the next command.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from schemas.config import GateConfig
from schemas.example import content_hash
from tasks import store

CRASH_ENV = "LORAFORGE_CRASH_AT"  # fault injection for tests: "registry:after-commit" exits right after the commit


class RegistryError(ValueError):
    """A registry command cannot be carried out (unknown adapter, nothing to roll back to…)."""


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os._exit(70)


def champion(db: Path, domain: str, candidate_id: str) -> dict | None:
    """The domain's promoted adapter, unless it is the candidate itself (then there is nothing to beat)."""
    current = store.promoted_adapter(db, domain)
    return current if current and current["adapter_id"] != candidate_id else None


# -------------------------------------------------------------------------------------------- the gate
def paired_bootstrap(candidate: list[int], champion: list[int], *, resamples: int = 1000, confidence: float = 0.95,
                     seed: int = 0) -> dict:
    """Seeded paired bootstrap of mean(candidate − champion) over items scored 0/1 by both."""
    import numpy as np

    if len(candidate) != len(champion):
        raise ValueError(f"paired bootstrap needs the same items: {len(candidate)} vs {len(champion)}")
    d = np.asarray(candidate, dtype=np.float64) - np.asarray(champion, dtype=np.float64)
    n = len(d)
    if n == 0:
        return {"n": 0, "delta": 0.0, "ci": [0.0, 0.0], "resamples": resamples, "confidence": confidence,
                "seed": seed}
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, resamples, chunk):
        k = min(chunk, resamples - start)
        means[start:start + k] = d[rng.integers(0, n, size=(k, n))].mean(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return {"n": n, "delta": round(float(d.mean()), 4), "ci": [round(float(lo), 4), round(float(hi), 4)],
            "resamples": resamples, "confidence": confidence, "seed": seed}


def slice_comparison(parts: dict[str, tuple[list[int], list[int]]], gate: GateConfig, targeted: list[str]) -> dict:
    """A focused candidate vs the champion on the targeted slices and on the rest, each part its own seeded paired
    bootstrap (the gate's settings). Reported beside the checks, not a check: the generic checks decide, and the
    topic-regression check still rejects a candidate that gains on its targets but loses elsewhere."""
    return {"targeted_slices": list(targeted), **{
        name: paired_bootstrap(*pairs, resamples=gate.bootstrap_resamples, confidence=gate.confidence,
                               seed=gate.bootstrap_seed) for name, pairs in parts.items()}}


def gate_check(name: str, value, threshold, passed: bool, reason: str | None = None, **extra) -> dict:
    """One check of a gate decision (generic or a kind's): its value, threshold, verdict and, failed, why."""
    c = {"name": name, "value": value, "threshold": threshold, "passed": bool(passed), **extra}
    if not passed:
        c["reason"] = reason or f"{name}: {value} vs threshold {threshold}"
    return c


def gate_skipped(name: str, threshold, note: str) -> dict:
    """A check that does not apply (no champion, no golden set), reported as passed with the note."""
    return {"name": name, "value": None, "threshold": threshold, "passed": True, "skipped": note}


def _worst_topic(candidate: dict, champion: dict, min_n: int) -> tuple[str | None, float | None]:
    worst, where = None, None
    for topic, c in candidate.get("by_topic", {}).items():
        h = champion.get("by_topic", {}).get(topic)
        if not h or c["n"] < min_n or h["n"] < min_n:
            continue
        delta = round(c["semantic_accuracy"] - h["semantic_accuracy"], 4)
        if worst is None or delta < worst:
            worst, where = delta, topic
    return where, worst


def _golden_checks(candidate: dict, gate: GateConfig, golden_pairs: tuple[list[int], list[int]] | None,
                   base_golden: dict | None) -> tuple[list[dict], dict | None]:
    """The golden set judges every candidate, over an empty slot too: a floor on its semantic accuracy, and a
    paired bootstrap of (candidate − base model) over the golden items whose lower bound must clear a margin.
    A candidate with no scored golden items fails both: it cannot show it understands people's requests."""
    checks: list[dict] = []
    cg = candidate.get("golden") or {}
    n = cg.get("n") or 0
    none = ("no golden items were scored (configs/golden/<domain>.jsonl missing, empty or all excluded); ship a"
            " golden set or turn the check off with null")
    if gate.min_golden_semantic_accuracy is not None:
        t = gate.min_golden_semantic_accuracy
        if not n:
            checks.append(gate_check("min_golden_semantic_accuracy", None, t, False,
                                 f"min_golden_semantic_accuracy: {none}"))
        else:
            acc = cg["semantic_accuracy"]
            checks.append(gate_check("min_golden_semantic_accuracy", acc, t, acc >= t,
                                 f"golden set: semantic accuracy {acc:.4f} on {n} hand-written items < {t}", n=n))
    boot = None
    if gate.min_golden_improvement_over_base is not None:
        margin = gate.min_golden_improvement_over_base
        if not n:
            checks.append(gate_check("golden_improvement_over_base", None, margin, False,
                                 f"golden_improvement_over_base: {none}"))
        else:
            if golden_pairs is None:
                raise ValueError("the golden comparison with the base model needs golden_pairs (candidate, base)")
            boot = paired_bootstrap(*golden_pairs, resamples=gate.bootstrap_resamples, confidence=gate.confidence,
                                    seed=gate.bootstrap_seed)
            lo, hi = boot["ci"]
            base_acc = (base_golden or {}).get("semantic_accuracy")
            checks.append(gate_check(
                "golden_improvement_over_base", lo, margin, boot["n"] > 0 and lo > margin,
                f"does not beat the base model on the golden set: candidate − base {boot['delta']:+.4f},"
                f" {round(gate.confidence * 100)} % CI [{lo:+.4f}, {hi:+.4f}] over {boot['n']} paired items;"
                f" the lower bound must clear {margin:+.4f}",
                delta=boot["delta"], ci=boot["ci"], n=boot["n"], base_semantic_accuracy=base_acc))
    return checks, boot


def decide(candidate: dict, champion: dict | None, gate: GateConfig, *,
           pairs: tuple[list[int], list[int]] | None = None,
           golden_pairs: tuple[list[int], list[int]] | None = None, base_golden: dict | None = None) -> dict:
    """The gate decision: ``{"promote", "checks", "failed", "reasons", "bootstrap", "golden_bootstrap"}``.

    ``candidate``/``champion`` are metrics objects M on the same items (M may carry ``golden``: the golden set's
    M); ``pairs`` are the per-item semantic scores (0/1) of candidate and champion on those items, in the same
    order, for the paired bootstrap; ``golden_pairs`` the same for candidate and base model on the golden items
    (``base_golden``: the base model's golden M, for the report). Checks that need a champion are reported as
    skipped when there is none; the golden checks never are."""
    checks = [
        *gate.candidate_checks(candidate),  # the kind's floors (its gate section's own keys)
        gate_check("min_semantic_accuracy", candidate["semantic_accuracy"], gate.min_semantic_accuracy,
               candidate["semantic_accuracy"] >= gate.min_semantic_accuracy),
    ]
    if gate.max_mean_output_tokens is not None:
        checks.append(gate_check("max_mean_output_tokens", candidate["mean_output_tokens"], gate.max_mean_output_tokens,
                             candidate["mean_output_tokens"] <= gate.max_mean_output_tokens))
    parity = candidate.get("serving_parity")
    if gate.min_serving_parity is not None and parity:
        checks.append(gate_check("min_serving_parity", parity["rate"], gate.min_serving_parity,
                             parity["rate"] >= gate.min_serving_parity,
                             f"serving parity: merged and unmerged adapter agree on {parity['agree']}/{parity['n']}"
                             f" outputs (< {gate.min_serving_parity}) on the {parity.get('base') or 'unrecorded'}"
                             " base", base=parity.get("base")))
    boot = None
    margin = gate.min_improvement_over_champion
    if champion is None:
        checks.append(gate_skipped("significant_improvement_over_champion", margin, "no champion: empty slot"))
    else:
        if pairs is None:
            raise ValueError("a champion comparison needs the per-item pairs (candidate, champion)")
        boot = paired_bootstrap(*pairs, resamples=gate.bootstrap_resamples, confidence=gate.confidence,
                                seed=gate.bootstrap_seed)
        lo, hi = boot["ci"]
        pct = round(gate.confidence * 100)
        checks.append(gate_check(
            "significant_improvement_over_champion", lo, margin, lo > margin,
            f"no significant improvement: candidate − champion {boot['delta']:+.4f}, {pct} % CI [{lo:+.4f}, {hi:+.4f}]"
            f" over {boot['n']} paired items; the lower bound must clear {margin:+.4f}",
            delta=boot["delta"], ci=boot["ci"]))
    if gate.max_topic_regression is not None:
        floor = -gate.max_topic_regression or 0.0  # "or 0.0": no "-0.0" in reports
        if champion is None:
            checks.append(gate_skipped("max_topic_regression", floor, "no champion"))
        else:
            topic, worst = _worst_topic(candidate, champion, gate.min_topic_n)
            why = (f"topic {topic!r} regressed by {worst:+.4f} vs the champion (allowed {floor:+.4f})"
                   if worst is not None else None)
            checks.append(gate_check("max_topic_regression", worst, floor, worst is None or worst >= floor, why,
                                 topic=topic))
    checks += gate.champion_checks(candidate, champion)  # the kind's comparisons with the champion
    if gate.max_golden_regression is not None:
        floor = -gate.max_golden_regression or 0.0
        cg, hg = candidate.get("golden"), (champion or {}).get("golden")
        if champion is None or not cg or not hg or not cg["n"] or not hg["n"]:
            checks.append(gate_skipped("golden_no_regression", floor,
                                   "no champion" if champion is None else "no golden set"))
        else:
            delta = round(cg["semantic_accuracy"] - hg["semantic_accuracy"], 4)
            checks.append(gate_check("golden_no_regression", delta, floor, delta >= floor,
                                 f"golden set regressed: {cg['semantic_accuracy']:.4f} vs the champion's"
                                 f" {hg['semantic_accuracy']:.4f} on {cg['n']} items"))
    golden, golden_boot = _golden_checks(candidate, gate, golden_pairs, base_golden)
    checks += golden
    failed = [c for c in checks if not c["passed"]]
    return {"promote": not failed, "checks": checks, "failed": [c["name"] for c in failed],
            "reasons": [c["reason"] for c in failed], "bootstrap": boot, "golden_bootstrap": golden_boot,
            "forced": False}


# ----------------------------------------------------------------------------------- pointer + registry
def pointer_path(adapters_dir: Path, domain: str) -> Path:
    return Path(adapters_dir) / domain / "promoted"


def read_pointer(adapters_dir: Path, domain: str) -> str | None:
    link = pointer_path(adapters_dir, domain)
    return os.readlink(link) if link.is_symlink() else None


def move_pointer(adapters_dir: Path, domain: str, target: str | None) -> None:
    """Atomically repoint ``adapters/<domain>/promoted`` (a symlink) at ``target`` (None removes it)."""
    link = pointer_path(adapters_dir, domain)
    link.parent.mkdir(parents=True, exist_ok=True)
    if target is None:
        if link.is_symlink() or link.exists():
            link.unlink()
        return
    tmp = link.with_name(f".promoted.{os.getpid()}.{uuid.uuid4().hex[:6]}")
    os.symlink(target, tmp)
    os.replace(tmp, link)


def reconcile(db: Path, adapters_dir: Path, domain: str | None = None) -> list[str]:
    """Make DuckDB and the pointers agree (DuckDB wins); returns what was repaired.

    More than one promoted adapter in a domain (never written by this module, but possible by hand) keeps the
    most recently promoted one and retires the others."""
    if not Path(db).exists():
        return []
    domains = [domain] if domain else sorted(set(store.adapter_domains(db))
                                             | {p.parent.name for p in Path(adapters_dir).glob("*/promoted")})
    repairs = []
    for d in domains:
        promoted = store.promoted_adapters(db, d)
        if len(promoted) > 1:
            extra = [a["adapter_id"] for a in promoted[1:]]
            store.retire_adapters(db, extra)
            repairs.append(f"{d}: retired extra promoted adapters {extra}")
        target = promoted[0]["path"] if promoted else None
        if read_pointer(adapters_dir, d) != target and (target or pointer_path(adapters_dir, d).is_symlink()):
            move_pointer(adapters_dir, d, target)
            repairs.append(f"{d}: pointer -> {target or '(none)'}")
    return repairs


def _record(db: Path, adapters_dir: Path, promotion: dict, *, status: str, pointer_to: str | None) -> None:
    """The one transaction, then the pointer; a crash in between is repaired by the next ``reconcile``."""
    store.record_registry_change(db, promotion, status=status, retire_others=status == "promoted")
    _crash_point("registry:after-commit")
    if pointer_to:
        move_pointer(adapters_dir, promotion["domain"], pointer_to)
        _sync_serving(promotion, pointer_to)


def _sync_serving(promotion: dict, adapter_path: str) -> None:
    """Serving side effect (issue 16), after the change is recorded: with ``serve.vllm_url`` set, register the new
    champion with that vLLM and unload the one it replaced (tasks/serve/vllm.py; it never raises). A running
    ``loraforge serve`` needs nothing: it watches the pointer."""
    from tasks.serve.vllm import sync_promotion

    sync_promotion(promotion["domain"], adapter_path, promotion.get("previous_adapter_id"))


def apply_decision(db: Path, adapters_dir: Path, *, run_id: str | None, domain: str, adapter: dict,
                   decision: dict, reason: str | None = None, key: str | None = None) -> dict:
    """Record a gate decision (or a forced promotion) and move the pointer; returns the promotions row.

    The promotions row id is derived from (run, adapter, forced, ``key``): a rerun of the same pipeline run
    records nothing twice, while each ``loraforge promote`` passes a fresh ``key``."""
    reconcile(db, adapters_dir, domain)
    current = champion(db, domain, adapter["adapter_id"])
    forced = bool(decision.get("forced"))
    promote = forced or decision["promote"]
    pid = "pr-" + content_hash("promotion", run_id or uuid.uuid4().hex, adapter["adapter_id"], forced, key)
    promotion = {
        "promotion_id": pid,
        "run_id": run_id, "domain": domain, "adapter_id": adapter["adapter_id"],
        "previous_adapter_id": current["adapter_id"] if current else None,
        "decision": "promoted" if promote else "rejected", "decision_json": json.dumps(decision),
        "forced": forced, "reason": reason,
    }
    _record(db, adapters_dir, promotion, status=promotion["decision"], pointer_to=adapter["path"] if promote else None)
    return promotion


def forced_decision(reason: str) -> dict:
    """The decision object of ``loraforge promote --force --reason TEXT``: recorded as forced, no checks run."""
    if not reason or not reason.strip():
        raise RegistryError("a forced promotion needs --reason TEXT (it is recorded with the promotion)")
    return {"promote": True, "forced": True, "checks": [], "failed": [], "reasons": [f"forced: {reason.strip()}"],
            "bootstrap": None}


def previous_champion(db: Path, domain: str, current_id: str) -> str | None:
    """The adapter the current champion replaced when it was (last) promoted."""
    rows = [r for r in store.promotion_history(db, domain)
            if r["adapter_id"] == current_id and r["decision"] == "promoted"]
    return rows[-1]["previous_adapter_id"] if rows else None


def rollback(db: Path, adapters_dir: Path, domain: str) -> dict:
    """Restore the previous champion (one transaction + atomic pointer); returns the promotions row."""
    reconcile(db, adapters_dir, domain)
    current = store.promoted_adapter(db, domain)
    if current is None:
        raise RegistryError(f"domain {domain!r} has no promoted adapter to roll back (see `loraforge adapters ls`)")
    prev_id = previous_champion(db, domain, current["adapter_id"])
    prev = store.get_adapter(db, prev_id) if prev_id else None
    if prev is None:
        raise RegistryError(f"{current['adapter_id']} was the first champion of {domain!r}: there is no previous"
                            " champion to restore")
    if not Path(prev["path"]).is_dir():
        raise RegistryError(f"the previous champion {prev_id} has no files at {prev['path']}")
    promotion = {
        "promotion_id": "rb-" + uuid.uuid4().hex[:16], "run_id": None, "domain": domain, "adapter_id": prev_id,
        "previous_adapter_id": current["adapter_id"], "decision": "rolled_back",
        "decision_json": json.dumps({"rolled_back_from": current["adapter_id"], "restored": prev_id}),
        "forced": False, "reason": None,
    }
    _record(db, adapters_dir, promotion, status="promoted", pointer_to=prev["path"])
    return promotion
