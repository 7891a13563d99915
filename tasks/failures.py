"""Where a champion fails: its stored evaluation items, sliced by topic, difficulty, phrasing style and concept.

Pure functions over item rows (``store.model_items``: the ``evaluation_items`` of every evaluation of one model,
with their evaluation's set), so the report is the same from the CLI (``loraforge failures --domain D``), the
``failure-report`` flow (a markdown artifact) and a focused run (tasks/focus.py plans from it).

What it reads: the held-out split's items and any ``--eval-file`` run's, never the golden set (it only measures:
mining it would make the golden figures a lie). An item scored in several evaluations (a champion is re-scored by
each later run) counts once, at its latest verdict. Excluded items (training overlap) are not scored, so not read.

A *slice* is one label value (``topic=network``, ``difficulty=3``, ``style=question``, ``concept=mac``): its ``n``
items, how many ``failed`` and the ``rate``. A slice is **targeted** when its failure rate is above the
champion's overall failure rate and it has at least ``min_failed`` failures: where the champion is worse than
it is on average, with more than one example of it.
"""

from __future__ import annotations

import json
from collections import defaultdict

from schemas.example import content_hash
from tasks.evaluate import rate
from tasks.validate import LABEL_KEYS, prompt_key

SLICE_KEYS = ("topic", *LABEL_KEYS)
_NO_LABEL = ("", "unknown")  # what a file item without a topic says: no slice


def labels_of(row: dict) -> dict[str, str]:
    """An item row's slice labels (``topic`` column + ``labels_json``), as strings, in ``SLICE_KEYS`` order."""
    raw = {**json.loads(row.get("labels_json") or "{}"), "topic": row.get("topic")}
    return {k: str(raw[k]) for k in SLICE_KEYS if raw.get(k) is not None and str(raw[k]) not in _NO_LABEL}


def slices_of(row: dict) -> list[str]:
    """The slices an item row belongs to: ``key=value`` per label."""
    return [f"{k}={v}" for k, v in labels_of(row).items()]


def latest_items(rows: list[dict]) -> list[dict]:
    """One row per item (the same normalised prompt), the latest verdict winning; ``rows`` oldest first."""
    latest: dict[str, dict] = {}
    for r in rows:
        latest.pop(prompt_key(r["prompt"]), None)  # re-insert: the order of the latest sighting
        latest[prompt_key(r["prompt"])] = r
    return list(latest.values())


def slice_table(items: list[dict]) -> list[dict]:
    """``[{"slice", "n", "failed", "rate"}]`` over every label value, worst failure rate first."""
    n: dict[str, int] = defaultdict(int)
    failed: dict[str, int] = defaultdict(int)
    for r in items:
        for s in slices_of(r):
            n[s] += 1
            failed[s] += not r["semantic_ok"]
    rows = [{"slice": s, "n": n[s], "failed": failed[s], "rate": rate(failed[s], n[s])} for s in n]
    return sorted(rows, key=lambda r: (-r["rate"], -r["failed"], r["slice"]))


def targeted_slices(slices: list[dict], overall_rate: float, min_failed: int) -> list[str]:
    """Slices failing more often than the champion does overall, with at least ``min_failed`` failures."""
    return [s["slice"] for s in slices if s["failed"] >= min_failed and s["rate"] > overall_rate]


def request_text(prompt: str, template: str) -> str:
    """The request as a person typed it: the student prompt without the domain's template around it."""
    prefix, _, suffix = template.partition("{description}")
    if prompt.startswith(prefix) and prompt.endswith(suffix) and len(prompt) >= len(prefix) + len(suffix):
        prompt = prompt[len(prefix):len(prompt) - len(suffix)]
    return prompt.strip()


def failure_item(row: dict, template: str) -> dict:
    """A failing item as the report lists it: where it was scored, what was asked, expected and answered."""
    return {"failure_id": "fl-" + content_hash("failure", row["eval_set"], row["example_id"], row["prompt"], n=14),
            "eval_set": row["eval_set"], "eval_id": row["eval_id"], "example_id": row["example_id"],
            "request": request_text(row["prompt"], template), "prompt": row["prompt"], "reference": row["reference"],
            "output": row["output"], "labels": labels_of(row), "slices": slices_of(row),
            "item": json.loads(row.get("item_json") or "{}")}


def failure_report(domain: str, adapter_id: str, rows: list[dict], *, template: str = "{description}",
                   min_failed: int = 2) -> dict:
    """The champion's failure report from its stored item rows (golden rows must not be passed; see module doc).

    ``{"domain", "adapter_id", "n", "failed", "rate", "slices": [{"slice", "n", "failed", "rate"}], "targeted":
    [slice], "items": [failing item]}``; ``eval_sets`` counts the items per evaluation set."""
    if any(r.get("eval_set") == "golden" for r in rows):
        raise ValueError("the failure report never reads the golden set: it only measures")
    items = latest_items(rows)
    failing = [r for r in items if not r["semantic_ok"]]
    overall = rate(len(failing), len(items))
    slices = slice_table(items)
    sets: dict[str, int] = defaultdict(int)
    for r in items:
        sets[r["eval_set"]] += 1
    return {"domain": domain, "adapter_id": adapter_id, "n": len(items), "failed": len(failing), "rate": overall,
            "eval_sets": dict(sorted(sets.items())), "min_failed": min_failed,
            "slices": slices, "targeted": targeted_slices(slices, overall, min_failed),
            "items": [failure_item(r, template) for r in failing]}


def report_markdown(report: dict, max_items: int = 50) -> str:
    """The report as a Prefect markdown artifact: the slices (targeted ones marked), then the failing items."""
    targeted = set(report["targeted"])
    lines = [f"## Where `{report['adapter_id']}` fails ({report['domain']})", "",
             f"**{report['failed']} of {report['n']} items failed** ({report['rate']:.1%}) over "
             + (", ".join(f"{s} {n}" for s, n in report["eval_sets"].items()) or "no stored evaluation")
             + " (held-out and --eval-file items; never the golden set).", "",
             f"Targeted: slices failing more often than {report['rate']:.1%} with at least {report['min_failed']}"
             f" failures — {', '.join(f'`{s}`' for s in report['targeted']) or 'none'}.", "",
             "| slice | n | failed | rate | targeted |", "|---|---|---|---|---|"]
    lines += [f"| {s['slice']} | {s['n']} | {s['failed']} | {s['rate']:.3f} | {'yes' if s['slice'] in targeted else ''}"
              " |" for s in report["slices"]]
    shown = report["items"][:max_items]
    lines += ["", f"### Failing items ({len(shown)} of {len(report['items'])})", "",
              "| request | expected | answered | slices |", "|---|---|---|---|"]
    cell = lambda t: "`" + str(t).replace("|", "\\|").replace("`", "'")[:80] + "`"  # noqa: E731
    lines += [f"| {cell(i['request'])} | {cell(i['reference'])} | {cell(i['output'])} | {', '.join(i['slices'])} |"
              for i in shown]
    return "\n".join(lines) + "\n"


def split_pairs(candidate: dict[str, dict], champion: dict[str, dict], targeted: list[str],
                skip_prompts: frozenset[str] = frozenset()) -> dict[str, tuple[list[int], list[int]]]:
    """Per-item semantic scores (0/1) of candidate and champion on the items both scored (``example_id`` → item
    row), split into ``targeted`` (the item is in a targeted slice) and ``rest``, in id order; items whose prompt is
    in ``skip_prompts`` (the mined failures) are left out."""
    targets = set(targeted)
    parts: dict[str, tuple[list[int], list[int]]] = {"targeted": ([], []), "rest": ([], [])}
    for i in sorted(candidate.keys() & champion.keys()):
        if prompt_key(candidate[i]["prompt"]) in skip_prompts:
            continue
        part = parts["targeted" if targets & set(slices_of(candidate[i])) else "rest"]
        part[0].append(int(candidate[i]["semantic_ok"]))
        part[1].append(int(champion[i]["semantic_ok"]))
    return parts


# ------------------------------------------------------------------------------------------ from the store
class NoChampionError(ValueError):
    """The domain has no promoted adapter, so there is no champion whose failures could be reported."""


def champion_report(db, adapters_dir, cfg) -> dict:
    """The failure report of the domain's champion from what the store holds (the CLI, the flow and a focused run
    all read it here); raises ``NoChampionError`` for a domain without one."""
    from tasks import registry, store

    registry.reconcile(db, adapters_dir, cfg.name)
    champ = store.promoted_adapter(db, cfg.name)
    if champ is None:
        raise NoChampionError(f"domain {cfg.name!r} has no champion (no promoted adapter): run `loraforge run --domain"
                              f" {cfg.name}` until the gate promotes one, or `loraforge promote --force`")
    report = failure_report(cfg.name, champ["adapter_id"], store.model_items(db, champ["adapter_id"]),
                            template=cfg.task.prompt_template, min_failed=cfg.dataset.focus_min_failed)
    return {**report, "dataset_id": champ["dataset_id"], "run_id": champ["run_id"]}
