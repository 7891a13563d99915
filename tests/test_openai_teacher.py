"""Specifications of the OpenAI-compatible teacher, run with the real openai client against MockTeacherServer."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading

import pytest

from schemas.config import TeacherConfig
from schemas.example import RequestSpec, TeacherRequest
from tasks.kinds import get_kind
from tasks.teacher.mock_server import MockTeacherServer
from tasks.teacher.openai_teacher import OpenAITeacher, parse_teacher_output

PARAMS = {"dialect": "python", "n_positives": 5, "n_negatives": 5}  # the regex kind's request params
OUTPUT = get_kind("regex").output_model

FAKE_KEY = "sk-test-SECRET-123"


def _cfg(base_url: str, **kw) -> TeacherConfig:
    return TeacherConfig(provider="openai", model="mock-teacher", base_url=base_url, **kw)


def _teacher(base_url: str, **kw) -> OpenAITeacher:
    return OpenAITeacher(_cfg(base_url, **kw), api_key=FAKE_KEY, backoff_base_s=0.01)


def _topics() -> list[str]:
    from tasks.kinds.regex.grammar import TOPICS

    return list(TOPICS)


def _requests(teacher: OpenAITeacher, n: int, topics: list[str] | None = None) -> list[TeacherRequest]:
    topics = topics or ["text"]
    specs = [RequestSpec(index=i, seed=1000 + i, topic=topics[i % len(topics)], difficulty=1 + i % 3)
             for i in range(n)]
    return [teacher.build_request("regex-python", s, PARAMS) for s in specs]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    with MockTeacherServer() as srv:
        yield srv


def test_a_batch_of_50_comes_back_ok_in_order_with_parseable_content_and_token_counts(server):
    from tasks.kinds.regex.grammar import generate_example

    teacher = _teacher(server.base_url, concurrency=8)
    reqs = _requests(teacher, 50, _topics())
    calls = teacher.complete_batch(reqs)
    assert len(calls) == len(reqs)
    for req, call in zip(reqs, calls, strict=True):
        assert call.status == "ok", call.error
        assert call.request_hash == req.request_hash
        assert call.attempts == 1
        assert call.prompt_tokens > 0 and call.completion_tokens > 0
        out = parse_teacher_output(call.raw_response, OUTPUT)
        assert out.description and out.regex and out.positives and out.negatives
        expected = generate_example(req.spec.seed, req.spec.topic, req.spec.difficulty, 5, 5)
        expected = {k: expected[k] for k in ("description", "regex", "positives", "negatives")}
        assert json.loads(call.raw_response) == json.loads(json.dumps(expected))  # the answer for *this* spec


def test_different_specs_give_different_request_hashes_and_the_same_spec_the_same_hash():
    teacher = _teacher("http://127.0.0.1:9/v1")
    spec = RequestSpec(index=0, seed=7, topic="text", difficulty=2)
    a = teacher.build_request("regex-python", spec, PARAMS)
    assert a.request_hash == teacher.build_request("regex-python", spec, PARAMS).request_hash
    assert a.request_hash == teacher.build_request("other-domain", spec, PARAMS).request_hash
    variants = [spec.model_copy(update=u) for u in ({"seed": 8}, {"topic": "dates"}, {"difficulty": 3})]
    hashes = {a.request_hash} | {teacher.build_request("regex-python", v, PARAMS).request_hash
                                 for v in variants}
    assert len(hashes) == 4
    user = a.messages[-1]["content"]
    assert a.messages[0]["role"] == "system" and a.messages[-1]["role"] == "user"
    assert "topic: text" in user and "difficulty: 2" in user and "seed: 7" in user
    assert a.params["seed"] == 7 and a.params["response_format"]["type"] == "json_schema"
    json.dumps(a.params)  # params are JSON-serialisable (they are hashed and cached)


def test_with_faults_and_retries_every_request_ends_ok_or_failed_and_most_are_ok():
    with MockTeacherServer(fault_rate=0.3, seed=1) as srv:
        teacher = _teacher(srv.base_url, max_retries=6, concurrency=8)
        reqs = _requests(teacher, 40)
        calls = teacher.complete_batch(reqs)
    assert len(calls) == len(reqs)
    assert [c.request_hash for c in calls] == [r.request_hash for r in reqs]
    assert all(c.status in ("ok", "failed") for c in calls)
    assert sum(c.status == "ok" for c in calls) >= 0.9 * len(reqs)
    assert srv.faults["429"] + srv.faults["500"] > 0 and any(c.attempts > 1 for c in calls)
    assert srv.requests_received == sum(c.attempts for c in calls)


def test_without_retries_some_requests_fail_and_their_error_says_what_happened():
    with MockTeacherServer(fault_rate=0.3, seed=1) as srv:
        teacher = _teacher(srv.base_url, max_retries=0, concurrency=8)
        calls = teacher.complete_batch(_requests(teacher, 40))
    failed = [c for c in calls if c.status == "failed"]
    assert failed and len(failed) < len(calls)
    for c in failed:
        assert c.attempts == 1
        assert ("RateLimitError: HTTP 429" in c.error) or ("InternalServerError: HTTP 500" in c.error), c.error


def test_malformed_content_is_returned_raw_and_rejected_only_by_the_parser():
    with MockTeacherServer(fault_rate=1.0, seed=3) as srv:
        teacher = _teacher(srv.base_url, max_retries=20, concurrency=4)
        calls = teacher.complete_batch(_requests(teacher, 6))
    assert all(c.status == "ok" for c in calls)
    for c in calls:
        with pytest.raises(ValueError, match="malformed teacher output"):
            parse_teacher_output(c.raw_response, OUTPUT)


def test_a_server_rejecting_response_format_still_yields_ok_calls_via_plain_text():
    with MockTeacherServer(reject_response_format=True) as srv:
        teacher = _teacher(srv.base_url, max_retries=0, concurrency=1)
        reqs = _requests(teacher, 5)
        calls = teacher.complete_batch(reqs)
    assert all(c.status == "ok" for c in calls), [c.error for c in calls]
    assert all(parse_teacher_output(c.raw_response, OUTPUT).regex for c in calls)
    assert srv.requests_received == len(reqs) + 1  # one rejection, then the batch goes without response_format


def test_a_4xx_other_than_429_is_not_retried_and_the_error_names_class_and_status(caplog):
    caplog.set_level(logging.DEBUG)
    with MockTeacherServer(require_api_key="another-key") as srv:
        teacher = _teacher(srv.base_url, max_retries=5)
        calls = teacher.complete_batch(_requests(teacher, 3))
    assert srv.requests_received == 3
    for c in calls:
        assert c.status == "failed" and c.attempts == 1
        assert c.error.startswith("AuthenticationError: HTTP 401")
        assert FAKE_KEY not in c.error
    assert FAKE_KEY not in caplog.text


def test_the_api_key_never_appears_in_repr_errors_or_logs(caplog):
    caplog.set_level(logging.DEBUG)
    teacher = _teacher(f"http://127.0.0.1:{_closed_port()}/v1", max_retries=2)
    assert FAKE_KEY not in repr(teacher) and FAKE_KEY not in str(teacher)
    calls = teacher.complete_batch(_requests(teacher, 4))
    assert all(c.status == "failed" and c.attempts == 3 for c in calls)
    for c in calls:
        # aiohttp reports a refused connection as a connect timeout; both are APIConnectionErrors
        assert c.error.startswith(("APIConnectionError", "APITimeoutError")) and FAKE_KEY not in c.error
    assert caplog.records and FAKE_KEY not in caplog.text
    assert all(FAKE_KEY not in str(r.args) for r in caplog.records)


def test_complete_batch_works_from_a_thread_and_from_inside_a_running_event_loop(server):
    teacher = _teacher(server.base_url)
    reqs = _requests(teacher, 3)
    results: list = []
    t = threading.Thread(target=lambda: results.append(teacher.complete_batch(reqs)))
    t.start()
    t.join(timeout=30)

    async def inside_loop():
        return teacher.complete_batch(reqs)

    results.append(asyncio.run(inside_loop()))
    assert len(results) == 2
    assert all(c.status == "ok" for calls in results for c in calls)
    assert teacher.complete_batch([]) == []


@pytest.fixture
def no_secret_block(monkeypatch):
    from prefect.blocks.system import Secret

    def load(*args, **kwargs):
        raise ValueError("no such block")

    monkeypatch.setattr(Secret, "load", load)
    monkeypatch.delenv("LORAFORGE_TEST_KEY", raising=False)


def test_a_missing_key_with_a_remote_base_url_raises_naming_the_env_var(no_secret_block):
    cfg = _cfg("https://api.example.com/v1", api_key_env="LORAFORGE_TEST_KEY")
    with pytest.raises(ValueError, match="LORAFORGE_TEST_KEY") as info:
        OpenAITeacher(cfg)
    assert "'loraforge-test-key'" in str(info.value) and "sk-" not in str(info.value)


def test_the_key_comes_from_env_then_secret_block_and_local_servers_need_none(monkeypatch, no_secret_block):
    local = _cfg("http://localhost:8000/v1", api_key_env="LORAFORGE_TEST_KEY")
    assert OpenAITeacher(local)._api_key.get_secret_value() == "EMPTY"
    monkeypatch.setenv("LORAFORGE_TEST_KEY", FAKE_KEY)
    teacher = OpenAITeacher(_cfg("https://api.example.com/v1", api_key_env="LORAFORGE_TEST_KEY"))
    assert teacher._api_key.get_secret_value() == FAKE_KEY and FAKE_KEY not in repr(teacher)
    monkeypatch.delenv("LORAFORGE_TEST_KEY")

    from prefect.blocks.system import Secret

    class Block:
        def get(self):
            return "from-block"

    names = []
    monkeypatch.setattr(Secret, "load", lambda name, **kw: names.append(name) or Block())
    assert OpenAITeacher(local)._api_key.get_secret_value() == "from-block"
    assert names == ["loraforge-test-key"]


def test_parse_teacher_output_accepts_plain_fenced_and_embedded_json_and_rejects_garbage():
    obj = {"description": "digits", "regex": r"\d+", "positives": ["1"], "negatives": ["a"]}
    text = json.dumps(obj)
    for raw in (text, f"```json\n{text}\n```", f"```\n{text}\n```",
                f"Here is the example you asked for:\n{text}\nHope it helps {{:}}!"):
        out = parse_teacher_output(raw, OUTPUT)
        assert out.regex == r"\d+" and out.positives == ["1"] and out.negatives == ["a"]
    nested = {**obj, "description": "braces {like this}"}
    assert parse_teacher_output("Sure: " + json.dumps(nested), OUTPUT).description == "braces {like this}"
    for garbage in ("", "no json here", "{not: json}", "[1, 2]", '{"regex": "a"}'):
        with pytest.raises(ValueError, match="malformed teacher output"):
            parse_teacher_output(garbage, OUTPUT)


def test_answers_reach_on_calls_in_slices_while_the_batch_runs_and_each_exactly_once(server):
    teacher = _teacher(server.base_url, concurrency=4, store_every=10, store_interval_s=60)
    reqs = _requests(teacher, 45, _topics())
    slices: list[list[str]] = []
    calls = teacher.complete_batch(reqs, on_calls=lambda rs, cs: slices.append([c.request_hash for c in cs]))
    assert [len(s) for s in slices] == [10, 10, 10, 10, 5]  # stored as they come, the rest at the end
    handed = [h for s in slices for h in s]
    assert sorted(handed) == sorted(r.request_hash for r in reqs) == sorted(c.request_hash for c in calls)
