"""Log-field concepts: levels, HTTP methods and status codes, key=value pairs, log timestamps, durations."""

from __future__ import annotations

from tasks.kinds.regex.concepts import DIG, LOW, QQ, WORDCH, Concept, L, Q, R, alt, draw, esc, listing, maybe

LEVELS = ("DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL", "TRACE", "CRITICAL", "NOTICE")
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MON_RX = alt(MONTHS)


def c_level(rng: R, level: int) -> Concept:
    if rng.random() < 0.2:
        opts, listed = ["DEBUG", "INFO", "WARN", "ERROR"], rng.random() < 0.5
    else:
        opts, listed = rng.sample(LEVELS, rng.randint(2, 6)), True
    case = rng.choice(("upper", "upper", "upper", "lower", "both")) if maybe(rng, level, 0.4) else "upper"
    if case == "lower":
        opts = [o.lower() for o in opts]
    shown = opts + ([o.lower() for o in opts] if case == "both" else [])
    details: list[tuple[str, ...]] = []
    if listed or case != "upper":
        lst = listing(rng, opts)
        details.append((f"one of {lst}", f"({lst})", f"that is {lst}", f"either {lst}" if len(opts) == 2 else lst))
    if case == "both":
        details.append(("in upper or lower case", "uppercase or lowercase", "accepting both upper and lower case"))
    rx = alt(shown)
    bracket = maybe(rng, level, 0.2)
    if bracket:
        rx = r"\[" + rx + r"\]"
        details.append(("in square brackets", "wrapped in [ ]", "inside brackets like [INFO]"))
    nouns = ("log level", "log severity", "severity level", "level name", "log level word")
    return Concept("log_level", nouns, rx, lambda r: ("[{}]" if bracket else "{}").format(r.choice(shown)),
                   tuple(details))


_HTTP_VERSIONS = {r"1\.[01]": ("1.0", "1.1"), r"\d\.\d": ("1.0", "1.1", "2.0", "3.0"),
                  r"(?:1\.[01]|2)": ("1.0", "1.1", "2")}


def c_method(rng: R, level: int) -> Concept:
    kind = rng.random()
    if kind < 0.15:
        opts = list(METHODS[:7])
        details: tuple = () if rng.random() < 0.5 else ((f"any of {listing(rng, opts)}",),)
        nouns = ("HTTP method", "HTTP verb", "standard HTTP request method")
    else:
        opts = rng.sample(METHODS, rng.randint(2, 5))
        details = ((f"only {listing(rng, opts)}", f"one of {listing(rng, opts)}", f"({listing(rng, opts)})",
                    f"limited to {listing(rng, opts)}"),)
        nouns = ("HTTP method", "HTTP verb", "request method")
    if kind > 0.8:  # a request line
        ver = rng.choice(tuple(_HTTP_VERSIONS))
        vs = _HTTP_VERSIONS[ver]
        path_rx, path_ph = rng.choice(((r"/\S*", "a path starting with /"), (r"/[\w/.-]*", "a /path")))
        return Concept("http_method", ("HTTP request line", "request line like GET /index.html HTTP/1.1"),
                       alt(opts) + f" {path_rx} HTTP/{ver}",
                       lambda r: f"{r.choice(opts)} /{draw(LOW + DIG + '/._-', 0, 12, r)} HTTP/{r.choice(vs)}",
                       ((f"method {listing(rng, opts)}, {path_ph}, then HTTP/{'/'.join(vs)}",),))
    return Concept("http_method", nouns, alt(opts), lambda r: r.choice(opts), details)


_CODES = ("200", "201", "202", "204", "301", "302", "304", "400", "401", "403", "404", "405", "409", "422", "429",
          "500", "502", "503", "504")
_CLASSES = (("2xx success code", "2", r"2\d{2}"), ("3xx redirect code", "3", r"3\d{2}"),
            ("4xx client error code", "4", r"4\d{2}"), ("5xx server error code", "5", r"5\d{2}"),
            ("4xx or 5xx error code", "45", r"[45]\d{2}"), ("2xx or 3xx status", "23", r"[23]\d{2}"))


def c_status(rng: R, level: int) -> Concept:
    kind = rng.random()
    nouns = ("HTTP status code", "status code", "HTTP response code", "response status")
    if kind < 0.2:
        return Concept("http_status", nouns, r"\d{3}", lambda r: draw(DIG, 3, 3, r),
                       (("any 3 digits", "any three-digit code", "three digits"),))
    if kind < 0.35:
        return Concept("http_status", nouns, r"[1-5]\d{2}", lambda r: r.choice("12345") + draw(DIG, 2, 2, r),
                       (("from 100 to 599", "between 100 and 599", "in the 1xx-5xx range"),),
                       near=(lambda r: "6" + draw(DIG, 2, 2, r),))
    if kind < 0.7:
        noun, first, rx = rng.choice(_CLASSES)
        return Concept("http_status", (noun, noun.replace("code", "status"), f"{noun} ({first[0]}xx)"), rx,
                       lambda r: r.choice(first) + draw(DIG, 2, 2, r),
                       near=(lambda r: r.choice(DIG) + draw(DIG, 2, 2, r),))
    opts = sorted(rng.sample(_CODES, rng.randint(2, 5)))
    return Concept("http_status", nouns, alt(opts), lambda r: r.choice(opts),
                   ((f"only {listing(rng, opts)}", f"that is {listing(rng, opts)}", f"one of {listing(rng, opts)}"),))


_KEYS = ("pid", "user", "code", "status", "port", "id", "host", "latency_ms", "retries", "env", "uid", "req_id",
         "session", "thread", "bytes", "duration", "level", "method", "path", "ip", "count", "trace_id", "region")
_VALUES = ((r"\d+", "a number", lambda r: draw(DIG, 1, 6, r)),
           (r"[a-z]+", "a lowercase word", lambda r: draw(LOW, 1, 8, r)),
           (r"\w+", "word characters", lambda r: draw(WORDCH, 1, 8, r)),
           (r"\S+", "anything without spaces", lambda r: draw(WORDCH + "./:-", 1, 10, r)),
           (r'"[^"]*"', "a double-quoted string", lambda r: '"' + draw(LOW + " ", 0, 10, r) + '"'),
           (r"\d+(?:\.\d+)?", "a number with optional decimals",
            lambda r: draw(DIG, 1, 4, r) + ("." + draw(DIG, 1, 3, r) if r.random() < 0.5 else "")),
           (r"(?:true|false)", "true or false", lambda r: r.choice(("true", "false"))),
           (r"[0-9a-f]+", "lowercase hex", lambda r: draw("0123456789abcdef", 4, 16, r)))
_GENERIC_KEYS = ((r"[a-z_]+", "lowercase letters and underscores", lambda r: draw(LOW + "_", 1, 8, r)),
                 (r"\w+", "word characters", lambda r: draw(WORDCH, 1, 8, r)),
                 (r"[a-zA-Z]\w*", "an identifier", lambda r: draw(LOW, 1, 1, r) + draw(WORDCH, 0, 6, r)))


def c_kv(rng: R, level: int) -> Concept:
    v_rx, v_ph, v_s = rng.choice(_VALUES)
    eq = rng.choice(("=", "=", "=", ": ", ":"))
    eq_ph = {"=": "=", ": ": ": (colon and space)", ":": ":"}[eq]
    if rng.random() < 0.3:  # generic keys, maybe several pairs
        k_rx, k_ph, k_s = rng.choice(_GENERIC_KEYS)
        pair = f"{k_rx}{esc(eq)}{v_rx}"
        details = ((f"key of {k_ph}, {Q(rng, eq)}, value {v_ph}", f"where the key is {k_ph} and the value is {v_ph}"),)
        if rng.random() < 0.4 and eq == "=":
            return Concept("key_value", ("space-separated key=value pairs", "list of key=value pairs separated by "
                                         "spaces", "logfmt-style line of key=value pairs"), f"{pair}(?: {pair})*",
                           lambda r: " ".join(k_s(r) + eq + v_s(r) for _ in range(r.randint(1, 3))), details)
        return Concept("key_value", ("key=value pair", "key/value pair", "setting line"), pair,
                       lambda r: k_s(r) + eq + v_s(r), details)
    key = rng.choice(_KEYS)
    return Concept("key_value", (f"{L(key)} field", f"{L(key + eq.strip())} field", "log field", "key-value field"),
                   esc(key + eq) + v_rx, lambda r: key + eq + v_s(r),
                   ((f"{Q(rng, key + eq)} followed by {v_ph}", f"the key {Q(rng, key)}, then {eq_ph}, then {v_ph}",
                     f"like {L(key + eq + v_s(rng))}: key {Q(rng, key)} and {v_ph} as value"),))


_TS = (("YYYY-MM-DD HH:MM:SS", r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "{Y}-{m}-{d} {H}:{M}:{S}"),
       ("YYYY-MM-DD HH:MM:SS,mmm (Python logging default)", r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}",
        "{Y}-{m}-{d} {H}:{M}:{S},{f}"),
       ("YYYY-MM-DD HH:MM:SS.mmm", r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}", "{Y}-{m}-{d} {H}:{M}:{S}.{f}"),
       ("syslog style, e.g. Jan 5 14:03:59", MON_RX + r" \d{1,2} \d{2}:\d{2}:\d{2}", "{b} {e} {H}:{M}:{S}"),
       ("nginx/Apache access-log style, e.g. 10/Oct/2000:13:55:36 -0700",
        r"\d{2}/" + MON_RX + r"/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}", "{d}/{b}/{Y}:{H}:{M}:{S} {z}"),
       ("HH:MM:SS.mmm", r"\d{2}:\d{2}:\d{2}\.\d{3}", "{H}:{M}:{S}.{f}"),
       ("YYYY/MM/DD HH:MM:SS", r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}", "{Y}/{m}/{d} {H}:{M}:{S}"))


def moment(r: R) -> dict[str, str]:
    return {"Y": str(r.randint(1970, 2039)), "y": f"{r.randint(0, 99):02d}", "m": f"{r.randint(1, 12):02d}",
            "d": f"{r.randint(1, 28):02d}", "e": str(r.randint(1, 28)), "H": f"{r.randint(0, 23):02d}",
            "M": f"{r.randint(0, 59):02d}", "S": f"{r.randint(0, 59):02d}", "f": f"{r.randint(0, 999):03d}",
            "b": r.choice(MONTHS), "z": r.choice("+-") + f"{r.randint(0, 12):02d}{r.choice(('00', '30'))}",
            "f2": f"{r.randint(0, 999):03d}", "zc": r.choice("+-") + f"{r.randint(0, 12):02d}:{r.choice(('00', '30'))}"}


_TS_DATES = (("YYYY-MM-DD", r"\d{4}-\d{2}-\d{2}", "{Y}-{m}-{d}"), ("YYYY/MM/DD", r"\d{4}/\d{2}/\d{2}", "{Y}/{m}/{d}"),
             ("DD/MM/YYYY", r"\d{2}/\d{2}/\d{4}", "{d}/{m}/{Y}"), ("MM-DD-YYYY", r"\d{2}-\d{2}-\d{4}", "{m}-{d}-{Y}"))
_TS_FRACS = (("", "", ""), (",mmm", r",\d{3}", ",{f}"), (".mmm", r"\.\d{3}", ".{f}"),
             (".ffffff", r"\.\d{6}", ".{f}{f2}"))
_TS_ZONES = (("", "", ""), ("Z", "Z", "Z"), (" +hhmm", r" [+-]\d{4}", " {z}"), ("+hh:mm", r"[+-]\d{2}:\d{2}", "{zc}"))
_BRACKETS = (("", ""), ("", ""), ("[", "]"), ("(", ")"))


def c_log_ts(rng: R, level: int) -> Concept:
    roll = rng.random()
    if roll < 0.15:
        n, noun = rng.choice(((10, "Unix timestamp in seconds"), (13, "Unix timestamp in milliseconds"),
                              (10, "epoch seconds value")))
        return Concept("log_timestamp", (noun, f"{n}-digit epoch timestamp"), rf"\d{{{n}}}",
                       lambda r: str(r.randint(10 ** (n - 1), 10 ** n - 1)))
    if roll < 0.45:
        fmt, rx, tpl = rng.choice(_TS)
    else:  # a layout assembled from its parts: date, separator, time, fraction, zone
        (d_f, d_rx, d_t), sep = rng.choice(_TS_DATES), rng.choice((" ", " ", "T"))
        (f_f, f_rx, f_t), (z_f, z_rx, z_t) = rng.choice(_TS_FRACS), rng.choice(_TS_ZONES) if level > 1 else _TS_ZONES[0]
        fmt = d_f + sep + "HH:MM:SS" + f_f + z_f
        rx, tpl = d_rx + sep + r"\d{2}:\d{2}:\d{2}" + f_rx + z_rx, d_t + sep + "{H}:{M}:{S}" + f_t + z_t
    o, c = rng.choice(_BRACKETS) if maybe(rng, level, 0.4) else ("", "")
    details = [(f"formatted {L(fmt)}", f"in the form {L(fmt)}", f"({L(fmt)})")]
    if o:
        details.append((f"inside {'square brackets' if o == '[' else 'parentheses'}", f"wrapped in {L(o + ' ' + c)}"))
    return Concept("log_timestamp", ("log timestamp", "timestamp at the start of a log line", "log time field"),
                   esc(o) + rx + esc(c), lambda r: o + tpl.format(**moment(r)) + c, tuple(details))


_UNITS = ("ms", "s", "m", "h", "us", "ns", "d")
_AMOUNTS = ((r"\d+", "a whole number", lambda r: draw(DIG, 1, 4, r)),
            (r"\d+(?:\.\d+)?", "a number with optional decimals",
             lambda r: draw(DIG, 1, 3, r) + ("." + draw(DIG, 1, 2, r) if r.random() < 0.5 else "")),
            (r"\d+\.\d+", "a decimal number", lambda r: draw(DIG, 1, 3, r) + "." + draw(DIG, 1, 3, r)))


def c_duration(rng: R, level: int) -> Concept:
    units = rng.sample(_UNITS, rng.randint(1, 4))
    n_rx, n_ph, n_s = rng.choice(_AMOUNTS)
    space = rng.choice(("", "", " ?"))
    rx = n_rx + space + (esc(units[0]) if len(units) == 1 else alt(units))
    details = [(f"{n_ph} followed by {listing(rng, units)}", f"{n_ph} and a unit ({listing(rng, units)})")]
    if space:
        details.append(("optional space before the unit", "with or without a space before the unit"))
    return Concept("duration", ("duration", "latency value", "elapsed time", "timeout value", "response time"), rx,
                   lambda r: n_s(r) + (" " if space and r.random() < 0.5 else "") + r.choice(units), tuple(details))


_PROGRAMS = ("app", "nginx", "sshd", "kernel", "cron", "systemd", "dockerd", "postfix", "haproxy", "sudo", "CRON",
             "kubelet", "named", "dhclient", "smtpd", "java", "node", "gunicorn", "celery", "redis")
_THREADS = ("worker", "thread", "pool-1-thread", "main", "http-nio-8080-exec", "Thread", "task", "consumer")
_REQ_IDS = ("req-", "trace-", "span-", "rid=", "request_id=", "txn-", "corr-", "X-Request-ID: ")


def c_bracket(rng: R, level: int) -> Concept:
    kind = rng.randrange(4)
    if kind == 0:
        name = rng.choice(_THREADS)
        if rng.random() < 0.5:
            return Concept("bracket_field", (f"thread name like {L('[' + name + '-3]')}", "numbered thread name"),
                           r"\[" + esc(name) + r"-\d+\]", lambda r: f"[{name}-{draw(DIG, 1, 3, r)}]",
                           ((f"{Q(rng, name + '-')} and a number inside square brackets",),))
        return Concept("bracket_field", ("thread name in square brackets", "bracketed thread name like [main]"),
                       r"\[[\w-]+\]", lambda r: "[" + draw(WORDCH + "-", 1, 10, r) + "]",
                       (("letters, digits, underscores or dashes inside", "word characters or dashes inside"),))
    if kind == 1:
        lo, hi = rng.choice(((1, None), (1, 5), (1, 7), (2, 6), (3, 5)))
        q = "+" if hi is None else f"{{{lo},{hi}}}"
        return Concept("bracket_field", ("process id in square brackets", "pid in brackets like [1234]"),
                       r"\[\d" + q + r"\]", lambda r: f"[{draw(DIG, lo, hi or 6, r)}]",
                       () if hi is None else ((f"{lo} to {hi} digits", f"a {lo}-{hi} digit pid"),))
    if kind == 2:
        name = rng.choice(_PROGRAMS)
        return Concept("bracket_field", (f"{L(name)} tag with a pid like {L(name + '[123]:')}", "program[pid] tag"),
                       esc(name) + r"\[\d+\]:", lambda r: f"{name}[{draw(DIG, 1, 6, r)}]:",
                       ((f"{Q(rng, name)}, a pid in brackets, then a colon",),))
    pre = rng.choice(_REQ_IDS)
    lo = rng.choice((6, 8, 12, 16, 32))
    hi = lo if rng.random() < 0.5 else lo + rng.choice((2, 4, 8))
    cls, ph, chars = rng.choice((("[0-9a-f]", "lowercase hex chars", "0123456789abcdef"),
                                 ("[a-zA-Z0-9]", "alphanumeric chars", DIG + LOW + LOW.upper())))
    n_ph = f"{lo}" if lo == hi else f"{lo} to {hi}"
    return Concept("bracket_field", ("request id", "trace id field", "correlation id"),
                   esc(pre) + cls + (f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"),
                   lambda r: pre + draw(chars, lo, hi, r), ((f"{QQ(rng, pre)} plus {n_ph} {ph}",),))


LOG_FIELDS = {"log_level": c_level, "http_method": c_method, "http_status": c_status, "key_value": c_kv,
              "log_timestamp": c_log_ts, "duration": c_duration, "bracket_field": c_bracket}
