"""The old fragment grammar, kept for a minority of compositional requests ("two digits, then a dash, ...").

A spec is a short ordered list of :class:`Part`; a builder makes each part from a seeded ``random.Random`` with
three aligned views of one component: ``desc`` (a noun phrase, "between 2 and 4 digits"), ``regex`` (its
house-style fragment, ``\\d{2,4}``) and ``sample`` (draws a string the fragment matches). Topics have their own
builders (id prefixes, log levels, IPv4, dates, words) and share generic ones (class + quantifier, punctuation,
separated groups, bracketed values); the difficulty sets the number of parts. ``fragment`` joins the phrases with
varied connectors into one ``Concept`` (family ``fragments``) so the phrasing styles apply to it like to any other.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass

from tasks.kinds.regex.concepts import Concept

R = random.Random
Sampler = Callable[[random.Random], str]


@dataclass(frozen=True)
class Part:
    """One component: its phrase, its regex fragment and a sampler of strings the fragment matches."""
    desc: str
    regex: str
    sample: Sampler
    pos: int = 0  # -1: must open the pattern (a prefix), 1: must close it (a suffix), 0: anywhere


@dataclass(frozen=True)
class CharClass:
    regex: str
    chars: str
    names: tuple[str, ...]  # "{s}" marks where the plural takes an "s"

    def plural(self, rng: R) -> str:
        return rng.choice(self.names).replace("{s}", "s")

    def singular(self, rng: R) -> str:
        return rng.choice(self.names).replace("{s}", "")


DIGIT = CharClass(r"\d", string.digits, ("digit{s}", "number{s}", "numeric character{s}"))
LOWER = CharClass("[a-z]", string.ascii_lowercase,
                  ("lowercase letter{s}", "small letter{s}", "lower-case character{s}"))
UPPER = CharClass("[A-Z]", string.ascii_uppercase,
                  ("uppercase letter{s}", "capital letter{s}", "upper-case character{s}"))
ALPHA = CharClass("[a-zA-Z]", string.ascii_letters,
                  ("letter{s}", "alphabetic character{s}", "letter{s} of either case"))
ALNUM = CharClass("[a-zA-Z0-9]", string.ascii_letters + string.digits,
                  ("alphanumeric character{s}", "letter{s} or digit{s}", "alphanumeric{s}"))
HEX = CharClass("[0-9a-f]", "0123456789abcdef",
                ("lowercase hex digit{s}", "hex character{s} (0-9, a-f)", "lower-case hexadecimal digit{s}"))
CLASSES = (DIGIT, LOWER, UPPER, ALPHA, ALNUM, HEX)

_SPECIAL = frozenset(".+*?()[]{}|\\^$")
_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
_NAMES = {"-": ("dash", "hyphen"), "_": ("underscore",), ".": ("dot", "period"), ":": ("colon",), "~": ("tilde",),
          "/": ("slash", "forward slash"), "@": ("at sign",), "#": ("hash sign", "pound sign"), "|": ("pipe",),
          " ": ("space", "blank space"), ",": ("comma",), "=": ("equals sign",), "+": ("plus sign",),
          "*": ("asterisk",), "!": ("exclamation mark",), "?": ("question mark",), ";": ("semicolon",)}
_SEP_NAMES = {"-": ("dashes", "dash"), ".": ("dots", "dot"), ":": ("colons", "colon"), "/": ("slashes", "slash"),
              "_": ("underscores", "underscore"), " ": ("single spaces", "space"), ",": ("commas", "comma")}
_NOISE = string.ascii_letters + string.digits + "-_.:/#@=!?, "


def esc(text: str) -> str:
    """Minimal escaping: only regex metacharacters (never ``-``, ``_``, ``:``, ``/``, ``@``, ``#``)."""
    return "".join("\\" + c if c in _SPECIAL else c for c in text)


def _a(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _num(rng: R, n: int) -> str:
    return _WORDS[n] if n < len(_WORDS) and rng.random() < 0.5 else str(n)


def _draw(chars: str, lo: int, hi: int, r: R) -> str:
    return "".join(r.choices(chars, k=r.randint(lo, hi)))


def _listing(rng: R, opts: list[str]) -> str:
    style = rng.randrange(3)
    if style == 1 or len(opts) == 2:
        return " or ".join(opts)
    return ", ".join(opts[:-1]) + (" or " if style == 0 else ", or ") + opts[-1]


# ---------------------------------------------------------------- generic builders
_KINDS, _KIND_W = ("exact", "range", "least", "plus", "star", "opt"), (34, 26, 10, 14, 7, 9)


def _count(rng: R, plural: str, singular: str) -> tuple[str, str, int, int]:
    """A quantifier: (phrase, regex suffix, min, max used when sampling)."""
    kind = rng.choices(_KINDS, _KIND_W)[0]
    if kind == "exact":
        n = rng.randint(1, 8)
        if n == 1:
            forms = (_a(singular), "one " + singular, "a single " + singular, "exactly one " + singular)
            return rng.choice(forms), "", 1, 1
        return rng.choice(("exactly {} {}", "{} {}", "precisely {} {}")).format(_num(rng, n), plural), f"{{{n}}}", n, n
    if kind == "range":
        lo = rng.randint(1, 4)
        hi = lo + rng.randint(1, 4)
        t = rng.choice(("between {} and {} {}", "{} to {} {}", "from {} to {} {}"))
        phrase = t.format(_num(rng, lo), _num(rng, hi), plural) if rng.random() < 0.85 else f"{lo}-{hi} {plural}"
        return phrase, f"{{{lo},{hi}}}", lo, hi
    if kind == "least":
        lo = rng.randint(2, 5)
        t = rng.choice(("at least {} {}", "{} or more {}", "no fewer than {} {}"))
        return t.format(_num(rng, lo), plural), f"{{{lo},}}", lo, lo + 4
    if kind == "plus":
        return rng.choice(("one or more " + plural, "1 or more " + plural, "at least one " + singular,
                           "a non-empty run of " + plural)), "+", 1, 5
    if kind == "star":
        return rng.choice(("zero or more " + plural, "0 or more " + plural, f"any number of {plural}",
                           "an optional run of " + plural)), "*", 0, 4
    return rng.choice((_a("optional " + singular), "optionally one " + singular, "zero or one " + singular,
                       "at most one " + singular)), "?", 0, 1


def p_class(rng: R, cls: CharClass | None = None) -> Part:
    """A character class with a quantifier: "between 2 and 4 digits" -> ``\\d{2,4}``."""
    cls = cls or rng.choice(CLASSES)
    phrase, q, lo, hi = _count(rng, cls.plural(rng), cls.singular(rng))
    return Part(phrase, cls.regex + q, lambda r: _draw(cls.chars, lo, hi, r))


def p_lit(rng: R, text: str, optional: bool = False) -> Part:
    """A literal, named ("a dash") or quoted ('the text "INV-"'); an optional one gets ``?``."""
    names = _NAMES.get(text)
    if optional:
        phrase = _a("optional " + rng.choice(names)) if names else f'optionally the text "{text}"'
        rx = esc(text) + "?" if len(text) == 1 else f"(?:{esc(text)})?"
        return Part(phrase, rx, lambda r: text if r.random() < 0.5 else "")
    if names and rng.random() < 0.75:
        name = rng.choice(names)
        phrase = rng.choice((_a(name), "one " + name, "a single " + name))
    else:
        phrase = rng.choice(('"{}"', 'the literal "{}"', 'the text "{}"', 'the string "{}"')).format(text)
    return Part(phrase, esc(text), lambda r: text)


def p_alt(rng: R, pool: tuple[str, ...], labels: tuple[str, ...], kmin: int = 2, kmax: int = 4,
          labeled: bool = False) -> Part:
    """An alternation: "a log level (ERROR, WARN or INFO)" -> ``(?:ERROR|WARN|INFO)``."""
    opts = rng.sample(pool, rng.randint(kmin, kmax))
    lst, label = _listing(rng, opts), rng.choice(labels)
    forms = [f"{_a(label)} ({lst})"]
    if not labeled:
        forms += [f"one of {lst}", f"{_a(label)} that is {lst}"] + ([f"either {lst}"] if len(opts) == 2 else [])
    return Part(rng.choice(forms), "(?:" + "|".join(esc(o) for o in opts) + ")", lambda r: r.choice(opts))


def p_sep(rng: R, cls: CharClass | None = None, sep: str | None = None) -> Part:
    """Groups joined by a separator: "3 groups of 4 digits separated by dashes" -> ``\\d{4}(?:-\\d{4}){2}``."""
    cls, k = cls or rng.choice(CLASSES), rng.randint(2, 4)
    sep = sep if sep is not None else rng.choice(tuple(_SEP_NAMES))
    plural, kind = cls.plural(rng), rng.randrange(3)
    if kind == 0:
        lo = hi = rng.randint(2, 5)
        noun, q = f"groups of {_num(rng, lo)} {plural}", f"{{{lo}}}"
    elif kind == 1:
        lo = rng.randint(1, 3)
        hi = lo + rng.randint(1, 3)
        noun, q = f"groups of {_num(rng, lo)} to {_num(rng, hi)} {plural}", f"{{{lo},{hi}}}"
    else:
        lo, hi = 1, 4
        noun, q = rng.choice(("runs of ", "groups of one or more ")) + plural, "+"
    seps, adj = _SEP_NAMES[sep]
    phrase = rng.choice((f"{_num(rng, k)} {noun} separated by {seps}", f"{_num(rng, k)} {adj}-separated {noun}"))
    atom = cls.regex + q
    rx = atom + esc(sep) + atom if k == 2 else f"{atom}(?:{esc(sep)}{atom}){{{k - 1}}}"
    return Part(phrase, rx, lambda r: sep.join(_draw(cls.chars, lo, hi, r) for _ in range(k)))


_WRAPS = (("[", "]", ("in square brackets", "wrapped in square brackets")), ("<", ">", ("in angle brackets",)),
          ("(", ")", ("in parentheses", "in round brackets")), ("'", "'", ("in single quotes",)),
          ('"', '"', ("in double quotes", "inside double quotes")))


def p_wrap(rng: R, inner: Part, label: str = "") -> Part:
    """A part inside brackets or quotes: "3 digits in square brackets" -> ``\\[\\d{3}\\]``."""
    o, c, names = rng.choice(_WRAPS)
    return Part(f"{label}{inner.desc} {rng.choice(names)}", esc(o) + inner.regex + esc(c),
                lambda r: o + inner.sample(r) + c, inner.pos)


def g_punct(rng: R) -> Part:
    text = rng.choice(("-", "_", ".", ":", "/", "#", "@", "=", ",", " ", "+", "~", "*", "|", "->", "::", "--"))
    return p_lit(rng, text, optional=len(text) == 1 and rng.random() < 0.15)


GENERIC: tuple[Callable[[R], Part], ...] = (
    p_class, p_class, p_class, p_class, p_class, g_punct, g_punct, p_sep,
    lambda rng: p_wrap(rng, p_class(rng, rng.choice((DIGIT, LOWER, ALNUM, UPPER)))))

# ---------------------------------------------------------------- topic builders
_PREFIXES = ("INV-", "user_", "ORD-", "SKU-", "id_", "PR-", "TKT-", "acct_", "cust-", "EMP", "REF#", "tmp_", "node-",
             "job_", "BUG-", "ID", "usr.", "tx_", "PKG-", "item-", "dev_", "api-", "key_", "org-", "grp_", "X-",
             "CASE-", "run_", "emp#", "sess_", "v", "build-", "cfg_", "DOC", "LOT-", "pay_")
_SUFFIXES = ("_v", "-dev", ".bak", "-prod", "_tmp", "-rc", "_old", ".json", "-beta", "_x", ".log", "-eu", "_us")
_LEVELS = ("DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL", "TRACE", "CRITICAL", "NOTICE")
_LEVEL_LABELS = ("log level", "level", "severity")
_KEYS = ("pid", "user", "code", "status", "port", "id", "host", "latency_ms", "retries", "env", "uid", "req",
         "session", "thread", "bytes", "job")
_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
_TLDS = ("com", "org", "net", "io", "dev", "local", "edu")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS_FULL = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                "November", "December")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAYS_FULL = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_WORD_POOL = ("cat", "dog", "bird", "yes", "no", "red", "blue", "green", "ok", "fail", "on", "off", "alpha", "beta",
              "north", "south", "hello", "world", "foo", "bar", "left", "right", "true", "false")
_DATES = (("YYYY-MM-DD", r"\d{4}-\d{2}-\d{2}", "{y}-{m}-{d}"), ("DD/MM/YYYY", r"\d{2}/\d{2}/\d{4}", "{d}/{m}/{y}"),
          ("MM/DD/YYYY", r"\d{2}/\d{2}/\d{4}", "{m}/{d}/{y}"), ("DD.MM.YYYY", r"\d{2}\.\d{2}\.\d{4}", "{d}.{m}.{y}"),
          ("YYYYMMDD", r"\d{8}", "{y}{m}{d}"), ("YYYY/MM/DD", r"\d{4}/\d{2}/\d{2}", "{y}/{m}/{d}"),
          ("MM-YYYY", r"\d{2}-\d{4}", "{m}-{y}"))
_TIMES = (("HH:MM", r"\d{2}:\d{2}", "{H}:{M}"), ("HH:MM:SS", r"\d{2}:\d{2}:\d{2}", "{H}:{M}:{S}"),
          ("HH:MM:SS.mmm", r"\d{2}:\d{2}:\d{2}\.\d{3}", "{H}:{M}:{S}.{ms}"), ("H:MM", r"\d{1,2}:\d{2}", "{h}:{M}"))


def _moment(r: R) -> dict[str, str]:
    return {"y": str(r.randint(1970, 2039)), "m": f"{r.randint(1, 12):02d}", "d": f"{r.randint(1, 28):02d}",
            "H": f"{r.randint(0, 23):02d}", "M": f"{r.randint(0, 59):02d}", "S": f"{r.randint(0, 59):02d}",
            "ms": f"{r.randint(0, 999):03d}", "h": str(r.randint(0, 23))}


def p_format(rng: R, forms: tuple[tuple[str, str, str], ...], nouns: tuple[str, ...]) -> Part:
    """A date/time layout: "a date in YYYY-MM-DD format" -> ``\\d{4}-\\d{2}-\\d{2}``."""
    (fmt, rx, template), noun = rng.choice(forms), rng.choice(nouns)
    phrase = rng.choice((f"{_a(noun)} in {fmt} format", f"{_a(noun)} formatted as {fmt}", f"{_a(noun)} ({fmt})"))
    return Part(phrase, rx, lambda r: template.format(**_moment(r)))


def id_affix(rng: R, pos: int) -> Part:
    """A prefix ('the prefix "INV-"') that opens the id, or a suffix ('a trailing "-dev"') that closes it."""
    text = rng.choice(_PREFIXES if pos < 0 else _SUFFIXES)
    forms = ("the prefix {}", "{}", "the literal {}", "a leading {}") if pos < 0 else \
        ("the suffix {}", "a trailing {}", "the ending {}")
    return Part(rng.choice(forms).format(f'"{text}"'), esc(text), lambda r: text, pos)


def log_kv(rng: R) -> Part:
    key, val = rng.choice(_KEYS), p_class(rng, rng.choice((DIGIT, DIGIT, LOWER, ALNUM, HEX)))
    phrase = rng.choice((f'"{key}=" with {val.desc}', f'"{key}=" plus {val.desc}',
                         f'the field "{key}=" with {val.desc}', f'a "{key}=" field of {val.desc}'))
    return Part(phrase, esc(key + "=") + val.regex, lambda r: key + "=" + val.sample(r))


def net_ipv4(rng: R) -> Part:
    phrase = rng.choice(("an IPv4 address", "an IPv4-style address", "a dotted quad of 1-3 digit numbers",
                         "an IP address like 10.0.0.1"))
    return Part(phrase, r"\d{1,3}(?:\.\d{1,3}){3}", lambda r: ".".join(str(r.randint(0, 255)) for _ in range(4)))


def net_port(rng: R) -> Part:
    lo, hi = rng.choice(((1, 5), (2, 5), (4, 4), (2, 4), (3, 5)))
    q, n = (f"{{{lo}}}", f"{_num(rng, lo)} digits") if lo == hi else \
        (f"{{{lo},{hi}}}", f"{_num(rng, lo)} to {_num(rng, hi)} digits")
    phrase = rng.choice((f"a colon and a port number of {n}", f"a colon plus a port ({n})", f":port with {n}"))
    return Part(phrase, r":\d" + q, lambda r: ":" + _draw(string.digits, lo, hi, r))


def net_path(rng: R) -> Part:
    cls, kind, k = rng.choice((LOWER, ALNUM, LOWER)), rng.randrange(4), rng.randint(2, 4)
    seg = f"of {cls.plural(rng)}"  # a path segment is "/" plus one or more characters of the class
    if kind == 0:
        return Part(f"a path segment {seg}", f"/{cls.regex}+", lambda r: "/" + _draw(cls.chars, 1, 6, r))
    count, q, lo, hi = ((f"{_num(rng, k)} path segments", f"{{{k}}}", k, k), ("one or more path segments", "+", 1, 3),
                        (f"one to {_num(rng, k)} path segments", f"{{1,{k}}}", 1, k))[kind - 1]
    return Part(f"{count} {seg}", f"(?:/{cls.regex}+){q}",
                lambda r: "".join("/" + _draw(cls.chars, 1, 6, r) for _ in range(r.randint(lo, hi))))


def net_host(rng: R) -> Part:
    cls, tlds = rng.choice((LOWER, ALNUM)), rng.sample(_TLDS, rng.randint(1, 3))
    end = "." + tlds[0] if len(tlds) == 1 else "one of " + _listing(rng, ["." + t for t in tlds])
    rx_end = esc("." + tlds[0]) if len(tlds) == 1 else r"\.(?:" + "|".join(tlds) + ")"
    phrase = rng.choice((f"a hostname of {cls.plural(rng)} ending in {end}", f"a host of {cls.plural(rng)} plus {end}"))
    return Part(phrase, cls.regex + "+" + rx_end, lambda r: _draw(cls.chars, 1, 8, r) + "." + r.choice(tlds))


def net_scheme(rng: R) -> Part:
    opts = rng.choice((["http", "https"], ["https", "http"], ["ftp", "http", "https"], ["ws", "wss"]))
    lst = _listing(rng, opts)
    phrase = rng.choice((f"the scheme {lst} with ://", f"a scheme ({lst}) plus ://"))
    return Part(phrase, "(?:" + "|".join(opts) + ")://", lambda r: r.choice(opts) + "://", pos=-1)


def net_mac(rng: R) -> Part:
    sep = rng.choice(":-")
    phrase = rng.choice((f"a MAC address (6 {_SEP_NAMES[sep][1]}-separated lowercase hex pairs)",
                         f"six lowercase hex pairs separated by {_SEP_NAMES[sep][0]}"))
    return Part(phrase, f"[0-9a-f]{{2}}(?:{sep}[0-9a-f]{{2}}){{5}}",
                lambda r: sep.join(_draw(HEX.chars, 2, 2, r) for _ in range(6)))


def date_year(rng: R) -> Part:
    n = rng.choice((2, 4))
    return Part(rng.choice((f"a {_WORDS[n]}-digit year", f"a year of {_num(rng, n)} digits")), f"\\d{{{n}}}",
                lambda r: str(r.randint(1970, 2039))[-n:])


def txt_word(rng: R) -> Part:
    phrase, rx, head, rest = rng.choice((("a lowercase word", "[a-z]+", "", LOWER.chars),
                                         ("a capitalized word", "[A-Z][a-z]+", UPPER.chars, LOWER.chars),
                                         ("an all-caps word", "[A-Z]+", "", UPPER.chars),
                                         ("a word of letters", "[a-zA-Z]+", "", ALPHA.chars)))
    return Part(phrase, rx, lambda r: (r.choice(head) if head else "") + _draw(rest, 1, 7, r))


TOPIC_BUILDERS: dict[str, tuple[Callable[[R], Part], ...]] = {
    "identifiers": (lambda rng: id_affix(rng, -1), lambda rng: id_affix(rng, -1), lambda rng: id_affix(rng, 1),
                    lambda rng: p_sep(rng, rng.choice((HEX, UPPER, DIGIT, ALNUM)), rng.choice("-_.")),
                    lambda rng: p_lit(rng, rng.choice("-_.:#/"), optional=rng.random() < 0.2),
                    lambda rng: p_class(rng, rng.choice((DIGIT, HEX, UPPER, ALNUM)))),
    "log_fields": (lambda rng: p_alt(rng, _LEVELS, _LEVEL_LABELS), lambda rng: p_alt(rng, _LEVELS, _LEVEL_LABELS),
                   lambda rng: p_wrap(rng, p_alt(rng, _LEVELS, _LEVEL_LABELS, labeled=True)), log_kv, log_kv,
                   lambda rng: p_wrap(rng, p_class(rng, DIGIT), rng.choice(("a pid of ", "a process id of "))),
                   lambda rng: p_format(rng, _TIMES, ("time", "timestamp", "clock time")),
                   lambda rng: p_lit(rng, rng.choice((" ", ": ", " - ", " | ", "=")))),
    "network": (net_ipv4, net_ipv4, net_port, net_path, net_host, net_scheme, net_mac,
                lambda rng: p_alt(rng, _METHODS, ("request method", "method", "verb"))),
    "dates": (lambda rng: p_format(rng, _DATES, ("date", "calendar date")),
              lambda rng: p_format(rng, _DATES, ("date", "calendar date")),
              lambda rng: p_format(rng, _TIMES, ("time", "clock time")),
              lambda rng: p_alt(rng, rng.choice((_MONTHS, _MONTHS_FULL)), ("month", "month name")),
              lambda rng: p_alt(rng, rng.choice((_DAYS, _DAYS_FULL)), ("weekday", "day name")),
              lambda rng: p_alt(rng, ("AM", "PM"), ("meridiem marker",), 2, 2),
              lambda rng: p_alt(rng, ("UTC", "GMT", "Z", "CET", "EST"), ("time zone", "zone"), 2, 3),
              date_year, lambda rng: p_lit(rng, rng.choice("T -/,"))),
    "text": (txt_word, txt_word, lambda rng: p_sep(rng, rng.choice((LOWER, ALPHA)), rng.choice(" ,")),
             lambda rng: p_alt(rng, _WORD_POOL, ("word",)),
             lambda rng: p_lit(rng, rng.choice((".", "!", "?", ",", ";", "...", "?!")), optional=rng.random() < 0.3),
             lambda rng: p_wrap(rng, p_class(rng, rng.choice((LOWER, ALPHA)))),
             lambda rng: p_class(rng, rng.choice((LOWER, UPPER, ALPHA)))),
}

# ---------------------------------------------------------------- the fragment concept
_N_PARTS = {1: (1, 2, 2, 2), 2: (3,), 3: (4, 4, 5)}
_CONNECT = (" followed by ", ", then ", " then ", " and then ", ", after which ", ", followed by ", "; then ")
_FINAL = (" and finally ", ", and finally ", ", ending with ", " and lastly ")
_BODY_OPENERS = ("", "", "", "a string of ", "strings consisting of ", "text made of ", "values made of ")
_TOPIC_OPENERS = {"identifiers": ("an id made of ", "an identifier consisting of ", "a code made of "),
                  "log_fields": ("a log line with ", "log entries made of ", "a log field of "),
                  "network": ("a network string with ", "an address made of ", "a URL piece of "),
                  "dates": ("a timestamp made of ", "a date string with ", "a date field of "),
                  "text": ("a phrase made of ", "text consisting of ", "a sentence of ")}


def _build_parts(rng: R, topic: str, difficulty: int) -> list[Part]:
    n, topical = rng.choice(_N_PARTS[difficulty]), TOPIC_BUILDERS[topic]
    parts = [rng.choice(topical)(rng)]  # at least one topic-specific component
    for _ in range(4 * n):  # bounded; a draw whose prefix/suffix slot is taken is skipped
        if len(parts) >= n:
            break
        part = rng.choice(topical if rng.random() < 0.55 else GENERIC)(rng)
        if part.pos == 0 or all(p.pos != part.pos for p in parts):
            parts.append(part)
    rng.shuffle(parts)
    return sorted(parts, key=lambda p: p.pos)  # stable: prefixes first, suffixes last


def fragment(rng: R, topic: str, difficulty: int) -> Concept:
    """A request composed from fragments, as one ``Concept`` whose noun phrase is the whole composition."""
    parts = _build_parts(rng, topic, difficulty)
    body = parts[0].desc
    for i, part in enumerate(parts[1:], 1):
        final = i == len(parts) - 1 and len(parts) >= 3 and rng.random() < 0.35
        body += rng.choice(_FINAL if final else _CONNECT) + part.desc
    body = rng.choice(_BODY_OPENERS + _TOPIC_OPENERS[topic]) + body
    return Concept("fragments", (body,), "".join(p.regex for p in parts),
                   lambda r: "".join(p.sample(r) for p in parts), article=False)
