"""Static analysis of one regex, shared by validation and evaluation (pure functions, no processes).

Everything here works on Python's own parse tree (``re._parser``), which also reads the RE2 syntax our
domains allow. Character classes are bitmasks over ASCII plus one stand-in for "any other character", with
``\\d``/``\\w``/``\\s`` read as ASCII (the same view ``interegular`` takes), so ``\\d`` and ``[0-9]`` are one
class. That is the dialect's meaning, not an approximation: the python dialect is Python ``re`` with
``re.ASCII`` (``PY_FLAGS``; the worker compiles with it, and a pattern asking for ``(?u)`` does not compile),
and RE2's classes are ASCII by definition, so validation, dedup, equivalence and scoring agree on
non-ASCII digits, letters and spaces. The pieces:

- ``style_reasons``: house-style rules (anchoring convention, lookaround, backreferences, class spelling).
- ``redos_static``: super-linear backtracking under *full-match* semantics. A repeat ``X{m,n}`` (unbounded,
  or bounded at >= ``BOUNDED_RISK``) is ambiguous when ``X`` can match the empty string, when two of its
  alternatives can start with the same character, or when a variable-width repeat at ``X``'s edge can hand
  characters to the next iteration (``(a+)+``, ``(\\w+\\s?)*``, ``(.*a){12}``). Full match means a failing
  suffix always exists, so every such ambiguity is exploitable; ``regexploit`` on ``(?:P)$`` adds the
  polynomial (three overlapping stars) cases.
- ``attack_strings``: a prefix that reaches each risky repeat, its body pumped, and a killer suffix.
- ``canonical``/``features``: a normalised spelling (sorted alternatives, folded runs, classes as sets) and
  length bounds, the cheap keys semantic dedup buckets on before any DFA is built.
- ``witness_strings``: strings a pattern matches or nearly matches, used as behavioural probes.
"""

from __future__ import annotations

import functools
import re
import warnings
from re import _constants as C  # noqa: N812 - the stdlib's own parse-tree constants
from re import _parser

PY_FLAGS = re.ASCII  # the python dialect: \d = [0-9], \w = [a-zA-Z0-9_], \s = ASCII whitespace
MAXREPEAT = C.MAXREPEAT
BOUNDED_RISK = 4  # a bounded repeat {m,n} with n >= this is treated like a star for ambiguity
OTHER = 128  # bit standing for every non-ASCII character
FULL = (1 << 129) - 1
_REPEATS = (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT)


def _mask(pred) -> int:
    return sum(1 << i for i in range(128) if pred(chr(i)))


DIGIT = _mask(str.isdigit)
WORD = _mask(lambda c: c.isalnum() or c == "_")
SPACE = _mask(lambda c: c in " \t\n\r\f\v")
_CATS = {C.CATEGORY_DIGIT: DIGIT, C.CATEGORY_NOT_DIGIT: FULL & ~DIGIT, C.CATEGORY_WORD: WORD,
         C.CATEGORY_NOT_WORD: FULL & ~WORD, C.CATEGORY_SPACE: SPACE, C.CATEGORY_NOT_SPACE: FULL & ~SPACE}
_ANY = FULL & ~(1 << 10)  # "." without DOTALL
_REP_CHARS = "aA0 _-.:/!@#"  # preferred representatives, in order


def parse(regex: str):
    """The stdlib parse tree with the dialect's ASCII flag (raises ``re.error``, or ``ValueError`` for ``(?u)``);
    used for RE2 patterns too (same syntax for our subset)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _parser.parse(regex, PY_FLAGS)


def _data(seq):
    """The node list of a parse tree (iterating a SubPattern itself goes through a slow __getitem__)."""
    return seq.data if hasattr(seq, "data") else seq


_CLASS_CACHE: dict[tuple, int] = {}


def class_mask(items) -> int:
    key = tuple(items)
    m = _CLASS_CACHE.get(key)
    if m is None:
        if len(_CLASS_CACHE) > 50_000:
            _CLASS_CACHE.clear()
        m = _CLASS_CACHE[key] = _class_mask(items)
    return m


def _class_mask(items) -> int:
    m, neg = 0, False
    for op, av in items:
        if op is C.NEGATE:
            neg = True
        elif op is C.LITERAL:
            m |= 1 << (av if av < 128 else OTHER)
        elif op is C.RANGE:
            lo, hi = av
            if lo < 128:
                m |= (1 << (min(hi, 127) + 1)) - (1 << lo)
            if hi >= 128:
                m |= 1 << OTHER
        elif op is C.CATEGORY:
            m |= _CATS.get(av, FULL)
    return FULL & ~m if neg else m


def atom_mask(op, av) -> int | None:
    """The character set of a single-character node, or None if the node is not one."""
    if op is C.LITERAL:
        return 1 << (av if av < 128 else OTHER)
    if op is C.NOT_LITERAL:
        return FULL & ~(1 << (av if av < 128 else OTHER))
    if op is C.ANY:
        return _ANY
    if op is C.IN:
        return class_mask(av)
    return None


_REP_CACHE: dict[int, str] = {}


def rep_char(mask: int) -> str:
    c = _REP_CACHE.get(mask)
    if c is None:
        c = _REP_CACHE[mask] = _rep_char(mask)
    return c


def _rep_char(mask: int) -> str:
    for c in _REP_CHARS:
        if mask >> ord(c) & 1:
            return c
    for i in range(33, 127):
        if mask >> i & 1:
            return chr(i)
    for i in range(129):
        if mask >> i & 1:
            return chr(i) if i < 128 else "\u00e9"
    return ""


# ------------------------------------------------------------------------------------------ tree facts
def _children(op, av):
    if op is C.SUBPATTERN:
        return [av[3]]
    if op in _REPEATS:
        return [av[2]]
    if op is C.BRANCH:
        return list(av[1])
    if op is C.ATOMIC_GROUP:
        return [av]
    if op in (C.ASSERT, C.ASSERT_NOT):
        return [av[1]]
    if op is C.GROUPREF_EXISTS:
        return [b for b in av[1:] if b is not None]
    return []


def _memo(name: str):
    """Cache a per-subtree fact on the parse-tree object itself (trees are parsed once per regex)."""
    def deco(fn):
        def wrapper(seq):
            try:
                return seq.__dict__[name]
            except (KeyError, AttributeError):
                value = fn(seq)
                if hasattr(seq, "__dict__"):
                    seq.__dict__[name] = value
                return value
        wrapper.__name__ = fn.__name__
        wrapper.__doc__ = fn.__doc__
        return wrapper
    return deco


def _walk(seq):
    for op, av in _data(seq):
        yield op, av
        for child in _children(op, av):
            yield from _walk(child)


@_memo("_lf_walk")
def walk(seq) -> list:
    """Every (op, av) node of the tree, depth first."""
    return list(_walk(seq))


@_memo("_lf_nullable")
def nullable(seq) -> bool:
    return all(_node_nullable(op, av) for op, av in _data(seq))


def _node_nullable(op, av) -> bool:
    if atom_mask(op, av) is not None:
        return False
    if op in _REPEATS:
        return av[0] == 0 or nullable(av[2])
    if op is C.SUBPATTERN:
        return nullable(av[3])
    if op is C.ATOMIC_GROUP:
        return nullable(av)
    if op is C.BRANCH:
        return any(nullable(b) for b in av[1])
    if op is C.GROUPREF:
        return True  # unknown: be conservative for ambiguity
    return True  # AT, ASSERT, ASSERT_NOT, GROUPREF_EXISTS


@_memo("_lf_first")
def first(seq) -> int:
    m = 0
    for op, av in _data(seq):
        m |= _node_first(op, av)
        if not _node_nullable(op, av):
            break
    return m


@_memo("_lf_last")
def last(seq) -> int:
    m = 0
    for op, av in reversed(_data(seq)):
        m |= _node_last(op, av)
        if not _node_nullable(op, av):
            break
    return m


def _node_first(op, av, edge=first) -> int:
    a = atom_mask(op, av)
    if a is not None:
        return a
    if op in _REPEATS:
        return edge(av[2]) if av[1] else 0
    if op is C.SUBPATTERN:
        return edge(av[3])
    if op is C.ATOMIC_GROUP:
        return edge(av)
    if op is C.BRANCH:
        m = 0
        for b in av[1]:
            m |= edge(b)
        return m
    if op is C.GROUPREF:
        return FULL
    return 0


def _node_last(op, av) -> int:
    return _node_first(op, av, last)


def alphabet(seq) -> int:
    """Every character some node can consume (equal for equivalent patterns whose parts can all match)."""
    m = 0
    for op, av in walk(seq):
        a = atom_mask(op, av)
        if a is not None:
            m |= a
    return m


def width(seq) -> tuple[int, int]:
    lo, hi = seq.getwidth() if hasattr(seq, "getwidth") else _parser.SubPattern(None, list(seq)).getwidth()
    return int(lo), int(min(hi, MAXREPEAT))


def _variable_edge_repeat(seq, at_end: bool) -> int:
    """Chars a variable-width repeat at the sequence's start (or end) can consume; 0 if there is none."""
    items = list(reversed(list(seq))) if at_end else list(seq)
    m = 0
    for op, av in items:
        if op in _REPEATS and av[0] != av[1]:
            m |= first(av[2])
        elif op is C.SUBPATTERN:
            m |= _variable_edge_repeat(av[3], at_end)
        elif op is C.BRANCH:
            for b in av[1]:
                m |= _variable_edge_repeat(b, at_end)
        if not _node_nullable(op, av):
            break
    return m


def _branch_overlap(seq) -> bool:
    """Two alternatives (anywhere inside the repeated body, outside deeper repeats) can start alike."""
    for op, av in _data(seq):
        if op is C.BRANCH:
            firsts = [first(b) | (FULL if nullable(b) else 0) for b in av[1]]
            for i in range(len(firsts)):
                for j in range(i + 1, len(firsts)):
                    if firsts[i] & firsts[j]:
                        return True
            if any(_branch_overlap(b) for b in av[1]):
                return True
        elif op is C.SUBPATTERN and _branch_overlap(av[3]):
            return True
    return False


def ambiguous_repeats(seq) -> list[str]:
    """Why some repeat in the tree can match one string in exponentially (or highly polynomially) many ways."""
    found = []
    for op, av in walk(seq):
        if op not in (C.MAX_REPEAT, C.MIN_REPEAT):
            continue
        lo, hi, body = av
        if hi != MAXREPEAT and hi < BOUNDED_RISK:
            continue
        if hi == 1 or not body:
            continue
        if nullable(body):
            found.append("empty-iteration")
        elif _branch_overlap(body):
            found.append("overlapping-alternatives")
        else:
            head, tail = first(body), last(body)
            if (_variable_edge_repeat(body, True) & head) or (_variable_edge_repeat(body, False) & tail):
                found.append("iteration-split")
    return found


def redos_static(regex: str, seq=None) -> bool:
    """True when the pattern can backtrack super-linearly under full-match semantics (Python ``re``)."""
    seq = parse(regex) if seq is None else seq
    if ambiguous_repeats(seq):
        return True
    if sum(op in (C.MAX_REPEAT, C.MIN_REPEAT) and av[1] == MAXREPEAT for op, av in walk(seq)) < 3:
        return False  # fewer than three stars: no cubic blow-up for regexploit to find
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from regexploit.ast.sre import SreOpParser
            from regexploit.redos import find

            return bool(find(SreOpParser().parse_sre(f"(?:{regex})$")))
    except Exception:  # regexploit does not understand every construct: the stress test still runs
        return False


# ------------------------------------------------------------------------------------------ strings
def _gen(seq, target=None, pump: str = "", groups=None, path=frozenset()) -> str:
    """The shortest-ish string the sequence matches, with ``target`` (a repeat node) replaced by ``pump``.
    ``path`` holds the ids of the subtrees that contain the target (computed once by ``_path_to``)."""
    groups = {} if groups is None else groups
    out = []
    for node in _data(seq):
        op, av = node
        if target is not None and node is target:
            out.append(pump)
            continue
        a = atom_mask(op, av)
        if a is not None:
            out.append(rep_char(a))
        elif op in _REPEATS:
            inner = _gen(av[2], target, pump, groups, path)
            out.append(inner * max(av[0], 1 if id(av[2]) in path else 0))
        elif op is C.SUBPATTERN:
            s = _gen(av[3], target, pump, groups, path)
            if av[0]:
                groups[av[0]] = s
            out.append(s)
        elif op is C.ATOMIC_GROUP:
            out.append(_gen(av, target, pump, groups, path))
        elif op is C.BRANCH:
            pick = next((b for b in av[1] if id(b) in path), None)
            out.append(_gen(pick if pick is not None else min(av[1], key=lambda b: width(b)[0]), target, pump,
                            groups, path))
        elif op is C.GROUPREF:
            out.append(groups.get(av, ""))
    return "".join(out)


def _path_to(seq, target) -> frozenset:
    """Ids of every subtree on the way from ``seq`` down to the node ``target``."""
    def walk_(sub, trail):
        for node in _data(sub):
            if node is target:
                return trail
            for child in _children(*node):
                found = walk_(child, trail | {id(child)})
                if found is not None:
                    return found
        return None
    return frozenset(walk_(seq, frozenset()) or ())


def _iter_nodes_gen(seq):
    for node in _data(seq):
        yield node
        for child in _children(*node):
            yield from _iter_nodes_gen(child)


@_memo("_lf_nodes")
def _iter_nodes(seq) -> list:
    return list(_iter_nodes_gen(seq))


ATTACK_LENGTHS = (8, 12, 16, 20, 24, 32, 64, 256)
_PUMP = "\x01\x02\x03"  # marker replaced by the pumped body


def attack_strings(seq, lengths=ATTACK_LENGTHS) -> list[list[str]]:
    """Families of strings that drive each risky repeat into backtracking, shortest first: prefix + pumped
    body + a killer suffix (the stress test stops a family as soon as it grows too fast). Only repeats over
    a group are pumped: a star over one class is linear by itself."""
    families: list[list[str]] = []
    for node in _iter_nodes(seq):
        op, av = node
        if op not in (C.MAX_REPEAT, C.MIN_REPEAT):
            continue
        lo, hi, body = av
        if hi != MAXREPEAT and (hi < BOUNDED_RISK or (lo == hi and len(body) == 1 and atom_mask(*body[0]))):
            continue
        unit = _gen(body) or rep_char(first(body))
        if not unit:
            continue
        head, _, tail = _gen(seq, node, _PUMP, path=_path_to(seq, node)).partition(_PUMP)
        killer = "!" if first(body) >> 0 & 1 else "\x00"
        if len(body) == 1 and atom_mask(*body[0]) is not None:
            continue  # a star over one class is linear by itself; pile-ups of stars are regexploit's findings
        families.append([head + unit * max(1, n // len(unit)) + killer for n in lengths])
    return families


@functools.lru_cache(maxsize=8192)
def witness_strings(regex: str) -> list[str]:
    """Strings at the edge of the pattern's language: its shortest match, each repeat pumped (with two
    spellings) to 0-5, 20, 40 and its bounds ±1, and one-character edits — behavioural probes that tell most
    inequivalent patterns apart."""
    try:
        seq = parse(regex)
    except re.error:
        return []
    base = _gen(seq)
    out = dict.fromkeys([base, base + "a", base[1:], base[:-1], "", "a", "0"])
    repeats = [node for node in _iter_nodes(seq) if node[0] in _REPEATS][:10]
    for node in repeats:
        lo, hi, body = node[1]
        unit = _gen(body) or rep_char(first(body))
        units = [unit]
        if unit and ord(unit[0]) < 128 and (alt := rep_char(first(body) & ~(1 << ord(unit[0])))):
            units.append(alt + unit[1:])  # a second spelling, e.g. "A" for [a-zA-Z] pumped with "a"
        path = _path_to(seq, node)
        counts = {0, 1, 2, 3, 5, 20, 40, lo, lo + 1, max(lo - 1, 0)} | ({hi, hi + 1} if hi != MAXREPEAT else set())
        for u in units:
            for k in sorted(counts):
                out.setdefault(_gen(seq, node, u * k, path=path))
    for s in list(out)[:24]:
        for i in range(min(len(s), 6)):
            out.setdefault(s[:i] + "-" + s[i + 1:])
    return list(out)[:240]  # callers must not mutate: the list is cached


# ------------------------------------------------------------------------------------------ style
def style_reasons(seq, style) -> list[str]:
    """House-style violations of a parsed pattern (``style`` is the domain's ``ValidationConfig``)."""
    reasons: list[str] = []
    forbid = set(style.forbid)
    has_anchor = False
    starts = bool(seq) and seq[0][0] is C.AT and seq[0][1] in (C.AT_BEGINNING, C.AT_BEGINNING_STRING)
    ends = bool(seq) and seq[-1][0] is C.AT and seq[-1][1] in (C.AT_END, C.AT_END_STRING)
    for op, av in walk(seq):
        if op is C.AT and av in (C.AT_BEGINNING, C.AT_BEGINNING_STRING, C.AT_END, C.AT_END_STRING):
            has_anchor = True
        if op in (C.ASSERT, C.ASSERT_NOT) and "lookaround" in forbid:
            reasons.append("style_lookaround")
        if op in (C.GROUPREF, C.GROUPREF_EXISTS) and "backreference" in forbid:
            reasons.append("style_backreference")
        if op in (C.ATOMIC_GROUP, C.POSSESSIVE_REPEAT) and "atomic" in forbid:
            reasons.append("style_atomic")
        if op is C.SUBPATTERN and av[0] and "capturing_group" in forbid:
            reasons.append("style_capturing_group")
        spelled = op is C.IN and not any(o is C.CATEGORY for o, _ in av)
        if spelled and style.class_spelling == "shorthand" and class_mask(av) in (DIGIT, WORD):
            reasons.append("style_class_spelling")  # [0-9] where the house writes \d (or [a-zA-Z0-9_] → \w)
        if op is C.IN and style.class_spelling == "explicit" and any(o is C.CATEGORY for o, _ in av):
            reasons.append("style_class_spelling")  # \d, \w, \s where the house spells classes out
    if style.anchoring == "forbidden" and has_anchor:
        reasons.append("style_anchoring")
    if style.anchoring == "required" and not (starts and ends):
        reasons.append("style_anchoring")
    return sorted(set(reasons), key=reasons.index)


# ------------------------------------------------------------------------------------------ dedup keys
_ESC_CACHE: dict[int, str] = {}


def _esc_mask(m: int) -> str:
    e = _ESC_CACHE.get(m)
    if e is None:
        e = _ESC_CACHE[m] = _esc_mask_uncached(m)
    return e


def _esc_mask_uncached(m: int) -> str:
    if m == DIGIT:
        return r"\d"
    if m == WORD:
        return r"\w"
    if m == _ANY:
        return "."
    parts, i = [], 0
    while i < 129:
        if m >> i & 1:
            j = i
            while j + 1 < 129 and m >> (j + 1) & 1:
                j += 1
            parts.append(f"{i:x}" if i == j else f"{i:x}-{j:x}")
            i = j + 1
        else:
            i += 1
    return "[" + ",".join(parts) + "]"


def _canon_seq(seq) -> list[tuple[str, int, int]]:
    """Items as (body, lo, hi) with consecutive equal bodies folded (``\\d\\d\\d`` == ``\\d{3}``)."""
    items: list[tuple[str, int, int]] = []
    for op, av in _data(seq):
        a = atom_mask(op, av)
        if a is not None:
            item = (_esc_mask(a), 1, 1)
        elif op in _REPEATS:
            inner = _canon_seq(av[2])
            body = inner[0][0] if len(inner) == 1 and inner[0][1:] == (1, 1) else _join(inner)
            item = (body, av[0], av[1])
        elif op is C.SUBPATTERN:
            items.extend(_canon_seq(av[3]))
            continue
        elif op is C.BRANCH:
            alts = sorted({_join(_canon_seq(b)) for b in av[1]})
            item = ("(" + "|".join(alts) + ")", 1, 1)
        elif op is C.AT and av in (C.AT_BEGINNING, C.AT_BEGINNING_STRING, C.AT_END, C.AT_END_STRING):
            continue  # redundant under full-match semantics (only ever at the edges after validation)
        else:
            item = (f"<{op}:{av}>", 1, 1)
        if items and items[-1][0] == item[0]:  # X{a,b}X{c,d} == X{a+c,b+d}
            prev = items.pop()
            hi = MAXREPEAT if MAXREPEAT in (prev[2], item[2]) else prev[2] + item[2]
            item = (item[0], prev[1] + item[1], hi)
        items.append(item)
    return items


def _join(items) -> str:
    out = []
    for body, lo, hi in items:
        out.append(body if (lo, hi) == (1, 1) else f"({body}){{{lo},{'' if hi == MAXREPEAT else hi}}}")
    return "".join(out)


def canonical(regex: str, seq=None) -> str:
    """A normalised spelling: equal canonical strings mean equal languages (ASCII view)."""
    seq = parse(regex) if seq is None else seq
    flags = seq.state.flags & ~(re.UNICODE | re.ASCII | re.DEBUG) if hasattr(seq, "state") else 0
    if any(op in (C.GROUPREF, C.GROUPREF_EXISTS, C.ASSERT, C.ASSERT_NOT) for op, _ in walk(seq)):
        return f"raw:{flags}:{regex}"
    return f"{flags}:" + _join(_canon_seq(seq))


def strip_edge_anchors(regex: str) -> str:
    """Remove ``^``/``\\A`` at the start and ``$``/``\\Z``/``\\z`` at the end (no-ops under full match)."""
    if regex.startswith("^"):
        regex = regex[1:]
    elif regex.startswith("\\A"):
        regex = regex[2:]
    for end in ("\\Z", "\\z", "$"):
        head = regex[: -len(end)]
        if regex.endswith(end) and (len(head) - len(head.rstrip("\\"))) % 2 == 0:
            return head
    return regex
