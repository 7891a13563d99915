"""What serving needs from a task kind, behind one small interface: render the domain's fixed prompt around a
user's request, turn the student's raw text into the kind's answer, and the playground's test panel.

Only the regex kind exists; a later task-kind registry can hand ``serve_kind(cfg)`` any object with these three
methods."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.config import DomainConfig
from tasks.kinds import regex


@dataclass(frozen=True)
class RegexServeKind:
    """The regex kind: prompt = ``task.prompt_template`` around the request; answer = the regex alone; the test
    panel full-matches strings in the domain's dialect with the kind's time-limited matcher (on the server)."""

    template: str
    dialect: str
    timeout_s: float
    name: str = "regex"

    def render(self, request: str) -> str:
        return regex.render_prompt(self.template, request)

    def answer(self, raw: str) -> str:
        return regex.normalise_completion(raw)

    def test_panel(self, answer: str, strings: list[str]) -> dict:
        """Which of ``strings`` the answer fully matches: ``{"compiled", "error", "results": [{"string", "match"}]}``.
        One string per worker request, so each verdict is exact and a catastrophic one costs its time limit."""
        items = [(answer, [s], []) for s in strings] or [(answer, [], [])]  # no strings: still say if it compiles
        results = regex.check_batch(items, timeout_s=self.timeout_s, dialect=self.dialect)
        compiled = all(r.compiled for r in results)
        error = next((r.error for r in results if r.error), None)
        results = results if strings else []
        return {"compiled": compiled, "error": error, "dialect": self.dialect,
                "results": [{"string": s, "match": r.compiled and not r.timed_out and r.positives_ok == 1,
                             "timed_out": r.timed_out} for s, r in zip(strings, results, strict=True)]}


def serve_kind(cfg: DomainConfig) -> RegexServeKind:
    if cfg.task.kind != "regex":
        raise ValueError(f"domain {cfg.name!r}: task.kind {cfg.task.kind!r} has no serving support (regex only)")
    return RegexServeKind(cfg.task.prompt_template, cfg.task.dialect, cfg.validation.match_timeout_s)
