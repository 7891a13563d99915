"""Named concepts people ask regexes for, with their variants: the core of the offline grammar teacher.

A builder ``(rng, level) -> Concept`` draws one variant of a named concept (a US ZIP code with an optional +4,
a lowercase MAC address with dashes, a snake_case name starting with ``test_``...): the noun phrases people use
for it, the details a request must state so that the reference regex is determined, the regex in house style
(``\\d``, ``\\w``, ``[a-z]``, ``(?:...)``, no anchors, no lookaround, no backreferences: it passes every shipped
domain's validator in both dialects) and a sampler of strings it full-matches. ``level`` (1-3) raises the odds
of optional details and constraints. Literal text inside descriptions is wrapped in ``L`` markers so the
phrasing noise (lower-casing, typos) never changes what must be matched; the markers are removed at the end.

This module holds the shared helpers and the identifier families; ``concepts_logs``, ``concepts_net``,
``concepts_dates`` and ``concepts_text`` the others; ``concepts_text.FAMILIES`` maps topic -> family -> builder.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass

R = random.Random
Sampler = Callable[[random.Random], str]
M0, M1 = "\x02", "\x03"  # protected-span markers (literal text noise must not touch)
_SPECIAL = frozenset(".+*?()[]{}|\\^$")
DIG, LOW, UP = string.digits, string.ascii_lowercase, string.ascii_uppercase
ALNUM, WORDCH, HEXL, HEXU = LOW + UP + DIG, LOW + UP + DIG + "_", "0123456789abcdef", "0123456789ABCDEF"


@dataclass(frozen=True)
class Concept:
    """One variant of a named concept: how people name it, what they must add, its regex and a sampler."""
    family: str
    nouns: tuple[str, ...]  # noun phrases without article ("US ZIP code")
    regex: str
    sample: Sampler
    details: tuple[tuple[str, ...], ...] = ()  # each: alternative phrasings of one detail the request must carry
    near: tuple[Sampler, ...] = ()  # near-miss generators (checked not to match before use)
    article: bool = True  # False: the nouns already read as a full noun phrase


def esc(text: str) -> str:
    """Minimal escaping: only regex metacharacters (never ``-``, ``_``, ``:``, ``/``, ``@``, ``#``)."""
    return "".join("\\" + c if c in _SPECIAL else c for c in text)


def L(text: str) -> str:
    """Literal text in a description: protected from case and typo noise."""
    return M0 + text + M1


def Q(rng: R, text: str) -> str:
    """A literal shown quoted, back-ticked or bare."""
    return rng.choice(('"{}"', "`{}`", "{}", "'{}'")).format(L(text))


def QQ(rng: R, text: str) -> str:
    """A literal always shown quoted (labels with edge spaces must be visible)."""
    return rng.choice(('"{}"', "`{}`", "'{}'")).format(L(text))


def alt(opts) -> str:
    return "(?:" + "|".join(esc(o) for o in opts) + ")"


def listing(rng: R, opts, quote: bool = False) -> str:
    opts = [Q(rng, o) if quote else L(o) for o in opts]
    if len(opts) == 1:
        return opts[0]
    if len(opts) == 2:
        return rng.choice((" or ", "/", " or ")).join(opts)
    if rng.random() < 0.25:
        return rng.choice(("/", ", ", " | ")).join(opts)
    return ", ".join(opts[:-1]) + rng.choice((" or ", ", or ")) + opts[-1]


def draw(chars: str, lo: int, hi: int, r: R) -> str:
    return "".join(r.choices(chars, k=r.randint(lo, hi)))


def count_phrase(rng: R, lo: int, hi: int | None, noun: str) -> tuple[str, str]:
    """("between 3 and 16 characters", "{3,16}"); hi None = at least lo; lo == hi exact."""
    if hi is None:
        return rng.choice((f"at least {lo} {noun}", f"{lo} or more {noun}", f"{lo}+ {noun}")), f"{{{lo},}}"
    if lo == hi:
        return rng.choice((f"exactly {lo} {noun}", f"{lo} {noun}")), f"{{{lo}}}"
    return rng.choice((f"{lo} to {hi} {noun}", f"between {lo} and {hi} {noun}", f"{lo}-{hi} {noun}")), \
        f"{{{lo},{hi}}}"


def maybe(rng: R, level: int, p1: float = 0.25) -> bool:
    """True with a chance that grows with the level (1: p1, 2: ~1.6 p1, 3: ~2.2 p1)."""
    return rng.random() < min(0.9, p1 * (1 + 0.6 * (level - 1)))


# ================================================================ identifiers
_CASES = {  # style: (nouns, separator; "" = humps)
    "snake": (("snake_case identifier", "snake_case name", "snake case variable name", "snake_case string"), "_"),
    "kebab": (("kebab-case slug", "kebab-case name", "kebab case identifier", "dash-separated lowercase slug"), "-"),
    "screaming": (("SCREAMING_SNAKE_CASE constant", "constant name in upper snake case",
                   "all-caps constant like MAX_SIZE"), "_"),
    "dot": (("dot.case key", "dotted lowercase key like app.db.host", "dot-separated config key"), "."),
    "camel": (("camelCase identifier", "camelCase variable name", "camel case name"), ""),
    "pascal": (("PascalCase name", "PascalCase class name", "UpperCamelCase identifier"), ""),
}
_PREFIXES = {"snake": ("test_", "get_", "is_", "on_", "_"), "kebab": ("feature-", "fix-", "release-", "hotfix-"),
             "screaming": ("APP_", "ENV_", "MAX_", "DB_"), "dot": ("app.", "spring.", "log."),
             "camel": ("get", "set", "is", "on", "handle", "use"), "pascal": ("I", "Abstract", "Base", "Test")}
_SUFFIXES = {"pascal": ("Exception", "Error", "Test", "Controller", "Service", "Handler", "Factory"),
             "snake": ("_id", "_at", "_test", "_count"), "camel": ("Id", "Count", "Handler")}


def c_case(rng: R, level: int) -> Concept:
    style = rng.choice(tuple(_CASES))
    nouns, sep = _CASES[style]
    digits = maybe(rng, level, 0.25)
    lo, up = ("[a-z0-9]", LOW + DIG) if digits else ("[a-z]", LOW)
    if style == "screaming":
        lo, up = ("[A-Z0-9]", UP + DIG) if digits else ("[A-Z]", UP)
    first_cls = "[A-Z]" if style == "screaming" else "[a-z]"
    many = "+" if maybe(rng, level, 0.2) else "*"
    hump = "[A-Z][a-z0-9]+" if digits else "[A-Z][a-z]+"
    details: list[tuple[str, ...]] = []
    if sep:
        rx = (f"{first_cls}{lo}*" if digits else f"{lo}+") + f"(?:{esc(sep)}{lo}+){many}"

        def word(r: R, first: bool) -> str:
            return draw(LOW if style != "screaming" else UP, 1, 6, r) if first else draw(up, 1, 6, r)
    else:
        if style == "camel":
            rx = (f"[a-z]{lo}*" if digits else "[a-z]+") + f"(?:{hump}){many}"
        else:
            rx = f"{hump}(?:{hump}){many}" if many == "+" else f"(?:{hump})+"

        def word(r: R, first: bool) -> str:
            w = draw(LOW, 1, 5, r) + (draw(DIG, 0, 1, r) if digits else "")
            return w if first and style == "camel" else w[0].upper() + w[1:]
    if digits:
        details.append(("digits allowed", "that may contain digits", "with digits allowed (not first)",
                        "letters and digits"))
    elif level > 1 and rng.random() < 0.3:
        details.append(("letters only", "with no digits", "letters only, no digits"))
    if many == "+":
        details.append(("at least two words", "with at least two words", "made of two or more words"))
    prefix = suffix = ""
    if maybe(rng, level, 0.3):
        if style in _SUFFIXES and rng.random() < 0.5:
            suffix = rng.choice(_SUFFIXES[style])
            details.append((f"ending in {Q(rng, suffix)}", f"that ends with {Q(rng, suffix)}",
                            f"with the suffix {Q(rng, suffix)}"))
        else:
            prefix = rng.choice(_PREFIXES[style])
            details.append((f"starting with {Q(rng, prefix)}", f"that begins with {Q(rng, prefix)}",
                            f"prefixed with {Q(rng, prefix)}"))
    if prefix or suffix:  # the affix takes the first (or last) word's place: the rest is its own body
        body = f"{lo}+(?:{esc(sep)}{lo}+)*" if sep else f"(?:{hump})+"
        rx = esc(prefix) + body + esc(suffix)

        def sample(r: R) -> str:
            k = r.randint(1, 3)
            if sep:
                return prefix + sep.join(draw(up, 1, 6, r) for _ in range(k)) + suffix
            return prefix + "".join(word(r, False) for _ in range(k)) + suffix
    else:
        def sample(r: R) -> str:
            return sep.join(word(r, i == 0) for i in range(r.randint(2 if many == "+" else 1, 4)))
    return Concept("case_style", nouns, rx, sample, tuple(details))


_TICKETS = (("INV", "invoice number"), ("ORD", "order number"), ("PO", "purchase order number"),
            ("SKU", "SKU"), ("TKT", "ticket id"), ("BUG", "bug id"), ("CASE", "case number"), ("REQ", "request id"),
            ("CHG", "change ticket number"), ("INC", "incident number"), ("EMP", "employee id"),
            ("CUST", "customer id"), ("ACC", "account number"), ("RMA", "return authorization number"),
            ("TX", "transaction id"), ("PRJ", "project code"), ("DOC", "document id"), ("LOT", "lot number"),
            ("PKG", "package id"), ("USR", "user id"), ("SR", "service request number"), ("QA", "test case id"),
            ("CVE", "CVE-like id"), ("PR", "pull request reference"), ("EXP", "experiment id"),
            ("ASSET", "asset tag"), ("SHP", "shipment id"), ("BK", "booking reference"), ("MR", "merge request id"))
_LOWER_IDS = (("user_", "user id"), ("acct_", "account id"), ("cus_", "Stripe-style customer id"),
              ("ord_", "order id"), ("evt_", "event id"), ("job-", "job id"), ("node-", "node name"),
              ("pod-", "pod name"), ("sess_", "session id"), ("img-", "image id"), ("vm-", "VM name"))


def _digits_rule(rng: R) -> tuple[str, str, Sampler]:
    """(phrase, regex, sampler) for the numeric tail of an id."""
    kind = rng.choice(("exact", "exact", "range", "plus", "least", "nolead"))
    if kind == "exact":
        n = rng.randint(3, 8)
        ph, q = count_phrase(rng, n, n, "digits")
        return ph, r"\d" + q, lambda r: draw(DIG, n, n, r)
    if kind == "range":
        lo = rng.randint(1, 5)
        hi = lo + rng.randint(1, 4)
        ph, q = count_phrase(rng, lo, hi, "digits")
        return ph, r"\d" + q, lambda r: draw(DIG, lo, hi, r)
    if kind == "least":
        lo = rng.randint(2, 6)
        ph, q = count_phrase(rng, lo, None, "digits")
        return ph, r"\d" + q, lambda r: draw(DIG, lo, lo + 3, r)
    if kind == "nolead":
        return (rng.choice(("a number without leading zeros", "a positive number (no leading zero)")),
                r"[1-9]\d*", lambda r: str(r.randint(1, 99999)))
    return rng.choice(("digits", "a number", "one or more digits")), r"\d+", lambda r: draw(DIG, 1, 6, r)


_JIRA_KEYS = ((r"[A-Z]+", "uppercase letters", lambda r: draw(UP, 2, 5, r)),
              (r"[A-Z]{2,10}", "2 to 10 capital letters", lambda r: draw(UP, 2, 10, r)),
              (r"[A-Z][A-Z0-9]+", "a capital letter then capitals or digits",
               lambda r: draw(UP, 1, 1, r) + draw(UP + DIG, 1, 4, r)))
_ID_TAILS = (("[a-zA-Z0-9]", "alphanumeric characters", ALNUM), ("[a-z0-9]", "lowercase letters or digits", LOW + DIG),
             ("[0-9a-f]", "lowercase hex digits", HEXL))


def c_ticket(rng: R, level: int) -> Concept:
    kind = rng.random()
    if kind < 0.18:  # a Jira-style key: project letters, dash, number
        key_rx, key_ph, key_s = rng.choice(_JIRA_KEYS)
        nouns = ("Jira issue key", "Jira ticket id", "issue key like PROJ-123", "ticket key (PROJECT-123)")
        details = () if rng.random() < 0.5 else ((f"project key of {key_ph}, a dash, then a number",
                                                  f"{key_ph}, a hyphen and digits"),)
        return Concept("ticket_id", nouns, key_rx + r"-\d+", lambda r: key_s(r) + "-" + draw(DIG, 1, 5, r), details)
    if kind < 0.28:
        return Concept("ticket_id", ("GitHub issue reference like #123", "issue number with a leading #",
                                     "hash-prefixed ticket number"), r"#\d+", lambda r: "#" + draw(DIG, 1, 5, r))
    prefix, noun = rng.choice(_LOWER_IDS if kind > 0.85 else _TICKETS)
    sep = "" if prefix[-1] in "_-" else rng.choice(("-", "-", "_", "#", "", "/"))
    head = prefix + sep
    optional = maybe(rng, level, 0.12)
    if kind > 0.85 and rng.random() < 0.6:
        cls, ph, chars = rng.choice(_ID_TAILS)
        lo = rng.choice((6, 8, 10, 12, 14, 16, 24))
        hi = lo if rng.random() < 0.6 else lo + rng.choice((4, 8))
        tail_ph, q = count_phrase(rng, lo, hi, ph)
        tail_rx, tail_s = cls + q, (lambda r: draw(chars, lo, hi, r))
    else:
        tail_ph, tail_rx, tail_s = _digits_rule(rng)
    if optional:
        pre = rng.choice((f"with an optional {Q(rng, head)} prefix", f"optionally prefixed with {Q(rng, head)}"))
    else:
        pre = rng.choice((f"starting with {Q(rng, head)}", f"with the prefix {Q(rng, head)}",
                          f"that begins with {Q(rng, head)}", f"{Q(rng, head)} then"))
    details = ((f"{pre} {tail_ph}",) if pre.endswith("then") else (f"{pre}, followed by {tail_ph}",
                                                                    f"{pre} and {tail_ph}"),)
    rx = (f"(?:{esc(head)})?" if optional else esc(head)) + tail_rx
    return Concept("ticket_id", (noun, noun.replace(" id", " ID"), "reference code", "identifier"), rx,
                   lambda r: ("" if optional and r.random() < 0.4 else head) + tail_s(r), details)


def _hex_case(rng: R, level: int, default_any: bool = True) -> tuple[str, str, tuple]:
    case = rng.choice(("any", "lower", "upper")) if maybe(rng, level, 0.5) else ("any" if default_any else "lower")
    if case == "lower":
        return "[0-9a-f]", HEXL, (("lowercase", "in lowercase", "lowercase hex only"),)
    if case == "upper":
        return "[0-9A-F]", HEXU, (("uppercase", "in uppercase", "uppercase hex only"),)
    said = not default_any or rng.random() < 0.3
    return "[0-9a-fA-F]", HEXL + "ABCDEF", (("either case", "case-insensitive", "upper or lower case"),) if said else ()


def c_uuid(rng: R, level: int) -> Concept:
    h, chars, case_d = _hex_case(rng, level)
    form = rng.choice(("dashed", "dashed", "dashed", "plain", "optional", "braces", "v4", "urn"))
    groups = (8, 4, 4, 4, 12)
    nouns = ("UUID", "GUID", "UUID string", "universally unique identifier")
    details = list(case_d)
    if form == "plain":
        rx, sample = f"{h}{{32}}", (lambda r: draw(chars, 32, 32, r))
        details.append(("without dashes", "as 32 hex characters with no dashes", "no hyphens"))
    elif form == "optional":
        rx = f"{h}{{8}}-?{h}{{4}}-?{h}{{4}}-?{h}{{4}}-?{h}{{12}}"

        def sample(r: R) -> str:
            return ("-" if r.random() < 0.5 else "").join(draw(chars, n, n, r) for n in groups)
        details.append(("dashes optional", "with or without the dashes", "where the hyphens are optional"))
    elif form == "v4":
        v = "[89ab]" if h == "[0-9a-f]" else "[89AB]" if h == "[0-9A-F]" else "[89abAB]"
        ver = rng.choice("4444135")
        rx = f"{h}{{8}}-{h}{{4}}-{ver}{h}{{3}}-{v}{h}{{3}}-{h}{{12}}"

        def sample(r: R) -> str:
            return "-".join((draw(chars, 8, 8, r), draw(chars, 4, 4, r), ver + draw(chars, 3, 3, r),
                             r.choice("89ab" if v != "[89AB]" else "89AB") + draw(chars, 3, 3, r),
                             draw(chars, 12, 12, r)))
        nouns = (f"version {ver} UUID", f"UUIDv{ver}", f"v{ver} UUID (RFC 4122 variant)")
    else:
        rx = f"{h}{{8}}-{h}{{4}}-{h}{{4}}-{h}{{4}}-{h}{{12}}"

        def sample(r: R) -> str:
            return "-".join(draw(chars, n, n, r) for n in groups)
        if rng.random() < 0.3:
            details.append(("8-4-4-4-12 hex groups", "in the 8-4-4-4-12 layout", "with dashes"))
        if form == "urn":
            rx, inner = "urn:uuid:" + rx, sample
            sample = lambda r: "urn:uuid:" + inner(r)  # noqa: E731
            nouns = ("UUID URN like urn:uuid:...", "urn:uuid: identifier")
        if form == "braces":
            rx, inner = r"\{" + rx + r"\}", sample
            sample = lambda r: "{" + inner(r) + "}"  # noqa: E731
            nouns = ("GUID in curly braces", "braced GUID like {...}", "registry-style GUID with braces")
    return Concept("uuid", nouns, rx, sample, tuple(details))


_HASHES = (("MD5 hash", 32), ("SHA-1 hash", 40), ("SHA-256 hash", 64), ("full git commit SHA", 40),
           ("short git commit hash", 7))


def c_hash(rng: R, level: int) -> Concept:
    h, chars, case_d = _hex_case(rng, level, default_any=rng.random() < 0.5)
    kind = rng.random()
    if kind < 0.45:
        noun, n = rng.choice(_HASHES)
        return Concept("hex_hash", (noun, noun.replace(" hash", " digest")), f"{h}{{{n}}}",
                       lambda r: draw(chars, n, n, r), case_d)
    if kind < 0.6:
        return Concept("hex_hash", ("git commit hash", "git SHA, short or full"), f"{h}{{7,40}}",
                       lambda r: draw(chars, 7, 40, r),
                       (("7 to 40 hex characters", "between 7 and 40 hex chars"),) + case_d)
    lo = rng.choice((4, 6, 8, 10, 12, 16, 20, 24, 32))
    hi = lo if rng.random() < 0.6 else lo + rng.choice((2, 4, 8, 16))
    ph, q = count_phrase(rng, lo, hi, rng.choice(("hex characters", "hex digits", "hexadecimal characters")))
    return Concept("hex_hash", ("hex string", "hex token", "hexadecimal id", "hex key"), h + q,
                   lambda r: draw(chars, lo, hi, r), ((f"of {ph}", f"with {ph}", ph),) + case_d)


_USER_SETS = (("lowercase letters, digits and underscores", "[a-z0-9_]", LOW + DIG + "_", "[a-z]", LOW),
              ("letters, digits and underscores", r"\w", WORDCH, "[a-zA-Z]", LOW + UP),
              ("letters and digits", "[a-zA-Z0-9]", ALNUM, "[a-zA-Z]", LOW + UP),
              ("letters, digits, dots, underscores or hyphens", r"[\w.-]", WORDCH + ".-", "[a-zA-Z]", LOW + UP),
              ("lowercase letters and digits", "[a-z0-9]", LOW + DIG, "[a-z]", LOW),
              ("lowercase letters, digits and hyphens", "[a-z0-9-]", LOW + DIG + "-", "[a-z]", LOW))


def c_username(rng: R, level: int) -> Concept:
    ph_set, cls, chars, first_cls, first_chars = rng.choice(_USER_SETS)
    lo, hi = rng.randint(2, 6), rng.choice((8, 10, 12, 15, 16, 20, 24, 30, 32))
    len_ph = rng.choice((f"{lo} to {hi} characters", f"between {lo} and {hi} chars long", f"{lo}-{hi} chars",
                         f"{lo}-{hi} characters long"))
    details = [(len_ph,), (f"only {ph_set}", f"made of {ph_set}", ph_set, f"{ph_set} only")]
    if maybe(rng, level, 0.35):
        rx = f"{first_cls}{cls}{{{lo - 1},{hi - 1}}}"
        details.append(("must start with a letter", "starting with a letter", "that begins with a letter"))

        def sample(r: R) -> str:
            return r.choice(first_chars) + draw(chars, lo - 1, hi - 1, r)
    else:
        rx = f"{cls}{{{lo},{hi}}}"

        def sample(r: R) -> str:
            return draw(chars, lo, hi, r)
    rng.shuffle(details)
    return Concept("username", ("username", "user name", "login name", "handle", "screen name", "account name"),
                   rx, sample, tuple(details))


def c_semver(rng: R, level: int) -> Concept:
    strict = maybe(rng, level, 0.15)
    part = r"(?:0|[1-9]\d*)" if strict else r"\d+"

    def p(r: R) -> str:
        return str(r.choice((0, r.randint(0, 9), r.randint(10, 99), r.randint(100, 2024))))
    two = rng.random() < 0.15
    major = str(rng.randint(0, 12)) if not two and rng.random() < 0.3 else ""  # "the 2.x line"
    core = (major or part) + r"\." + part + (rf"(?:\.{part})?" if two else rf"\.{part}")
    v = rng.choice(("none", "none", "none", "optional", "required"))
    pre = rng.choice(("none", "none", "optional")) if level > 1 or rng.random() < 0.4 else "none"
    details: list[tuple[str, ...]] = []
    nouns = ("semantic version", "semver string", "version number like 1.2.3", "version string (major.minor.patch)",
             "semver")
    if two:
        nouns = ("version number", "version string", "version like 1.2 or 1.2.3")
        details.append(("major.minor with optional .patch", "with two or three numeric parts",
                        "the patch number being optional"))
    if major:
        details.append((f"with major version {L(major)} only", f"in the {L(major + '.x')} line",
                        f"for {L(major + '.x.y')} releases"))
    if v == "optional":
        details.append((f"optional leading {L('v')}", f"with an optional {Q(rng, 'v')} prefix",
                        f"which may start with {Q(rng, 'v')}"))
    elif v == "required":
        nouns = ("release tag like v1.2.3", "git version tag", "version tag starting with v")
        if rng.random() < 0.5:
            details.append((f"prefixed with {Q(rng, 'v')}",))
    if strict:
        details.append(("no leading zeros", "without leading zeros in any part", "numbers with no leading zero"))
    if pre == "optional":
        details.append(("optional pre-release like -beta.1", "with an optional pre-release suffix such as -rc1",
                        "optionally followed by a dash and a pre-release tag (letters, digits, dots)"))
    rx = {"none": "", "optional": "v?", "required": "v"}[v] + core + (r"(?:-[0-9A-Za-z.]+)?" if pre != "none" else "")

    def sample(r: R) -> str:
        s = (major or p(r)) + "." + p(r) + ("" if two and r.random() < 0.4 else "." + p(r))
        if v == "required" or (v == "optional" and r.random() < 0.5):
            s = "v" + s
        if pre != "none" and r.random() < 0.5:
            s += "-" + r.choice(("alpha", "beta", "rc", "rc1", "beta.2", "alpha.1", "dev", "pre.3"))
        return s
    return Concept("semver", nouns, rx, sample, tuple(details),
                   near=(lambda r: sample(r) + ".", lambda r: "v" + p(r) + ".." + p(r)))


_KEY_PREFIXES = ("sk_live_", "sk_test_", "pk_live_", "ghp_", "xoxb-", "AKIA", "key-", "tok_", "api_", "glpat-")
_KEY_SETS = (("[a-zA-Z0-9]", "alphanumeric characters", ALNUM), ("[A-Z0-9]", "uppercase letters or digits", UP + DIG),
             (r"\w", "word characters", WORDCH), ("[0-9a-f]", "lowercase hex chars", HEXL))
_PASSWORD_SETS = ((r"\S", "non-space characters", string.ascii_letters + DIG + "!@#$%^&*-_+="),
                  ("[a-zA-Z0-9]", "letters and digits", ALNUM),
                  (r"[\w!@#$%^&*]", "letters, digits, underscores or !@#$%^&*", WORDCH + "!@#$%^&*"))


def c_secret(rng: R, level: int) -> Concept:
    kind = rng.random()
    if kind < 0.55:
        prefix = rng.choice(_KEY_PREFIXES)
        cls, ph, chars = rng.choice(_KEY_SETS)
        n = rng.choice((16, 20, 24, 32, 36, 40, 48))
        hi = n if rng.random() < 0.6 else n + rng.choice((8, 16))
        cph, q = count_phrase(rng, n, hi, ph)
        return Concept("secret", ("API key", "access token", "secret key", "token"), esc(prefix) + cls + q,
                       lambda r: prefix + draw(chars, n, hi, r),
                       ((f"starting with {Q(rng, prefix)} followed by {cph}", f"{Q(rng, prefix)} plus {cph}"),))
    if kind < 0.8:
        lo, hi = rng.choice((6, 8, 8, 10, 12)), rng.choice((None, 32, 64, 128))
        cls, ph, chars = rng.choice(_PASSWORD_SETS)
        cph, q = count_phrase(rng, lo, hi, ph)
        return Concept("secret", ("password", "password field", "passphrase"), cls + q,
                       lambda r: draw(chars, lo, hi if hi else lo + 6, r), ((cph, f"of {cph}", f"with {cph}"),))
    if rng.random() < 0.4:
        return Concept("secret", ("PIN", "PIN code"), r"\d{4}(?:\d{2})?",
                       lambda r: draw(DIG, 4, 4, r) + (draw(DIG, 2, 2, r) if r.random() < 0.5 else ""),
                       (("of 4 or 6 digits", "4 or 6 digits"),))
    n = rng.choice((4, 6))
    return Concept("secret", (f"{n}-digit PIN", f"{n}-digit one-time code", f"{n} digit verification code"),
                   rf"\d{{{n}}}", lambda r: draw(DIG, n, n, r))


IDENTIFIERS = {"case_style": c_case, "ticket_id": c_ticket, "uuid": c_uuid, "hex_hash": c_hash,
               "username": c_username, "semver": c_semver, "secret": c_secret}
