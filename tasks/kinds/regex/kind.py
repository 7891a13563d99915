"""``RegexKind``: the regex kind behind the generic seam (tasks/kinds/__init__.py says what each method is for).

It wires the package's modules to the interface and holds no logic of its own beyond small adapters: the checks
are in ``checks``, scoring in ``scoring``, the matcher in ``matcher``, the teachers' side in ``teacher`` and
``grammar``, the config keys and gate checks in ``config``, the server's side in ``serve``.
"""

from __future__ import annotations

from typing import Any

from tasks.kinds import Kind
from tasks.kinds.regex import checks, scoring, teacher

VALIDATOR_VERSION = "regex-v3"  # v3: the python dialect is ASCII (\d = [0-9]); v2 matched \d Unicode-wide
# request words that say "a regex, please" rather than what to match (prompt decontamination ignores them)
STOP_WORDS = frozenset(["string", "strings", "match", "matches", "matching", "regex", "pattern"])


def _strings(value: Any) -> list[str] | None:
    """A list of strings from a row's field (missing → empty); None when it is not one."""
    value = value or []
    return list(value) if isinstance(value, list) and all(isinstance(s, str) for s in value) else None


class RegexKind(Kind):
    name = "regex"
    validator_version = VALIDATOR_VERSION
    check_reasons = checks.CHECK_REASONS
    overlap_reasons = checks.OVERLAP_REASONS
    stop_words = STOP_WORDS
    item_field_names = ("positives", "negatives")
    metric_keys = ("compile_rate", "dfa_equivalence_rate", "redos_vulnerable_rate")
    count_keys = ("dfa_undecided",)
    headline_metric = ("compile", "compile_rate")
    mock_faults = teacher.MOCK_FAULTS

    @property
    def config_model(self):
        from tasks.kinds.regex.config import RegexDomainConfig

        return RegexDomainConfig

    # -- teachers ----------------------------------------------------------------------------------------------
    @property
    def output_model(self):
        return teacher.RegexOutput

    def request_params(self, cfg) -> dict:
        return teacher.request_params(cfg.task.dialect, cfg.teacher.n_positives, cfg.teacher.n_negatives)

    def teacher_messages(self, spec, params):
        return teacher.messages(spec, params)

    def grammar_answer(self, spec, params):
        return teacher.grammar_answer(spec, params)

    def mock_answer(self, user, fault=None):
        return teacher.mock_answer(user, fault)

    def tokenizer_corpus(self, n: int) -> list[str]:
        return teacher.tokenizer_corpus(n)

    # -- validation --------------------------------------------------------------------------------------------
    def completion_of(self, output) -> str:
        return output.regex

    def output_from_row(self, row: dict) -> tuple[Any, bool]:
        out = self.output_model(description=row.get("description") or row.get("prompt") or "-",
                                regex=row["completion"], positives=row.get("positives") or [],
                                negatives=row.get("negatives") or [])
        return out, row.get("positives") is not None or row.get("negatives") is not None

    def example_fields(self, output) -> dict:
        return {"positives": list(output.positives), "negatives": list(output.negatives)}

    def check(self, verdicts, cfg, *, examples_given, eval_items):
        return checks.check(verdicts, cfg, examples_given=examples_given, eval_items=eval_items)

    def equivalence_classes(self, verdicts, cfg):
        return checks.equivalence_classes(verdicts, cfg)

    def decontaminate(self, verdicts, eval_items, state, cfg) -> None:
        checks.decontaminate(verdicts, eval_items, state, cfg)

    # -- evaluation --------------------------------------------------------------------------------------------
    def item_fields(self, row: dict) -> dict | None:
        pos, neg = _strings(row.get("positives")), _strings(row.get("negatives"))
        return None if pos is None or neg is None else {"positives": pos, "negatives": neg}

    def completion_key(self, text: str) -> str:
        """The canonical spelling (equal keys mean equal languages), else the text itself."""
        from tasks.kinds.regex.analysis import canonical

        text = self.normalise_completion(text)
        try:
            return canonical(text)
        except Exception:  # not parseable by the canonicaliser: compare the text
            return text

    def score(self, items: list[dict], texts: list[str], cfg) -> list[dict]:
        return scoring.score(items, texts, timeout_s=cfg.validation.match_timeout_s, dialect=cfg.task.dialect,
                             equivalence_timeout_s=cfg.eval.equivalence_timeout_s,
                             redos_timeout_s=cfg.eval.redos_timeout_s)

    def metrics(self, rows: list[dict]) -> dict:
        return scoring.metrics(rows)

    def topic_metrics(self, rows: list[dict]) -> dict:
        return scoring.topic_metrics(rows)

    def eval_settings(self, cfg) -> list:
        return [cfg.task.dialect, cfg.eval.equivalence_timeout_s, cfg.eval.redos_timeout_s]

    # -- serving -----------------------------------------------------------------------------------------------
    def serving(self, cfg):
        from tasks.kinds.regex.serve import RegexServeKind

        return RegexServeKind(self, cfg.task.prompt_template, cfg.task.dialect, cfg.validation.match_timeout_s)


KIND = RegexKind()
