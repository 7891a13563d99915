"""Network concepts: IPv4/IPv6/MAC addresses, ports, domain names, e-mail addresses, URLs and file paths."""

from __future__ import annotations

from tasks.kinds.regex.concepts import (
    ALNUM,
    DIG,
    HEXL,
    HEXU,
    LOW,
    UP,
    WORDCH,
    Concept,
    L,
    Q,
    R,
    Sampler,
    alt,
    draw,
    esc,
    listing,
    maybe,
)

OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"


def _octet(r: R) -> str:
    return str(r.choice((r.randint(0, 9), r.randint(10, 99), r.randint(100, 255), 255, 0)))


def _ip(r: R) -> str:
    return ".".join(_octet(r) for _ in range(4))


def c_ipv4(rng: R, level: int) -> Concept:
    strict = maybe(rng, level, 0.3)
    base = OCTET + r"(?:\." + OCTET + "){3}" if strict else r"\d{1,3}(?:\.\d{1,3}){3}"
    details: list[tuple[str, ...]] = []
    nouns = ("IPv4 address", "IP address", "IPv4", "dotted-quad IP address", "IPv4 address like 192.168.0.1")
    near = [lambda r: ".".join(_octet(r) for _ in range(3)), lambda r: _ip(r) + "."]
    if strict:
        details.append(("each octet 0-255", "octets limited to 0..255", "valid octets only (0 to 255)",
                        "that rejects numbers above 255"))
        near.append(lambda r: f"{r.randint(256, 999)}.{_octet(r)}.{_octet(r)}.{_octet(r)}")
    suffix = rng.choice(("", "", "", "port", "opt_port", "cidr", "opt_cidr")) if maybe(rng, level, 0.5) else ""
    tail, tail_s = "", (lambda r: "")
    if suffix in ("port", "opt_port"):
        tail, tail_s = r":\d{1,5}", (lambda r: ":" + str(r.randint(1, 65535)))
        details.append(("with a port (:1-5 digits)", "followed by a colon and a port number", "plus :port")
                       if suffix == "port" else
                       ("optional :port", "with an optional port after a colon", "port optional (:8080)"))
    elif suffix:
        tail, tail_s = r"/\d{1,2}", (lambda r: "/" + str(r.randint(0, 32)))
        details.append(("in CIDR notation (/prefix length of 1-2 digits)", "with a /nn prefix length",
                        "followed by a slash and a 1-2 digit mask") if suffix == "cidr" else
                       ("optional /nn CIDR suffix", "with an optional /prefix length"))
    if suffix.startswith("opt"):
        tail, inner = f"(?:{tail})?", tail_s
        tail_s = lambda r: inner(r) if r.random() < 0.5 else ""  # noqa: E731
    if not strict and not suffix and rng.random() < 0.45:  # a subnet: its fixed leading octets, the rest free
        k = rng.choice((1, 2, 2, 3, 3))
        fixed = rng.choice(("10", "192.168", "172.16", "127", "10.0", "192.168.0", "192.168.1")) \
            if rng.random() < 0.4 else ".".join(str(rng.randint(1, 254)) for _ in range(k))
        k = 4 - fixed.count(".") - 1
        cidr = f"{fixed}{'.0' * k}/{8 * (4 - k)}"
        return Concept("ipv4", (f"IP address in {L(cidr)}", f"address in the {L(cidr)} subnet", f"{L(fixed)}.x address",
                                "IPv4 address in our subnet"), esc(fixed) + rf"(?:\.\d{{1,3}}){{{k}}}",
                       lambda r: fixed + "".join("." + _octet(r) for _ in range(k)),
                       ((f"starting with {Q(rng, fixed + '.')}", f"i.e. {L(fixed)} followed by {k} more octet(s)"),))
    return Concept("ipv4", nouns, base + tail, lambda r: _ip(r) + tail_s(r), tuple(details), tuple(near))


def c_ipv6(rng: R, level: int) -> Concept:
    h, chars, case_ph = rng.choice((("[0-9a-fA-F]", HEXL + "ABCDEF", ()),
                                    ("[0-9a-f]", HEXL, (("lowercase hex", "in lowercase"),)),
                                    ("[0-9A-F]", HEXU, (("uppercase hex", "in uppercase"),))))
    lo = rng.choice((1, 1, 4))
    q, n = ("{1,4}", "1 to 4") if lo == 1 else ("{4}", "4")
    if rng.random() < 0.35:  # a prefix: link-local, documentation or a network's own first group(s)
        pre = rng.choice(("fe80", "2001:db8", "fd00", "2a02")) if rng.random() < 0.4 else \
            ":".join(draw(HEXL if h != "[0-9A-F]" else HEXU, 4, 4, rng) for _ in range(rng.randint(1, 3)))
        k = 7 - pre.count(":")
        return Concept("ipv6", (f"IPv6 address in {L(pre + '::/' + str(16 * (8 - k)))}", "IPv6 address",
                                f"IPv6 address under the {L(pre)} prefix"), esc(pre) + f"(?::{h}{q}){{{k}}}",
                       lambda r: pre + "".join(":" + draw(chars, lo, 4, r) for _ in range(k)),
                       ((f"starting with {Q(rng, pre + ':')}, then {k} groups of {n} hex digits, full form",),)
                       + tuple(case_ph))
    details = [(f"full form, 8 groups of {n} hex digits", f"eight colon-separated groups of {n} hex digits",
                f"uncompressed (no :: shorthand), groups of {n} hex digits")] + list(case_ph)
    return Concept("ipv6", ("IPv6 address", "IPv6", "uncompressed IPv6 address"), f"{h}{q}(?::{h}{q}){{7}}",
                   lambda r: ":".join(draw(chars, lo, 4, r) for _ in range(8)), tuple(details),
                   near=(lambda r: ":".join(draw(chars, 1, 4, r) for _ in range(7)),))


_MAC_CASES = {"any": ("[0-9a-fA-F]", HEXL + "ABCDEF"), "lower": ("[0-9a-f]", HEXL), "upper": ("[0-9A-F]", HEXU)}


def c_mac(rng: R, level: int) -> Concept:
    case = rng.choice(("any", "any", "lower", "upper"))
    h, chars = _MAC_CASES[case]
    details: list[tuple[str, ...]] = []
    if case != "any":
        details.append((f"{case}case hex", f"in {case}case", f"{case}case only"))
    elif rng.random() < 0.3:
        details.append(("any case", "upper or lower case hex"))
    sep = rng.choice((":", ":", "-", "either", "cisco", "none")) if maybe(rng, level, 0.6) else ":"
    if sep in ":-" and rng.random() < 0.35:  # a vendor's OUI: the first three pairs fixed
        oui = sep.join(draw(chars if case != "any" else HEXU, 2, 2, rng) for _ in range(3))
        return Concept("mac", (f"MAC address from vendor prefix {L(oui)}", f"MAC address with OUI {L(oui)}",
                               "MAC address of our devices"), esc(oui) + f"(?:{sep}{h}{{2}}){{3}}",
                       lambda r: oui + "".join(sep + draw(chars, 2, 2, r) for _ in range(3)),
                       ((f"starting with {Q(rng, oui)}, then three more {'colon' if sep == ':' else 'dash'}-separated"
                         " hex pairs",),) + tuple(details))
    if sep == "cisco":
        return Concept("mac", ("Cisco-style MAC address", "MAC address in dotted form like 0011.2233.4455"),
                       f"{h}{{4}}(?:\\.{h}{{4}}){{2}}", lambda r: ".".join(draw(chars, 4, 4, r) for _ in range(3)),
                       tuple(details) + (("three groups of 4 hex digits separated by dots",),))
    if sep == "none":
        return Concept("mac", ("MAC address without separators", "bare MAC address"), f"{h}{{12}}",
                       lambda r: draw(chars, 12, 12, r), tuple(details) + (("12 hex digits", "just 12 hex chars"),))
    if sep == "either":
        details.append(("colon or dash separated", "using colons or dashes", "with : or - between the pairs"))
        return Concept("mac", ("MAC address", "hardware address", "MAC"), f"{h}{{2}}(?:[:-]{h}{{2}}){{5}}",
                       lambda r: "".join(draw(chars, 2, 2, r) + (r.choice(":-") if i < 5 else "") for i in range(6)),
                       tuple(details))
    if sep == "-" or rng.random() < 0.3:
        word = "dash" if sep == "-" else "colon"
        details.append((f"separated by {word}es" if word == "dash" else "separated by colons", f"{word}-separated"))
    return Concept("mac", ("MAC address", "MAC", "hardware (MAC) address", "network card MAC address"),
                   f"{h}{{2}}(?:{sep}{h}{{2}}){{5}}", lambda r: sep.join(draw(chars, 2, 2, r) for _ in range(6)),
                   tuple(details), near=(lambda r: sep.join(draw(chars, 2, 2, r) for _ in range(5)),))


PORT_STRICT = r"(?:6553[0-5]|655[0-2]\d|65[0-4]\d{2}|6[0-4]\d{3}|[1-5]\d{4}|[1-9]\d{0,3})"
_HOSTS = ((r"[\w.-]+", "a hostname (letters, digits, dots, dashes, underscores)",
           lambda r: draw(LOW, 1, 8, r) + r.choice(("", ".local", ".example.com"))),
          ("localhost", "localhost", lambda r: "localhost"),
          (r"\d{1,3}(?:\.\d{1,3}){3}", "an IPv4 address", _ip),
          (r"[a-z0-9.-]+", "a lowercase host name",
           lambda r: draw(LOW + DIG, 1, 8, r) + r.choice(("", ".internal", ".lan"))))
_PORTS = ((r"\d{1,5}", "a 1-5 digit port", 1, 65535), (r"\d+", "a numeric port", 1, 99999),
          (r"\d{4,5}", "a 4 or 5 digit port", 1000, 65535))


def c_port(rng: R, level: int) -> Concept:
    kind = rng.random()
    if kind < 0.3:
        return Concept("port", ("port number", "TCP port", "port"), r"\d{1,5}", lambda r: str(r.randint(0, 65535)),
                       (("1 to 5 digits", "up to five digits"),) if rng.random() < 0.6 else ())
    if kind < 0.5:
        return Concept("port", ("valid port number", "TCP/UDP port"), PORT_STRICT, lambda r: str(r.randint(1, 65535)),
                       (("from 1 to 65535", "in the range 1-65535", "between 1 and 65535, no leading zeros"),),
                       near=(lambda r: str(r.randint(65536, 99999)), lambda r: "0" + str(r.randint(1, 999))))
    if kind < 0.65:  # a band of ports: its leading digits fixed ("8000-8999")
        n = rng.choice((4, 4, 5))
        lead = str(rng.randint(1, 9)) + draw(DIG, rng.randint(0, 1), 1, rng) if n == 4 else str(rng.randint(1, 5))
        lo, hi = lead + "0" * (n - len(lead)), lead + "9" * (n - len(lead))
        return Concept("port", ("port number", "port", "port in our range"), esc(lead) + rf"\d{{{n - len(lead)}}}",
                       lambda r: lead + draw(DIG, n - len(lead), n - len(lead), r),
                       ((f"from {lo} to {hi}", f"between {lo} and {hi}", f"in the {lo}-{hi} range"),))
    host, host_ph, host_s = rng.choice(_HOSTS)
    p_rx, p_ph, lo, hi = rng.choice(_PORTS)
    opt = maybe(rng, level, 0.2)
    return Concept("port", ("host:port pair", "host and port", "address with port"),
                   host + (f"(?::{p_rx})?" if opt else f":{p_rx}"),
                   lambda r: host_s(r) + ("" if opt and r.random() < 0.4 else f":{r.randint(lo, hi)}"),
                   ((f"{host_ph}, a colon and {p_ph}" + (" (the port part optional)" if opt else ""),),))


TLDS = ("com", "org", "net", "io", "dev", "edu", "gov", "de", "uk", "co", "app", "ai")
DOMAINS = ("example.com", "acme.io", "company.org", "corp.local", "uni.edu", "mysite.net", "gmail.com",
           "shop.de", "internal.dev", "github.com")
_LABELS = ((r"[a-z0-9]+(?:-[a-z0-9]+)*", "lowercase letters, digits and inner hyphens",
            lambda r: draw(LOW + DIG, 1, 6, r) + (("-" + draw(LOW, 1, 4, r)) if r.random() < 0.3 else "")),
           (r"[a-z0-9-]+", "lowercase letters, digits or hyphens", lambda r: draw(LOW + DIG + "-", 1, 8, r)),
           (r"[a-zA-Z0-9-]+", "letters, digits or hyphens", lambda r: draw(ALNUM + "-", 1, 8, r)))
_TLD_RULES = (("[a-z]{2,}", "TLD of 2+ letters"), ("[a-z]{2,6}", "a 2-6 letter TLD"),
              ("[a-zA-Z]{2,}", "a TLD of at least two letters"))


def c_domain(rng: R, level: int) -> Concept:
    lab_rx, lab_ph, lab_s = rng.choice(_LABELS)
    kind = rng.random()
    if kind < 0.35:
        dom = rng.choice(DOMAINS)
        many = rng.random() < 0.5
        rx = (f"(?:{lab_rx}\\.)+" if many else f"{lab_rx}\\.") + esc(dom)
        return Concept("domain", (f"subdomain of {L(dom)}", f"host under {L(dom)}", f"{L('*.' + dom)} hostname"), rx,
                       lambda r: ".".join(lab_s(r) for _ in range(r.randint(1, 2) if many else 1)) + "." + dom,
                       ((f"labels of {lab_ph}" + (", one or more levels" if many else ", exactly one level"),),))
    if kind < 0.65:
        tlds = rng.sample(TLDS, rng.randint(1, 4))
        if len(tlds) == 1:
            t_rx, t_ph = esc(tlds[0]), f"ending in {Q(rng, '.' + tlds[0])}"
        else:
            t_rx, t_ph = alt(tlds), f"with TLD {listing(rng, tlds)}"
        tld_s: Sampler = lambda r: r.choice(tlds)  # noqa: E731
    else:
        t_rx, t_ph = rng.choice(_TLD_RULES)
        tld_s = lambda r: draw(LOW, 2, 6, r)  # noqa: E731
    sub = rng.random() < 0.6
    rx = (f"(?:{lab_rx}\\.)+" if sub else f"{lab_rx}\\.") + t_rx
    labels = (f"labels made of {lab_ph}", f"{lab_ph} in each label") if rng.random() < 0.5 else (lab_ph,)
    subs = ("subdomains allowed", "any number of subdomains") if sub else ("a single label before the TLD",
                                                                           "no subdomains")
    return Concept("domain", ("domain name", "hostname", "fully qualified domain name", "domain"), rx,
                   lambda r: ".".join(lab_s(r) for _ in range(r.randint(1, 3) if sub else 1)) + "." + tld_s(r),
                   ((t_ph,), labels, subs), near=(lambda r: "." + lab_s(r) + ".com",))


_LOCALS = ((r"[\w.+-]+", "letters, digits, dots, underscores, plus or minus", WORDCH + ".+-"),
           (r"[a-z0-9._%+-]+", "lowercase letters, digits and ._%+-", LOW + DIG + "._%+-"),
           (r"[a-zA-Z0-9._]+", "letters, digits, dots and underscores", ALNUM + "._"),
           (r"[a-z0-9.]+", "lowercase letters, digits and dots", LOW + DIG + "."),
           (r"[a-z]+\.[a-z]+", "firstname.lastname in lowercase", ""))
_MAIL_DOMAINS = ((r"@[\w.-]+\.[a-zA-Z]{2,}", "a domain with a TLD of 2+ letters",
                  lambda r: "@" + draw(LOW, 1, 8, r) + "." + draw(LOW, 2, 4, r)),
                 (r"@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}", "a lowercase domain and a 2+ letter TLD",
                  lambda r: "@" + draw(LOW + DIG, 1, 8, r) + "." + draw(LOW, 2, 4, r)),
                 (r"@[a-z0-9-]+\.(?:com|org|net)", "a .com, .org or .net domain",
                  lambda r: "@" + draw(LOW, 1, 8, r) + "." + r.choice(("com", "org", "net"))))


def c_email(rng: R, level: int) -> Concept:
    loc_rx, loc_ph, loc_chars = rng.choice(_LOCALS)

    def loc_s(r: R) -> str:
        return draw(LOW, 2, 6, r) + "." + draw(LOW, 2, 8, r) if not loc_chars else draw(loc_chars, 1, 10, r)
    details: list[tuple[str, ...]] = []
    if rng.random() < 0.35:
        dom = rng.choice(DOMAINS)
        d_rx, d_s = "@" + esc(dom), (lambda r: "@" + dom)
        nouns = (f"e-mail address at {L(dom)}", f"{L('@' + dom)} email address", f"company email on {L(dom)}")
    else:
        d_rx, d_ph, d_s = rng.choice(_MAIL_DOMAINS)
        nouns = ("email address", "e-mail address", "email", "simple email address")
        if level > 1 or rng.random() < 0.5:
            details.append((f"domain part: {d_ph}", f"with {d_ph}"))
    if level > 1 or not loc_chars or rng.random() < 0.4:
        details.insert(0, (f"local part of {loc_ph}", f"where the part before @ is {loc_ph}"))
    return Concept("email", nouns, loc_rx + d_rx, lambda r: loc_s(r) + d_s(r), tuple(details),
                   near=(lambda r: loc_s(r) + "@" + draw(LOW, 1, 5, r), lambda r: loc_s(r) + d_s(r).replace("@", "")))


_SCHEMES = {("http", "https"): "https?", ("https",): "https", ("http", "https", "ftp"): "(?:https?|ftp)",
            ("ws", "wss"): "wss?"}
_URL_HOSTS = ((r"[\w.-]+", lambda r: draw(LOW, 1, 8, r) + ".com"),
              (r"[a-z0-9.-]+\.[a-z]{2,}", lambda r: draw(LOW, 1, 8, r) + "." + draw(LOW, 2, 3, r)))


def c_url(rng: R, level: int) -> Concept:
    schemes = rng.choice(tuple(_SCHEMES))
    details = [(f"scheme {listing(rng, schemes)}", f"starting with {listing(rng, [s + '://' for s in schemes])}")]
    if rng.random() < 0.3:
        host = rng.choice(DOMAINS)
        h_rx, h_s = esc(host), (lambda r: host)
        nouns = (f"link to {L(host)}", f"{L(host)} URL", f"URL on {L(host)}")
    else:
        h_rx, h_s = rng.choice(_URL_HOSTS)
        nouns = ("URL", "web address", "link", "http URL")
    port = maybe(rng, level, 0.15)
    path = rng.choice(("none", "opt", "opt", "req"))
    rx = _SCHEMES[schemes] + "://" + h_rx + (r"(?::\d+)?" if port else "")
    if port:
        details.append(("optional :port", "with an optional port number"))
    if path == "opt":
        rx += r"(?:/\S*)?"
        details.append(("optional path", "with an optional path (no spaces)", "path optional"))
    elif path == "req":
        rx += r"/\S*"
        details.append(("with a path after the host", "followed by / and a path without spaces"))
    else:
        details.append(("host only, no path", "just the scheme and host"))

    def sample(r: R) -> str:
        s = r.choice(schemes) + "://" + h_s(r) + (f":{r.randint(1, 9999)}" if port and r.random() < 0.4 else "")
        if path == "req" or (path == "opt" and r.random() < 0.6):
            s += "/" + draw(LOW + DIG + "/._-?=&", 0, 14, r)
        return s
    return Concept("url", nouns, rx, sample, tuple(details), near=(lambda r: r.choice(schemes) + ":/" + h_s(r),))


_EXTS = (("log",), ("txt",), ("conf",), ("yaml", "yml"), ("json",), ("csv",), ("py",), ("sh",), ("gz",), ("ini",))
_DIRS = ("/var/log/", "/etc/", "/home/", "/tmp/", "/opt/app/", "/usr/local/bin/", "/srv/data/")
_SEGMENTS = ((r"[\w.-]+", "letters, digits, dots, underscores or dashes", lambda r: draw(WORDCH + ".-", 1, 8, r)),
             (r"[a-z0-9_]+", "lowercase letters, digits or underscores", lambda r: draw(LOW + DIG + "_", 1, 8, r)),
             (r"[^/ ]+", "anything but slashes and spaces", lambda r: draw(ALNUM + ".-_~", 1, 8, r)))


def c_path(rng: R, level: int) -> Concept:
    kind = rng.random()
    seg, seg_ph, seg_s = rng.choice(_SEGMENTS)
    if kind < 0.4:
        return Concept("path", ("absolute Unix path", "Linux file path", "absolute POSIX path"), f"(?:/{seg})+",
                       lambda r: "".join("/" + seg_s(r) for _ in range(r.randint(1, 4))),
                       ((f"one or more /segments of {seg_ph}", f"segments made of {seg_ph}"),),
                       near=(lambda r: seg_s(r) + "/" + seg_s(r), lambda r: "/" + seg_s(r) + "//" + seg_s(r)))
    if kind < 0.65:
        d, exts = rng.choice(_DIRS), rng.choice(_EXTS)
        e_rx = esc(exts[0]) if len(exts) == 1 else alt(exts)
        sub = rng.random() < 0.4
        where = ((f"inside {Q(rng, d)} or its subfolders", f"anywhere below {Q(rng, d)}") if sub else
                 (f"inside {Q(rng, d)} (no subfolders)", f"directly in {Q(rng, d)}"))
        return Concept("path", (f"path to a .{exts[0]} file under {L(d)}", f"{L(d)} file path", "file path"),
                       esc(d) + (f"(?:{seg}/)*" if sub else "") + seg + r"\." + e_rx,
                       lambda r: d + ("".join(seg_s(r) + "/" for _ in range(r.randint(0, 2))) if sub else "")
                       + seg_s(r) + "." + r.choice(exts),
                       (where, (f"ending in .{listing(rng, exts)}", f"with extension {listing(rng, exts)}"),
                        (f"file name of {seg_ph}",)))
    if kind < 0.85:
        w = r"[\w .-]+"
        return Concept("path", ("Windows file path", "Windows path like C:\\Users\\me\\file.txt", "DOS-style path"),
                       r"[A-Za-z]:\\(?:" + w + r"\\)*" + w,
                       lambda r: r.choice(UP) + ":\\" + "\\".join(draw(ALNUM + " ._-", 1, 8, r).strip() or "x"
                                                                   for _ in range(r.randint(1, 3))),
                       (("drive letter, colon, backslash-separated folders",
                         "a drive letter and backslash-separated names (letters, digits, spaces, dots, dashes)"),))
    return Concept("path", ("relative path", "relative Unix path like src/main.py"), f"{seg}(?:/{seg})*",
                   lambda r: "/".join(seg_s(r) for _ in range(r.randint(1, 4))),
                   ((f"slash-separated names of {seg_ph}, no leading slash",),))


NETWORK = {"ipv4": c_ipv4, "ipv6": c_ipv6, "mac": c_mac, "port": c_port, "domain": c_domain, "email": c_email,
           "url": c_url, "path": c_path}
