"""Date and time concepts: ISO dates, other date layouts, clock times, ISO 8601 datetimes, calendar names."""

from __future__ import annotations

from tasks.kinds.regex.concepts import DIG, Concept, L, R, alt, draw, esc, listing, maybe
from tasks.kinds.regex.concepts_logs import MON_RX, MONTHS, moment

MONTHS_FULL = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DAYS_FULL = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTH2 = r"(?:0[1-9]|1[0-2])"
DAY2 = r"(?:0[1-9]|[12]\d|3[01])"
HOUR24 = r"(?:[01]\d|2[0-3])"
MIN = r"[0-5]\d"


def _ymd(r: R, y0: int = 1970, y1: int = 2039) -> tuple[str, str, str]:
    return str(r.randint(y0, y1)), f"{r.randint(1, 12):02d}", f"{r.randint(1, 31 if r.random() < .2 else 28):02d}"


def c_iso_date(rng: R, level: int) -> Concept:
    if rng.random() < 0.2:  # one month of one year: "dates in March 2024"
        y, m = rng.randint(1995, 2030), rng.randint(1, 12)
        d_rx = DAY2 if maybe(rng, level, 0.3) else r"\d{2}"
        return Concept("iso_date", (f"ISO date in {L(MONTHS_FULL[m - 1])} {L(str(y))}", "YYYY-MM-DD date"),
                       f"{y}-{m:02d}-{d_rx}", lambda r: f"{y}-{m:02d}-{r.randint(1, 28):02d}",
                       ((f"only for {L(f'{y}-{m:02d}')}", f"where year and month are {L(f'{y}-{m:02d}')}"),)
                       + ((("day 01-31",),) if d_rx == DAY2 else ()))
    strict = rng.choice(("none", "none", "month", "both")) if maybe(rng, level, 0.5) else "none"
    year = rng.choice(("any", "any", "any", "1900s-2000s", "fixed"))
    fixed = str(rng.randint(1990, 2030))
    y_rx = {"any": r"\d{4}", "1900s-2000s": r"(?:19|20)\d{2}", "fixed": fixed}[year]
    m_rx = MONTH2 if strict != "none" else r"\d{2}"
    d_rx = DAY2 if strict == "both" else r"\d{2}"
    details: list[tuple[str, ...]] = []
    if strict == "month":
        details.append(("month 01-12", "with the month between 01 and 12", "checking the month is 01 to 12"))
    elif strict == "both":
        details.append(("month 01-12 and day 01-31", "with a valid month (01-12) and day (01-31)",
                        "rejecting month 13 or day 32"))
    if year == "1900s-2000s":
        details.append(("year 1900-2099", "with a year from 1900 to 2099", "year starting with 19 or 20"))
    elif year == "fixed":
        details.append((f"in the year {L(fixed)} only", f"only for {L(fixed)}", f"whose year is {L(fixed)}"))
    nouns = ("ISO 8601 date", "ISO date", "date in YYYY-MM-DD format", "YYYY-MM-DD date", "date like 2024-01-31")

    def sample(r: R) -> str:
        y, m, d = _ymd(r, 1900, 2099) if year != "any" else _ymd(r, 1000, 2999)
        return f"{fixed if year == 'fixed' else y}-{m}-{d}"
    near = [lambda r: "-".join(_ymd(r))[:-1], lambda r: "/".join(_ymd(r))]
    if strict != "none":
        near.append(lambda r: f"{_ymd(r)[0]}-{r.randint(13, 19)}-{_ymd(r)[2]}")
    return Concept("iso_date", nouns, f"{y_rx}-{m_rx}-{d_rx}", sample, tuple(details), tuple(near))


_LAYOUT_NOUNS = {"DMY": ("European date", "date", "day/month/year date"), "MDY": ("US date", "date", "American date"),
                 "YMD": ("date", "year-first date", "date string")}
_NAMED = {"D Mon YYYY": (r"\d{1,2} {m} \d{4}", "{e} {b} {Y}"), "Mon D, YYYY": (r"{m} \d{1,2}, \d{4}", "{b} {e}, {Y}"),
          "Mon YYYY": (r"{m} \d{4}", "{b} {Y}"), "DD-Mon-YYYY": (r"\d{2}-{m}-\d{4}", "{d}-{b}-{Y}")}


def _numeric_layout(rng: R) -> Concept:
    order = rng.choice(("DMY", "MDY", "YMD"))
    sep = rng.choice(("/", "/", ".", "-", " "))
    pad = rng.random() < 0.65
    y2 = order != "YMD" and rng.random() < 0.2
    dd = r"\d{2}" if pad else r"\d{1,2}"
    toks = {"D": ("DD" if pad else "D", dd), "M": ("MM" if pad else "M", dd),
            "Y": ("YY", r"\d{2}") if y2 else ("YYYY", r"\d{4}")}
    shown = sep.join(toks[c][0] for c in order)
    sep_name = {"/": "slashes", ".": "dots", "-": "dashes", " ": "spaces"}[sep]
    details = [(f"in {L(shown)} format", f"formatted as {L(shown)}", f"({L(shown)}, separated by {sep_name})")]
    if not pad:
        details.append(("day and month with one or two digits", "leading zeros optional"))

    def sample(r: R) -> str:
        y, m, d = _ymd(r)
        y = y[2:] if y2 else y
        if not pad and r.random() < 0.5:
            m, d = m.lstrip("0"), d.lstrip("0")
        return sep.join({"D": d, "M": m, "Y": y}[c] for c in order)
    return Concept("date_layout", _LAYOUT_NOUNS[order], esc(sep).join(toks[c][1] for c in order), sample,
                   tuple(details))


def c_date_layout(rng: R, level: int) -> Concept:
    kind = rng.random()
    if kind < 0.45:
        return _numeric_layout(rng)
    if kind < 0.8:  # month names
        full = rng.random() < 0.4
        names = MONTHS_FULL if full else MONTHS
        layout = rng.choice(tuple(_NAMED))
        rx_t, tpl = _NAMED[layout]
        rx = rx_t.replace("{m}", alt(names) if full else MON_RX)

        def sample(r: R) -> str:
            return tpl.format(**{**moment(r), "b": r.choice(names)})
        kind_ph = "full month names" if full else "three-letter month abbreviations"
        shape = layout.replace("Mon", "Month") if full else layout
        return Concept("date_layout", ("date with a month name", "written date", "human-readable date"), rx, sample,
                       ((f"like {L(sample(rng))}", f"in the form {L(shape)}"),
                        (f"using {kind_ph}", f"{kind_ph} ({L(names[0])}..{L(names[-1])})")))
    if kind < 0.9:
        form = rng.choice(("quarter", "week", "yearmonth"))
        if form == "quarter":
            return Concept("date_layout", ("fiscal quarter like Q3 2024", "quarter label (Q1-Q4 and a year)"),
                           r"Q[1-4] \d{4}", lambda r: f"Q{r.randint(1, 4)} {r.randint(1990, 2039)}")
        if form == "week":
            return Concept("date_layout", ("ISO week like 2024-W05", "ISO week date (YYYY-Www)"), r"\d{4}-W\d{2}",
                           lambda r: f"{r.randint(1990, 2039)}-W{r.randint(1, 53):02d}")
        return Concept("date_layout", ("year and month like 2024-01", "YYYY-MM value", "month of a year (YYYY-MM)"),
                       r"\d{4}-" + (MONTH2 if level > 1 else r"\d{2}"), lambda r: "-".join(_ymd(r)[:2]),
                       (("month 01-12",),) if level > 1 else ())
    full = rng.random() < 0.4
    names = DAYS_FULL if full else DAYS
    opts = list(names) if rng.random() < 0.6 else list(names[:5])
    what = "weekday (Monday-Friday)" if len(opts) == 5 else "day of the week"
    return Concept("date_layout", (f"{what} name", what, "weekday name"), alt(opts), lambda r: r.choice(opts),
                   ((f"as {'full names' if full else 'three-letter abbreviations'} ({listing(rng, opts[:3])}...)",
                     f"spelled {'in full' if full else 'as Mon, Tue, ...'}"),))


def _time12(rng: R, strict: bool) -> Concept:
    hr, mr = (r"(?:0?[1-9]|1[0-2])", MIN) if strict else (r"\d{1,2}", r"\d{2}")
    ampm = rng.choice((("AM", "PM"), ("am", "pm"), ("AM", "PM", "am", "pm")))
    space = rng.choice(("", " ", " ?"))
    details: list[tuple[str, ...]] = [(f"followed by {listing(rng, ampm)}", f"with {listing(rng, ampm)}")]
    if space == " ?":
        details.append(("optional space before it", "space before AM/PM optional"))
    elif space:
        details.append(("a space before it",))
    if strict:
        details.append(("hours 1-12", "hour between 1 and 12 and minutes 00-59"))

    def sample(r: R) -> str:
        h = str(r.randint(1, 12))
        h = h.zfill(2) if r.random() < 0.3 else h
        sp = " " if space == " " or (space == " ?" and r.random() < 0.5) else ""
        return f"{h}:{r.randint(0, 59):02d}{sp}{r.choice(ampm)}"
    return Concept("time", ("12-hour time", "time with AM/PM", "clock time in 12h format"),
                   hr + ":" + mr + space + alt(ampm), sample, tuple(details))


def c_time(rng: R, level: int) -> Concept:
    strict = maybe(rng, level, 0.35)
    if rng.random() < 0.25:
        return _time12(rng, strict)
    secs = rng.choice(("none", "none", "req", "opt"))
    frac = secs == "req" and maybe(rng, level, 0.2)
    hr, mr = (HOUR24, MIN) if strict else (r"\d{2}", r"\d{2}")
    rx = hr + ":" + mr
    details: list[tuple[str, ...]] = []
    if strict:
        details.append(("24-hour, 00:00 to 23:59", "with valid hours (00-23) and minutes (00-59)",
                        "rejecting 24:00 or 12:60"))
    if secs == "req":
        rx += ":" + mr + (r"\.\d{3}" if frac else "")
        fmt = "HH:MM:SS.mmm" if frac else "HH:MM:SS"
    elif secs == "opt":
        rx += f"(?::{mr})?"
        fmt = "HH:MM with optional :SS"
    else:
        fmt = "HH:MM"
    details.insert(0, (f"in {L(fmt)} format", f"({L(fmt)})", f"formatted {L(fmt)}"))

    def sample(r: R) -> str:
        s = f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}"
        if secs == "req" or (secs == "opt" and r.random() < 0.5):
            s += f":{r.randint(0, 59):02d}" + (f".{r.randint(0, 999):03d}" if frac else "")
        return s
    near = [lambda r: f"{r.randint(0, 9)}:{r.randint(0, 59):02d}"]
    if strict:
        near.append(lambda r: f"{r.randint(24, 29)}:{r.randint(0, 59):02d}")
    if rng.random() < 0.25:  # a range of two times: "09:00-17:30"
        sep, sep_ph = rng.choice((("-", "a dash"), ("-", "a hyphen"), (" - ", '" - "'), (" to ", '" to "')))
        single = sample
        return Concept("time", ("time range like 09:00-17:30", "opening hours range", "range of two times"),
                       rx + esc(sep) + rx, lambda r: single(r) + sep + single(r),
                       tuple(details) + ((f"two times separated by {sep_ph}",),))
    return Concept("time", ("time", "time of day", "24-hour time", "clock time"), rx, sample, tuple(details),
                   tuple(near))


_ZONES = {"none": "", "Z": "Z", "optZ": "Z?", "offset": r"[+-]\d{2}:\d{2}", "Zoffset": r"(?:Z|[+-]\d{2}:\d{2})"}
_ZONE_PH = {"Z": ("ending in Z", "UTC (trailing Z)"), "optZ": ("optional trailing Z",),
            "offset": ("with a +hh:mm or -hh:mm offset", "timezone offset like +02:00"),
            "Zoffset": ("Z or a +hh:mm offset", "timezone as Z or +/-hh:mm")}


def c_datetime(rng: R, level: int) -> Concept:
    if rng.random() < 0.15:
        def rfc(r: R) -> str:
            return "{Y}-{m}-{d}T{H}:{M}:{S}".format(**moment(r)) + ("." + draw(DIG, 1, 6, r) if r.random() < .4
                                                                     else "") + r.choice(("Z", "+02:00", "-05:30"))
        return Concept("datetime", ("RFC 3339 timestamp", "RFC3339 datetime"),
                       r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})", rfc,
                       (("T separator, seconds, optional fraction, Z or +hh:mm offset",),) if rng.random() < .5 else ())
    sep = rng.choice(("T", "T", " ", "either"))
    secs = rng.choice(("req", "req", "opt", "none"))
    frac = rng.choice(("none", "none", "opt", "ms")) if secs == "req" else "none"
    zone = rng.choice(tuple(_ZONES)[1:]) if maybe(rng, level, 0.6) else "none"
    rx = r"\d{4}-\d{2}-\d{2}" + {"T": "T", " ": " ", "either": "[T ]"}[sep] + r"\d{2}:\d{2}"
    rx += {"req": r":\d{2}", "opt": r"(?::\d{2})?", "none": ""}[secs]
    rx += {"none": "", "opt": r"(?:\.\d+)?", "ms": r"\.\d{3}"}[frac] + _ZONES[zone]
    details = [({"T": "with a T between date and time", " ": "date and time separated by a space",
                 "either": "T or space between date and time"}[sep],),
               ({"req": "with seconds", "opt": "seconds optional", "none": "hours and minutes only (no seconds)"}[secs],
                {"req": "HH:MM:SS", "opt": "HH:MM[:SS]", "none": "HH:MM"}[secs])]
    if frac != "none":
        details.append(("optional fractional seconds",) if frac == "opt" else
                       ("milliseconds (.mmm)", "with .SSS millis"))
    if zone != "none":
        details.append(_ZONE_PH[zone])
    elif rng.random() < 0.3:
        details.append(("no timezone", "without a timezone"))

    def sample(r: R) -> str:
        s = "{Y}-{m}-{d}".format(**moment(r)) + (r.choice("T ") if sep == "either" else sep)
        s += f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}"
        if secs == "req" or (secs == "opt" and r.random() < 0.5):
            s += f":{r.randint(0, 59):02d}"
            if frac == "ms" or (frac == "opt" and r.random() < 0.5):
                s += "." + draw(DIG, 3 if frac == "ms" else 1, 3 if frac == "ms" else 6, r)
        if zone in ("Z", "optZ", "Zoffset") and (zone == "Z" or r.random() < 0.5):
            return s + "Z"
        if zone in ("offset", "Zoffset"):
            s += f"{r.choice('+-')}{r.randint(0, 14):02d}:{r.choice(('00', '30'))}"
        return s
    return Concept("datetime", ("ISO 8601 datetime", "timestamp", "ISO timestamp", "date-time string"), rx, sample,
                   tuple(details))


DATES = {"iso_date": c_iso_date, "date_layout": c_date_layout, "time": c_time, "datetime": c_datetime}
