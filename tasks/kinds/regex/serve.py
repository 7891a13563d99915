"""What serving needs from the regex kind: the domain's fixed prompt around a user's request, the student's raw
text as the answer (the regex alone), and the playground's test panel (tasks/serve/ asks ``KIND.serving(cfg)``)."""

from __future__ import annotations

from dataclasses import dataclass

from tasks.kinds import Kind
from tasks.kinds.regex import matcher


@dataclass(frozen=True)
class RegexServeKind:
    """Prompt = ``task.prompt_template`` around the request; answer = the regex alone; the test panel full-matches
    strings in the domain's dialect with the kind's time-limited matcher (on the server)."""

    kind: Kind
    template: str
    dialect: str
    timeout_s: float

    @property
    def name(self) -> str:
        return self.kind.name

    def render(self, request: str) -> str:
        return self.kind.render_prompt(self.template, request)

    def answer(self, raw: str) -> str:
        return self.kind.normalise_completion(raw)

    def test_panel(self, answer: str, strings: list[str]) -> dict:
        """Which of ``strings`` the answer fully matches: the panel's ``{"ok", "summary", "results": [{"string",
        "verdict", "good"}]}`` with the kind's ``compiled``, ``error``, ``dialect`` and per string ``match``,
        ``timed_out``. One string per worker request, so each verdict is exact and a catastrophic one costs its
        time limit."""
        items = [(answer, [s], []) for s in strings] or [(answer, [], [])]  # no strings: still say if it compiles
        results = matcher.check_batch(items, timeout_s=self.timeout_s, dialect=self.dialect)
        compiled = all(r.compiled for r in results)
        error = next((r.error for r in results if r.error), None)
        results = results if strings else []
        rows = []
        for s, r in zip(strings, results, strict=True):
            match = r.compiled and not r.timed_out and r.positives_ok == 1
            verdict = "timed out" if r.timed_out else ("full match" if match else "no match")
            rows.append({"string": s, "match": match, "timed_out": r.timed_out, "verdict": verdict, "good": match})
        summary = f"compiles in the {self.dialect} dialect" if compiled else f"does not compile: {error or '?'}"
        return {"ok": compiled, "summary": summary, "compiled": compiled, "error": error, "dialect": self.dialect,
                "results": rows}
