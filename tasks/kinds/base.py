"""The task-kind interface (``Kind``) and its registry (``get_kind``); tasks/kinds/__init__.py says why."""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from schemas.config import DomainConfig
    from schemas.example import RequestSpec
    from tasks.validate import Verdict

from tasks.kinds import DEFAULT_KIND, GROUP

_PKG = "tasks.kinds"  # built-in kinds are its subpackages


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
    from importlib.metadata import entry_points  # here, not at the top: ~25 ms that every worker start would pay

    return {ep.name: ep for ep in entry_points(group=GROUP)}


def _builtin_names() -> list[str]:
    import pkgutil

    import tasks.kinds

    return [m.name for m in pkgutil.iter_modules(tasks.kinds.__path__) if m.ispkg]


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
        kind = ep.load() if ep is not None else getattr(importlib.import_module(f"{_PKG}.{name}"), "KIND", None)
    except ModuleNotFoundError as e:
        if ep is None and e.name == f"{_PKG}.{name}":
            raise KindError(f"unknown kind {name!r}; known kinds: {', '.join(known_kinds())}") from None
        raise
    if not isinstance(kind, Kind):
        where = ep.value if ep is not None else f"{_PKG}.{name}.KIND"
        raise KindError(f"kind {name!r}: {where} is not a tasks.kinds.Kind (known kinds: {', '.join(known_kinds())})")
    return kind
