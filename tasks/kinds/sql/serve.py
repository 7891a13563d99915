"""What serving needs from the sql kind: the domain's fixed prompt around a user's question, the student's raw text
as the answer (the SQL alone), and the playground's test panel: the answer checked and run in the sandbox of the
domain's first database instance, with a few of its rows (tasks/serve/ asks ``KIND.serving(cfg)``; the page sets
every value as text, so nothing in a result is markup)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tasks.kinds import Kind
from tasks.kinds.sql.checks import normalise
from tasks.kinds.sql.sandbox import check_sql

if TYPE_CHECKING:
    from tasks.kinds.sql.config import SqlDomainConfig

SHOWN_ROWS = 10


def _cell(value) -> str:
    return "NULL" if value is None else str(value)


@dataclass(frozen=True)
class SqlServeKind:
    """Prompt = ``task.prompt_template`` around the question; answer = the SQL alone; the test panel runs it."""

    kind: Kind
    cfg: SqlDomainConfig

    @property
    def name(self) -> str:
        return self.kind.name

    def render(self, request: str) -> str:
        return self.kind.render_prompt(self.cfg.task.prompt_template, request)

    def answer(self, raw: str) -> str:
        return self.kind.normalise_completion(raw)

    def test_panel(self, answer: str, strings: list[str]) -> dict:
        """The answer's verdict and first rows on one instance: ``{"ok", "summary", "results": [{"string",
        "verdict", "good"}]}`` (a row per result row, columns first) with the kind's ``reasons``, ``columns``,
        ``n_rows`` and ``seed``. The test inputs are not used: a query's input is the database."""
        from tasks.kinds.sql.database import database

        db, v = database(self.cfg), self.cfg.validation
        box, sql = db.boxes[0], normalise(answer)
        reasons = check_sql(sql, db.tables)
        out = {"ok": False, "reasons": reasons, "columns": [], "n_rows": None, "seed": box.seed, "results": []}
        if reasons:
            return out | {"summary": f"not run: {', '.join(reasons)}"}
        res = box.run(sql, v.query_timeout_s, v.max_rows, check=False)
        if not res.ok:
            return out | {"reasons": [res.reason], "summary": f"{res.reason}: {res.error or ''}".rstrip(": ")}
        shown = res.rows[:SHOWN_ROWS]
        results = [{"string": " | ".join(res.columns), "verdict": "columns", "good": True}]
        results += [{"string": " | ".join(map(_cell, row)), "verdict": f"row {i}", "good": True}
                    for i, row in enumerate(shown, start=1)]
        more = f" (first {len(shown)} shown)" if len(res.rows) > len(shown) else ""
        note = "; the test inputs are not used" if strings else ""
        return out | {"ok": True, "columns": list(res.columns), "n_rows": len(res.rows), "results": results,
                      "summary": f"read-only query, {len(res.rows)} rows on instance seed {box.seed}{more}{note}"}
