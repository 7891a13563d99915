"""Text concepts: numbers, money, phone numbers, postal codes, colours, digit groups, tags, words, choices, files.

Also ``FAMILIES``: topic -> family -> builder, over every concept module.
"""

from __future__ import annotations

from tasks.kinds.regex.concepts import (
    ALNUM,
    DIG,
    HEXL,
    HEXU,
    IDENTIFIERS,
    LOW,
    QQ,
    UP,
    WORDCH,
    Concept,
    L,
    Q,
    R,
    alt,
    count_phrase,
    draw,
    esc,
    listing,
    maybe,
)
from tasks.kinds.regex.concepts_dates import DATES
from tasks.kinds.regex.concepts_logs import LOG_FIELDS
from tasks.kinds.regex.concepts_net import NETWORK

_RANGES = ((1, 12, r"(?:1[0-2]|[1-9])"), (1, 31, r"(?:3[01]|[12]\d|[1-9])"), (0, 59, r"[1-5]?\d"),
           (0, 23, r"(?:2[0-3]|1?\d)"), (0, 100, r"(?:100|[1-9]?\d)"), (0, 255, r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"),
           (1, 100, r"(?:100|[1-9]\d?)"), (0, 99, r"[1-9]?\d"), (1, 9, r"[1-9]"), (1, 999, r"[1-9]\d{0,2}"))
_DECIMALS = {"req": ("with a decimal point and digits on both sides", "like 3.14"),
             "opt": ("with an optional decimal part", "integer or decimal"),
             "exact": ("with exactly {k} decimal places", "{k} digits after the dot"),
             "upto": ("with up to {k} decimal places", "at most {k} decimals, optional")}
_PERCENTS = ((r"\d{1,3}%", "1-3 digits then %"), (r"\d+(?:\.\d+)?%", "a number, optional decimals, then %"),
             (r"(?:100|[1-9]?\d)%", "0 to 100 followed by %"), (r"-?\d+(?:\.\d+)?%", "signed, decimals ok"))
_LITERALS = (("0x", "[0-9a-fA-F]", HEXL + "ABCDEF"), ("0x", "[0-9a-f]", HEXL), ("0b", "[01]", "01"),
             ("0o", "[0-7]", "01234567"))


def _decimal(rng: R, level: int) -> Concept:
    form, k, sign = rng.choice(("req", "opt", "exact", "upto")), rng.randint(1, 4), maybe(rng, level, 0.3)
    rx = {"req": r"\d+\.\d+", "opt": r"\d+(?:\.\d+)?", "exact": rf"\d+\.\d{{{k}}}",
          "upto": rf"\d+(?:\.\d{{1,{k}}})?"}[form]

    def sample(r: R) -> str:
        n = {"req": r.randint(1, 4), "opt": r.choice((0, 1, 2)), "exact": k, "upto": r.randint(0, k)}[form]
        head = ("-" if sign and r.random() < 0.4 else "") + draw(DIG, 1, 4, r)
        return head + ("." + draw(DIG, n, n, r) if n else "")
    details = (tuple(p.format(k=k) for p in _DECIMALS[form]),)
    details += (("optionally negative", "with an optional minus sign"),) if sign else ()
    return Concept("number", ("decimal number", "number", "float", "decimal value"), ("-?" if sign else "") + rx,
                   sample, details, near=(lambda r: draw(DIG, 1, 3, r) + ".", lambda r: "." + draw(DIG, 1, 3, r)))


def c_number(rng: R, level: int) -> Concept:
    kind = rng.choice(("int", "nolead", "signed", "decimal", "decimal", "digits", "percent", "thousands", "range",
                       "sci", "literal"))
    if kind == "int":
        return Concept("number", ("integer", "whole number", "non-negative integer", "number made of digits only"),
                       r"\d+", lambda r: draw(DIG, 1, 7, r))
    if kind == "nolead":
        pos = rng.random() < 0.4
        return Concept("number", ("positive integer" if pos else "non-negative integer", "whole number", "count"),
                       r"[1-9]\d*" if pos else r"(?:0|[1-9]\d*)",
                       lambda r: str(r.randint(1 if pos else 0, 10 ** r.randint(1, 7))),
                       (("without leading zeros", "no leading zeros") + (() if pos else ("0 allowed, but not 007",)),
                        ("zero not allowed",) if pos else ("zero allowed",)),
                       near=(lambda r: "0" + str(r.randint(1, 999)),))
    if kind == "signed":
        sign, ph = rng.choice(((r"-?", "an optional minus sign"), (r"[+-]?", "an optional + or - sign"),
                               (r"-", "a leading minus (negative numbers only)")))
        signs = {"-?": ("", "-"), "[+-]?": ("", "-", "+"), "-": ("-",)}[sign]
        return Concept("number", ("signed integer", "integer", "whole number that can be negative"), sign + r"\d+",
                       lambda r: r.choice(signs) + draw(DIG, 1, 6, r), ((f"with {ph}",),))
    if kind == "decimal":
        return _decimal(rng, level)
    if kind == "digits":
        lo = rng.randint(1, 8)
        hi = rng.choice((lo, lo, lo + rng.randint(1, 6), None))
        if hi is None and rng.random() < 0.5:
            lo, hi = 1, lo + 2
            ph, q = f"up to {hi} digits", f"{{1,{hi}}}"
        else:
            ph, q = count_phrase(rng, lo, hi, "digits")
        return Concept("number", ("number", "numeric code", "digit string"), r"\d" + q,
                       lambda r: draw(DIG, lo, hi if hi else lo + 3, r), ((ph, f"of {ph}", f"with {ph}"),))
    if kind == "percent":
        rx, ph = rng.choice(_PERCENTS)
        return Concept("number", ("percentage", "percent value", "percentage like 42%"), rx,
                       lambda r: ("-" if "-" in rx and r.random() < 0.3 else "") + str(r.randint(0, 100)) +
                       (("." + draw(DIG, 1, 2, r)) if "." in rx and r.random() < 0.4 else "") + "%", ((ph,),))
    if kind == "thousands":
        sep = rng.choice((",", ",", " ", "."))
        dec = sep != "." and rng.random() < 0.5
        sep_name = {",": "commas", " ": "spaces", ".": "dots"}[sep]
        rx = r"\d{1,3}(?:" + esc(sep) + r"\d{3})*" + (r"(?:\.\d{2})?" if dec else "")
        return Concept("number", ("number with thousands separators", "formatted number like 1,234,567",
                                  "large number"), rx,
                       lambda r: f"{r.randint(0, 10 ** r.randint(1, 9)):,}".replace(",", sep) + (
                           "." + draw(DIG, 2, 2, r) if dec and r.random() < 0.5 else ""),
                       ((f"groups of three digits separated by {sep_name}", f"{sep_name} as thousands separators"),)
                       + ((("optional two decimal places", "optional .00 cents"),) if dec else ()),
                       near=(lambda r: draw(DIG, 4, 6, r) + sep + draw(DIG, 3, 3, r),))
    if kind == "range":
        lo, hi, rx = rng.choice(_RANGES)
        return Concept("number", ("number", "integer", "value"), rx, lambda r: str(r.randint(lo, hi)),
                       ((f"from {lo} to {hi}", f"between {lo} and {hi}", f"in the range {lo}-{hi}"),
                        ("no leading zeros",) if lo < 10 and rng.random() < 0.5 else ()),
                       near=(lambda r: str(hi + r.randint(1, 50)), lambda r: "0" + str(r.randint(1, 9))))
    if kind == "sci":
        def sci(r: R) -> str:
            return (("-" if r.random() < .3 else "") + draw(DIG, 1, 2, r) + ("." + draw(DIG, 1, 3, r) if r.random()
                                                                              < .6 else "")
                    + r.choice("eE") + r.choice(("", "+", "-")) + draw(DIG, 1, 3, r))
        return Concept("number", ("number in scientific notation", "float with exponent like 1.5e-3"),
                       r"-?\d+(?:\.\d+)?[eE][+-]?\d+", sci,
                       (("mantissa with optional sign and decimals, e or E, signed exponent",),))
    pre, cls, chars = rng.choice(_LITERALS)
    base = {"[01]": "binary", "[0-7]": "octal"}.get(cls, "hexadecimal")
    return Concept("number", (f"{base} literal", f"{base} number like {pre}..."), esc(pre) + cls + "+",
                   lambda r: pre + draw(chars, 1, 8, r),
                   ((f"with the {Q(rng, pre)} prefix",), ("lowercase hex digits",) if cls == "[0-9a-f]" else ()))


_CODES = ("USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "SEK", "INR")
_AMOUNTS = ((r"\d+\.\d{2}", "with exactly two decimals", lambda r: draw(DIG, 1, 5, r) + "." + draw(DIG, 2, 2, r)),
            (r"\d+(?:\.\d{2})?", "optional cents (.00)",
             lambda r: draw(DIG, 1, 5, r) + ("." + draw(DIG, 2, 2, r) if r.random() < 0.5 else "")),
            (r"\d{1,3}(?:,\d{3})*(?:\.\d{2})?", "commas between thousands, optional cents",
             lambda r: f"{r.randint(0, 9999999):,}" + ("." + draw(DIG, 2, 2, r) if r.random() < 0.5 else "")),
            (r"\d{1,3}(?:\.\d{3})*,\d{2}", "European style: dots for thousands, comma and two decimals",
             lambda r: f"{r.randint(0, 9999999):,}".replace(",", ".") + "," + draw(DIG, 2, 2, r)),
            (r"\d+", "whole amounts only", lambda r: draw(DIG, 1, 6, r)))


def c_money(rng: R, level: int) -> Concept:
    a_rx, a_ph, a_s = rng.choice(_AMOUNTS)
    form = rng.choice(("dollar", "dollar", "optdollar", "code_pre", "code_post"))
    if form in ("dollar", "optdollar"):
        rx = (r"\$?" if form == "optdollar" else r"\$") + a_rx
        nouns = ("dollar amount", "price in dollars", "USD price like $12.50", "money amount")
        sign_ph = ("dollar sign optional",) if form == "optdollar" else ("with a leading $", "starting with $")
        details = [(a_ph,), sign_ph]

        def sample(r: R) -> str:
            return ("" if form == "optdollar" and r.random() < 0.4 else "$") + a_s(r)
    else:
        codes = rng.sample(_CODES, rng.randint(1, 3))
        c_rx = esc(codes[0]) if len(codes) == 1 else alt(codes)
        rx = c_rx + " " + a_rx if form == "code_pre" else a_rx + " " + c_rx
        nouns = ("price with a currency code", "amount with currency", "monetary amount")
        where = "before" if form == "code_pre" else "after"
        details = [(a_ph,), (f"currency code {listing(rng, codes)} {where} the amount, separated by a space",)]

        def sample(r: R) -> str:
            return f"{r.choice(codes)} {a_s(r)}" if form == "code_pre" else f"{a_s(r)} {r.choice(codes)}"
    if maybe(rng, level, 0.15):
        rx, inner = "-?" + rx, sample
        details.append(("optionally negative (leading -)",))
        sample = lambda r: ("-" if r.random() < 0.3 else "") + inner(r)  # noqa: E731
    return Concept("money", nouns, rx, sample, tuple(details))


_PHONE_SEPS = {"-": "dashes", ".": "dots", " ": "spaces", "[-. ]": "a dash, dot or space",
               "[-. ]?": "optional dashes, dots or spaces"}


def _us_phone(rng: R, level: int) -> Concept:
    sep = rng.choice(("-", "-", ".", " ", "[-. ]", "[-. ]?"))
    paren, country = rng.random() < 0.25, maybe(rng, level, 0.2)
    s_rx = esc(sep) if len(sep) == 1 else sep
    rx = (r"(?:\+1 )?" if country else "") + (r"\(\d{3}\) " if paren else r"\d{3}" + s_rx) + r"\d{3}" + s_rx + r"\d{4}"
    shown = sep if len(sep) == 1 else "-"
    details = [(f"area code in parentheses, e.g. {L('(555) 123' + shown + '4567')}",) if paren else
               (f"like {L('555' + shown + '123' + shown + '4567')}", "in 3-3-4 digit groups"),
               (f"separated by {_PHONE_SEPS[sep]}",)]
    if country:
        details.append((f"with an optional {QQ(rng, '+1 ')} country code", "optionally starting with +1 and a space"))
    choices = (sep,) if len(sep) == 1 else ("-", ".", " ", "") if sep.endswith("?") else ("-", ".", " ")

    def sample(r: R) -> str:
        s = "+1 " if country and r.random() < 0.5 else ""
        s += f"({draw(DIG, 3, 3, r)}) " if paren else draw(DIG, 3, 3, r) + r.choice(choices)
        return s + draw(DIG, 3, 3, r) + r.choice(choices) + draw(DIG, 4, 4, r)
    return Concept("phone", ("US phone number", "phone number", "North American phone number"), rx, sample,
                   tuple(details))


def c_phone(rng: R, level: int) -> Concept:
    kind = rng.random()
    if kind < 0.55:
        return _us_phone(rng, level)
    if kind < 0.8:
        lo, hi = rng.choice(((7, 15), (8, 15), (10, 14)))
        first = rng.random() < 0.5
        rx = r"\+[1-9]\d{" + f"{lo - 1},{hi - 1}" + "}" if first else r"\+\d{" + f"{lo},{hi}" + "}"
        return Concept("phone", ("international phone number in E.164 format", "E.164 phone number",
                                 "phone number with a + country code"), rx,
                       lambda r: "+" + str(r.randint(1, 9)) + draw(DIG, lo - 1, hi - 1, r),
                       ((f"a + then {lo} to {hi} digits" + (", first digit not 0" if first else ""),),))
    n = rng.choice((10, 11, 9))
    return Concept("phone", (f"{n}-digit phone number", "phone number as digits only", "mobile number"),
                   rf"\d{{{n}}}", lambda r: draw(DIG, n, n, r), ((f"exactly {n} digits, no spaces or dashes",),))


_POSTAL = (("US ZIP code", r"\d{5}", "#####", ()), ("5-digit ZIP code", r"\d{5}", "#####", ()),
           ("ZIP+4 code", r"\d{5}-\d{4}", "#####-####", (("with the 4-digit extension required",),)),
           ("US ZIP code", r"\d{5}(?:-\d{4})?", "ZIP4", (("plus-four extension optional",
                                                             "with an optional -1234 extension",
                                                             "5 digits, optionally a dash and 4 more"),)),
           ("Canadian postal code", r"[A-Z]\d[A-Z] \d[A-Z]\d", "@#@ #@#", (("with a space in the middle",),)),
           ("Canadian postal code", r"[A-Z]\d[A-Z] ?\d[A-Z]\d", "@#@ ?#@#", (("space optional",),)),
           ("UK postcode", r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}", "UK", (("simplified, uppercase, optional space",),)),
           ("Dutch postcode", r"\d{4} ?[A-Z]{2}", "#### ?@@", (("4 digits, optional space, 2 capital letters",),)),
           ("German PLZ", r"\d{5}", "#####", ()),
           ("Indian PIN code", r"[1-9]\d{5}", "PIN", (("6 digits, not starting with 0",),)),
           ("Brazilian CEP", r"\d{5}-?\d{3}", "#####-?###", (("dash optional",),)),
           ("Japanese postal code", r"\d{3}-\d{4}", "###-####", ()),
           ("Polish postal code", r"\d{2}-\d{3}", "##-###", ()),
           ("Portuguese postal code", r"\d{4}-\d{3}", "####-###", ()))


def _shape(shape: str, r: R) -> str:
    """A string of a shape: # digit, @ capital letter, x? optional x, anything else literal."""
    if shape == "UK":
        return (draw(UP, 1, 2, r) + r.choice(DIG) + (r.choice(UP + DIG) if r.random() < 0.4 else "")
                + (" " if r.random() < 0.6 else "") + r.choice(DIG) + draw(UP, 2, 2, r))
    if shape == "PIN":
        return str(r.randint(100000, 999999))
    if shape == "ZIP4":
        return draw(DIG, 5, 5, r) + ("-" + draw(DIG, 4, 4, r) if r.random() < 0.5 else "")
    out, i = "", 0
    while i < len(shape):
        c, opt = shape[i], i + 1 < len(shape) and shape[i + 1] == "?"
        if not opt or r.random() < 0.5:
            out += r.choice(DIG) if c == "#" else r.choice(UP) if c == "@" else c
        i += 2 if opt else 1
    return out


def c_postal(rng: R, level: int) -> Concept:
    if rng.random() < 0.2:  # ZIP codes of one area: their leading digits fixed ("ZIP codes starting with 94")
        lead = str(rng.randint(0, 9)) + draw(DIG, 0, 2, rng)
        plus4 = rng.random() < 0.3
        return Concept("postal_code", ("US ZIP code", "ZIP code"), esc(lead) + rf"\d{{{5 - len(lead)}}}" +
                       (r"(?:-\d{4})?" if plus4 else ""),
                       lambda r: lead + draw(DIG, 5 - len(lead), 5 - len(lead), r) + (
                           "-" + draw(DIG, 4, 4, r) if plus4 and r.random() < 0.5 else ""),
                       ((f"starting with {Q(rng, lead)}", f"in the {L(lead + 'x' * (5 - len(lead)))} range"),)
                       + ((("plus-four extension optional", "with an optional -1234 extension"),) if plus4 else ()))
    if rng.random() < 0.25:
        n = rng.randint(3, 7)
        return Concept("postal_code", (f"{n}-digit postal code", "postal code", "numeric post code"), rf"\d{{{n}}}",
                       lambda r: draw(DIG, n, n, r), ((f"exactly {n} digits", f"{n} digits"),))
    noun, rx, shape, details = rng.choice(_POSTAL)
    return Concept("postal_code", (noun, noun.replace(" code", "")), rx, lambda r: _shape(shape, r), details)


_HEX_CASES = (("[0-9a-fA-F]", HEXL + "ABCDEF", ()), ("[0-9a-f]", HEXL, (("lowercase",),)),
              ("[0-9A-F]", HEXU, (("uppercase",),)))
_LEN_PH = {(6,): ("#rrggbb", "6 hex digits"), (3,): ("short #rgb form", "3 hex digits"),
           (3, 6): ("#rgb or #rrggbb", "3 or 6 hex digits"), (6, 8): ("#rrggbb or #rrggbbaa (with alpha)",),
           (3, 4, 6, 8): ("3, 4, 6 or 8 hex digits",)}
_RGB_SPACES = {" ?": "optional single space after commas", " *": "any spaces after the commas", "": "no spaces"}


def c_color(rng: R, level: int) -> Concept:
    if rng.random() < 0.2:
        sp = rng.choice(tuple(_RGB_SPACES))
        return Concept("hex_color", ("CSS rgb() colour", "rgb(r, g, b) value", "CSS rgb color like rgb(255, 0, 128)"),
                       r"rgb\(\d{1,3}," + sp + r"\d{1,3}," + sp + r"\d{1,3}\)",
                       lambda r: "rgb(" + (", " if sp else ",").join(str(r.randint(0, 255)) for _ in range(3)) + ")",
                       ((_RGB_SPACES[sp],),))
    h, chars, case_d = rng.choice(_HEX_CASES)
    lens = rng.choice(((6,), (6,), (3, 6), (3,), (6, 8), (3, 4, 6, 8)))
    body = {(3, 4, 6, 8): f"(?:{h}{{3,4}}|{h}{{6}}|{h}{{8}})", (3, 6): f"(?:{h}{{3}}){{1,2}}",
            (6, 8): f"{h}{{6}}(?:{h}{{2}})?"}.get(lens, f"{h}{{{lens[0]}}}")
    hash_ = rng.choice(("req", "req", "req", "opt", "none"))
    details = (_LEN_PH[lens],) + case_d + {"req": (), "opt": (("# optional", "with or without the leading #"),),
                                           "none": (("without the #", "no leading hash"),)}[hash_]

    def sample(r: R) -> str:
        n = r.choice(lens)
        return ("" if hash_ == "none" or (hash_ == "opt" and r.random() < 0.4) else "#") + draw(chars, n, n, r)
    return Concept("hex_color", ("hex colour code", "hex color", "CSS hex color", "HTML color code"),
                   {"req": "#", "opt": "#?", "none": ""}[hash_] + body, sample, details,
                   near=(lambda r: "#" + draw(chars, 5, 5, r), lambda r: "#" + draw("ghxyz", 6, 6, r)))


_CARD_SEPS = {" ": "separated by spaces", "-": "separated by dashes", "[ -]": "separated by spaces or dashes",
              "[ -]?": "with optional spaces or dashes between groups", "": "no separators"}


def _card(rng: R) -> Concept:
    sep = rng.choice(tuple(_CARD_SEPS))
    visa = rng.random() < 0.2
    head = "4\\d{3}" if visa else r"\d{4}"
    rx = head + f"(?:{sep}\\d{{4}}){{3}}" if sep else ("4\\d{15}" if visa else r"\d{16}")
    choices = (sep,) if len(sep) <= 1 else (" ", "-", "") if sep.endswith("?") else (" ", "-")

    def sample(r: R) -> str:
        groups = [("4" + draw(DIG, 3, 3, r)) if visa else draw(DIG, 4, 4, r)] + [draw(DIG, 4, 4, r) for _ in range(3)]
        return groups[0] + "".join(r.choice(choices) + g for g in groups[1:])
    return Concept("digit_groups", ("Visa card number" if visa else "credit card number", "card number",
                                    "16-digit card number"), rx, sample,
                   (("16 digits in four groups of 4", "4 groups of 4 digits"), (_CARD_SEPS[sep],)))


def c_card(rng: R, level: int) -> Concept:
    kind = rng.random()
    if kind < 0.5:
        return _card(rng)
    if kind < 0.65:
        return Concept("digit_groups", ("US Social Security number", "SSN", "SSN like 123-45-6789"),
                       r"\d{3}-\d{2}-\d{4}" if rng.random() < 0.7 else r"\d{3}-?\d{2}-?\d{4}",
                       lambda r: f"{draw(DIG, 3, 3, r)}-{draw(DIG, 2, 2, r)}-{draw(DIG, 4, 4, r)}")
    if kind < 0.8:
        return Concept("digit_groups", ("card expiry date (MM/YY)", "credit card expiration like 08/27"),
                       r"(?:0[1-9]|1[0-2])/\d{2}", lambda r: f"{r.randint(1, 12):02d}/{draw(DIG, 2, 2, r)}",
                       (("month 01-12, slash, two-digit year",),), near=(lambda r: f"13/{draw(DIG, 2, 2, r)}",))
    if kind < 0.9:
        return Concept("digit_groups", ("IBAN", "IBAN-like account number"), r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}",
                       lambda r: draw(UP, 2, 2, r) + draw(DIG, 2, 2, r) + draw(UP + DIG, 11, 20, r),
                       (("2 capital letters, 2 digits, then 11-30 capitals or digits, no spaces",),))
    n = rng.choice((3, 4))
    return Concept("digit_groups", ("card security code (CVV)", "CVV", "CVC code"), r"\d{3,4}" if n == 4 else r"\d{3}",
                   lambda r: draw(DIG, 3, n, r), ((f"{'3 or 4' if n == 4 else '3'} digits",),))


_TAG_SETS = ((r"\w", "letters, digits or underscores", WORDCH), ("[a-z0-9]", "lowercase letters or digits", LOW + DIG),
             ("[a-zA-Z0-9]", "letters or digits", ALNUM))
_HANDLE_SETS = ((r"\w", "letters, digits or underscores", WORDCH),
                (r"[\w.]", "letters, digits, underscores or dots", WORDCH + "."),
                ("[a-z0-9_]", "lowercase letters, digits or underscores", LOW + DIG + "_"))


def c_social(rng: R, level: int) -> Concept:
    kind = rng.random()
    if kind < 0.4:
        cls, ph, chars = rng.choice(_TAG_SETS)
        lo, hi = rng.choice(((1, None), (1, None), (2, 30), (1, 15), (3, 20)))
        return Concept("social_tag", ("hashtag", "hashtag such as #release", "tag starting with #"),
                       "#" + cls + ("+" if hi is None else f"{{{lo},{hi}}}"),
                       lambda r: "#" + draw(chars, lo, hi or 10, r),
                       ((f"# then {ph}" + ("" if hi is None else f", {lo}-{hi} of them"),),))
    if kind < 0.8:
        lo, hi = rng.choice(((1, 15), (3, 20), (1, 30), (2, 25), (4, 16)))
        cls, ph, chars = rng.choice(_HANDLE_SETS)
        return Concept("social_tag", ("@mention", "Twitter handle", "@username mention", "user mention"),
                       f"@{cls}{{{lo},{hi}}}", lambda r: "@" + draw(chars, lo, hi, r),
                       ((f"@ followed by {lo} to {hi} {ph}", f"{lo}-{hi} chars after the @ ({ph})"),))
    form = rng.choice(("subreddit", "emoji", "channel"))
    if form == "subreddit":
        return Concept("social_tag", ("subreddit name like r/python", "subreddit reference"), r"r/\w{3,21}",
                       lambda r: "r/" + draw(WORDCH, 3, 21, r), (("r/ then 3 to 21 word characters",),))
    if form == "emoji":
        return Concept("social_tag", ("emoji shortcode like :thumbsup:", "Slack emoji code"), r":[a-z0-9_+-]+:",
                       lambda r: ":" + draw(LOW + DIG + "_+-", 1, 12, r) + ":",
                       (("lowercase letters, digits, _ + or - between colons",),))
    return Concept("social_tag", ("Slack channel name", "channel like #general"), r"#[a-z0-9_-]+",
                   lambda r: "#" + draw(LOW + DIG + "_-", 1, 15, r),
                   (("# then lowercase letters, digits, dashes or underscores",),))


_POOLS = (("colour", ("red", "green", "blue", "yellow", "black", "white")),
          ("size", ("XS", "S", "M", "L", "XL", "XXL")),
          ("environment", ("dev", "test", "staging", "prod", "qa")), ("fruit", ("apple", "banana", "cherry", "pear")),
          ("status", ("active", "inactive", "pending", "blocked", "deleted")),
          ("direction", ("north", "south", "east", "west")), ("plan", ("free", "basic", "pro", "enterprise")))
_BOOLS = ((("yes", "no"), "yes or no"), (("true", "false"), "true or false"), (("on", "off"), "on or off"),
          (("Y", "N"), "Y or N"), (("enabled", "disabled"), "enabled or disabled"), (("1", "0"), "1 or 0"),
          (("true", "false", "1", "0"), "a boolean (true, false, 1, 0)"))


def c_choice(rng: R, level: int) -> Concept:
    if rng.random() < 0.45:
        opts, ph = rng.choice(_BOOLS)
        opts = list(opts)
        if maybe(rng, level, 0.3) and opts[0].isalpha() and len(opts[0]) > 1:
            opts += [o.capitalize() for o in opts] + [o.upper() for o in opts]
            return Concept("choice", (f"{ph} answer", ph, f"{ph} word"), alt(opts), lambda r: r.choice(opts),
                           (("in lowercase, Capitalized or UPPERCASE", "any of lower, Title or UPPER case"),))
        return Concept("choice", (f"{ph} value", ph, f"{ph} flag"), alt(opts), lambda r: r.choice(opts),
                       ((f"exactly {listing(rng, opts)}", "lowercase only" if opts[0].islower() else "as written"),))
    noun, pool = rng.choice(_POOLS)
    opts = rng.sample(pool, rng.randint(2, min(5, len(pool))))
    return Concept("choice", (f"{noun} name", noun, f"{noun} value"), alt(opts), lambda r: r.choice(opts),
                   ((f"one of {listing(rng, opts)}", f"either {listing(rng, opts)}", f"only {listing(rng, opts)}"),))


_WORDS = {"lower": ("[a-z]+", ("lowercase word", "word in lowercase letters"), "", LOW),
          "cap": ("[A-Z][a-z]+", ("capitalized word", "word starting with a capital letter"), UP, LOW),
          "caps": ("[A-Z]+", ("all-caps word", "uppercase word", "acronym"), "", UP),
          "alpha": ("[a-zA-Z]+", ("word of letters", "alphabetic word"), "", LOW + UP)}
_WORD_SETS = (("[a-z]+", "lowercase words", LOW), ("[a-zA-Z]+", "words of letters", LOW + UP),
              ("[A-Z][a-z]*", "capitalized words", ""))


def c_word(rng: R, level: int) -> Concept:
    kind = rng.choice(("lower", "cap", "caps", "alpha", "words", "name", "name", "len"))
    if kind == "len":
        lo, hi = rng.randint(2, 5), rng.randint(6, 12)
        ph, q = count_phrase(rng, lo, hi, "letters")
        return Concept("word", ("lowercase word", "word"), "[a-z]" + q, lambda r: draw(LOW, lo, hi, r),
                       ((ph, f"of {ph}"),))
    if kind in _WORDS:
        rx, nouns, first, rest = _WORDS[kind]
        return Concept("word", nouns, rx, lambda r: (r.choice(first) if first else "") + draw(rest, 1, 8, r),
                       (("letters only", "no digits or spaces"),) if rng.random() < 0.3 else ())
    if kind == "words":
        k = rng.choice((2, 3, None, 0))
        cls, ph, chars = rng.choice(_WORD_SETS)
        if k == 0:  # a bounded number of words
            lo, hi = rng.randint(1, 3), rng.randint(4, 8)

            def ws(r: R) -> str:
                return " ".join(draw(chars, 1, 7, r) if chars else r.choice(UP) + draw(LOW, 0, 6, r)
                                for _ in range(r.randint(lo, hi)))
            return Concept("word", (f"{lo} to {hi} {ph} separated by single spaces", f"phrase of {lo}-{hi} {ph}"),
                           cls + f"(?: {cls}){{{lo - 1},{hi - 1}}}", ws, article=False)

        def w(r: R) -> str:
            return draw(chars, 1, 7, r) if chars else r.choice(UP) + draw(LOW, 0, 6, r)
        return Concept("word", ((f"{k} " if k else "one or more ") + ph + " separated by single spaces",
                                "phrase of " + (f"{k} " if k else "") + ph), cls + (f"(?: {cls}){{{k - 1}}}" if k
                                                                                     else f"(?: {cls})*"),
                       lambda r: " ".join(w(r) for _ in range(k or r.randint(1, 4))), article=False)
    middle = maybe(rng, level, 0.3)

    def name(r: R) -> str:
        mid = r.choice(UP) + ". " if middle and r.random() < 0.5 else ""
        return r.choice(UP) + draw(LOW, 1, 7, r) + " " + mid + r.choice(UP) + draw(LOW, 1, 8, r)
    return Concept("word", ("first and last name", "full name like John Smith", "person's name"),
                   r"[A-Z][a-z]+ " + (r"(?:[A-Z]\. )?" if middle else "") + r"[A-Z][a-z]+", name,
                   (("both capitalized", "two capitalized words"),) + ((("optional middle initial like A.",),)
                                                                      if middle else ()))


_EXT_SETS = (("image", ("jpg", "jpeg", "png", "gif")), ("image", ("png", "jpg")), ("document", ("pdf", "doc", "docx")),
             ("data", ("csv", "json")), ("config", ("yaml", "yml")), ("Python", ("py",)), ("log", ("log",)),
             ("archive", ("zip", "tar", "gz")), ("video", ("mp4", "mov", "avi")), ("text", ("txt", "md")),
             ("script", ("sh", "bash")), ("web", ("html", "css", "js")))
_STEMS = ((r"[\w-]+", "letters, digits, underscores or dashes", WORDCH + "-"),
          (r"[\w.-]+", "letters, digits, dots, underscores or dashes", WORDCH + ".-"),
          (r"[a-z0-9_]+", "lowercase letters, digits or underscores", LOW + DIG + "_"),
          (r"[\w -]+", "letters, digits, spaces, dashes or underscores", WORDCH + " -"))


def c_filename(rng: R, level: int) -> Concept:
    what, exts = rng.choice(_EXT_SETS)
    exts = list(exts) if rng.random() < 0.6 else rng.sample(exts, max(1, len(exts) - 1))
    stem, ph, chars = rng.choice(_STEMS)
    upper = maybe(rng, level, 0.2)
    shown = exts + ([e.upper() for e in exts] if upper else [])
    details = [(f"ending in {listing(rng, ['.' + e for e in exts])}", f"with extension {listing(rng, exts)}"),
               (f"name made of {ph}", f"where the name has {ph}")]
    if upper:
        details.append(("extension in lower or upper case", "case-insensitive extension (all lower or all upper)"))
    return Concept("filename", (f"{what} file name", f"{what} filename", "file name"),
                   stem + r"\." + (esc(shown[0]) if len(shown) == 1 else alt(shown)),
                   lambda r: (draw(chars, 1, 10, r).strip() or "f") + "." + r.choice(shown), tuple(details),
                   near=(lambda r: draw(LOW, 1, 6, r) + ".exe", lambda r: draw(LOW, 1, 6, r)))


TEXT = {"number": c_number, "money": c_money, "phone": c_phone, "postal_code": c_postal, "hex_color": c_color,
        "digit_groups": c_card, "social_tag": c_social, "choice": c_choice, "word": c_word, "filename": c_filename}
FAMILIES = {"identifiers": IDENTIFIERS, "log_fields": LOG_FIELDS, "network": NETWORK, "dates": DATES, "text": TEXT}
