"""Task kinds: what a domain's student learns to write, behind one interface (the seam).

A *kind* is a task family — a request in plain language → one structured output (a regex, a SQL query …). Each
kind is one package under ``tasks/kinds/<kind>/`` whose ``KIND`` object implements ``Kind`` (base.py); a domain file
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

Import cost: the interface and the registry live in ``tasks/kinds/base.py`` and this ``__init__`` loads them on
first use, and a kind package's ``__init__`` should stay as light (``tasks.kinds.regex`` builds ``KIND`` lazily):
a kind's worker processes import their package on every start, and each millisecond there is paid again after
every killed worker.
"""

GROUP = "loraforge.kinds"
DEFAULT_KIND = "regex"  # a domain file without ``task.kind``; the mock teacher's and the tokenizer's default
_BASE = ("Kind", "KindError", "get_kind", "known_kinds")


def __getattr__(name: str):
    if name in _BASE:
        from tasks.kinds import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
