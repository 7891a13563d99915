"""How people phrase a regex request: styles, templates and noise, applied to one ``Concept``.

Styles (each honoured by construction and recorded on the request): ``terse`` (a label: "zip code, optional
+4"), ``imperative`` ("Write a regex that matches ..."), ``question`` ("How do I match a MAC address?"),
``need`` ("I need a pattern for ..."), ``explain`` (a sentence of context, then the ask) and ``example``
(the ask carries one or two sample strings: "like 2024-01-31"). On top of any style, a minority of requests
get noise: everything lower-cased, the final punctuation dropped, a typo in one long word. Literal text
(wrapped in ``concepts.L`` markers) is never touched by noise.
"""

from __future__ import annotations

import re

from tasks.kinds.regex.concepts import M0, M1, Concept, L, R

STYLES: tuple[str, ...] = ("terse", "imperative", "question", "need", "explain", "example")
DEFAULT_STYLE_WEIGHTS: dict[str, float] = {"terse": 0.2, "imperative": 0.18, "question": 0.16, "need": 0.16,
                                           "explain": 0.12, "example": 0.18}
_TERSE = ("{bare}", "{bare}", "{bare}", "{bare} regex", "regex for {bare}", "{bare} pattern", "{bare} validation",
          "match {bare}", "{bare} (full match)", "pattern: {bare}")
_IMPERATIVE = ("Write a regex that matches {np}", "Match {np}", "Create a regular expression for {np}",
               "Give me a regex for {np}", "Validate {np}", "Build a pattern that accepts {np}",
               "Make a regex to match {np}", "Generate a regex for {np}", "Regex to match {np}",
               "Write a pattern that only accepts {np}", "Please write a regex for {np}",
               "Provide a regular expression matching {np}", "Write me a regex to validate {np}",
               "Match strings that are {np}")
_QUESTION = ("How do I match {np}?", "What regex matches {np}?", "What's a good regex for {np}?",
             "Can you give me a pattern that validates {np}?", "Regex for {np}?",
             "How can I check that a string is {np}?", "Is there a regex to validate {np}?",
             "Which regular expression would match {np}?", "How would I write a regex for {np}?", "any regex for {np}?",
             "What pattern should I use for {np}?", "how to validate {np} with a regex?",
             "Could you write a regex that matches {np}?")
_NEED = ("I need a regex for {np}", "I need to match {np}", "Looking for a pattern that matches {np}",
         "Need a regex that validates {np}", "I want a regex that accepts {np}", "We need a pattern for {np}",
         "I'm looking for a regular expression for {np}", "I'd like a regex matching {np}", "need regex: {np}",
         "Trying to find a regex for {np}", "I need a pattern that matches {np} and nothing else",
         "My validation needs a regex for {np}")
_CONTEXT = {
    "identifiers": ("Our database stores these ids in a text column.", "I'm validating user input in a signup form.",
                    "We enforce naming conventions in code review.", "A CSV export has one id per row.",
                    "Our API accepts references in a query parameter."),
    "log_fields": ("I'm parsing application logs line by line.", "Our log shipper splits each line into fields.",
                   "I grep through server logs a lot.", "We are writing an alert rule over log fields.",
                   "I'm building a Grafana/Loki query over our logs."),
    "network": ("I'm writing a validator for a config file.", "We get addresses from a CSV export.",
                "Users paste these into a settings form.", "I'm cleaning up a firewall rules spreadsheet.",
                "Our inventory script reads one address per line."),
    "dates": ("Dates come in from a legacy system as plain text.", "I'm importing a spreadsheet with a date column.",
              "Our API receives this as a string field.", "I'm cleaning timestamps in exported data."),
    "text": ("I'm cleaning up a column in a spreadsheet.", "Users type this into a web form.",
             "I'm validating a field in an HTML form.", "We receive these values from a partner's feed.",
             "I'm writing a data-quality check for an ETL job."),
}
_ANY_CONTEXT = tuple(s for t in _CONTEXT.values() for s in t)
_FOLLOW = ("Each value should be {np}. What regex should I use?", "I want to accept {np} and nothing else.",
           "The field must contain {np}; can you write the regex?",
           "Every entry is supposed to be {np}. Please give me a pattern that checks it.",
           "I need a regex that fully matches {np}.", "How do I check that a value is {np}?",
           "Write a regex so only {np} passes.")
_EXAMPLE = ("{np} like {ex}", "Match {np}, e.g. {ex}", "{bare}, for example {ex}", "strings like {ex} ({bare})",
            "Regex for values such as {ex} and {ex2}: {np}", "{bare} such as {ex}",
            "I have values like {ex} and {ex2}. They are {np}. What regex?", "something like {ex}, i.e. {np}",
            "Match things like {ex} or {ex2} ({bare})", "Need a regex for {np}, e.g. {ex}", "{ex} - {bare}",
            "How do I match {np} like {ex}?")
_TEMPLATES = {"terse": _TERSE, "imperative": _IMPERATIVE, "question": _QUESTION, "need": _NEED, "example": _EXAMPLE}
_CONNECT = frozenset(("with", "that", "which", "where", "in", "of", "starting", "ending", "followed", "separated",
                      "using", "prefixed", "whose", "only", "from", "between", "limited", "inside", "wrapped", "as",
                      "formatted", "like", "for", "without", "under", "on", "at", "directly", "anywhere", "made"))
_AN_ACRONYMS = frozenset(("MD5", "HTTP", "IPv4", "IPv6", "IP", "ISO", "RFC", "SSN", "E.164", "HTML", "RGB", "IBAN",
                          "SKU", "FQDN", "API", "ID", "MR", "RMA", "e-mail", "email", "8-digit", "11-digit",
                          "18-digit", "80-column"))
_A_WORDS = ("UUID", "URL", "US", "UK", "user", "unique", "universally", "one", "Unix", "UpperCamelCase")


def article(noun: str) -> str:
    visible = noun.replace(M0, "").replace(M1, "")
    head = re.split(r"[\s(/,]", visible, maxsplit=1)[0]
    if head in _AN_ACRONYMS or head.lower() in ("e-mail", "email"):
        return "an "
    if not head or head.startswith(_A_WORDS):
        return "a "
    return "an " if head[0].lower() in "aeiou" or head[0] == "8" else "a "


def _details(rng: R, c: Concept) -> list[str]:
    out = []
    for alts in c.details:
        alts = [a for a in alts if a]
        if alts:
            out.append(rng.choice(alts))
    return out


def _attach(rng: R, head: str, details: list[str], terse: bool) -> str:
    if not details:
        return head
    if rng.random() < 0.3:
        rng.shuffle(details)
    if terse:
        return head + rng.choice((", ", ", ", " - ", ": ")) + ", ".join(details)
    text = head
    for i, d in enumerate(details):
        if i == 0:
            text += (" " if d.replace(M0, "").split(" ", 1)[0].lower() in _CONNECT else ", ") + d
        else:
            text += (" and " if i == len(details) - 1 and rng.random() < 0.5 else ", ") + d
    return text


def noun_phrase(rng: R, c: Concept, terse: bool = False) -> tuple[str, str]:
    """(with article, without article) noun phrase carrying every detail of the concept."""
    noun, details = rng.choice(c.nouns), _details(rng, c)
    bare = _attach(rng, noun, list(details), terse)
    full = _attach(rng, (article(noun) + noun) if c.article else noun, list(details), False)
    return full, bare


def describe(rng: R, style: str, c: Concept, topic: str, examples: list[str]) -> str:
    """The request text (markers still in) for a concept in a style; ``examples`` feed the example style."""
    if style == "explain":
        np, _ = noun_phrase(rng, c)
        ctx = rng.choice(_CONTEXT[topic] if rng.random() < 0.8 else _ANY_CONTEXT)
        return ctx + " " + rng.choice(_FOLLOW).format(np=np)
    np, bare = noun_phrase(rng, c, terse=style == "terse")
    if style == "example":
        ex1 = examples[0] if examples else ""
        ex2 = examples[1] if len(examples) > 1 else ex1
        q = rng.choice(("{}", '"{}"', "`{}`", "'{}'"))
        templates = [t for t in _EXAMPLE if "{ex2}" not in t or ex2 != ex1]
        return rng.choice(templates).format(np=np, bare=bare, ex=q.format(L(ex1)), ex2=q.format(L(ex2)))
    text = rng.choice(_TEMPLATES[style]).format(np=np, bare=bare)
    if style in ("imperative", "need") and rng.random() < 0.55:
        text += "."
    return text


def _split(text: str) -> list[str]:
    """The text cut at protected spans (odd-looking parts that start with the marker are literal)."""
    return re.split(f"({M0}.*?{M1})", text)


def _typo(rng: R, text: str) -> str:
    words = list(re.finditer(r"\b[a-z]{5,}\b", text))
    m = rng.choice(words)
    w, i = m.group(), rng.randrange(1, len(m.group()) - 2)
    w = w[:i] + w[i + 1] + w[i] + w[i + 2:] if rng.random() < 0.6 else w[:i] + w[i + 1:]
    return text[:m.start()] + w + text[m.end():]


def finish(rng: R, text: str, style: str, case_noise: bool = True) -> tuple[str, list[str]]:
    """Noise (recorded) and capitalisation, then the protected markers removed."""
    noise: list[str] = []
    if style != "terse" and text[:1].islower() and rng.random() < 0.7:
        text = text[0].upper() + text[1:]
    if case_noise and rng.random() < 0.14:
        text = "".join(p if p.startswith(M0) else p.lower() for p in _split(text))
        noise.append("lowercase")
    if text[-1:] in ".?" and rng.random() < 0.15:
        text = text[:-1]
        noise.append("no_final_punct")
    if rng.random() < 0.05:
        parts = _split(text)
        free = [i for i, p in enumerate(parts) if not p.startswith(M0) and re.search(r"\b[a-z]{5,}\b", p)]
        if free:
            i = rng.choice(free)
            parts[i] = _typo(rng, parts[i])
            text = "".join(parts)
            noise.append("typo")
    return text.replace(M0, "").replace(M1, "").strip(), noise
