"""A focused run (``loraforge run --focus failures``): spend part of the request budget on where the champion fails.

Given the champion's failure report (tasks/failures.py, frozen in ``focus_plans`` when the run starts):

- **plan** (``plan_specs``): ``dataset.focus_share`` of ``dataset.n_requests`` become *focused* requests, the rest
  stay uniform. The focused ones go round-robin over the targeted slices (worst first) and, within a slice, over
  its failing items, so every target gets its share; each asks the teacher for a new, different request like one
  failing item — its topic, difficulty, style and concept, a new seed (``RequestSpec.focus``: the grammar draws
  the concept again with new values and phrasing, an LLM teacher sees the failing request as the example not to
  copy). With no targeted slice (the champion fails evenly), every failing item is an anchor. The uniform share
  is drawn with seeds of its own (salted with the champion's id), so it asks for new examples, not the
  champion's again.
- **decontamination** (``decontamination_items``): the failing items join the evaluation sets validation keeps
  out of training, with their reference fields, so no new example copies one, paraphrases it one-to-one or
  answers it equivalently (``eval_overlap_*``).
- **training data** (``training_examples``): ``dataset.focus_train: union`` trains on the champion's examples plus
  the new ones (a new example that repeats a champion's prompt is dropped); ``continue`` on the new ones alone,
  starting from the champion's adapter weights (``training.init_adapter``). The snapshot manifest's ``lineage``
  says which, with counts; each example keeps its run and the failure it answers (``answers_failure``).
"""

from __future__ import annotations

import random
from itertools import zip_longest

import pyarrow as pa
import pyarrow.compute as pc

from schemas.config import DomainConfig
from schemas.example import FocusHint, RequestSpec, content_hash
from tasks.kinds import Kind
from tasks.validate import prompt_key


def anchors(report: dict) -> list[dict]:
    """The failing items focused requests are built on, in the order they are used: round-robin over the
    targeted slices (the report lists slices worst first), each slice's items in report order; every failing item
    when nothing is targeted."""
    items = report["items"]
    order = [s["slice"] for s in report["slices"] if s["slice"] in set(report["targeted"])]
    if not order:
        return list(items)
    per_slice = [[it for it in items if s in it["slices"]] for s in order]
    out, seen = [], set()
    for row in zip_longest(*per_slice):
        for it in row:
            if it is not None and it["failure_id"] not in seen:
                seen.add(it["failure_id"])
                out.append(it)
    return out


def _pick(rng: random.Random, weights: dict) -> object:
    keys, w = zip(*sorted(weights.items()), strict=True)
    return rng.choices(keys, weights=w)[0]


def focused_specs(cfg: DomainConfig, report: dict, n: int, start: int = 0, salt: str = "") -> list[RequestSpec]:
    """``n`` focused request specs (indices from ``start``) anchored on the report's failing items in turn.

    An anchor's label is used where the domain allows it (a topic and difficulty it plans, a style its teacher
    honours), otherwise drawn from the domain's weights; the seed is new for every (anchor, round) and ``salt``
    (bench/focus_gain.py draws fresh evaluation items of the targeted slices with one)."""
    items = anchors(report)
    if not items or n <= 0:
        return []
    task = cfg.task
    styles = set(task.styles) or set(type(task).style_names)
    extra = (salt,) if salt else ()
    rng = random.Random(content_hash("focus-plan", cfg.name, cfg.seed, report["adapter_id"], *extra))
    specs = []
    for k in range(n):
        it = items[k % len(items)]
        labels = it["labels"]
        topic = labels.get("topic") if labels.get("topic") in task.topics else _pick(rng, task.topics)
        difficulty = next((d for d in task.difficulties if str(d) == labels.get("difficulty")), None)
        style = labels.get("style") if labels.get("style") in styles else (
            _pick(rng, task.styles) if task.styles else None)
        seed = int(content_hash("focus-seed", cfg.seed, it["failure_id"], k // len(items), *extra), 16) % 2**31
        specs.append(RequestSpec(
            index=start + k, seed=seed, topic=topic,
            difficulty=difficulty if difficulty is not None else _pick(rng, task.difficulties), style=style,
            focus=FocusHint(failure_id=it["failure_id"], request=it["request"], concept=labels.get("concept"))))
    return specs


def split_budget(cfg: DomainConfig) -> tuple[int, int]:
    """(uniform, focused) request counts of a focused run: ``focus_share`` of ``n_requests`` focused."""
    n = cfg.dataset.n_requests
    focused = round(n * cfg.dataset.focus_share)
    return n - focused, focused


def uniform_salt(report: dict) -> str:
    """What makes a focused run's uniform requests new: the champion they are meant to improve on."""
    return f"focus:{report['adapter_id']}"


def _eval_item(request: str, reference: str, fields: dict | None, kind: Kind) -> dict:
    fields = kind.item_fields(fields or {})
    if fields is None or not all(k in fields for k in kind.item_field_names):
        fields = {k: [] for k in kind.item_field_names}  # unusable reference fields: the prompt still guards it
    return {"prompt": request, "completion": reference, **fields}


def decontamination_items(report: dict, kind: Kind, held_out: list[dict] = ()) -> list[dict]:
    """What validation keeps out of a focused run's training data besides the golden set: the failing items (the
    request text, the reference answer, the kind's reference fields) and ``held_out`` (the champion's test-split
    rows, ``dataset.item_rows``), so a new example never copies, paraphrases one-to-one or answers equivalently
    an item the champion is or was measured on."""
    out = [_eval_item(it["request"], it["reference"], it.get("item"), kind) for it in report["items"]]
    out += [_eval_item(r.get("description") or r["prompt"], r["completion"], r, kind) for r in held_out]
    return out


def mined_prompts(plan: dict | None) -> frozenset[str]:
    """Normalised prompts of the failure items a focused run was built from (none without a focus plan)."""
    return frozenset(prompt_key(it["prompt"]) for it in (plan or {}).get("report", {}).get("items", []))


def training_examples(new: pa.Table, parent: pa.Table | None, how: str, plan: dict) -> tuple[pa.Table, dict]:
    """The focused run's examples to snapshot and the manifest's ``lineage``.

    ``union``: the champion's examples (``parent``, every split: its held-out items stay held out) plus the new
    ones, minus new ones that repeat an example id or a normalised prompt of the parent; ``continue``: the new
    ones alone (training starts from the champion's adapter)."""
    lineage = {"focus": "failures", "training": how, "champion_adapter_id": plan["adapter_id"],
               "champion_dataset_id": plan.get("dataset_id"), "n_new": new.num_rows,
               "n_answering_failures": int(pc.sum(pc.is_valid(new["answers_failure"])).as_py() or 0)
               if "answers_failure" in new.column_names else 0}
    if how == "continue" or parent is None or parent.num_rows == 0:
        return new, {**lineage, "n_parent": 0, "n_new_dropped": 0}
    seen_ids = set(parent["example_id"].to_pylist())
    seen_prompts = {prompt_key(p) for p in parent["prompt"].to_pylist()}
    keep = [eid not in seen_ids and prompt_key(p) not in seen_prompts
            for eid, p in zip(new["example_id"].to_pylist(), new["prompt"].to_pylist(), strict=True)]
    kept = new.filter(pa.array(keep, pa.bool_()))
    parent = parent.select(new.column_names).cast(new.schema)
    return pa.concat_tables([parent, kept]), {**lineage, "n_parent": parent.num_rows,
                                              "n_new_dropped": new.num_rows - kept.num_rows}
