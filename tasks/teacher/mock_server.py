"""A loopback OpenAI-compatible chat-completions server for tests and benchmarks (aiohttp.web).

Answers ``POST /v1/chat/completions`` with the JSON that ``grammar.generate_example`` produces for the seed,
topic and difficulty written in the user message by ``OpenAITeacher.build_request`` (lines ``topic: …``,
``difficulty: …``, ``seed: …``). Faults (429 with ``Retry-After: 0``, 500, non-JSON content) are injected
deterministically from a seeded RNG. The ``Authorization`` header is accepted (optionally checked) and never
logged.

    with MockTeacherServer(latency_s=0.01) as server:
        cfg = TeacherConfig(provider="openai", model="mock", base_url=server.base_url)

Or as a process: ``python -m tasks.teacher.mock_server --port 8000``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import threading
import time
import uuid
from types import TracebackType
from typing import Any, Self

from aiohttp import web

_SEED = re.compile(r"^seed:\s*(-?\d+)", re.MULTILINE)
_TOPIC = re.compile(r"^topic:\s*([\w.-]+)", re.MULTILINE)
_DIFFICULTY = re.compile(r"^difficulty:\s*(\d+)", re.MULTILINE)
_N_POS = re.compile(r'"positives":\s*(\d+)')
_N_NEG = re.compile(r'"negatives":\s*(\d+)')
MALFORMED = "Sure! Here is a regex for that: [a-z]+ (sorry, I could not produce JSON this time)"


def _content_for(user: str) -> str:
    from tasks.teacher.grammar import TOPICS, generate_example

    seed_m, topic_m, diff_m = _SEED.search(user), _TOPIC.search(user), _DIFFICULTY.search(user)
    seed = int(seed_m.group(1)) if seed_m else int(hashlib.sha256(user.encode()).hexdigest()[:8], 16)
    topic = topic_m.group(1) if topic_m and topic_m.group(1) in TOPICS else "text"
    difficulty = int(diff_m.group(1)) if diff_m else 2
    counts = {}
    for key, pattern in (("n_positives", _N_POS), ("n_negatives", _N_NEG)):
        if m := pattern.search(user):
            counts[key] = max(1, min(int(m.group(1)), 50))
    try:
        example = generate_example(seed, topic, difficulty, **counts)
    except Exception:  # noqa: BLE001 - an out-of-range difficulty from a hand-written prompt: fall back, still answer
        example = generate_example(seed, "text", 2, **counts)
    return json.dumps(example)


class MockTeacherServer:
    """Runs the mock on 127.0.0.1 in a background thread; ``base_url`` is set once entered."""

    def __init__(self, *, latency_s: float = 0.0, fault_rate: float = 0.0, seed: int = 0,
                 reject_response_format: bool = False, require_api_key: str | None = None,
                 port: int = 0) -> None:
        self.latency_s = latency_s
        self.fault_rate = fault_rate
        self.reject_response_format = reject_response_format
        self._require_key = require_api_key
        self._rng = random.Random(seed)
        self._port = port
        self.base_url = ""
        self.requests_received = 0
        self.responses_ok = 0
        self.faults: dict[str, int] = {"429": 0, "500": 0, "malformed": 0}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"MockTeacherServer(base_url={self.base_url!r}, fault_rate={self.fault_rate})"

    # -- the app --------------------------------------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        return app

    @staticmethod
    def _error(status: int, message: str, etype: str, param: str | None = None,
               headers: dict[str, str] | None = None) -> web.Response:
        body = {"error": {"message": message, "type": etype, "param": param, "code": None}}
        return web.json_response(body, status=status, headers=headers)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "mock-teacher", "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.Response:
        self.requests_received += 1
        if self._require_key is not None and request.headers.get("Authorization") != f"Bearer {self._require_key}":
            return self._error(401, "invalid API key", "authentication_error")
        try:
            body: dict[str, Any] = await request.json()
            messages = body["messages"]
            user = next(m["content"] for m in reversed(messages) if m.get("role") == "user")
        except (ValueError, KeyError, TypeError, StopIteration):
            return self._error(400, "expected JSON with a 'messages' list holding a user message",
                               "invalid_request_error", "messages")
        if self.reject_response_format and body.get("response_format") is not None:
            rf_type = body["response_format"].get("type") if isinstance(body["response_format"], dict) else None
            return self._error(400, f"response_format of type {rf_type!r} is not supported by this model",
                               "invalid_request_error", "response_format")
        fault = None
        if self.fault_rate > 0 and self._rng.random() < self.fault_rate:
            fault = self._rng.choice(("429", "500", "malformed"))
            self.faults[fault] += 1
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        if fault == "429":
            return self._error(429, "rate limit reached, slow down", "rate_limit_error",
                               headers={"Retry-After": "0"})
        if fault == "500":
            return self._error(500, "the mock teacher had an internal error", "server_error")
        content = MALFORMED if fault == "malformed" else _content_for(str(user))
        prompt_chars = sum(len(str(m.get("content", ""))) for m in messages)
        usage = {"prompt_tokens": max(1, prompt_chars // 4), "completion_tokens": max(1, len(content) // 4)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        self.responses_ok += 1
        return web.json_response({
            "id": f"chatcmpl-mock-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "mock-teacher"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": usage,
        })

    # -- background thread ----------------------------------------------------------------------------------
    def start(self) -> Self:
        ready = threading.Event()
        errors: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._runner = web.AppRunner(self.make_app(), access_log=None)
                loop.run_until_complete(self._runner.setup())
                site = web.TCPSite(self._runner, "127.0.0.1", self._port)
                loop.run_until_complete(site.start())
                port = self._runner.addresses[0][1]
                self.base_url = f"http://127.0.0.1:{port}/v1"
            except BaseException as e:  # noqa: BLE001 - reported to the starting thread
                errors.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._runner.cleanup())
                loop.close()

        self._thread = threading.Thread(target=serve, name="mock-teacher-server", daemon=True)
        self._thread.start()
        ready.wait(timeout=10)
        if errors:
            raise RuntimeError(f"mock teacher server failed to start: {errors[0]!r}") from errors[0]
        if not self.base_url:
            raise RuntimeError("mock teacher server did not start within 10 s")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Loopback OpenAI-compatible mock teacher.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait before each reply")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reject-response-format", action="store_true")
    args = parser.parse_args(argv)
    server = MockTeacherServer(latency_s=args.latency, fault_rate=args.fault_rate, seed=args.seed,
                               reject_response_format=args.reject_response_format)
    print(f"mock teacher on http://{args.host}:{args.port}/v1 (Ctrl-C to stop)", flush=True)
    web.run_app(server.make_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
