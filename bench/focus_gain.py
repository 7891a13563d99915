"""Does focusing on the champion's failures pay? Two candidates from one champion, same new-request budget.

    python bench/focus_gain.py                      # regex-python, quick profile, the domain's default student
    python bench/focus_gain.py --profile tiny --new-requests 120 --fresh 40   # a smoke run (minutes, not figures)

From a fresh $LORAFORGE_HOME (a temporary one unless --home): a champion (a pipeline run of the profile; promoted by
its gate, or forced when the gate refuses it: the bench needs one), its failure report, then two candidates with the
same number of new teacher requests and the same training (``dataset.focus_train``, union by default):

- **uniform**: ``--focus failures`` with ``dataset.focus_share: 0`` (every new request drawn from the domain's mix),
- **focused**: ``--focus failures`` with ``dataset.focus_share`` (default 0.5; the uniform half is the same
  requests as the uniform candidate's first half).

Both stop before the gate (neither may become the other's champion). Then both, and the champion, are scored on
the same items: **targeted** — fresh items of the targeted slices (new seeds, asked the way the focused requests
were: never the mined items themselves), **rest** — fresh uniform items outside the targeted slices, and the
**golden** set. Items overlapping either candidate's or the champion's training data are dropped. Figures:
focused − uniform semantic accuracy per set with a seeded paired bootstrap CI (tasks/registry.py). Goal (issue 18):
targeted CI lower bound > 0, rest and golden lower bounds ≥ −0.02.

Writes bench/results/focus_gain.json (``--out`` names another file; a tiny profile defaults to focus_gain_smoke).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from _report import report

ROOT = Path(__file__).resolve().parents[1]
PREFECT_DEFAULTS = {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120", "DO_NOT_TRACK": "1",
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "TOKENIZERS_PARALLELISM": "false"}


def fresh_items(cfg, specs, prefix: str, guard: list[dict]) -> list[dict]:
    """Teacher answers to ``specs`` that pass validation (decontaminated against ``guard`` and the golden set), as
    evaluation items with their slice labels."""
    from tasks.generate import make_teacher
    from tasks.kinds import get_kind
    from tasks.validate import load_eval_items, request_lineage, validate_rows

    kind = get_kind(cfg.task.kind)
    teacher = make_teacher(cfg)
    params = kind.request_params(cfg)
    requests = [teacher.build_request(cfg.name, s, params) for s in specs]
    calls = teacher.complete_batch(requests)
    raws = [c.raw_response if c.status == "ok" else None for c in calls]
    verdicts = validate_rows(raws, cfg, eval_items=load_eval_items(cfg) + guard)
    items = []
    for spec, raw, v in zip(specs, raws, verdicts, strict=True):
        if not v.accepted:
            continue
        labels, _ = request_lineage(json.dumps({"spec": spec.model_dump()}), raw)
        fields = kind.item_fields(kind.example_fields(v.output)) or {}
        items.append({"example_id": f"{prefix}-{spec.index:05d}", "prompt": v.prompt, "completion": v.completion,
                      **fields, "topic": spec.topic, "labels": {"topic": spec.topic, **labels}})
    return items


def train_keys(db, dataset_ids, kind):
    from tasks import dataset, store
    from tasks.evaluate import training_keys

    prompts, answers = set(), set()
    for ds_id in dataset_ids:
        rows = dataset.read_split(store.get_dataset(db, ds_id)["path"], "train").to_pylist()
        p, a = training_keys(rows, kind)
        prompts |= p
        answers |= a
    return prompts, answers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domain", default="regex-python")
    ap.add_argument("--profile", default="quick", choices=("tiny", "quick", "full"))
    ap.add_argument("--new-requests", type=int, default=None, help="new teacher requests per candidate "
                    "(default: the profile's dataset.n_requests)")
    ap.add_argument("--share", type=float, default=None, help="the focused candidate's dataset.focus_share")
    ap.add_argument("--fresh", type=int, default=400, help="fresh requests per measured set (targeted, rest)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="dotted config override (repeatable)")
    ap.add_argument("--home", default=None, help="LORAFORGE_HOME to use (default: a new temporary one)")
    ap.add_argument("--out", default=None, help="results name under bench/results/ (default: focus_gain, or "
                    "focus_gain_smoke for the tiny profile)")
    args = ap.parse_args()
    for k, v in PREFECT_DEFAULTS.items():
        os.environ.setdefault(k, v)
    home = Path(args.home or tempfile.mkdtemp(prefix="lf-bench-focus-")) / "home"
    os.environ["LORAFORGE_HOME"] = str(home)
    sys.path.insert(0, str(ROOT))

    from flows.pipeline import distill_to_adapter
    from schemas.config import load_domain, parse_sets
    from schemas.run import Home
    from tasks import evaluate as ev
    from tasks import failures, focus, registry, store
    from tasks.generate import uniform_specs
    from tasks.kinds import get_kind

    t0 = time.perf_counter()
    h = Home.from_env(home)
    overrides = parse_sets(args.sets)
    cfg = load_domain(args.domain, args.profile, overrides)
    n_new = args.new_requests or cfg.dataset.n_requests
    share = cfg.dataset.focus_share if args.share is None else args.share
    kind = get_kind(cfg.task.kind)
    seconds = {}

    # 1. the champion
    champ_run = distill_to_adapter(domain=args.domain, profile=args.profile, overrides=overrides, home=str(h.root))
    champ = store.get_adapter(h.db, champ_run["adapter"]["id"])
    forced = champ["status"] != "promoted"
    if forced:
        registry.apply_decision(h.db, h.adapters, run_id=champ_run["run_id"], domain=cfg.name, adapter=champ,
                                decision=registry.forced_decision("bench/focus_gain.py needs a champion"), key="bench")
    seconds["champion"] = round(time.perf_counter() - t0, 1)
    rep = failures.champion_report(h.db, h.adapters, cfg)

    # 2. two candidates, the same new-request budget and training; both stop before the gate
    cands = {}
    for name, s in (("uniform", 0.0), ("focused", share)):
        t = time.perf_counter()
        run = distill_to_adapter(domain=args.domain, profile=args.profile, home=str(h.root), focus="failures",
                                 to_stage="train", overrides={**overrides, "dataset.n_requests": n_new,
                                                              "dataset.focus_share": s})
        cands[name] = store.get_adapter(h.db, run["adapter"]["id"]) | {"counts": run["counts"]}
        seconds[name] = round(time.perf_counter() - t, 1)

    # 3. fresh items: targeted slices (asked like the focused requests, other seeds) and the rest; golden
    t = time.perf_counter()
    plan = {"report": rep}
    guard = focus.decontamination_items(rep, kind)
    targets = set(rep["targeted"])
    targeted = fresh_items(cfg, focus.focused_specs(cfg, rep, args.fresh, salt="bench-fresh"), "fresh-t", guard)
    if targets:
        targeted = [it for it in targeted if targets & {f"{k}={v}" for k, v in it["labels"].items()}]
    rest = fresh_items(cfg, uniform_specs(cfg, args.fresh, salt="bench-fresh-rest"), "fresh-r", guard)
    rest = [it for it in rest if not targets & {f"{k}={v}" for k, v in it["labels"].items()}]
    keys = train_keys(h.db, [champ["dataset_id"], *(c["dataset_id"] for c in cands.values())], kind)
    mined = focus.mined_prompts(plan)
    sets, dropped = {}, {}
    for name, items in (("targeted", targeted), ("rest", rest), ("golden", ev.golden_items(cfg))):
        kept, excl = ev.split_overlap(items, keys, kind)
        sets[name] = [it for it in kept if ev.prompt_key(it["prompt"]) not in mined]
        dropped[name] = len(items) - len(sets[name])
    seconds["fresh_items"] = round(time.perf_counter() - t, 1)

    # 4. score champion and both candidates on the same items; focused − uniform, paired per item
    t = time.perf_counter()
    scored = {}
    for name, a in (("champion", champ), *cands.items()):
        per_set = ev.evaluate_sets(a["base_model"], a["path"], sets, cfg)
        scored[name] = {s: {r["example_id"]: r for r in rows if not r.get("excluded")} for s, (m, rows) in
                        per_set.items()}
    seconds["evaluate"] = round(time.perf_counter() - t, 1)
    figures = {"bench": "focus_gain", "domain": cfg.name, "profile": args.profile,
               "base_model": cfg.training.base_model, "new_requests": n_new, "focus_share": share,
               "focus_train": cfg.dataset.focus_train, "champion": champ["adapter_id"], "champion_forced": forced,
               "targeted_slices": rep["targeted"], "champion_failed": rep["failed"], "champion_items": rep["n"],
               "accepted": {k: c["counts"]["accepted"] for k, c in cands.items()}}
    for s in sets:
        f, u = scored["focused"][s], scored["uniform"][s]
        ids = sorted(f.keys() & u.keys())
        gate = cfg.gate
        boot = registry.paired_bootstrap([int(f[i]["semantic_ok"]) for i in ids],
                                         [int(u[i]["semantic_ok"]) for i in ids], resamples=gate.bootstrap_resamples,
                                         confidence=gate.confidence, seed=gate.bootstrap_seed)
        figures[f"{s}_n"] = boot["n"]
        figures[f"{s}_delta"], figures[f"{s}_delta_ci"] = boot["delta"], boot["ci"]
        figures[f"{s}_accuracy"] = {m: ev.rate(sum(r["semantic_ok"] for r in scored[m][s].values()),
                                               len(scored[m][s])) for m in scored}
    figures["dropped_overlapping_or_mined"] = dropped
    figures["goal_met"] = {"targeted": figures["targeted_n"] > 0 and figures["targeted_delta_ci"][0] > 0,
                           "rest": figures["rest_delta_ci"][0] >= -0.02,
                           "golden": figures["golden_delta_ci"][0] >= -0.02}
    figures["seconds"] = {**seconds, "total": round(time.perf_counter() - t0, 1)}
    figures["date"] = time.strftime("%Y-%m-%d")
    report(args.out or ("focus_gain_smoke" if args.profile == "tiny" else "focus_gain"), figures)


if __name__ == "__main__":
    main()
