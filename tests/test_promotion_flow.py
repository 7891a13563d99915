"""Gate, promotion and rollback flows under the Prefect test harness: the registry changes, and the events and
markdown artifacts a user's automation and the UI rely on are really there (read back via the Prefect client)."""

from __future__ import annotations

import asyncio

from schemas.config import load_domain
from tasks import store
from tasks.registry import read_pointer

DOMAIN = "regex-python"
OURS = {"loraforge.adapter.ad-a", "loraforge.adapter.ad-b"}
N = 200
G = 100  # golden items


def _adapter(home, name: str, run_id: str) -> dict:
    path = home.adapters / DOMAIN / name
    path.mkdir(parents=True)
    row = {"adapter_id": name, "domain": DOMAIN, "run_id": run_id, "dataset_id": "ds", "base_model": "m",
           "path": str(path), "status": "candidate"}
    store.record_adapter(home.db, row)
    return row


def _recorded(home, run_id: str, ref: str, role: str, eval_set: str, ok: list[bool]) -> dict:
    """A recorded evaluation of one set with per-item rows, as flows/evaluate.py records it."""
    import json

    from flows.evaluate import _items_table
    from tasks.evaluate import summarise
    from tasks.kinds import get_kind

    rows = [{"example_id": f"{eval_set}-{i:04d}", "topic": ("dates", "network")[i % 2], "prompt": f"regex: {i}\n",
             "reference": "x", "output": "x" if k else "y", "compiled": True, "timed_out": False, "semantic_ok": k,
             "exact": k, "equivalence": "equivalent" if k else "different", "n_distinguishing": 0, "redos": None,
             "output_tokens": 3, "latency_ms": 1.0, "excluded": False} for i, k in enumerate(ok)]
    m = summarise(rows, kind=get_kind("regex"), generate_seconds=1.0, parity={"n": 8, "agree": 8, "rate": 1.0})
    eval_id = f"ev-{run_id}-{role}-{eval_set}"
    m |= {"eval_id": eval_id, "eval_set": eval_set, "model_ref": ref}
    store.save_evaluation(home.db, {"eval_id": eval_id, "run_id": run_id, "domain": DOMAIN, "model_ref": ref,
                                    "role": role, "dataset_id": "ds", "eval_set": eval_set,
                                    "metrics_json": json.dumps(m)}, _items_table(eval_id, rows))
    return m


BASE_GOLDEN = [i % 10 == 0 for i in range(G)]  # the base model: 0.10 on the golden set


def _evaluation(home, run_id: str, ref: str, role: str, ok: list[bool], golden_ok: list[bool]) -> dict:
    """A role's M as the evaluation flow returns it (test split, golden set nested), with the base model's
    golden evaluation recorded beside it in the same run."""
    if not store.list_evaluations(home.db, run_id=run_id, model_ref="base:m"):
        _recorded(home, run_id, "base:m", "base", "golden", BASE_GOLDEN)
    return _recorded(home, run_id, ref, role, "test", ok) | {"golden": _recorded(home, run_id, ref, role, "golden",
                                                                                 golden_ok)}


async def _read_back(names: list[str], keys: list[str], want_events: int):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    async with get_client() as client:
        for _ in range(60):  # events reach the API asynchronously: wait for them (not a timing assertion)
            # other tests in this session emit the same event names: ask only for this test's adapters
            page = await client.read_events(filter=EventFilter(
                event=EventNameFilter(name=names), resource=EventResourceFilter(id=sorted(OURS))), limit=50)
            if len(page.events) >= want_events:
                break
            await asyncio.sleep(0.5)
        artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
    return page.events, artifacts


def test_gate_promotion_rejection_forced_promotion_and_rollback_emit_events_and_artifacts(home, prefect_harness):
    from prefect.events.worker import EventsWorker

    from flows.promote import gate_and_promote, promote_adapter, rollback_adapter

    # the tiny profile's shipped gate, golden checks included (min_golden_semantic_accuracy 0.25, lower bound of
    # candidate − base on the golden set > 0.0)
    cfg = load_domain(DOMAIN, "tiny", {"gate.min_compile_rate": 0.5, "gate.max_golden_regression": None})
    assert cfg.gate.min_golden_semantic_accuracy == 0.25 and cfg.gate.min_golden_improvement_over_base == 0.0
    for run_id in ("run-0", "run-a", "run-b"):
        store.create_run(home.db, run_id, DOMAIN, "tiny", "grammar", cfg.model_dump(mode="json"))
    _adapter(home, "ad-0", "run-0")
    a, b = _adapter(home, "ad-a", "run-a"), _adapter(home, "ad-b", "run-b")

    # 0. a candidate that is good on its teacher's split but no better than the base on the golden set is refused
    #    over the empty slot, with the golden checks named; the base's golden results come from the store
    m0 = _evaluation(home, "run-0", "ad-0", "candidate", [i % 5 != 0 for i in range(N)], BASE_GOLDEN)
    echo = gate_and_promote("run-0", "ad-0", candidate=m0, champion=None, home=str(home.root))
    assert echo["status"] == "rejected"
    assert echo["failed"] == ["min_golden_semantic_accuracy", "golden_improvement_over_base"], echo["reasons"]
    assert echo["base_golden_eval_id"] == "ev-run-0-base-golden" and echo["golden_bootstrap"]["n"] == G
    assert read_pointer(home.adapters, DOMAIN) is None

    # 1. a good candidate over an empty slot is promoted: 0.80 on the split, 0.60 on the golden set (base 0.10)
    golden_ok = [i % 10 < 6 for i in range(G)]
    ma = _evaluation(home, "run-a", "ad-a", "candidate", [i % 5 != 0 for i in range(N)], golden_ok)
    first = gate_and_promote("run-a", "ad-a", candidate=ma, champion=None, home=str(home.root))
    assert first["status"] == "promoted" and first["previous_adapter_id"] is None, first["reasons"]
    assert next(c for c in first["checks"] if c["name"] == "golden_improvement_over_base")["value"] > 0.3

    # 2. a second good one, barely different on the same items, is rejected: no significant improvement
    champ_ok = [i % 5 != 0 for i in range(N)]
    cand_ok = [not ok if i in (0, 5, 1, 2) else ok for i, ok in enumerate(champ_ok)]  # wins 2 items, loses 2
    mb = _evaluation(home, "run-b", "ad-b", "candidate", cand_ok, golden_ok)
    mc = _evaluation(home, "run-b", "ad-a", "champion", champ_ok, golden_ok)
    second = gate_and_promote("run-b", "ad-b", candidate=mb, champion=mc, home=str(home.root))
    assert second["status"] == "rejected" and second["failed"] == ["significant_improvement_over_champion"]
    assert second["reasons"][0].startswith("no significant improvement")
    assert store.get_adapter(home.db, "ad-b")["status"] == "rejected"

    # 3. forced anyway, with a reason: recorded as forced
    forced = promote_adapter(DOMAIN, "ad-b", force=True, reason="customer asked", home=str(home.root))
    assert forced["status"] == "promoted" and forced["forced"] is True
    assert store.promotion_history(home.db, DOMAIN)[-1]["forced"] is True
    assert read_pointer(home.adapters, DOMAIN) == b["path"]

    # 4. rollback restores the previous champion
    rb = rollback_adapter(DOMAIN, home=str(home.root))
    assert (rb["restored"], rb["rolled_back_from"]) == ("ad-a", "ad-b")
    assert read_pointer(home.adapters, DOMAIN) == a["path"]
    assert [x["adapter_id"] for x in store.list_adapters(home.db, DOMAIN) if x["status"] == "promoted"] == ["ad-a"]

    EventsWorker.drain_all()
    names = ["loraforge.adapter.promoted", "loraforge.adapter.rejected", "loraforge.adapter.rolled_back"]
    events, artifacts = asyncio.run(_read_back(names, [f"gate-decision-{DOMAIN}", f"rollback-{DOMAIN}"], 4))
    ours = [e for e in events if e.resource.get("loraforge.domain") == DOMAIN
            and e.resource.id in OURS]
    seen = sorted((e.event, e.resource.id) for e in ours)
    assert seen == [("loraforge.adapter.promoted", "loraforge.adapter.ad-a"),
                    ("loraforge.adapter.promoted", "loraforge.adapter.ad-b"),
                    ("loraforge.adapter.rejected", "loraforge.adapter.ad-b"),
                    ("loraforge.adapter.rolled_back", "loraforge.adapter.ad-a")]
    for e in ours:
        assert f"loraforge.domain.{DOMAIN}" in {r.id for r in e.related}
    rejected = next(e for e in ours if e.event == "loraforge.adapter.rejected")
    assert rejected.payload["failed"] == ["significant_improvement_over_champion"]
    assert "loraforge.adapter.ad-a" in {r.id for r in rejected.related}  # the champion it failed to beat
    rolled = next(e for e in ours if e.event == "loraforge.adapter.rolled_back")
    assert rolled.payload["rolled_back_from"] == "ad-b"

    texts = [x.data for x in artifacts]
    assert any("no significant improvement" in t and "| significant_improvement_over_champion |" in t for t in texts)
    assert any("does not beat the base model on the golden set" in t and "| golden_improvement_over_base |" in t
               and "| min_golden_semantic_accuracy | 0.1 | 0.25 | **FAIL** |" in t for t in texts)
    assert any("Forced promotion" in t for t in texts)
    assert any("Rollback" in t and "ad-a" in t for t in texts)
