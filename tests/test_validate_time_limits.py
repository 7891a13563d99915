"""Every match of an untrusted regex runs where a time limit can stop it: two catastrophic patterns that share a
dedup bucket never hang validation, in any shipped domain.

``(?:a+)+b`` and ``(?:a|aa)+b`` are the same language (one bucket: equal behaviour on the probes, equal width
and edge characters), and each takes exponential time in Python's ``re`` on the other's long ``aaaa…`` negatives
(over 80 characters, so they are no probes). Validation runs in a child process here with a generous deadline,
so a hang shows up as a failed test, not a stuck suite; no timing is asserted beyond "it finishes".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# the regex kind's domains (catastrophic backtracking is a regex matter; sql time limits: tests/test_sql_domain.py)
DOMAINS = sorted(p.stem for p in (ROOT / "configs" / "domains").glob("*.yaml")
                 if (yaml.safe_load(p.read_text())["task"].get("kind") or "regex") == "regex")
HANG_S = 120  # far above what the batch needs (a few seconds); the old code ran for hours here

ROWS = [
    {"description": "letters a, one or more, then a single b", "regex": "(?:a+)+b",
     "positives": ["ab", "aab", "aaab"], "negatives": ["a" * 100, "a" * 90 + "c"]},
    {"description": "a run of the letter a that ends in one b", "regex": "(?:a|aa)+b",
     "positives": ["ab", "aaab", "aaaab"], "negatives": ["a" * 120, "a" * 95 + "c"]},
    {"description": "lowercase words made of ascii letters", "regex": "[a-z]+",
     "positives": ["abc", "hello"], "negatives": ["ABC", "12"]},
]

SCRIPT = """
import json, sys
from schemas.config import load_domain
from tasks.validate import validate_rows
cfg = load_domain(sys.argv[1], "tiny")
rows = json.loads(sys.stdin.read())
print(json.dumps([[v.accepted, v.reasons] for v in validate_rows([json.dumps(r) for r in rows], cfg)]))
"""


def _validate(domain: str, rows: list[dict], **env: str) -> list[list]:
    try:
        p = subprocess.run([sys.executable, "-c", SCRIPT, domain], input=json.dumps(rows), capture_output=True,
                           text=True, cwd=ROOT, timeout=HANG_S, env={**os.environ, **env})
    except subprocess.TimeoutExpired:
        pytest.fail(f"{domain}: validation of two catastrophic patterns in one bucket did not finish in {HANG_S}s")
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("domain", DOMAINS)
def test_two_catastrophic_patterns_in_one_bucket_finish_and_get_a_verdict_with_reasons(domain):
    from schemas.config import load_domain

    dialect = load_domain(domain, "tiny").task.dialect
    (a_ok, a_reasons), (b_ok, b_reasons), (c_ok, c_reasons) = _validate(domain, ROWS)
    assert c_ok and c_reasons == []  # the neighbour is judged as if the hostile rows were not there
    if dialect == "python":  # catastrophic in the dialect's own engine: quarantined by the ReDoS guard
        assert not a_ok and not b_ok
        assert {*a_reasons, *b_reasons} <= {"redos_static", "redos_stress", "match_timeout"} and a_reasons and b_reasons
    else:  # RE2 matches both in linear time: judged in RE2, they are right (one class, under the cap of 5)
        assert (a_ok, a_reasons, b_ok, b_reasons) == (True, [], True, [])


def test_a_pattern_that_stalls_on_its_bucket_mates_strings_is_quarantined_with_match_timeout():
    """With the ReDoS guard off (as if it missed a pattern), a stall while comparing bucket mates is a reason code."""
    rows = [  # the same language; A is fast on its own short strings and stalls only on B's long negative
        {"description": "letters a, one or more, then a single b", "regex": "(?:a+)+b",
         "positives": ["ab", "aab", "aaab"], "negatives": ["c", "ba"]},
        {"description": "a run of the letter a that ends in one b", "regex": "a+b",
         "positives": ["ab", "aaab", "aaaab"], "negatives": ["a" * 100, "bb"]},
    ]
    (a_ok, a_reasons), (b_ok, b_reasons) = _validate("regex-python", rows, LORAFORGE_REDOS_GUARD="off")
    assert (a_ok, a_reasons) == (False, ["match_timeout"])
    assert (b_ok, b_reasons) == (True, [])
