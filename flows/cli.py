"""The ``loraforge`` command line (Typer).

Config is loaded and checked *before* Prefect is imported, so a typo or an unknown domain fails in well
under a second with a message naming the problem. The CLI sets the Prefect defaults it needs itself
(ephemeral startup timeout, analytics off), so ``loraforge …`` behaves the same from make, a shell or a test.
With ``--json`` the last line printed is one JSON object.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from schemas.config import DEFAULT_DOMAIN, ConfigError, load_domain, parse_sets
from schemas.run import Home
from tasks.kinds import KindError, get_kind

PREFECT_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}

app = typer.Typer(help="loraforge: distill a teacher LLM into a small, evaluated, promoted LoRA adapter.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
runs_app = typer.Typer(help="Inspect pipeline runs.", no_args_is_help=True)
adapters_app = typer.Typer(help="Inspect the adapter registry.", no_args_is_help=True)
datasets_app = typer.Typer(help="Inspect dataset snapshots.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(adapters_app, name="adapters")
app.add_typer(datasets_app, name="datasets")
err = Console(stderr=True)


class ProfileOpt(StrEnum):
    tiny = "tiny"
    quick = "quick"
    full = "full"


class TeacherOpt(StrEnum):
    grammar = "grammar"
    openai = "openai"


class FocusOpt(StrEnum):
    none = "none"
    failures = "failures"


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def _reported(what: str, *usage_errors: type[Exception]):
    """A command's work: a usage error (one of ``usage_errors``) exits 2 with its message, any other failure 1 with
    "<what> failed: …" — a message, never a traceback."""
    try:
        yield
    except typer.Exit:
        raise
    except usage_errors as e:
        _fail(str(e))
    except Exception as e:
        _fail(f"{what} failed: {type(e).__name__}: {e}", code=1)


@functools.cache
def _kind_of(domain: str | None):
    """The domain's task kind (which of its figures the tables show and what they are called); None when the
    domain's file is gone or broken: its figures are then left out."""
    try:
        return get_kind(load_domain(domain, "full").task.kind) if domain else None
    except (ConfigError, KindError):
        return None


def _headline(m: dict | None, kind) -> str:
    """The kind's headline figure of M beside semantic accuracy (e.g. a compile rate), formatted."""
    key = kind.headline_metric[1] if kind is not None and kind.headline_metric else None
    return f"{m[key]:.3f}" if m and key and m.get(key) is not None else ""


def _headline_title(kinds: list) -> str:
    titles = {k.headline_metric[0] for k in kinds if k is not None and k.headline_metric}
    return titles.pop() if len(titles) == 1 else "kind"


def _domain_or_fail(domain: str):
    """The domain's full-profile config, or exit 2 with the config error (file, key, what is allowed)."""
    try:
        return load_domain(domain, "full")
    except ConfigError as e:
        _fail(str(e))


def _default(o):
    if isinstance(o, datetime):
        return o.isoformat()
    raise TypeError(type(o).__name__)


def _print_json(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, default=_default) + "\n")


def _setup_prefect() -> None:
    for k, v in PREFECT_DEFAULTS.items():
        os.environ.setdefault(k, v)


@app.command()
def run(
    domain: Annotated[str, typer.Option(help="Domain name: configs/domains/<domain>.yaml")],
    profile: Annotated[ProfileOpt, typer.Option(help="tiny (tests), quick (~1k), full (30k)")] = ProfileOpt.full,
    teacher: Annotated[TeacherOpt | None, typer.Option(help="Override the domain's teacher provider")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the config, show the plan, spend nothing")] = False,
    focus: Annotated[FocusOpt, typer.Option(help="failures: spend dataset.focus_share of the requests on where the "
                                            "champion fails (`loraforge failures`)")] = FocusOpt.none,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run summary as one JSON line")] = False,
) -> None:
    """Run the whole pipeline for a domain: generate → validate → snapshot → train → evaluate → promote."""
    overrides = {"teacher.provider": teacher.value} if teacher else {}
    try:
        cfg = load_domain(domain, profile.value, overrides)
    except ConfigError as e:
        _fail(str(e))
    if focus is FocusOpt.failures:  # checked before Prefect starts: a focused run needs a champion
        _failure_report_or_fail(cfg)
    if dry_run:  # the teacher estimate (tasks.generate.estimate_generation): requests, tokens, dollars; spends nothing
        from tasks.generate import estimate_generation

        est = estimate_generation(cfg, Home.from_env().db)
        plan = {"domain": cfg.name, "profile": profile.value, "teacher": cfg.teacher.provider,
                "model": cfg.teacher.model, "requests": cfg.dataset.n_requests, "base_model": cfg.training.base_model,
                "requests_to_send": est["requests"], "estimated_prompt_tokens": est["prompt_tokens"],
                "estimated_completion_tokens": est["completion_tokens"], "estimated_cost_usd": est["cost_usd"],
                "estimate": est}
        _print_json(plan) if as_json else err.print(plan)
        return
    _setup_prefect()
    from flows.pipeline import distill_to_adapter

    with _reported("run", ConfigError):  # a failed run is recorded as failed in DuckDB; say so plainly
        summary = distill_to_adapter(domain=domain, profile=profile.value,
                                     teacher=teacher.value if teacher else None, focus=focus.value)
    if as_json:
        _print_json(summary)
    else:
        _print_summary(summary)


def _print_summary(s: dict) -> None:
    c = s["counts"]
    err.print(f"[bold]run {s['run_id']}[/] {s['status']} — domain {s['domain']}, profile {s['profile']}")
    err.print(f"  requests {c['requested']}: accepted {c['accepted']}, quarantined {c['quarantined']}, "
              f"failed {c['failed']}  reasons {s['quarantine_reasons']}")
    ex = s.get("examples") or {}
    if ex:
        err.print(f"  examples distilled {ex.get('distilled')}, trained on {ex.get('trained_on')}")
    err.print(f"  dataset {s['dataset_id']}  adapter {s['adapter']['id']} → [bold]{s['adapter']['status']}[/]")
    err.print(eval_table(s["eval"], _kind_of(s["domain"])))
    err.print("  seconds " + ", ".join(f"{k} {v}" for k, v in s["seconds"].items()))


def eval_table(evals: dict, kind=None) -> Table:
    """Base, candidate and champion side by side on the held-out split (the teacher's own distribution) and on
    the hand-written golden set (people's phrasing): the golden column is the one that says what the adapter is
    worth. Narrow enough for an 80-column terminal."""
    from rich import box

    t = Table("model", "held-out", "95% CI", "golden", "95% CI", _headline_title([kind]), "tokens", box=box.SIMPLE,
              padding=(0, 1))

    def ci(m: dict | None) -> str:
        return f"{m['semantic_accuracy_ci'][0]:.2f}–{m['semantic_accuracy_ci'][1]:.2f}" if m and m.get("n") else "–"

    def acc(m: dict | None) -> str:
        return f"{m['semantic_accuracy']:.3f}" if m and m.get("n") else "–"

    for role, m in evals.items():
        if m:
            g = m.get("golden")
            t.add_row(role, acc(m), ci(m), acc(g), ci(g), _headline(m, kind), f"{m['mean_output_tokens']:.1f}")
    sized = next((m for m in evals.values() if m), None) or {}
    t.caption = (f"semantic accuracy; held-out n={sized.get('n', 0)}, "
                 f"golden n={(sized.get('golden') or {}).get('n', 0)}")
    return t


@app.command()
def validate(
    domain: Annotated[str | None, typer.Option(help="Domain whose validation rules apply (with --file)")] = None,
    file: Annotated[str | None, typer.Option("--file", help="JSONL with prompt, completion[, the kind's fields, e.g. "
                                                          "positives, negatives]")
                    ] = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Validate a stored run's teacher answers instead "
                                               "(the pipeline's validate stage; sends nothing to the teacher)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdicts as one JSON line")] = False,
) -> None:
    """Validate your own JSONL rows with the domain's rules; one verdict per line (lines numbered from 1).

    With --run RUN_ID instead: validate that stored run's teacher answers into examples and quarantine.

    (Next for a run: `loraforge train --run RUN_ID`.)"""
    if run_id:  # the stage form (issue 8): a stored run's cached answers → examples | quarantine
        if file:
            _fail("give either --run RUN_ID (a stored run) or --domain D --file rows.jsonl (your own rows)")
        _require_open_run(run_id, "validate")
        _run_stages(as_json, run_id=run_id, from_stage="validate", to_stage="validate")
        return
    if not (domain and file):
        _fail("give --domain D --file rows.jsonl (your own rows) or --run RUN_ID (a stored run)")
    from tasks.validate import validate_user_file

    try:
        cfg = load_domain(domain, "full")
        result = validate_user_file(file, cfg)
    except (ConfigError, OSError) as e:
        _fail(str(e))
    if as_json:
        _print_json(result)
        return
    for r in result["rows"]:
        if not r["accepted"]:
            err.print(f"line {r['line']}: rejected ({', '.join(r['reasons'])})")
    err.print(f"accepted {result['accepted']}, rejected {result['rejected']}")


@runs_app.command("ls")
def runs_ls(as_json: Annotated[bool, typer.Option("--json")] = False,
            domain: Annotated[str | None, typer.Option(help="Only this domain")] = None) -> None:
    """List pipeline runs, oldest first, with status, dataset, adapter and the run each was rerun from."""
    from tasks import store

    rows = store.list_runs_with_parents(Home.from_env().db, domain)
    if as_json:
        _print_json({"runs": rows})
        return
    t = Table("run_id", "domain", "profile", "status", "parent", "dataset", "adapter", "started")
    for r in rows:
        t.add_row(r["run_id"], r["domain"], r["profile"], r["status"], r["parent_run_id"] or "", r["dataset_id"] or "",
                  r["adapter_id"] or "", str(r["started_at"])[:19])
    Console().print(t)


@runs_app.command("show")
def runs_show(run_id: Annotated[str, typer.Argument(help="A run id from `loraforge runs ls`")],
              as_json: Annotated[bool, typer.Option("--json", help="Print the run as one JSON line")] = False) -> None:
    """Show one run: each stage (ran, reused from its parent, failed) with seconds; counts, evaluation, gate.

    Works while the run is still going."""
    from tasks import store

    row = _require_run(run_id)
    db = Home.from_env().db
    summary = json.loads(row["summary_json"]) if row["summary_json"] else {
        "run_id": run_id, "domain": row["domain"], "profile": row["profile"], **store.run_counts(db, run_id),
        "dataset_id": row["dataset_id"], "adapter": {"id": row["adapter_id"], "status": None}}
    summary = {**summary, "status": row["status"], "parent_run_id": row["parent_run_id"],
               "started_at": row["started_at"], "finished_at": row["finished_at"],
               "stages": _stage_rows(db, run_id), "decision": store.run_decision(db, run_id)}
    if as_json:
        _print_json(summary)
    else:
        _print_run(summary)


@adapters_app.command("ls")
def adapters_ls(as_json: Annotated[bool, typer.Option("--json")] = False,
                domain: Annotated[str | None, typer.Option(help="Only this domain")] = None) -> None:
    """List adapters (oldest first) with their status and metrics."""
    from tasks import registry, store

    h = Home.from_env()
    registry.reconcile(h.db, h.adapters, domain)  # a crash between registry commit and pointer move heals here
    rows = [{"id": r["adapter_id"], "domain": r["domain"], "status": r["status"], "dataset_id": r["dataset_id"],
             "created_at": r["created_at"], "metrics": json.loads(r["metrics_json"]) if r["metrics_json"] else None}
            for r in store.list_adapters(h.db, domain)]
    if as_json:
        _print_json({"adapters": rows})
        return
    kinds = {r["domain"]: _kind_of(r["domain"]) for r in rows}
    t = Table("id", "domain", "status", "dataset", "semantic", "95% CI", _headline_title(list(kinds.values())),
              "created")
    for r in rows:
        m = r["metrics"] or {}
        ci = m.get("semantic_accuracy_ci")
        t.add_row(r["id"], r["domain"], r["status"], r["dataset_id"],
                  f"{m['semantic_accuracy']:.3f}" if m else "", f"{ci[0]:.3f}–{ci[1]:.3f}" if ci else "",
                  _headline(m, kinds[r["domain"]]), str(r["created_at"])[:19])
    Console().print(t)


# ------------------------------------------------------------------ evaluate / promote / rollback (issue 7)
def _print_metrics(m: dict, title: str, kind) -> None:
    """M as tables: the generic rates, the kind's own (``metric_keys``, ``count_keys``), tokens and latency, topics."""
    err.print(f"[bold]{title}[/]: n {m['n']} (excluded {m['n_excluded']}"
              + (f", invalid rows {m['n_invalid']}" if m.get("n_invalid") else "") + ")")
    t = Table("metric", "value", "95% CI")
    for k in ("semantic_accuracy", "exact_match", *kind.metric_keys):
        ci = m.get(f"{k}_ci")
        t.add_row(k, f"{m[k]:.4f}", f"{ci[0]:.4f}–{ci[1]:.4f}" if ci else "")
    for k in kind.count_keys:
        t.add_row(k, str(m[k]), "")
    for k in ("mean_output_tokens", "p95_output_tokens", "latency_ms_p50", "latency_ms_p95", "tokens_per_s"):
        t.add_row(k, str(m.get(k)), "")
    if m.get("serving_parity"):
        p = m["serving_parity"]
        t.add_row("serving_parity", f"{p['agree']}/{p['n']} ({p['rate']:.3f})", "")
    err.print(t)
    t = Table("topic", "n", "semantic", "95% CI")
    for topic, v in m["by_topic"].items():
        ci = v["semantic_accuracy_ci"]
        t.add_row(topic, str(v["n"]), f"{v['semantic_accuracy']:.3f}", f"{ci[0]:.3f}–{ci[1]:.3f}")
    err.print(t)


def _print_decision(d: dict) -> None:
    err.print(f"[bold]{d['status']}[/] (previous champion: {d.get('previous_adapter_id') or 'none'})")
    for c in d.get("checks", []):
        mark = "skip" if c.get("skipped") else ("pass" if c["passed"] else "[red]FAIL[/]")
        err.print(f"  {mark:5} {c['name']}: {c['value']} (threshold {c['threshold']})")
    for r in d.get("reasons", []):
        err.print(f"  - {r}")


@app.command()
def evaluate(
    domain: Annotated[str, typer.Option(help="Domain name: configs/domains/<domain>.yaml")],
    adapter: Annotated[str, typer.Option(help="An adapter id, 'promoted' or 'base'")] = "promoted",
    eval_file: Annotated[str | None, typer.Option("--eval-file", help="JSONL: prompt, completion, the kind's fields "
                                                  "(e.g. positives, negatives)[, topic]; without it: the adapter's "
                                                  "held-out set")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics object M as one JSON line")] = False,
) -> None:
    """Score a model on your JSONL (or an adapter on its run's held-out + golden items); prints M."""
    from pathlib import Path

    cfg = _domain_or_fail(domain)
    if eval_file is not None and not Path(eval_file).is_file():
        _fail(f"--eval-file {eval_file!r}: no such file")
    if eval_file is None and adapter == "base":
        _fail("--adapter base needs --eval-file FILE (the base model has no run of its own)")
    _setup_prefect()
    from tasks import registry, store

    h = Home.from_env()
    with _reported("evaluation", registry.RegistryError):
        if eval_file is not None:
            from flows.evaluate import evaluate_file

            m = evaluate_file(domain=cfg.name, adapter=adapter, eval_file=str(Path(eval_file).resolve()))
        else:
            from flows.evaluate import evaluate_adapter, resolve_model

            ref = resolve_model(h, cfg, adapter)["ref"]
            m = evaluate_adapter(store.get_adapter(h.db, ref)["run_id"], ref)["candidate"]
    if as_json:
        _print_json(m)
    else:
        _print_metrics(m, f"{m.get('model_ref', adapter)} on {eval_file or 'held-out test items'}",
                       get_kind(cfg.task.kind))


@app.command()
def promote(
    domain: Annotated[str, typer.Option(help="Domain name")],
    adapter: Annotated[str, typer.Option(help="The adapter id to promote")],
    force: Annotated[bool, typer.Option("--force", help="Promote without the gate (recorded as forced)")] = False,
    reason: Annotated[str | None, typer.Option(help="Why (required with --force; stored with the promotion)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as one JSON line")] = False,
) -> None:
    """Run the gate for an adapter and promote it if it passes (or force it, with a reason)."""
    _domain_or_fail(domain)
    if force and not (reason or "").strip():
        _fail("--force needs --reason TEXT (it is recorded with the promotion)")
    _setup_prefect()
    from flows.promote import promote_adapter
    from tasks.registry import RegistryError

    with _reported("promote", RegistryError):
        d = promote_adapter(domain=domain, adapter_id=adapter, force=force, reason=reason)
    _print_json(d) if as_json else _print_decision(d)


@app.command()
def rollback(
    domain: Annotated[str, typer.Option(help="Domain name")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON line")] = False,
) -> None:
    """Restore the domain's previous champion (the current one is retired)."""
    _domain_or_fail(domain)
    _setup_prefect()
    from flows.promote import rollback_adapter
    from tasks.registry import RegistryError

    with _reported("rollback", RegistryError):
        r = rollback_adapter(domain=domain)
    if as_json:
        _print_json(r)
    else:
        err.print(f"rolled back {domain}: {r['rolled_back_from']} → [bold]{r['restored']}[/]")


# ------------------------------------------------------------------------------------- failures (issue 18)
def _failure_report_or_fail(cfg) -> dict:
    """The champion's failure report (tasks/failures.py), or exit 2 when the domain has no champion."""
    from tasks.failures import NoChampionError, champion_report

    h = Home.from_env()
    try:
        return champion_report(h.db, h.adapters, cfg)
    except NoChampionError as e:
        _fail(str(e))


@app.command()
def failures(
    domain: Annotated[str, typer.Option(help="Domain name: configs/domains/<domain>.yaml")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON line")] = False,
) -> None:
    """Where the domain's champion fails: slices (topic, difficulty, style, concept) and the failing items.

    Read from its stored held-out and --eval-file evaluations, never the golden set. Next:
    `loraforge run --domain D --focus failures`."""
    report = _failure_report_or_fail(_domain_or_fail(domain))
    if as_json:
        _print_json(report)
        return
    targeted = set(report["targeted"])
    err.print(f"[bold]{report['adapter_id']}[/] ({report['domain']}): {report['failed']} of {report['n']} items"
              f" failed ({report['rate']:.1%}); sets {report['eval_sets'] or 'none stored'}")
    t = Table("slice", "n", "failed", "rate", "targeted")
    for s in report["slices"]:
        t.add_row(s["slice"], str(s["n"]), str(s["failed"]), f"{s['rate']:.3f}", "yes" * (s["slice"] in targeted))
    Console().print(t)
    for it in report["items"][:20]:
        err.print(f"  {it['request'][:70]!r}: expected {it['reference'][:40]!r}, got {it['output'][:40]!r}",
                  highlight=False)


# ------------------------------------------------------------------------------------- doctor (issue 9)
@app.command()
def doctor(as_json: Annotated[bool, typer.Option("--json", help="Print the checks as one JSON line")] = False) -> None:
    """Check $LORAFORGE_HOME's integrity: row counts, duplicate keys, lineage, one promoted per domain, pointers.

    Exit 0 when healthy, 1 with the list of problems."""
    from tasks.doctor import check_home

    report = check_home(Home.from_env())
    if as_json:
        _print_json(report)
    else:
        t = Table("check", "ok", "detail")
        for c in report["checks"]:
            t.add_row(c["name"], "ok" if c["ok"] else "[bold red]FAIL[/]", c["detail"])
        Console().print(t)
        for c in report["checks"]:
            if not c["ok"]:
                err.print(f"[bold red]problem:[/] {c['name']}: {c['detail']}", highlight=False)
    if not report["ok"]:
        raise typer.Exit(1)


# ------------------------------------------------------------ stage commands, reruns, datasets (issue 8)

class RunnerOpt(StrEnum):
    thread = "thread"
    dask = "dask"


class StageOpt(StrEnum):
    generate = "generate"
    validate = "validate"
    snapshot = "snapshot"
    train = "train"
    evaluate = "evaluate"
    promote = "promote"


def _require_run(run_id: str) -> dict:
    """The stored run, or exit 2 with a message (checked before Prefect starts, so it is instant)."""
    from tasks import store

    db = Home.from_env().db
    row = store.get_run(db, run_id) if db.exists() else None
    if row is None:
        _fail(f"unknown run {run_id!r} in {db.parent}; see `loraforge runs ls`")
    return row


def _require_open_run(run_id: str, stage: str) -> dict:
    """A stored run that is still being built stage by stage (a finished run is changed only by a rerun)."""
    row = _require_run(run_id)
    if row["status"] in ("completed", "budget_exhausted"):
        _fail(f"run {run_id!r} is {row['status']}; to redo its {stage} stage start a new run from it: "
              f"`loraforge rerun {run_id} --from {stage}`")
    return row


def _run_stages(as_json: bool, **kwargs) -> dict:
    """Run a stage range of the pipeline (see flows.pipeline.distill_to_adapter) and print the run."""
    _setup_prefect()
    from flows._common import DomainBusyError, UnknownRunError
    from flows.pipeline import distill_to_adapter
    from tasks import store

    with _reported("run", ConfigError, UnknownRunError):  # a failure: `runs show RUN_ID` has the failed stage
        try:
            summary = distill_to_adapter(**kwargs)
        except DomainBusyError as e:
            _fail(str(e), code=3)
    db = Home.from_env(kwargs.get("home")).db
    row = store.get_run(db, summary["run_id"])
    summary = {**summary, "parent_run_id": row["parent_run_id"], "stages": _stage_rows(db, summary["run_id"])}
    if as_json:
        _print_json(summary)
    else:
        _print_run(summary)
    return summary


def _stage_rows(db, run_id: str) -> list[dict]:
    from tasks import store

    return [{k: r[k] for k in ("stage", "status", "seconds", "source_run_id", "result", "error", "started_at",
                               "finished_at")} for r in store.run_stages(db, run_id)]


def _print_run(s: dict) -> None:
    parent = f" (rerun of {s['parent_run_id']})" if s.get("parent_run_id") else ""
    err.print(f"[bold]run {s['run_id']}[/]{parent}: {s['status']} — domain {s['domain']}, profile {s['profile']}")
    t = Table("stage", "status", "seconds", "result")
    for r in s.get("stages", []):
        how = f"reused from {r['source_run_id']}" if r["status"] == "reused" else r["status"]
        res = r["error"] or ", ".join(f"{k} {v}" for k, v in (r["result"] or {}).items() if not isinstance(v, dict))
        t.add_row(r["stage"], how, f"{r['seconds']:.1f}", res[:90])
    err.print(t)
    if s.get("counts"):
        c = s["counts"]
        err.print(f"  requests {c['requested']}: accepted {c['accepted']}, quarantined {c['quarantined']}, "
                  f"failed {c['failed']}  reasons {s.get('quarantine_reasons') or {}}")
    if s.get("dataset_id"):
        err.print(f"  dataset {s['dataset_id']}")
    if (s.get("adapter") or {}).get("id"):
        err.print(f"  adapter {s['adapter']['id']} → [bold]{s['adapter']['status']}[/]")
    cand = (s.get("eval") or {}).get("candidate")
    if cand:
        kind = _kind_of(s.get("domain"))
        extra = f", {kind.headline_metric[0]} {_headline(cand, kind)}" if _headline(cand, kind) else ""
        err.print(f"  candidate semantic accuracy {cand['semantic_accuracy']:.3f}{extra}")
    d = s.get("decision") or s.get("gate")
    if d:
        reasons = ", ".join(d.get("reasons") or []) or "all checks passed"
        err.print(f"  gate: [bold]{d.get('decision') or d.get('status')}[/] ({reasons})")
    if s.get("error"):
        err.print(f"  [bold red]error:[/] {s['error']}", highlight=False)


@app.command()
def generate(
    domain: Annotated[str | None, typer.Option(help="Domain name: configs/domains/<domain>.yaml (new run)")] = None,
    profile: Annotated[ProfileOpt, typer.Option(help="tiny (tests), quick (~1k), full (30k)")] = ProfileOpt.full,
    teacher: Annotated[TeacherOpt | None, typer.Option(help="Override the domain's teacher provider")] = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Continue this stored run instead of a new one")] = None,
    task_runner: Annotated[RunnerOpt | None, typer.Option(help="dask: spread the batches over a Dask LocalCluster "
                                                          "(new runs; default: the domain's teacher.task_runner)")
                           ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show requests, tokens and cost; send nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as one JSON line")] = False,
) -> None:
    """Generation only: ask the teacher for the run's examples and store the raw answers.

    Without --run it starts a new run of DOMAIN; with --run it fetches what that stored run still lacks.

    Answers already stored are never asked again. Next: `loraforge validate --run RUN_ID`."""
    if run_id:
        row = _require_open_run(run_id, "generate")
        if domain and domain != row["domain"]:
            _fail(f"run {run_id!r} is of domain {row['domain']!r}, not {domain!r}")
        if teacher or task_runner:
            _fail(f"run {run_id!r} keeps its config; use `loraforge rerun {run_id} --from generate "
                  "--set teacher.provider=… --set teacher.task_runner=…`")
    elif not domain:
        _fail(f"say which domain (--domain {DEFAULT_DOMAIN}) or which stored run to continue (--run RUN_ID)")
    if dry_run:
        from flows._common import run_config
        from tasks.generate import estimate_generation

        try:
            cfg = (run_config(Home.from_env(), run_id) if run_id else
                   load_domain(domain, profile.value, {"teacher.provider": teacher.value} if teacher else {}))
        except ConfigError as e:
            _fail(str(e))
        est = estimate_generation(cfg, Home.from_env().db)
        _print_json(est) if as_json else err.print(est)
        return
    overrides = {"teacher.task_runner": task_runner.value} if task_runner else {}
    if not run_id:
        try:  # the config is checked before Prefect starts
            checked = {**overrides, "teacher.provider": teacher.value} if teacher else overrides
            load_domain(domain, profile.value, checked)
        except ConfigError as e:
            _fail(str(e))
    _run_stages(as_json, domain=domain or DEFAULT_DOMAIN, profile=profile.value,
                teacher=teacher.value if teacher else None, run_id=run_id, from_stage="generate",
                to_stage="generate", overrides=overrides or None)


@app.command()
def train(
    run_id: Annotated[str, typer.Option("--run", help="The stored run whose validated examples to train on")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as one JSON line")] = False,
) -> None:
    """Snapshot the run's accepted examples (if not done yet) and train its LoRA adapter.

    It uses the run's stored config (its training: section). To change the recipe, start a new run from it:

    loraforge rerun RUN_ID --from train --set training.sft.learning_rate=1e-3"""
    _require_open_run(run_id, "train")
    _run_stages(as_json, run_id=run_id, from_stage="snapshot", to_stage="train")


@app.command()
def rerun(
    run_id: Annotated[str, typer.Argument(help="The stored run to start from (see `loraforge runs ls`)")],
    from_stage: Annotated[StageOpt, typer.Option("--from", help="First stage to run again; earlier stages are "
                                                 "reused from RUN_ID")],
    sets: Annotated[list[str] | None, typer.Option("--set", help="Config override KEY=VALUE with a dotted key, "
                                                   "e.g. --set training.sft.learning_rate=1e-3 (repeatable)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the new run as one JSON line")] = False,
) -> None:
    """Start a new run from a stored one: reuse everything RUN_ID stored before --from, run the rest.

    Stages in order: generate, validate, snapshot, train, evaluate, promote.

    Reused from RUN_ID: teacher answers, request outcomes, the snapshot (same dataset_id), the adapter.

    --from validate or later sends nothing to the teacher; --from evaluate or promote keeps the adapter.

    The new run records RUN_ID as its parent (see `loraforge runs show NEW_ID`).

    Example: loraforge rerun RUN_ID --from train --set training.sft.max_steps=50 --set training.lora.r=8"""
    from flows._common import rerun_config

    parent = _require_run(run_id)
    try:
        overrides = parse_sets(sets)
        rerun_config(json.loads(parent["config_json"]), overrides, f"run {run_id} with --set")
    except (ConfigError, ValueError) as e:
        _fail(str(e))
    _run_stages(as_json, parent_run_id=run_id, from_stage=from_stage.value, overrides=overrides)


@datasets_app.command("ls")
def datasets_ls(as_json: Annotated[bool, typer.Option("--json", help="Print the list as one JSON line")] = False,
                domain: Annotated[str | None, typer.Option(help="Only this domain")] = None) -> None:
    """List dataset snapshots (oldest first): sizes per split, the run that made each, and who uses it."""
    from tasks import store

    db = Home.from_env().db
    rows = store.datasets_overview(db, domain) if db.exists() else []
    if as_json:
        _print_json({"datasets": rows})
        return
    t = Table("dataset_id", "domain", "train", "val", "test", "runs", "adapters", "made by run", "created")
    for r in rows:
        t.add_row(r["dataset_id"], r["domain"], str(r["n_train"]), str(r["n_val"]), str(r["n_test"]),
                  str(r["n_runs"]), str(r["n_adapters"]), r["run_id"], str(r["created_at"])[:19])
    Console().print(t)


# ------------------------------------------------------------------ serve / ask / export (issue 16: tasks/serve/)
class ExportFormat(StrEnum):
    vllm = "vllm"


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: serve.host, loopback)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: serve.port)")] = None,
    domain: Annotated[list[str] | None, typer.Option(help="Domain to serve (repeatable; default: all promoted)")]
    = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Allow a non-loopback bind without an API key")] = False,
) -> None:
    """Serve every promoted adapter over an OpenAI-compatible HTTP API, with hot swap and a playground at /."""
    for d in domain or []:
        _domain_or_fail(d)
    from tasks.serve.server import ServeError
    from tasks.serve.server import serve as run_server

    with _reported("serve", ServeError):
        run_server(domain, host, port, insecure)


@app.command()
def ask(
    request: Annotated[str, typer.Argument(help="What the answer should do, in plain words")],
    domain: Annotated[str, typer.Option(help="Domain name")],
    url: Annotated[str | None, typer.Option(help="A running `loraforge serve` (else: in-process)")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Cap on output tokens (default: serve.max_tokens)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {domain, adapter_id, request, output, tokens, ms}")]
    = False,
) -> None:
    """One answer from the domain's promoted adapter."""
    _domain_or_fail(domain)
    from tasks.serve.server import ServeError, ask_local, ask_remote

    with _reported("ask", ServeError):
        r = ask_remote(url, domain, request, max_tokens) if url else ask_local(domain, request, max_tokens)
    _print_json(r) if as_json else print(r["output"])


@app.command()
def export(
    domain: Annotated[list[str] | None, typer.Option(help="Domain (repeatable; default: every promoted)")] = None,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="Target engine")] = ExportFormat.vllm,
) -> None:
    """Print the command that serves the promoted adapters on another engine (vLLM multi-LoRA)."""
    for d in domain or []:
        _domain_or_fail(d)
    from tasks.serve.vllm import ExportError, export_command

    with _reported("export", ExportError):
        print(export_command(domain))


def main() -> None:
    try:
        app()
    except Exception as e:  # issue 9: a store held by another process is a message, not a traceback
        if type(e).__name__ != "StoreBusyError":  # by name: importing tasks.store here would slow every command
            raise
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
