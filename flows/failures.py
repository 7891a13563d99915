"""The failure loop's flows: where the champion fails (a report), and a domain that improves on it unattended.

``failure_report``: the champion's failures from its stored evaluation items (tasks/failures.py), as a markdown
artifact. ``evaluate_champion``: the champion scored again on its held-out items (cached results make it cheap),
so the report reads current rows. ``improve_domain`` — the ``improve-<domain>`` deployments in prefect.yaml —
runs evaluate-champion → failure report → a focused distill → train → gate: the pipeline with ``focus:
failures`` (flows/pipeline.py), whose gate reports the candidate against the champion on the targeted slices and
on the rest apart.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.evaluate import evaluate_adapter
from flows.pipeline import distill_to_adapter
from schemas.config import DEFAULT_DOMAIN, DomainName, Profile, load_domain
from schemas.run import Home
from tasks import failures, registry, store


@flow(name="failure-report", log_prints=True)
def failure_report(domain: DomainName = DEFAULT_DOMAIN, home: str | None = None) -> dict:
    """Report the slices (topic, difficulty, style, concept) and the items where the domain's champion fails.

    Args:
        domain: The domain whose promoted adapter is reported on.
        home: State directory (default: $LORAFORGE_HOME, else ./.loraforge on the worker).
    """
    h = Home.from_env(home)
    report = failures.champion_report(h.db, h.adapters, load_domain(domain, "full"))
    create_markdown_artifact(key=f"failures-{domain}", markdown=failures.report_markdown(report),
                             description=f"Where {report['adapter_id']} fails")
    print(f"failures: {report['failed']} of {report['n']} items failed; targeted {report['targeted'] or 'none'}")
    return report


@flow(name="evaluate-champion", log_prints=True)
def evaluate_champion(domain: DomainName = DEFAULT_DOMAIN, home: str | None = None) -> dict:
    """Score the domain's champion on its own held-out and golden items again (cached when nothing changed).

    Args:
        domain: The domain whose promoted adapter is evaluated.
        home: State directory (default: $LORAFORGE_HOME, else ./.loraforge on the worker).
    """
    h = Home.from_env(home)
    registry.reconcile(h.db, h.adapters, domain)
    champ = store.promoted_adapter(h.db, domain)
    if champ is None:
        raise failures.NoChampionError(f"domain {domain!r} has no champion (no promoted adapter) to evaluate")
    return evaluate_adapter(champ["run_id"], champ["adapter_id"], home=str(h.root))["candidate"]


@flow(name="improve-domain", log_prints=True)
def improve_domain(domain: DomainName = DEFAULT_DOMAIN, profile: Profile = "full",
                   teacher: Literal["grammar", "openai"] | None = None, overrides: dict[str, Any] | None = None,
                   home: str | None = None) -> dict:
    """Make the domain's champion better where it fails: evaluate it, report its failures, distill a focused
    dataset, train a candidate and gate it against the champion.

    Args:
        domain: The domain to improve (it needs a promoted adapter).
        profile: tiny (tests), quick or full: the focused run's sizes.
        teacher: Overrides the domain's teacher: grammar (offline) or openai (any OpenAI-compatible URL).
        overrides: Dotted config keys, e.g. {"dataset.focus_share": 0.7, "dataset.focus_train": "continue"}.
        home: State directory (default: $LORAFORGE_HOME, else ./.loraforge on the worker).
    """
    h = Home.from_env(home)
    evaluate_champion(domain, home=str(h.root))                     # current rows for the report
    failure_report(domain, home=str(h.root))                        # the report, as an artifact
    return distill_to_adapter(domain=domain, profile=profile, teacher=teacher, overrides=overrides,
                              home=str(h.root), focus="failures")   # focused distill → train → evaluate → gate
