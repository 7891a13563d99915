"""The regex kind's keys in a domain file, and the gate checks that go with its gate keys.

A domain file keeps one section per concern (``task:``, ``teacher:``, ``validation:``, ``eval:``, ``gate:``);
the generic models in schemas/config.py hold the generic keys of each section and the regex kind adds its own
here, by subclassing the section, so its keys sit where a reader looks for them and a typo still fails naming
the key. ``RegexDomainConfig`` is ``KIND.config_model``: what ``load_domain`` validates a ``task.kind: regex``
file with.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from schemas.config import DomainConfig, EvalConfig, GateConfig, TaskConfig, TeacherConfig, ValidationConfig
from tasks.kinds.regex.phrasing import DEFAULT_STYLE_WEIGHTS, STYLES


class RegexTask(TaskConfig):
    """The dialect and match semantics; the prompt says "regex" by default."""

    style_names: ClassVar[tuple[str, ...]] = STYLES  # the phrasing styles the grammar teacher honours

    dialect: Literal["python", "re2"] = "python"  # python: stdlib `re` with re.ASCII; re2: google-re2 (linear time)
    match: Literal["full"] = "full"
    # Ends on a newline so the prompt is a token-boundary prefix of prompt+completion.
    prompt_template: str = "regex: {description}\n"
    topics: dict[str, float] = Field(default_factory=lambda: {"text": 1.0})
    styles: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_STYLE_WEIGHTS))


class RegexTeacher(TeacherConfig):
    """How many example strings a teacher writes with each regex."""

    n_positives: int = Field(5, ge=1, le=50)
    n_negatives: int = Field(5, ge=1, le=50)


class RegexValidation(ValidationConfig):
    """The terse-output rule, the house style, the example strings and the ReDoS guard's time limit
    (checks and reason codes: tasks/kinds/regex/checks.py)."""

    # terse-output rule: the completion is only the regex; ``strip_and_flag`` removes fences, quotes, slashes,
    # a "Regex:" preamble or edge blanks instead of rejecting, and the example records that it was normalised
    terse: Literal["reject", "strip_and_flag"] = "reject"
    # house style
    max_regex_length: int = Field(200, gt=0)
    anchoring: Literal["any", "forbidden", "required"] = "any"  # required = ^…$ around the whole pattern
    forbid: list[Literal["lookaround", "backreference", "atomic", "capturing_group"]] = Field(default_factory=list)
    class_spelling: Literal["any", "shorthand", "explicit"] = "any"  # shorthand: \d not [0-9]; explicit: reverse
    # example strings
    min_positives: int = Field(1, ge=1)
    min_negatives: int = Field(1, ge=1)
    redos_timeout_s: float = Field(1.0, gt=0)  # per output: the ReDoS stress test (its worker is killed past it)

    def style(self) -> dict:
        """The house-style rules as the matcher worker reads them."""
        return {"forbid": list(self.forbid), "anchoring": self.anchoring, "class_spelling": self.class_spelling}


class RegexEval(EvalConfig):
    """Time limits of the DFA comparison with the reference and of the ReDoS analysis of an output."""

    equivalence_timeout_s: float = Field(0.5, gt=0)  # per item: DFA equivalence with the reference
    redos_timeout_s: float = Field(1.0, gt=0)  # per output: static ReDoS analysis


class RegexGate(GateConfig):
    """A floor on the share of outputs that compile, and no more ReDoS-prone outputs than the champion."""

    min_compile_rate: float = Field(0.9, ge=0, le=1)
    redos_no_worse_than_champion: bool = True

    def candidate_checks(self, candidate: dict) -> list[dict]:
        from tasks.registry import gate_check

        return [gate_check("min_compile_rate", candidate["compile_rate"], self.min_compile_rate,
                           candidate["compile_rate"] >= self.min_compile_rate)]

    def champion_checks(self, candidate: dict, champion: dict | None) -> list[dict]:
        from tasks.registry import gate_check, gate_skipped

        if not self.redos_no_worse_than_champion:
            return []
        if champion is None:
            return [gate_skipped("redos_no_worse_than_champion", None, "no champion")]
        return [gate_check("redos_no_worse_than_champion", candidate["redos_vulnerable_rate"],
                           champion["redos_vulnerable_rate"],
                           candidate["redos_vulnerable_rate"] <= champion["redos_vulnerable_rate"])]


class RegexDomainConfig(DomainConfig):
    """A domain of the regex kind: the generic sections with the kind's keys added."""

    task: RegexTask = RegexTask()
    teacher: RegexTeacher = RegexTeacher()
    validation: RegexValidation = RegexValidation()
    eval: RegexEval = RegexEval()
    gate: RegexGate = RegexGate()
