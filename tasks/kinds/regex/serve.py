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
        """Which of ``strings`` the answer fully matches: ``{"compiled", "error", "results": [{"string", "match"}]}``.
        One string per worker request, so each verdict is exact and a catastrophic one costs its time limit."""
        items = [(answer, [s], []) for s in strings] or [(answer, [], [])]  # no strings: still say if it compiles
        results = matcher.check_batch(items, timeout_s=self.timeout_s, dialect=self.dialect)
        compiled = all(r.compiled for r in results)
        error = next((r.error for r in results if r.error), None)
        results = results if strings else []
        return {"compiled": compiled, "error": error, "dialect": self.dialect,
                "results": [{"string": s, "match": r.compiled and not r.timed_out and r.positives_ok == 1,
                             "timed_out": r.timed_out} for s, r in zip(strings, results, strict=True)]}
