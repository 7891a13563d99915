"""A loopback OpenAI-compatible server for tests and benchmarks (aiohttp.web): chat completions, files, batches.

Answers ``POST /v1/chat/completions`` with the JSON its task kind's grammar produces for the user message
(``kind.mock_answer``: the seed, topic and difficulty that the kind's ``teacher_messages`` wrote into it; the
default kind unless one is given). The Batch API (``/v1/files`` upload and content download, ``/v1/batches``
create and retrieve) computes the same answers, with a knob for the share of batch lines that fail.

Knobs: latency (``fixed`` | ``uniform`` | ``lognormal`` around ``latency_s``), a server-side rate limit
(429 with ``Retry-After`` once more than ``rate_limit_rpm`` requests arrive in a sliding window), and faults
drawn per request from a seeded RNG with a rate per kind (``faults={"500": 0.02, "reset": 0.02, …}``):

- transport and status: ``429`` (Retry-After 0), ``500``, ``timeout`` (no answer for ``timeout_sleep_s``,
  past the client's timeout, then the connection drops), ``reset`` (TCP reset before any byte),
  ``truncated`` (half the body, then close);
- content, delivered as a normal 200: ``malformed`` (not JSON), ``preamble`` (prose before the JSON),
  ``fence`` (JSON in a ``` fence), and the kind's own (``kind.mock_faults``, e.g. a catastrophic-backtracking
  answer, or a listed example the answer does not satisfy).

Counters: ``requests_received`` (every chat request), ``responses_ok`` (200s delivered in full) and
``delivered`` (request key → number of 200s delivered in full; the key is ``request_key(messages)``), so a
test can prove that no fully delivered answer was ever asked for again (``resent_after_delivery`` counts the
cases). ``GET /mock/stats`` returns them as JSON (for a server running in another process). The
``Authorization`` header is accepted (optionally checked) and never logged.

    with MockTeacherServer(latency_s=0.01) as server:
        cfg = TeacherConfig(provider="openai", model="mock", base_url=server.base_url)

Or as a process: ``python -m tasks.teacher.mock_server --port 8000 --latency 0.2``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hashlib
import json
import math
import random
import socket
import struct
import threading
import time
import uuid
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from tasks.kinds import Kind, get_kind

MALFORMED = "Sure! Here is what you asked for: [a-z]+ (sorry, I could not produce JSON this time)"
TRANSPORT_FAULTS = ("429", "500", "timeout", "reset", "truncated")
CONTENT_FAULTS = ("malformed", "preamble", "fence")  # plus the kind's own (kind.mock_faults)


def request_key(messages: list[dict]) -> str:
    """The server's name for a request: a hash of its last user message (unique per seeded spec)."""
    user = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
    return hashlib.sha256(user.encode()).hexdigest()[:20]


def content_for(kind: Kind, user: str, fault: str | None = None) -> str:
    """The assistant's message content for a user prompt, shaped by a content fault if one was drawn."""
    if fault == "malformed":
        return MALFORMED
    text = json.dumps(kind.mock_answer(user, fault if fault in kind.mock_faults else None))
    if fault == "preamble":
        return f"Sure! Here is the training example you asked for:\n{text}\nLet me know if you need more."
    if fault == "fence":
        return f"```json\n{text}\n```"
    return text


class MockTeacherServer:
    """Runs the mock on 127.0.0.1 in a background thread; ``base_url`` is set once entered."""

    def __init__(self, *, latency_s: float = 0.0, latency_dist: str = "fixed", latency_spread: float = 0.5,
                 fault_rate: float = 0.0, faults: dict[str, float] | None = None, timeout_sleep_s: float = 3.0,
                 rate_limit_rpm: float | None = None, rate_limit_window_s: float = 60.0,
                 batch_line_failure_rate: float = 0.0, batch_latency_s: float = 0.2, seed: int = 0,
                 reject_response_format: bool = False, require_api_key: str | None = None,
                 port: int = 0, kind: Kind | None = None) -> None:
        if latency_dist not in ("fixed", "uniform", "lognormal"):
            raise ValueError(f"latency_dist must be fixed, uniform or lognormal, not {latency_dist!r}")
        self.latency_s, self.latency_dist, self.latency_spread = latency_s, latency_dist, latency_spread
        self.kind = kind or get_kind()  # whose answers it gives
        self.fault_kinds = TRANSPORT_FAULTS + CONTENT_FAULTS + self.kind.mock_faults
        rates = dict(faults or {})
        if fault_rate and not faults:  # the simple knob: 429, 500 and malformed content in equal shares
            rates = {"429": fault_rate / 3, "500": fault_rate / 3, "malformed": fault_rate / 3}
        unknown = set(rates) - set(self.fault_kinds)
        if unknown or sum(rates.values()) > 1:
            raise ValueError(f"faults: unknown kinds {sorted(unknown)} or rates summing over 1; "
                             f"kinds: {self.fault_kinds}")
        self.fault_rates = rates
        self.timeout_sleep_s = timeout_sleep_s
        self.rate_limit_rpm, self.rate_limit_window_s = rate_limit_rpm, rate_limit_window_s
        self.batch_line_failure_rate, self.batch_latency_s = batch_line_failure_rate, batch_latency_s
        self.reject_response_format = reject_response_format
        self._require_key = require_api_key
        self._rng = random.Random(seed)
        self._port = port
        self.base_url = ""
        self.reset_counters()
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def reset_counters(self) -> None:
        self.requests_received = 0
        self.responses_ok = 0
        self.delivered: collections.Counter[str] = collections.Counter()
        self.received: collections.Counter[str] = collections.Counter()
        self.resent_after_delivery = 0
        self.faults: dict[str, int] = dict.fromkeys(self.fault_kinds, 0)
        self.rate_limited = 0  # 429s because the sliding-window limit was exceeded (not injected faults)
        self.arrivals: list[float] = []
        self._window: collections.deque[float] = collections.deque()
        self.batches_created = 0
        self.batch_lines: collections.Counter[str] = collections.Counter()  # custom_id → times submitted

    def __repr__(self) -> str:
        return f"MockTeacherServer(base_url={self.base_url!r}, faults={self.fault_rates})"

    def stats(self, full: bool = False) -> dict[str, Any]:
        """Counters as JSON-able figures (``full`` adds the per-request delivery counts)."""
        arr = self.arrivals
        rpm = (len(arr) - 1) / (arr[-1] - arr[0]) * 60 if len(arr) > 1 and arr[-1] > arr[0] else None
        out = {"requests_received": self.requests_received, "responses_ok": self.responses_ok,
               "faults": self.faults, "rate_limited": self.rate_limited, "observed_rpm": rpm,
               "distinct_requests": len(self.received), "resent_after_delivery": self.resent_after_delivery,
               "max_full_deliveries": max(self.delivered.values(), default=0),
               "batches_created": self.batches_created, "batch_lines": sum(self.batch_lines.values())}
        if full:
            out["delivered"] = dict(self.delivered)
        return out

    # -- the app --------------------------------------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024**2)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/files", self._file_upload)
        app.router.add_get("/v1/files/{file_id}", self._file_get)
        app.router.add_get("/v1/files/{file_id}/content", self._file_content)
        app.router.add_post("/v1/batches", self._batch_create)
        app.router.add_get("/v1/batches/{batch_id}", self._batch_get)
        app.router.add_get("/mock/stats", self._stats)
        app.router.add_post("/mock/reset", self._reset)
        return app

    @staticmethod
    def _error(status: int, message: str, etype: str, param: str | None = None,
               headers: dict[str, str] | None = None) -> web.Response:
        body = {"error": {"message": message, "type": etype, "param": param, "code": None}}
        return web.json_response(body, status=status, headers=headers)

    def _authorised(self, request: web.Request) -> bool:
        return self._require_key is None or request.headers.get("Authorization") == f"Bearer {self._require_key}"

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "mock-teacher", "object": "model"}]})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats(full=request.query.get("full") == "1"))

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset_counters()
        return web.json_response({"ok": True})

    def _latency(self) -> float:
        base = self.latency_s
        if base <= 0 or self.latency_dist == "fixed":
            return base
        if self.latency_dist == "uniform":
            return max(0.0, self._rng.uniform(base * (1 - self.latency_spread), base * (1 + self.latency_spread)))
        sigma = self.latency_spread  # lognormal with mean ``base``
        return base * math.exp(self._rng.gauss(-sigma * sigma / 2, sigma))

    def _draw_fault(self) -> str | None:
        if not self.fault_rates:
            return None
        u, acc = self._rng.random(), 0.0
        for kind, rate in self.fault_rates.items():
            acc += rate
            if u < acc:
                self.faults[kind] += 1
                return kind
        return None

    def _over_rate_limit(self) -> float | None:
        """Seconds until a slot frees when the sliding window is full, else None (and the arrival is counted)."""
        if not self.rate_limit_rpm:
            return None
        now, window = time.monotonic(), self._window
        while window and window[0] <= now - self.rate_limit_window_s:
            window.popleft()
        if len(window) >= self.rate_limit_rpm * self.rate_limit_window_s / 60:
            return window[0] + self.rate_limit_window_s - now
        window.append(now)
        return None

    @staticmethod
    def _alive(request: web.Request) -> bool:
        return request.transport is not None and not request.transport.is_closing()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.requests_received += 1
        self.arrivals.append(arrived := time.monotonic())
        if not self._authorised(request):
            return self._error(401, "invalid API key", "authentication_error")
        try:
            body: dict[str, Any] = await request.json()
            messages = body["messages"]
            user = next(m["content"] for m in reversed(messages) if m.get("role") == "user")
        except (ValueError, KeyError, TypeError, StopIteration):
            return self._error(400, "expected JSON with a 'messages' list holding a user message",
                               "invalid_request_error", "messages")
        key = request_key(messages)
        self.received[key] += 1
        if self.delivered[key]:
            self.resent_after_delivery += 1  # asked again although a full 200 had already been delivered
        if self.reject_response_format and body.get("response_format") is not None:
            rf_type = body["response_format"].get("type") if isinstance(body["response_format"], dict) else None
            return self._error(400, f"response_format of type {rf_type!r} is not supported by this model",
                               "invalid_request_error", "response_format")
        if (wait := self._over_rate_limit()) is not None:
            self.rate_limited += 1
            return self._error(429, "rate limit exceeded (requests per minute)", "rate_limit_error",
                               headers={"Retry-After": str(max(1, math.ceil(wait))),
                                        "retry-after-ms": str(max(1, int(wait * 1000)))})
        fault = self._draw_fault()
        payload = b""
        if fault not in ("429", "500", "reset", "timeout"):  # the answer is made while the latency runs
            content = content_for(self.kind, str(user), fault)
            payload = json.dumps(self._completion(body, messages, content)).encode()
        # The latency is the time from arrival to answer (the server's own work included), as a real teacher's
        # is: the bench's limit (requests × latency / concurrency) assumes exactly that.
        if (wait := self._latency() - (time.monotonic() - arrived)) > 0:
            await asyncio.sleep(wait)
        if fault == "429":
            return self._error(429, "rate limit reached, slow down", "rate_limit_error", headers={"Retry-After": "0"})
        if fault == "500":
            return self._error(500, "the mock teacher had an internal error", "server_error")
        if fault == "reset":
            return self._reset_connection(request)
        if fault == "timeout":  # a hung upstream: no answer within timeout_sleep_s, then the connection drops
            await asyncio.sleep(self.timeout_sleep_s)  # (a half-closed socket may still look alive: never answer)
            return self._reset_connection(request)
        if fault == "truncated":
            resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            resp.content_length = len(payload)
            await resp.prepare(request)
            await resp.write(payload[: len(payload) // 2])
            if request.transport is not None:
                request.transport.close()
            return resp
        if not self._alive(request):  # the client gave up (timeout): nothing is delivered
            return web.Response(status=499)
        resp = web.Response(body=payload, content_type="application/json")
        await resp.prepare(request)
        await resp.write_eof()
        if self._alive(request):
            self.responses_ok += 1
            self.delivered[key] += 1
        return resp

    @staticmethod
    def _completion(body: dict, messages: list[dict], content: str) -> dict:
        prompt_chars = sum(len(str(m.get("content", ""))) for m in messages)
        if body.get("response_format"):
            prompt_chars += len(json.dumps(body["response_format"]))
        usage = {"prompt_tokens": max(1, prompt_chars // 4), "completion_tokens": max(1, len(content) // 4)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return {
            "id": f"chatcmpl-mock-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "mock-teacher"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": usage,
        }

    @staticmethod
    def _reset_connection(request: web.Request) -> web.Response:
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()  # RST: the client sees a connection reset, no byte of a response
        return web.Response(status=499)

    # -- files and batches ----------------------------------------------------------------------------------
    def _file(self, content: bytes, filename: str, purpose: str) -> dict[str, Any]:
        fid = f"file-mock-{uuid.uuid4().hex[:20]}"
        self.files[fid] = {"id": fid, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                           "filename": filename, "purpose": purpose, "status": "processed", "_content": content}
        return self.files[fid]

    @staticmethod
    def _public(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    async def _file_upload(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._error(401, "invalid API key", "authentication_error")
        form = await request.post()
        upload, purpose = form.get("file"), str(form.get("purpose", ""))
        if upload is None or not hasattr(upload, "file"):
            return self._error(400, "expected a multipart 'file' field", "invalid_request_error", "file")
        return web.json_response(self._public(self._file(upload.file.read(), upload.filename or "upload", purpose)))

    async def _file_get(self, request: web.Request) -> web.Response:
        f = self.files.get(request.match_info["file_id"])
        return web.json_response(self._public(f)) if f else self._error(404, "no such file", "invalid_request_error")

    async def _file_content(self, request: web.Request) -> web.Response:
        f = self.files.get(request.match_info["file_id"])
        if not f:
            return self._error(404, "no such file", "invalid_request_error")
        return web.Response(body=f["_content"], content_type="application/octet-stream")

    async def _batch_create(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._error(401, "invalid API key", "authentication_error")
        body = await request.json()
        f = self.files.get(body.get("input_file_id", ""))
        if f is None:
            return self._error(400, "input_file_id names no uploaded file", "invalid_request_error", "input_file_id")
        self.batches_created += 1
        bid = f"batch_mock_{uuid.uuid4().hex[:20]}"
        lines = [json.loads(x) for x in f["_content"].decode().splitlines() if x.strip()]
        self.batches[bid] = {
            "id": bid, "object": "batch", "endpoint": body.get("endpoint", "/v1/chat/completions"), "errors": None,
            "input_file_id": f["id"], "completion_window": body.get("completion_window", "24h"),
            "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": int(time.time()),
            "in_progress_at": None, "completed_at": None, "metadata": body.get("metadata"),
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
        }
        asyncio.get_running_loop().create_task(self._run_batch(bid, lines))
        return web.json_response(self.batches[bid])

    async def _run_batch(self, bid: str, lines: list[dict]) -> None:
        batch = self.batches[bid]
        await asyncio.sleep(self.batch_latency_s / 2)
        batch.update(status="in_progress", in_progress_at=int(time.time()))
        await asyncio.sleep(self.batch_latency_s / 2)
        out, err = [], []
        for line in lines:
            cid, req = line.get("custom_id"), line.get("body", {})
            self.batch_lines[cid] += 1
            if self._rng.random() < self.batch_line_failure_rate:
                err.append({"id": f"batch_req_{uuid.uuid4().hex[:16]}", "custom_id": cid, "response": {
                    "status_code": 500, "request_id": uuid.uuid4().hex,
                    "body": {"error": {"message": "the mock teacher failed this line", "type": "server_error"}}},
                    "error": None})
                continue
            user = next((m["content"] for m in reversed(req.get("messages", [])) if m.get("role") == "user"), "")
            completion = self._completion(req, req.get("messages", []), content_for(self.kind, str(user)))
            out.append({"id": f"batch_req_{uuid.uuid4().hex[:16]}", "custom_id": cid, "response": {
                "status_code": 200, "request_id": uuid.uuid4().hex, "body": completion}, "error": None})
        for rows, field, suffix in ((out, "output_file_id", "output"), (err, "error_file_id", "error")):
            if rows:
                data = "".join(json.dumps(r) + "\n" for r in rows).encode()
                batch[field] = self._file(data, f"{bid}_{suffix}.jsonl", "batch_output")["id"]
        batch["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(err)}
        batch.update(status="completed", completed_at=int(time.time()))

    async def _batch_get(self, request: web.Request) -> web.Response:
        b = self.batches.get(request.match_info["batch_id"])
        return web.json_response(b) if b else self._error(404, "no such batch", "invalid_request_error")

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
    parser.add_argument("--latency", type=float, default=0.0, help="mean seconds to wait before each reply")
    parser.add_argument("--latency-dist", default="fixed", choices=("fixed", "uniform", "lognormal"))
    parser.add_argument("--latency-spread", type=float, default=0.5)
    parser.add_argument("--fault-rate", type=float, default=0.0, help="429/500/malformed in equal shares")
    parser.add_argument("--faults", default="", help='JSON rates per kind, e.g. \'{"500": 0.05, "reset": 0.02}\'')
    parser.add_argument("--timeout-sleep", type=float, default=3.0)
    parser.add_argument("--rate-limit-rpm", type=float, default=None)
    parser.add_argument("--rate-limit-window", type=float, default=60.0)
    parser.add_argument("--batch-line-failure-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reject-response-format", action="store_true")
    parser.add_argument("--kind", default=None, help="the task kind whose answers it gives (default: the default kind)")
    args = parser.parse_args(argv)
    server = MockTeacherServer(
        latency_s=args.latency, latency_dist=args.latency_dist, latency_spread=args.latency_spread,
        fault_rate=args.fault_rate, faults=json.loads(args.faults) if args.faults else None,
        timeout_sleep_s=args.timeout_sleep, rate_limit_rpm=args.rate_limit_rpm,
        rate_limit_window_s=args.rate_limit_window, batch_line_failure_rate=args.batch_line_failure_rate,
        seed=args.seed, reject_response_format=args.reject_response_format,
        kind=get_kind(args.kind) if args.kind else None)
    print(f"mock teacher on http://{args.host}:{args.port}/v1 (Ctrl-C to stop)", flush=True)
    web.run_app(server.make_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
