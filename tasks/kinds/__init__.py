"""Task kinds: what a domain's student learns to write, behind one interface (the seam).

A *kind* is a task family — a request in plain language → one structured output (a regex, a SQL query …). Each
kind is one package under ``tasks/kinds/<kind>/`` whose ``KIND`` object implements ``Kind`` below; a domain file
selects one with ``task.kind``. Everything kind-specific lives in that package: the teacher output schema and
prompt, the offline grammar teacher, the checks and their reason codes, the equivalence (dedup) key, scoring of
one output against one item, the metrics and gate checks it adds (with their config keys), the values it
stores, what the server's answer and playground test panel are. The generic code — flows, store, snapshot,
training, the evaluation loop, registry and gate, server, CLI — asks ``get_kind(cfg.task.kind)`` and names no
kind itself, so a new kind is a package plus configs, and a new domain of an existing kind is a config.

**One registry**, ``get_kind(name)``: the entry-point group ``loraforge.kinds`` first (``name =
"package.module:KIND"``; this project declares its own kinds in pyproject.toml, and a kind can live in another
installed package), then the built-in package ``tasks.kinds.<name>`` (a checkout that was never pip-installed
again still works). An unknown name fails with the known kinds listed.

**Why a base class, not a Protocol:** most methods have one obvious default for a kind that does not need them
(no extra reasons, no extra metrics), and a missing method fails with the kind and the method named instead of
an ``AttributeError`` deep in a flow. What each group of methods is for, by who calls it:

- config (schemas/config.py): ``config_model`` — a ``DomainConfig`` subclass whose sections add the kind's own
  keys (``task.dialect`` …) to the generic ones, so a domain file keeps one section per concern and a typo in a
  kind's key still fails naming it; a section subclass may also carry behaviour that belongs to its keys (the
  gate section's checks: ``GateConfig.candidate_checks`` / ``champion_checks``).
- teachers (tasks/generate.py, tasks/teacher/): ``output_model`` (the JSON a teacher returns),
  ``request_params``, ``teacher_messages``, ``grammar_answer``, ``mock_answer`` / ``mock_faults``,
  ``tokenizer_corpus`` (the tiny student's tokenizer is trained on the kind's text).
- validation (tasks/validate.py): ``completion_of``, ``output_from_row``, ``example_fields``, ``check``,
  ``equivalence_classes``, ``decontaminate``, ``check_reasons`` / ``overlap_reasons``, ``stop_words``,
  ``validator_version``.
- evaluation (tasks/evaluate.py, flows/evaluate.py): ``item_fields``, ``completion_key``, ``score``,
  ``metrics``, ``topic_metrics``, ``eval_settings``; ``metric_keys`` / ``count_keys`` / ``headline_metric``
  say which of its figures the CLI and the reports show.
- serving (tasks/serve/): ``serving(cfg)`` → an object with ``render``, ``answer`` and ``test_panel``.

Import cost: this module imports only the standard library, and a kind package's ``__init__`` should stay as
light (``tasks.kinds.regex`` builds ``KIND`` lazily), because a kind's worker processes import their package on
every start.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from schemas.config import DomainConfig
    from schemas.example import RequestSpec
    from tasks.validate import Verdict

GROUP = "loraforge.kinds"
DEFAULT_KIND = "regex"  # a domain file without ``task.kind``; the mock teacher's and the tokenizer's default


class KindError(ValueError):
    """A kind name that no registry entry and no built-in package provides, or a kind that lacks a method."""


class Kind:
    """One task kind. Subclasses set the class attributes and implement the methods their callers need."""

    name: str = ""
    validator_version: str = ""  # recorded with every example and quarantined row; part of evaluation cache keys
    check_reasons: tuple[str, ...] = ()  # the kind's reason codes, in the order its checks run
    overlap_reasons: tuple[str, ...] = ()  # its decontamination codes (an output equivalent to an eval item's)
    stop_words: frozenset[str] = frozenset()  # request words that carry no meaning for this kind ("regex", "match")
    item_field_names: tuple[str, ...] = ()  # an item's reference fields besides prompt and completion
    metric_keys: tuple[str, ...] = ()  # the kind's rates in the metrics object M, each with a ``<key>_ci``
    count_keys: tuple[str, ...] = ()  # other figures of the kind in M (counts)
    headline_metric: tuple[str, str] | None = None  # (CLI column title, M key) beside semantic accuracy
    mock_faults: tuple[str, ...] = ()  # content faults the mock teacher can inject for this kind

    def __repr__(self) -> str:
        return f"<kind {self.name}>"

    def _missing(self, what: str):
        return KindError(f"kind {self.name!r} does not implement {what}")

    # -- config ------------------------------------------------------------------------------------------------
    @property
    def config_model(self) -> type[DomainConfig]:
        """The domain config class of this kind (``DomainConfig`` with the kind's section subclasses)."""
        raise self._missing("config_model")

    # -- prompts and answers -----------------------------------------------------------------------------------
    def render_prompt(self, template: str, description: str) -> str:
        """The fixed prompt the student sees for a request (``task.prompt_template`` around it)."""
        return template.format(description=" ".join(description.split()))

    def normalise_completion(self, text: str) -> str:
        """A student's (or a file's) raw text → the kind's answer."""
        return text.strip()

    # -- teachers ----------------------------------------------------------------------------------------------
    @property
    def output_model(self) -> type[BaseModel]:
        """What a teacher returns (Pydantic; a ``schemas.example.TeacherOutput`` subclass): also the JSON schema an
        OpenAI-compatible teacher is asked for."""
        raise self._missing("output_model")

    def request_params(self, cfg: DomainConfig) -> dict[str, Any]:
        """The kind's part of every teacher request (hashed with it): e.g. the dialect and example counts."""
        return {}

    def teacher_messages(self, spec: RequestSpec, params: dict[str, Any]) -> list[dict[str, str]]:
        """The chat messages an LLM teacher gets for one seeded request spec."""
        raise self._missing("teacher_messages")

    def grammar_answer(self, spec: RequestSpec, params: dict[str, Any]) -> dict[str, Any]:
        """The offline grammar teacher's answer to one request: the JSON object an LLM teacher would return (extra
        keys ride along in the stored raw response and are ignored by the parser)."""
        raise self._missing("grammar_answer (an offline teacher)")

    def mock_answer(self, user: str, fault: str | None = None) -> dict[str, Any]:
        """The mock teacher server's answer to an LLM request's user message, shaped by one of ``mock_faults``."""
        raise self._missing("mock_answer")

    def tokenizer_corpus(self, n: int) -> list[str]:
        """Texts of ``n`` seeded examples, for training a tiny student's tokenizer."""
        raise self._missing("tokenizer_corpus")

    # -- validation --------------------------------------------------------------------------------------------
    def completion_of(self, output: Any) -> str:
        """The answer field of a teacher output."""
        raise self._missing("completion_of")

    def output_from_row(self, row: dict[str, Any]) -> tuple[Any, bool]:
        """A user's JSONL row (``prompt``/``description``, ``completion``, the kind's fields) as a teacher output,
        and whether it gives what the kind's full checks need (False: those checks are skipped, and said so).
        Raises ``pydantic.ValidationError`` for a row of the wrong shape."""
        raise self._missing("output_from_row")

    def example_fields(self, output: Any) -> dict[str, Any]:
        """The kind's own values stored with an accepted example (the ``kind_json`` column), e.g. its strings."""
        return {}

    def check(self, verdicts: list[Verdict], cfg: DomainConfig, *, examples_given: list[bool],
              eval_items: list[dict]) -> Any:
        """Run the kind's checks on every verdict that has an output, in place: set ``completion`` (normalised),
        add reason codes (``check_reasons``), flags, ``data`` and ``seconds``. ``eval_items`` may be checked in the
        same pass; whatever ``decontaminate`` needs of them is returned."""
        raise self._missing("check")

    def equivalence_classes(self, verdicts: list[Verdict], cfg: DomainConfig) -> list[int | None]:
        """A class id per verdict (equal ids: equivalent outputs, the dedup cap counts per class); ``None`` for a
        verdict the kind rejected while comparing (it adds the reason itself)."""
        return list(range(len(verdicts)))

    def decontaminate(self, verdicts: list[Verdict], eval_items: list[dict], state: Any, cfg: DomainConfig) -> None:
        """Add ``overlap_reasons`` to verdicts whose output is equivalent to an evaluation item's reference."""

    # -- evaluation --------------------------------------------------------------------------------------------
    def item_fields(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """The kind's reference fields of an evaluation item row (``item_field_names``); None if they are unusable."""
        return {}

    def completion_key(self, text: str) -> str:
        """Equal keys mean equivalent answers (training-overlap exclusion); the text itself by default."""
        return self.normalise_completion(text)

    def score(self, items: list[dict], texts: list[str], cfg: DomainConfig) -> list[dict]:
        """One dict per item: ``semantic_ok`` (the kind's notion of right), ``timed_out``, and the kind's own
        per-item values (stored in ``evaluation_items.kind_json``)."""
        raise self._missing("score")

    def metrics(self, rows: list[dict]) -> dict[str, Any]:
        """The kind's figures in M from scored rows (``metric_keys`` with their CIs, ``count_keys``)."""
        return {}

    def topic_metrics(self, rows: list[dict]) -> dict[str, Any]:
        """The kind's figures in one ``by_topic`` slice of M."""
        return {}

    def eval_settings(self, cfg: DomainConfig) -> list:
        """The kind's settings that change scores (part of the evaluation cache key)."""
        return []

    # -- serving -----------------------------------------------------------------------------------------------
    def serving(self, cfg: DomainConfig) -> Any:
        """What the server needs: ``render(request)``, ``answer(raw)`` and ``test_panel(answer, inputs)``."""
        raise KindError(f"domain {cfg.name!r}: task.kind {self.name!r} has no serving support")


# ------------------------------------------------------------------------------------------------- registry
def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def _builtin_names() -> list[str]:
    return [m.name for m in pkgutil.iter_modules(__path__) if m.ispkg]


def known_kinds() -> list[str]:
    """Every kind name the registry can resolve: installed entry points and built-in packages."""
    return sorted(set(_entry_points()) | set(_builtin_names()))


@cache
def get_kind(name: str = DEFAULT_KIND) -> Kind:
    """The kind called ``name``: its entry point in ``loraforge.kinds``, else ``tasks.kinds.<name>.KIND``."""
    if not isinstance(name, str) or not name.isidentifier():
        raise KindError(f"invalid kind name {name!r}; known kinds: {', '.join(known_kinds())}")
    ep = _entry_points().get(name)
    try:
        kind = ep.load() if ep is not None else getattr(importlib.import_module(f"{__name__}.{name}"), "KIND", None)
    except ModuleNotFoundError as e:
        if ep is None and e.name in (f"{__name__}.{name}", __name__):
            raise KindError(f"unknown kind {name!r}; known kinds: {', '.join(known_kinds())}") from None
        raise
    if not isinstance(kind, Kind):
        where = ep.value if ep is not None else f"{__name__}.{name}.KIND"
        raise KindError(f"kind {name!r}: {where} is not a tasks.kinds.Kind (known kinds: {', '.join(known_kinds())})")
    return kind
