"""The regex kind: a request in plain language → one regex in the domain's dialect, full-match semantics.

``KIND`` (tasks/kinds/regex/kind.py) is what the registry hands out. The package's modules, by concern:
``matcher`` (the killable worker pool: compile, match, ReDoS guard, equivalence), ``worker`` (the matcher
process), ``analysis`` (parse-tree analysis: canonical form, house style, static ReDoS), ``checks``
(validation), ``scoring`` (evaluation), ``config`` (its keys in the domain file and its gate checks),
``teacher`` (output schema, LLM prompt, mock answers), ``grammar`` with ``concepts*``, ``fragments`` and
``phrasing`` (the offline teacher), ``serve`` (the server's answer and test panel).

This ``__init__`` imports nothing: the matcher's worker processes import the package on every start, so ``KIND``
is built on first access.
"""


def __getattr__(name: str):
    if name == "KIND":
        from tasks.kinds.regex.kind import KIND

        return KIND
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
