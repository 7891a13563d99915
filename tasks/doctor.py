"""Integrity checks over ``$LORAFORGE_HOME``: the DuckDB file, its lineage and the promoted pointers.

``loraforge doctor`` runs ``check_home`` after a crash, a kill or a second writer to prove that nothing is
half-written: every finished run accounts for every request (requested = accepted + quarantined + failed),
no primary key occurs twice, lineage has no dangling ends (examples ↔ teacher calls ↔ run requests,
adapters ↔ datasets, evaluations ↔ items, promotions ↔ adapters), at most one adapter per domain is
``promoted`` and ``adapters/<domain>/promoted`` points at exactly that adapter. It only reads (one read-only
connection at a time), so it can run beside a live pipeline; a run still ``running`` is reported, not failed
(after a ``kill -9`` it stays so, and its rows are kept for the next run to reuse).

    python -c "from tasks.doctor import check_home; print(check_home())"
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb

from schemas.run import Home
from tasks import store

MAX_LISTED = 5


def _check(name: str, ok: bool, detail: str) -> dict:
    return {"name": name, "ok": bool(ok), "detail": detail}


def _listed(rows: list, fmt=str) -> str:
    shown = ", ".join(fmt(r) for r in rows[:MAX_LISTED])
    return shown + (f" … (+{len(rows) - MAX_LISTED} more)" if len(rows) > MAX_LISTED else "")


def _local(path: str | None) -> Path | None:
    """A local filesystem path, or None for an object-storage URL (not checked here)."""
    if not path:
        return None
    if "://" in path:
        return Path(path[len("file://"):]) if path.startswith("file://") else None
    return Path(path)


def _run_counts_check(rows: list[dict], unfinished: list[dict]) -> dict:
    problems = [f"run {u['run_id']} ({u['run_status']}): {u['n']} request(s) still {u['outcome']!r}"
                for u in unfinished]
    for r in rows:
        counts = {k: int(r[k]) for k in ("requested", "accepted", "quarantined", "failed")}
        if counts["requested"] != counts["accepted"] + counts["quarantined"] + counts["failed"]:
            problems.append(f"run {r['run_id']}: requested {counts['requested']} != accepted + quarantined + failed")
        summary = json.loads(r["summary_json"]) if r["summary_json"] else {}
        reported = summary.get("counts")
        if reported and {k: reported.get(k) for k in counts} != counts:
            problems.append(f"run {r['run_id']}: summary counts {reported} differ from run_requests rows {counts}")
    if problems:
        return _check("run_counts", False, _listed(problems))
    return _check("run_counts", True, f"{len(rows)} finished run(s): requested = accepted + quarantined + failed,"
                                      " summaries match rows")


def _pointer_check(home: Home, promoted: list[dict], adapters: dict[str, dict]) -> dict:
    from tasks.registry import pointer_path

    problems = []
    promoted_by_domain = {p["domain"]: p["adapter_ids"] for p in promoted}
    domains_on_disk = {p.parent.name for p in home.adapters.glob("*/promoted") if p.is_symlink() or p.exists()}
    for domain in sorted(set(promoted_by_domain) | domains_on_disk):
        link = pointer_path(home.adapters, domain)
        ids = promoted_by_domain.get(domain, [])
        if not ids:
            problems.append(f"{domain}: pointer {link} exists but the registry has no promoted adapter")
            continue
        expected = _local(adapters[ids[0]]["path"])
        if expected is None:
            continue  # adapter on object storage: the pointer is the registry row itself
        if not (link.is_symlink() or link.exists()):
            problems.append(f"{domain}: registry promotes {ids[0]} but {link} is missing")
        elif os.path.realpath(link) != os.path.realpath(expected):
            problems.append(f"{domain}: {link} → {os.path.realpath(link)}, registry promotes {ids[0]} at {expected}")
        elif not (expected / "adapter_config.json").exists():
            problems.append(f"{domain}: promoted adapter {ids[0]} has no files at {expected}")
    if problems:
        return _check("pointer_matches_registry", False, _listed(problems))
    return _check("pointer_matches_registry", True, f"{len(promoted_by_domain)} domain pointer(s) agree with the"
                                                    " registry")


def _dataset_files_check(db: Path) -> dict:
    missing = []
    datasets = store.list_datasets(db)
    for d in datasets:
        local = _local(d["path"])
        if local is not None and not (local / "manifest.json").exists():
            missing.append(f"{d['dataset_id']} ({local})")
    if missing:
        return _check("dataset_files", False, "snapshot manifest missing for " + _listed(missing))
    return _check("dataset_files", True, f"{len(datasets)} snapshot(s) on disk")


def check_home(home: Home | None = None) -> dict:
    """Every integrity check; ``{"ok": bool, "checks": [{"name", "ok", "detail"}]}``."""
    home = home or Home.from_env()
    db = home.db
    if not db.exists():
        return {"ok": True, "checks": [_check("database", True, f"no database at {db} yet (nothing to check)")]}
    try:
        counts = store.doctor_table_counts(db)
    except (store.StoreBusyError, store.StoreVersionError) as e:  # busy, or written by a newer loraforge
        return {"ok": False, "checks": [_check("database", False, str(e))]}
    except duckdb.Error as e:
        return {"ok": False, "checks": [_check("database", False, f"{db} cannot be read: {type(e).__name__}: {e}")]}
    checks = [_check("database", True, f"{db} opens; rows: " + ", ".join(f"{k} {v}" for k, v in counts.items()))]

    q = store.doctor_queries(db)
    checks.append(_run_counts_check(q["run_outcome_counts"], q["unfinished_requests"]))

    dups = {t: n for t, n in store.doctor_duplicate_keys(db).items() if n}
    checks.append(_check("duplicate_keys", not dups,
                         "no primary key occurs twice" if not dups else f"duplicated keys per table: {dups}"))

    lineage = {
        "examples_without_teacher_call": lambda r: f"example {r['example_id']} (request {r['request_hash']})",
        "quarantine_without_teacher_call": lambda r: f"quarantine {r['quarantine_id']} (request {r['request_hash']})",
        "accepted_requests_without_example": lambda r: f"run {r['run_id']} request {r['request_hash']} → "
                                                       f"missing example {r['example_id']}",
        "adapters_without_dataset": lambda r: f"adapter {r['adapter_id']} → missing dataset {r['dataset_id']}",
        "evaluations_without_items": lambda r: f"evaluation {r['eval_id']} ({r['role']}) has no items",
        "evaluation_items_without_evaluation": lambda r: f"{r['n']} item(s) of missing evaluation {r['eval_id']}",
        "runs_with_unknown_dataset": lambda r: f"run {r['run_id']} → missing dataset {r['dataset_id']}",
        "runs_with_unknown_adapter": lambda r: f"run {r['run_id']} → missing adapter {r['adapter_id']}",
        "promotions_without_adapter": lambda r: f"promotion {r['promotion_id']} → missing adapter {r['adapter_id']}",
    }
    orphans = [fmt(r) for name, fmt in lineage.items() for r in q[name]]
    checks.append(_check("lineage", not orphans, "every example, request, adapter, evaluation and promotion"
                                                 " links to rows that exist" if not orphans else _listed(orphans)))

    several = [p for p in q["promoted_per_domain"] if len(p["adapter_ids"]) > 1]
    bad_status = q["unknown_adapter_status"]
    checks.append(_check(
        "one_promoted_per_domain", not several and not bad_status,
        "at most one promoted adapter per domain" if not several and not bad_status else _listed(
            [f"{p['domain']}: {len(p['adapter_ids'])} promoted ({', '.join(p['adapter_ids'])})" for p in several]
            + [f"adapter {b['adapter_id']} has status {b['status']!r}" for b in bad_status])))

    adapters = {a["adapter_id"]: a for a in store.list_adapters(db)}
    checks.append(_pointer_check(home, q["promoted_per_domain"], adapters))
    checks.append(_dataset_files_check(db))

    running = [r["run_id"] for r in store.list_runs(db) if r["status"] == "running"]
    checks.append(_check("interrupted_runs", True, "none" if not running else
                         f"{len(running)} run(s) still 'running' (live, or killed: their stored teacher responses"
                         f" are reused by the next run): {_listed(running)}"))
    return {"ok": all(c["ok"] for c in checks), "checks": checks}
