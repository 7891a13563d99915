"""The HTTP layer (FastAPI): OpenAI-compatible endpoints over the batcher, the playground, health and metrics.

- ``GET /v1/models``: one model per domain (``id`` = domain, ``parent`` = base, ``root`` = adapter id), one per
  served version (``domain@adapter_id``) and ``domain@base`` (the base model alone, for comparison);
- ``POST /v1/chat/completions`` (last user message) and ``POST /v1/completions`` (``prompt``): the domain's fixed
  prompt template around the request, greedy decoding, the kind's answer alone; ``stream: true`` sends SSE chunks
  ending in ``data: [DONE]`` (``stream_options.include_usage`` adds a usage chunk); ``system_fingerprint`` names
  the adapter that answered;
- errors in the OpenAI shape ``{"error": {"message", "type", "code", "param"}}``;
- ``GET /healthz``, ``GET /metrics`` (Prometheus), ``GET /`` (playground), ``POST /api/test`` (its test panel:
  the answer tried on the given strings on the server, by the domain's kind: ``{"ok", "summary", "results":
  [{"string", "verdict", "good"}]}`` plus the kind's own fields).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tasks.serve.batcher import Batcher, Job, Metrics, QueueFull
from tasks.serve.engine import Output
from tasks.serve.routes import RouteError, Routes

PLAYGROUND = Path(__file__).with_name("playground.html")
MAX_TEST_STRINGS, MAX_TEST_CHARS = 50, 1000


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str, type_: str = "invalid_request_error",
                 param: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.type, self.param = status, message, code, type_, param
        self.headers = headers or {}


def error_response(status: int, message: str, code: str, type_: str = "invalid_request_error",
                   param: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "code": code, "param": param}}, status,
                        headers=headers)


def create_app(routes: Routes, batcher: Batcher, metrics: Metrics, *, serve_cfg, api_key: str | None) -> FastAPI:
    app = FastAPI(title="loraforge serve", docs_url=None, redoc_url=None, openapi_url=None)

    if serve_cfg.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=serve_cfg.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])

    @app.middleware("http")
    async def guard(request: Request, call_next):
        path = request.url.path
        if api_key and path not in ("/", "/healthz") and request.method != "OPTIONS":
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                metrics.errors.labels("invalid_api_key").inc()
                return error_response(401, "missing or wrong API key: send `Authorization: Bearer $LORAFORGE_API_KEY`",
                                      "invalid_api_key", "authentication_error")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > serve_cfg.max_body_bytes:
            metrics.errors.labels("body_too_large").inc()
            return error_response(413, f"request body of {length} bytes is over the limit of "
                                  f"{serve_cfg.max_body_bytes} (serve.max_body_bytes)", "body_too_large")
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        metrics.errors.labels(e.code).inc()
        return error_response(e.status, e.message, e.code, e.type, e.param, e.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        metrics.errors.labels(f"http_{e.status_code}").inc()
        return error_response(e.status_code, f"{request.method} {request.url.path}: {e.detail}",
                              "not_found" if e.status_code == 404 else f"http_{e.status_code}")

    async def body_of(request: Request) -> dict:
        raw = await request.body()
        if len(raw) > serve_cfg.max_body_bytes:
            raise ApiError(413, f"request body over the limit of {serve_cfg.max_body_bytes} bytes", "body_too_large")
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ApiError(400, f"the request body is not valid JSON: {e}", "invalid_json") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object", "invalid_json")
        return body

    def model_of(body: dict):
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise ApiError(400, "`model` is required: a domain name or domain@adapter_id (GET /v1/models)",
                           "missing_model", param="model")
        try:
            return model, routes.domain_of(model)
        except RouteError as e:
            raise ApiError(e.status, str(e), e.code, param="model") from None

    def limits(body: dict, domain) -> tuple[int, bool, bool]:
        cap = domain.cfg.serve.max_tokens
        mt = body.get("max_completion_tokens", body.get("max_tokens"))
        if mt is None:
            mt = cap
        if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
            raise ApiError(400, f"max_tokens must be a positive integer, got {mt!r}", "invalid_max_tokens",
                           param="max_tokens")
        if mt > cap:
            raise ApiError(400, f"max_tokens {mt} is above this domain's cap of {cap} (serve.max_tokens)",
                           "max_tokens_too_large", param="max_tokens")
        if body.get("n", 1) != 1:
            raise ApiError(400, "only n=1 is supported (greedy decoding has one answer)", "invalid_n", param="n")
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise ApiError(400, "stream must be true or false", "invalid_stream", param="stream")
        opts = body.get("stream_options") or {}
        if not isinstance(opts, dict):
            raise ApiError(400, "stream_options must be an object", "invalid_stream_options", param="stream_options")
        return mt, stream, bool(opts.get("include_usage"))

    def check_text(text, domain, param: str) -> str:
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, f"the request text ({param}) is empty: say what the answer should do",
                           "empty_request", param=param)
        cap = domain.cfg.serve.max_request_chars
        if len(text) > cap:
            raise ApiError(400, f"the request is {len(text)} characters, over this domain's limit of {cap} "
                           "(serve.max_request_chars)", "request_too_long", param=param)
        return text

    def last_user_text(body: dict, domain) -> str:
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs or not all(isinstance(m, dict) for m in msgs):
            raise ApiError(400, "`messages` must be a non-empty list of {role, content} objects", "invalid_messages",
                           param="messages")
        users = [m for m in msgs if m.get("role") == "user"]
        if not users:
            raise ApiError(400, "`messages` holds no user message", "invalid_messages", param="messages")
        content = users[-1].get("content")
        if isinstance(content, list):  # content parts: the text parts joined
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        return check_text(content, domain, "messages")

    def prompt_text(body: dict, domain) -> str:
        p = body.get("prompt")
        if isinstance(p, list) and len(p) == 1:
            p = p[0]
        return check_text(p, domain, "prompt")

    async def submit(model: str, prompt: str, max_tokens: int, stream: bool) -> Job:
        if not batcher.is_alive():
            raise ApiError(503, "the server is shutting down", "unavailable", "server_error",
                           headers={"Retry-After": "5"})
        loop = asyncio.get_running_loop()
        job = Job(model, prompt, max_tokens, loop, loop.create_future(), asyncio.Queue() if stream else None)
        try:
            batcher.submit(job)
        except QueueFull as e:
            raise ApiError(429, f"the server is busy: {e}; retry later", "queue_full", "rate_limit_exceeded",
                           headers={"Retry-After": "1"}) from None
        return job

    async def result(job: Job) -> Output:
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), serve_cfg.request_timeout_s)
        except TimeoutError:
            job.cancelled = True
            raise ApiError(504, f"no answer within {serve_cfg.request_timeout_s} s (serve.request_timeout_s)",
                           "timeout", "server_error") from None
        except RouteError as e:
            raise ApiError(e.status, str(e), e.code, param="model",
                           headers={"Retry-After": "5"} if e.status == 503 else None) from None

    def usage(out: Output) -> dict:
        return {"prompt_tokens": out.prompt_tokens, "completion_tokens": out.completion_tokens,
                "total_tokens": out.prompt_tokens + out.completion_tokens}

    async def complete(request: Request, chat: bool):
        t0 = time.perf_counter()
        endpoint = "chat" if chat else "completions"
        body = await body_of(request)
        model, domain = model_of(body)
        max_tokens, stream, include_usage = limits(body, domain)
        text = last_user_text(body, domain) if chat else prompt_text(body, domain)
        job = await submit(model, domain.kind.render(text), max_tokens, stream)
        rid, created = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24], int(time.time())
        head = {"id": rid, "object": "chat.completion" if chat else "text_completion", "created": created,
                "model": model}

        def choice(answer: str | None, finish: str | None, first: bool = False) -> dict:
            if not chat:
                return {"index": 0, "text": answer or "", "finish_reason": finish, "logprobs": None}
            if not stream:
                return {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": finish}
            delta = ({"role": "assistant", "content": ""} if first else {}) | ({"content": answer} if answer else {})
            return {"index": 0, "delta": delta, "finish_reason": finish}

        if not stream:
            out = await result(job)
            metrics.requests.labels(domain.cfg.name, endpoint, "200").inc()
            metrics.latency.labels(endpoint).observe(time.perf_counter() - t0)
            return JSONResponse({**head, "system_fingerprint": job.adapter_id,
                                 "choices": [choice(domain.kind.answer(out.text), out.finish_reason)],
                                 "usage": usage(out)})

        chunk_head = {**head, "object": "chat.completion.chunk" if chat else "text_completion"}

        def sse(obj: dict) -> str:
            return f"data: {json.dumps(obj)}\n\n"

        async def events():
            sent, first, status = "", True, "200"
            deadline = time.monotonic() + serve_cfg.request_timeout_s
            try:
                while True:
                    try:
                        what, value = await asyncio.wait_for(job.stream.get(), max(0.0, deadline - time.monotonic()))
                    except TimeoutError:
                        job.cancelled, status = True, "504"
                        yield sse({"error": {"message": f"no answer within {serve_cfg.request_timeout_s} s",
                                             "type": "server_error", "code": "timeout", "param": None}})
                        break
                    if what == "error":
                        status = str(getattr(value, "status", 500))
                        yield sse({"error": {"message": str(value), "type": "invalid_request_error",
                                             "code": getattr(value, "code", "server_error"), "param": None}})
                        break
                    fp = {"system_fingerprint": job.adapter_id}
                    if first and chat:
                        yield sse({**chunk_head, **fp, "choices": [choice(None, None, first=True)]})
                    first = False
                    answer = domain.kind.answer(value if what == "delta" else value.text)
                    if answer.startswith(sent) and len(answer) > len(sent):
                        yield sse({**chunk_head, **fp, "choices": [choice(answer[len(sent):], None)]})
                        sent = answer
                    if what == "done":
                        yield sse({**chunk_head, **fp, "choices": [choice(None, value.finish_reason)]})
                        if include_usage:
                            yield sse({**chunk_head, **fp, "choices": [], "usage": usage(value)})
                        break
                yield "data: [DONE]\n\n"
            finally:
                job.cancelled = job.cancelled or not job.future.done()
                metrics.requests.labels(domain.cfg.name, endpoint, status).inc()
                metrics.latency.labels(endpoint).observe(time.perf_counter() - t0)

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await counted(request, "chat", complete(request, chat=True))

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await counted(request, "completions", complete(request, chat=False))

    async def counted(request: Request, endpoint: str, work):
        try:
            return await work
        except ApiError as e:
            metrics.requests.labels("-", endpoint, str(e.status)).inc()
            raise

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": m["id"], "object": "model", "created": 0, "owned_by": "loraforge",
                                            "parent": m["parent"], "root": m["root"]} for m in routes.models()]}

    @app.get("/healthz")
    async def healthz():
        ok = batcher.is_alive()
        doms = {n: {"adapter_id": d.champion.adapter_id if d.champion else None, "refused": d.refused,
                    "base_model": d.base_model} for n, d in routes.domains.items()}
        return JSONResponse({"status": "ok" if ok else "unavailable", "domains": doms, "queue": len(batcher.jobs),
                             "swaps": routes.swaps}, 200 if ok else 503)

    @app.get("/metrics")
    async def prometheus():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/")
    async def playground():
        return HTMLResponse(PLAYGROUND.read_text(), headers={"Content-Security-Policy": "default-src 'self'; "
                            "script-src 'unsafe-inline'; style-src 'unsafe-inline'"})

    @app.post("/api/test")
    async def test_panel(request: Request):
        body = await body_of(request)
        _, domain = model_of(body)
        answer, strings = body.get("answer"), body.get("strings")
        if not isinstance(answer, str) or not answer or len(answer) > MAX_TEST_CHARS:
            raise ApiError(400, f"`answer` must be a non-empty string of at most {MAX_TEST_CHARS} characters",
                           "invalid_answer", param="answer")
        if (not isinstance(strings, list) or len(strings) > MAX_TEST_STRINGS
                or not all(isinstance(s, str) and len(s) <= MAX_TEST_CHARS for s in strings)):
            raise ApiError(400, f"`strings` must be a list of at most {MAX_TEST_STRINGS} strings of at most "
                           f"{MAX_TEST_CHARS} characters", "invalid_strings", param="strings")
        return await run_in_threadpool(domain.kind.test_panel, answer, strings)

    return app
