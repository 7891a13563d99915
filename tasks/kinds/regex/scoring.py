"""The regex kind's scoring: one output against one item, and the figures it adds to the metrics object M.

An output is *semantically* right when it compiles in the dialect, full-matches every positive and no negative,
and — where the DFA comparison with the reference is decidable in time — no distinguishing string from the
symmetric difference tells them apart (each one is confirmed with the real matcher). Matching uses the same
time-limited matcher as validation, so a catastrophic output costs at most its time limit.

Per item (stored in ``evaluation_items.kind_json``): ``compiled``, ``equivalence`` (the DFA verdict),
``n_distinguishing``, ``redos`` (the ReDoS finding). In M: ``compile_rate``, ``redos_vulnerable_rate``,
``dfa_equivalence_rate`` (each with a Wilson CI) and ``dfa_undecided``; per topic, ``compile_rate``.
"""

from __future__ import annotations

from collections import defaultdict

from tasks.kinds.regex import matcher


def score(items: list[dict], texts: list[str], *, timeout_s: float, dialect: str = "python",
          equivalence_timeout_s: float = 0.5, redos_timeout_s: float = 1.0, max_distinguishing: int = 3) -> list[dict]:
    """One dict per item: semantic_ok, timed_out, compiled, DFA verdict, distinguishing strings, ReDoS finding."""
    results = matcher.check_batch([(t, it["positives"], it["negatives"]) for t, it in zip(texts, items, strict=True)],
                                  timeout_s, dialect)
    # DFA comparison only where the strings could not already tell output and reference apart
    # (a failed positive or negative *is* a distinguishing string, so the verdict is then "different").
    verdicts: list[str] = []
    need: list[int] = []
    for i, (it, text, res) in enumerate(zip(items, texts, results, strict=True)):
        if not text or not res.compiled or res.timed_out:
            verdicts.append("n/a")
        elif not res.all_ok(len(it["positives"]), len(it["negatives"])):
            verdicts.append("different")
        else:
            verdicts.append("undecided")
            need.append(i)
    confirm: list[tuple[int, str]] = []  # (item index, distinguishing string) to confirm with the real matcher
    pairs = [(texts[i], items[i]["completion"]) for i in need]
    equivalence = matcher.equivalence_batch(pairs, dialect, equivalence_timeout_s) if pairs else []
    for i, (verdict, strings) in zip(need, equivalence, strict=True):
        verdicts[i] = verdict
        confirm += [(i, s) for s in list(strings or [])[:max_distinguishing]]
    distinguished = defaultdict(int)
    if confirm:  # the string is distinguishing when the real matcher agrees: one of the two matches it
        pairs2 = [(texts[i], [s], []) for i, s in confirm] + [(items[i]["completion"], [s], []) for i, s in confirm]
        res2 = matcher.check_batch(pairs2, timeout_s, dialect)
        for k, (i, _) in enumerate(confirm):
            if res2[k].positives_ok != res2[k + len(confirm)].positives_ok:
                distinguished[i] += 1
    compiled_idx = [i for i, (t, r) in enumerate(zip(texts, results, strict=True)) if t and r.compiled]
    guarded = matcher.redos_guard([texts[i] for i in compiled_idx], dialect, redos_timeout_s) if compiled_idx else []
    findings = dict(zip(compiled_idx, guarded, strict=True))
    rows = []
    for i, (it, text, res) in enumerate(zip(items, texts, results, strict=True)):
        ok = bool(text) and res.all_ok(len(it["positives"]), len(it["negatives"])) and not distinguished[i]
        rows.append({
            "semantic_ok": ok, "timed_out": bool(res.timed_out), "compiled": bool(res.compiled and text),
            "equivalence": "different" if distinguished[i] else verdicts[i], "n_distinguishing": distinguished[i],
            "redos": findings.get(i) or ("match timed out" if res.timed_out else None),
        })
    return rows


def metrics(rows: list[dict]) -> dict:
    """The kind's figures in M, rounded and with intervals as the evaluation's own figures are."""
    from tasks.evaluate import rate, wilson

    n = len(rows)
    compiled = sum(bool(r.get("compiled")) for r in rows)
    redos = sum(r.get("redos") is not None for r in rows)
    eq = [r.get("equivalence") for r in rows]
    return {
        "compile_rate": rate(compiled, n), "compile_rate_ci": wilson(compiled, n),
        "redos_vulnerable_rate": rate(redos, n), "redos_vulnerable_rate_ci": wilson(redos, n),
        # a lower bound: undecided items (DFA too large or not regular in time) count as not equivalent
        "dfa_equivalence_rate": rate(eq.count("equivalent"), n),
        "dfa_equivalence_rate_ci": wilson(eq.count("equivalent"), n), "dfa_undecided": eq.count("undecided"),
    }


def topic_metrics(rows: list[dict]) -> dict:
    """The kind's figure in one ``by_topic`` slice."""
    from tasks.evaluate import rate

    return {"compile_rate": rate(sum(bool(r.get("compiled")) for r in rows), len(rows))}
