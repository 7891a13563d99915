"""How people phrase a question for the database: styles, wrappers and noise, applied to one ``Ask``.

A grammar template (``grammar``) says what is asked as an ``Ask``: noun phrases for the result ("the customers
in Paris", "the number of orders per status"), and where a plain noun phrase reads badly, its own questions
("How many customers live in Paris?") and commands ("Count the customers in Paris"). The style decides the
wrapper, each honoured by construction and recorded on the item:

- ``terse``: a label, as typed into a search box ("customers in Paris", "revenue by category 2024");
- ``question``: "Which customers live in Paris?", "Can you show me the 5 most expensive products?";
- ``imperative``: "List the customers in Paris.", "Give me the revenue by category.";
- ``need``: "I need the number of cancelled orders", "Looking for customers without an email";
- ``explain``: a sentence of context, then the ask ("Marketing is planning a mailing. Which customers ...?").

On top of any style, about a quarter of the requests get noise: lower case, the final punctuation dropped or
doubled, a "pls" or "thx". Literal values (wrapped with ``lit``) keep their spelling under noise, because the
query must match them exactly ('Paris', not 'paris').
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

STYLES: tuple[str, ...] = ("terse", "question", "imperative", "need", "explain")
L0, L1 = "\x01", "\x02"  # literal markers, removed when the text is finished
_VERBS = ("Show", "List", "Give me", "Get", "Find", "Return", "Fetch", "Display", "Pull up", "Show me", "Retrieve")
_QUESTION_WRAPS = ("Can you show me {np}?", "Could you list {np}?", "Can I get {np}?", "Can I see {np}?",
                   "Could you pull {np}?", "Can you find {np}?", "Would you list {np}?", "Can you give me {np}?")
_NEED_WRAPS = ("I need {np}", "I'd like to see {np}", "I want {np}", "Need {np}", "Looking for {np}",
               "I'm looking for {np}", "We need {np}", "I would like {np}", "Trying to get {np}",
               "I need to see {np}", "Please get me {np}", "Need a query for {np}")
_NEED_QUESTION = ("I need to know: {q}", "I want to know {q_low}", "Quick one: {q}", "I'm trying to find out {q_low}")
_TERSE_WRAPS = ("{np}", "{np}", "{np}", "{np}", "{np}?", "sql: {np}", "query: {np}", "{np} please", "{np} (sql)")
# an embedded question as the noun phrase ("how many customers joined in 2023")
_HOW = {"question": ("Can you tell me {np}?", "Do you know {np}?", "Could you find out {np}?"),
        "imperative": ("Tell me {np}", "Find out {np}", "Show {np}", "Figure out {np}", "Work out {np}"),
        "need": ("I need to know {np}", "I want to know {np}", "I'd like to know {np}", "Need to know {np}",
                 "Trying to figure out {np}"),
        "explain": ("Can you tell me {np}?", "I need to know {np}.", "Please find out {np}.")}
_CONTEXT = {
    "customers": ("Marketing is planning a mailing.", "I'm cleaning up our customer list.",
                  "We're reviewing our customer base.", "Our CRM export looks off, so I'm checking the database.",
                  "The sales team asked me for some numbers."),
    "products": ("I'm reviewing the product catalog.", "We are planning next season's assortment.",
                 "The warehouse team asked about inventory.", "I'm preparing a pricing review.",
                 "Purchasing wants to restock soon."),
    "orders": ("I'm putting together the monthly report.", "Our support team is looking into orders.",
               "Finance asked for some figures.", "I'm building a dashboard for the ops team.",
               "We're checking how fulfilment is going."),
}
_ANY_CONTEXT = tuple(c for cs in _CONTEXT.values() for c in cs)
_NOISE = 0.25


def lit(value: object) -> str:
    """A literal in a question: kept verbatim by noise."""
    return f"{L0}{value}{L1}"


@dataclass
class Ask:
    """What a template asks, before it is phrased."""

    nps: list[str]  # noun phrases naming the result, with their article: "the customers in Paris"
    questions: list[str] = field(default_factory=list)  # full questions, ending in "?"
    commands: list[str] = field(default_factory=list)  # imperatives without final punctuation
    subject: str = "orders"  # which context sentences fit: customers | products | orders


def render(ask: Ask, style: str, rng: random.Random) -> str:
    """The finished request text in ``style``, with a chance of noise."""
    np = rng.choice(ask.nps)
    if np.startswith(("how ", "what ", "which ")) and style != "terse":
        np, how = None, rng.choice(_HOW[style]).format(np=np)
    else:
        how = None
    if how and style != "explain":
        text = how + (rng.choice((".", "")) if style in ("imperative", "need") else "")
    elif style == "terse":
        text = rng.choice(_TERSE_WRAPS).format(np=_drop_article(np))
    elif style == "question":
        text = rng.choice(ask.questions) if ask.questions and rng.random() < 0.75 else \
            rng.choice(_QUESTION_WRAPS).format(np=np)
    elif style == "imperative":
        text = (rng.choice(ask.commands) if ask.commands and rng.random() < 0.6 else
                f"{rng.choice(_VERBS)} {np}") + rng.choice((".", ".", "", "!"))
    elif style == "need":
        if ask.questions and rng.random() < 0.3:
            q = rng.choice(ask.questions)
            text = rng.choice(_NEED_QUESTION).format(q=q, q_low=_lower_first(q)[:-1])
        else:
            text = rng.choice(_NEED_WRAPS).format(np=np) + rng.choice((".", "", ""))
    elif style == "explain":
        context = rng.choice(_CONTEXT.get(ask.subject, _ANY_CONTEXT) if rng.random() < 0.85 else _ANY_CONTEXT)
        if ask.questions and rng.random() < 0.5:
            ask_text = rng.choice(ask.questions)
        elif how:
            ask_text = how
        else:
            ask_text = rng.choice((f"Can you show me {np}?", f"I need {np}.", f"Please list {np}.",
                                   f"{rng.choice(_VERBS)} {np}.", f"Could you pull {np}?"))
        text = f"{context} {ask_text}"
    else:
        raise ValueError(f"unknown style {style!r} (known: {', '.join(STYLES)})")
    text = _upper_first(text) if style != "terse" else text
    if rng.random() < _NOISE:
        text = _noise(text, rng)
    return finish(text)


def finish(text: str) -> str:
    """Drop the literal markers and stray spaces."""
    return " ".join(text.replace(L0, "").replace(L1, "").split())


def _noise(text: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.45:
        text = _lower_outside_literals(text)
    elif roll < 0.6:
        text = _lower_outside_literals(text).rstrip("?.!")
    if rng.random() < 0.3:
        text = text.rstrip("?.!") + rng.choice((" pls", " please", " thx", " asap", "??", " ?"))
    elif rng.random() < 0.3:
        text = text.rstrip("?.!")
    return text


def _lower_outside_literals(text: str) -> str:
    out, inside = [], False
    for ch in text:
        if ch == L0:
            inside = True
        elif ch == L1:
            inside = False
        out.append(ch if inside else ch.lower())
    return "".join(out)


def _drop_article(np: str) -> str:
    for art in ("the ", "all the ", "all ", "a ", "an "):
        if np.startswith(art):
            return np[len(art):]
    return np


def _upper_first(text: str) -> str:
    i = 1 if text.startswith(L0) else 0
    return text[:i] + text[i:i + 1].upper() + text[i + 1:]


def _lower_first(text: str) -> str:
    if text.startswith(L0) or text[:2].isupper():
        return text
    return text[:1].lower() + text[1:]
