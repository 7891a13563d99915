"""`loraforge serve` end to end on loopback: two domains promoted, the `openai` client through both endpoints (streamed
with include_usage and not, by domain and by domain@adapter_id), /v1/models, /metrics, errors in the OpenAI shape
while the server keeps serving, mixed-domain batches, hot swap on promotion and rollback, `loraforge ask` in-process
and through --url, and the playground in headless Chromium (screenshot: docs/serve-playground.png).

One module-scoped server and one set of adapters for every test here. The adapters are the tiny student's LoRA
recipe (all-linear + modules_to_save, as the tiny profile trains it) initialised by PEFT with non-zero weights
rather than trained: a tiny pipeline run takes minutes on a shared 2-core box, and serving does not care how good
the weights are, only that each adapter answers as itself (benches train theirs with the tiny profile)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.test_serve_vllm import free_port

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "flows.cli"]
REQUEST = "a US zip code with an optional four digit suffix"


def make_adapter(home, domain: str, adapter_id: str, base: str, seed: int, *, modules_to_save=True,
                 manifest_base: str | None = None) -> dict:
    """A LoRA adapter on ``base`` with seeded non-zero weights, saved and recorded as the pipeline records one
    (``metrics.json`` last, as training writes it; ``manifest_base`` names another base in it)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tasks import store

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    cfg = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM",
                     modules_to_save=["embed_tokens", "lm_head"] if modules_to_save else None)
    path = home.adapters / domain / adapter_id
    get_peft_model(model, cfg).save_pretrained(path)
    AutoTokenizer.from_pretrained(base).save_pretrained(path)
    manifest = {"domain": domain, "base_model": manifest_base or base, "quantized_4bit": False}
    (path / "metrics.json").write_text(json.dumps(manifest))
    store.init_db(home.db)
    row = {"adapter_id": adapter_id, "domain": domain, "run_id": None, "dataset_id": None, "base_model": base,
           "path": str(path), "status": "candidate"}
    store.record_adapter(home.db, row)
    return row


def promote(home, row: dict) -> None:
    from tasks import registry

    registry.apply_decision(home.db, home.adapters, run_id=None, domain=row["domain"], adapter=row,
                            decision=registry.forced_decision("test"), reason="test")


@pytest.fixture(scope="module")
def served(tmp_path_factory, student_dir):
    """Adapters for regex-python (two versions) and regex-re2, the first of each promoted (forced), and
    `loraforge serve` for both domains on a free loopback port."""
    from schemas.run import Home
    from tasks.student import resolve_base_model

    home = Home.from_env(tmp_path_factory.mktemp("serve-home"))
    base = resolve_base_model("tiny-llama", home.models)  # the session's student (shared models directory)
    assert base == student_dir
    assert Path(base).name == Path(student_dir).name
    py1 = make_adapter(home, "regex-python", "ad-py-one", base, 1)
    py2 = make_adapter(home, "regex-python", "ad-py-two", base, 2)
    re2 = make_adapter(home, "regex-re2", "ad-re2-one", base, 3, modules_to_save=False)
    env = os.environ | {"LORAFORGE_HOME": str(home.root)}
    env.pop("LORAFORGE_API_KEY", None)
    promote(home, py1)  # what `loraforge promote --force --reason test` does, minus its Prefect flow run
    promote(home, re2)
    port = free_port()
    log = open(home.root / "serve.log", "wb")  # noqa: SIM115 - closed on teardown
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port), "--domain", "regex-python", "--domain", "regex-re2"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        assert proc.poll() is None, (home.root / "serve.log").read_text()[-3000:]
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "server did not come up"
        time.sleep(0.5)
    yield {"home": home, "url": url, "env": env, "proc": proc, "py1": py1, "py2": py2, "re2": re2, "base": base}
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # graceful: stop accepting, finish in-flight, exit
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()
    # uvicorn shuts down gracefully, then re-raises the signal it caught: the exit status says "ended by SIGTERM"
    assert proc.returncode in (0, -signal.SIGTERM), f"SIGTERM did not end the server cleanly: {proc.returncode}"


@pytest.fixture(scope="module")
def client(served):
    from openai import OpenAI

    return OpenAI(base_url=served["url"] + "/v1", api_key="none", max_retries=0, timeout=120)


def prompt_tokens(base: str, domain: str, text: str) -> int:
    from transformers import AutoTokenizer

    from schemas.config import load_domain
    from tasks.kinds.regex import KIND

    tok = AutoTokenizer.from_pretrained(base)
    return len(tok(KIND.render_prompt(load_domain(domain).task.prompt_template, text),
                   add_special_tokens=False)["input_ids"])


def ask_all_ways(client, model: str) -> list[tuple[str, str, str, dict]]:
    """(how, answer, fingerprint, usage) for chat and completions, streamed with include_usage and not."""
    out = []
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": REQUEST}], max_tokens=12)
    out.append(("chat", r.choices[0].message.content, r.system_fingerprint, r.usage.model_dump()))
    r = client.completions.create(model=model, prompt=REQUEST, max_tokens=12)
    out.append(("completions", r.choices[0].text, r.system_fingerprint, r.usage.model_dump()))
    for how, create, kw in (("chat-stream", client.chat.completions.create,
                             {"messages": [{"role": "user", "content": REQUEST}]}),
                            ("completions-stream", client.completions.create, {"prompt": REQUEST})):
        text, fps, usage, chunks = "", set(), None, 0
        for chunk in create(model=model, max_tokens=12, stream=True, stream_options={"include_usage": True}, **kw):
            chunks += 1
            fps.add(chunk.system_fingerprint)
            if chunk.usage:
                usage = chunk.usage.model_dump()
            for c in chunk.choices:
                text += (c.delta.content or "") if how == "chat-stream" else (c.text or "")
        assert len(fps) == 1 and chunks >= 3, (how, fps, chunks)
        out.append((how, text, fps.pop(), usage))
    return out


def test_models_lists_each_domain_and_its_pinned_version(served, client):
    models = {m.id: m.model_dump() for m in client.models.list().data}
    assert models["regex-python"]["root"] == "ad-py-one" and models["regex-re2"]["root"] == "ad-re2-one"
    assert models["regex-python"]["parent"] == served["base"]
    assert "regex-python@ad-py-one" in models and "regex-re2@ad-re2-one" in models


@pytest.mark.parametrize("domain,adapter", [("regex-python", "ad-py-one"), ("regex-re2", "ad-re2-one")])
def test_each_domain_answers_through_both_endpoints_streamed_and_not(served, client, domain, adapter):
    n_prompt = prompt_tokens(served["base"], domain, REQUEST)
    answers = ask_all_ways(client, domain) + ask_all_ways(client, f"{domain}@{adapter}")
    first = answers[0][1]
    assert first and first == first.strip()  # the kind's answer alone (normalised)
    for how, text, fingerprint, usage in answers:
        assert text == first, how  # greedy: one answer, however it is asked
        assert fingerprint == adapter, how
        assert usage["prompt_tokens"] == n_prompt and 0 < usage["completion_tokens"] <= 12, how
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_domains_answer_differently_and_base_alone_is_available(served, client):
    def chat(model):
        r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": REQUEST}], max_tokens=12)
        return r.choices[0].message.content, r.system_fingerprint

    py, re2, base = chat("regex-python"), chat("regex-re2"), chat("regex-python@base")
    assert base[1] == "__base__" and len({py[0], re2[0], base[0]}) == 3


def test_concurrent_requests_of_two_domains_share_batches(served, client):
    results, errors = [], []

    def one(model):
        try:
            r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": REQUEST}],
                                               max_tokens=8)
            results.append((model, r.system_fingerprint))
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=one, args=(m,)) for m in ["regex-python", "regex-re2"] * 8]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 16
    assert {m: fp for m, fp in results} == {"regex-python": "ad-py-one", "regex-re2": "ad-re2-one"}
    metrics = httpx.get(served["url"] + "/metrics").text
    sizes = {m.group(1): float(m.group(2)) for m in re.finditer(r'loraforge_batch_size_bucket\{le="([^"]+)"\} (\S+)',
                                                                 metrics)}
    assert sizes["1.0"] < sizes["+Inf"], "no batch held more than one request"


def error_of(r: httpx.Response) -> dict:
    body = r.json()
    assert set(body) == {"error"} and {"message", "type", "code"} <= set(body["error"]), body
    return body["error"]


def test_bad_requests_get_4xx_in_the_openai_shape_and_the_server_keeps_serving(served, client):
    url = served["url"]
    chat = f"{url}/v1/chat/completions"
    r = httpx.post(chat, json={"model": "no-such-domain", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 404 and error_of(r)["code"] == "model_not_found"
    r = httpx.post(chat, content=b'{"model": "regex-python", "messages": [',
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_json"
    r = httpx.post(chat, json={"model": "regex-python", "messages": [{"role": "user", "content": "x" * 5000}]})
    assert r.status_code == 400 and error_of(r)["code"] == "request_too_long"
    r = httpx.post(f"{url}/v1/completions", json={"model": "regex-python", "prompt": "   "})
    assert r.status_code == 400 and error_of(r)["code"] == "empty_request"
    r = httpx.post(f"{url}/v1/completions", json={"model": "regex-python", "prompt": "x", "max_tokens": 10_000})
    assert r.status_code == 400 and error_of(r)["code"] == "max_tokens_too_large"
    r = httpx.post(chat, json={"model": "regex-python"})
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_messages"
    r = httpx.post(f"{url}/v1/completions", content=b"x" * 100_000)
    assert r.status_code == 413 and error_of(r)["code"] == "body_too_large"
    import openai

    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="regex-python@ad-not-served", prompt=REQUEST)
    r = client.completions.create(model="regex-python", prompt=REQUEST, max_tokens=4)  # still serving
    assert r.system_fingerprint == "ad-py-one"
    assert httpx.get(f"{url}/healthz").json()["status"] == "ok"


def test_metrics_count_requests_errors_tokens_and_latency(served, client):
    client.completions.create(model="regex-re2", prompt=REQUEST, max_tokens=4)
    text = httpx.get(served["url"] + "/metrics").text
    ok = sum(float(v) for v in re.findall(r'loraforge_requests_total\{[^}]*status="200"[^}]*\} (\S+)', text))
    assert ok >= 1 and 'model="regex-re2"' in text
    for name in ("loraforge_request_seconds_bucket", "loraforge_tokens_total", "loraforge_queue_depth",
                 "loraforge_batch_size_count", "loraforge_errors_total", "loraforge_adapter_swaps"):
        assert name in text, name


def test_ask_in_process_and_through_the_server(served, client):
    want = client.chat.completions.create(model="regex-python", messages=[{"role": "user", "content": REQUEST}],
                                          max_tokens=12).choices[0].message.content
    for extra in ([], ["--url", served["url"]]):
        r = subprocess.run([*CLI, "ask", "--domain", "regex-python", REQUEST, "--max-tokens", "12", "--json", *extra],
                           cwd=REPO, env=served["env"], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        got = json.loads(r.stdout.strip().splitlines()[-1])
        assert set(got) == {"domain", "adapter_id", "request", "output", "tokens", "ms"}
        assert got["adapter_id"] == "ad-py-one" and got["output"] == want and got["request"] == REQUEST, extra


def wait_for(client, adapter: str) -> None:
    """Until regex-python answers with ``adapter``."""
    deadline = time.monotonic() + 120
    while client.completions.create(model="regex-python", prompt=REQUEST, max_tokens=2).system_fingerprint != adapter:
        assert time.monotonic() < deadline, f"{adapter} never answered"
        time.sleep(0.1)


def metric(url: str, name: str, **labels) -> float:
    """One sample of /metrics (labels in the order the metric declares them); 0 when the series does not exist."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(rf"^{re.escape(name)}\{{{re.escape(want)}\}} (\S+)$", httpx.get(url + "/metrics").text, re.M)
    return float(m.group(1)) if m else 0.0


def test_hot_swap_on_promotion_and_rollback(served, client):
    from tasks import registry

    home = served["home"]
    promote(home, served["py2"])
    wait_for(client, "ad-py-two")
    models = {m.id for m in client.models.list().data}
    assert "regex-python@ad-py-two" in models and "regex-python@ad-py-one" not in models
    import openai

    with pytest.raises(openai.NotFoundError):  # the old version was unloaded, not answered under a stale name
        client.completions.create(model="regex-python@ad-py-one", prompt=REQUEST, max_tokens=2)
    registry.rollback(home.db, home.adapters, "regex-python")
    wait_for(client, "ad-py-one")
    assert httpx.get(served["url"] + "/healthz").json()["swaps"] >= 2
    assert 'loraforge_adapter_swaps_total{domain="regex-python"}' in httpx.get(served["url"] + "/metrics").text


def test_an_adapter_trained_on_another_base_is_refused_and_the_champion_keeps_answering(served, client, tmp_path):
    from tasks import registry, store

    home = served["home"]
    other_base = tmp_path / "other-base"  # same architecture, different content: another base
    shutil.copytree(served["base"], other_base)
    cfg = json.loads((other_base / "config.json").read_text())
    (other_base / "config.json").write_text(json.dumps({**cfg, "rms_norm_eps": 1e-6}))
    path = home.adapters / "regex-python" / "ad-py-elsewhere"
    shutil.copytree(served["py2"]["path"], path, ignore=shutil.ignore_patterns("metrics.json"))  # complete below
    (path / "metrics.json").write_text(json.dumps({"domain": "regex-python", "base_model": str(other_base)}))
    row = {**served["py2"], "adapter_id": "ad-py-elsewhere", "path": str(path), "base_model": str(other_base)}
    store.record_adapter(home.db, row)
    promote(home, row)
    deadline = time.monotonic() + 60
    while not (refused := httpx.get(served["url"] + "/healthz").json()["domains"]["regex-python"]["refused"]):
        assert time.monotonic() < deadline, "the server never refused the adapter"
        time.sleep(0.1)
    assert "ad-py-elsewhere" in refused and str(other_base) in refused and "refused" in refused
    r = client.completions.create(model="regex-python", prompt=REQUEST, max_tokens=2)
    assert r.system_fingerprint == "ad-py-one"  # the champion it would have replaced still answers
    registry.rollback(home.db, home.adapters, "regex-python")
    deadline = time.monotonic() + 60
    while httpx.get(served["url"] + "/healthz").json()["domains"]["regex-python"]["refused"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_candidate_written_while_serving_is_preloaded_and_its_promotion_loads_nothing(served, client, tmp_path):
    """The gate's promotion of a fresh candidate is a route switch: the server attaches the candidate when its
    directory is complete (not served under any name before its promotion), passes over one trained on another
    base, and the promotion loads nothing on the swap's path."""
    import openai

    from tasks import registry

    home, url = served["home"], served["url"]

    def log_text() -> str:
        return (home.root / "serve.log").read_text()

    other_base = tmp_path / "other-base"
    shutil.copytree(served["base"], other_base)
    make_adapter(home, "regex-python", "ad-py-foreign", served["base"], 5, manifest_base=str(other_base))
    deadline = time.monotonic() + 60
    while "candidate ad-py-foreign not preloaded" not in log_text():
        assert time.monotonic() < deadline, "the watcher never looked at the candidate on another base"
        time.sleep(0.1)
    swap_loads = metric(url, "loraforge_adapter_loads_total", domain="regex-python", when="swap")
    preloads = metric(url, "loraforge_adapter_loads_total", domain="regex-python", when="preload")
    three = make_adapter(home, "regex-python", "ad-py-three", served["base"], 6)
    deadline = time.monotonic() + 60
    while not metric(url, "loraforge_adapters_attached", adapter_id="ad-py-three", role="candidate"):
        assert time.monotonic() < deadline, "the candidate written while serving was never preloaded"
        time.sleep(0.1)
    assert metric(url, "loraforge_adapter_loads_total", domain="regex-python", when="preload") == preloads + 1
    assert not metric(url, "loraforge_adapters_attached", adapter_id="ad-py-foreign", role="candidate")
    with pytest.raises(openai.NotFoundError):  # attached, but nobody's route until it is promoted
        client.completions.create(model="regex-python@ad-py-three", prompt=REQUEST, max_tokens=2)

    promote(home, three)
    wait_for(client, "ad-py-three")
    assert metric(url, "loraforge_adapter_loads_total", domain="regex-python", when="swap") == swap_loads
    assert re.search(r"regex-python → ad-py-three \(\d+ ms, already attached\)", log_text()), log_text()[-2000:]
    assert metric(url, "loraforge_adapters_attached", adapter_id="ad-py-three", role="champion") == 1
    registry.rollback(home.db, home.adapters, "regex-python")  # the module's champion again, for the tests below
    wait_for(client, "ad-py-one")
    assert metric(url, "loraforge_adapter_loads_total", domain="regex-python", when="swap") == swap_loads


def chromium() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


def test_playground_asks_tests_on_the_server_and_escapes_user_text(served, tmp_path):
    from urllib.parse import urlencode

    if chromium() is None:
        pytest.skip("no chromium: run `bash scripts/ensure_chromium.sh` (as root it installs Debian's chromium)")
    hostile = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"
    shots = {}
    for name, q in (("serve-playground", REQUEST), ("escaped", hostile)):
        query = urlencode([("domain", "regex-python"), ("q", q), ("t", "12345"), ("t", "<b>x</b>"), ("run", "1")])
        png = tmp_path / f"{name}.png"
        dom = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1000,900",
             f"--user-data-dir={tmp_path / ('profile-' + name)}", "--virtual-time-budget=30000",
             f"--screenshot={png}", "--dump-dom", f"{served['url']}/?{query}"],
            capture_output=True, text=True, timeout=180).stdout
        shots[name] = (dom, png)
        assert 'data-done="1"' in dom, dom[-2000:]  # the answer arrived and the test panel ran
        assert "full match" in dom or "no match" in dom, "the test panel showed no verdicts"
        assert "&lt;b&gt;x&lt;/b&gt;" in dom  # a test string shown as text, not markup
    dom, _ = shots["escaped"]
    assert "pwned" not in dom.split("<title>")[1].split("</title>")[0]
    assert "&lt;script&gt;" in dom and "<img src=\"x\"" not in dom
    docs = REPO / "docs" / "serve-playground.png"
    if os.environ.get("LORAFORGE_UI_SCREENSHOTS") == "docs" or not docs.exists():
        shutil.copy(shots["serve-playground"][1], docs)


def test_sigterm_finishes_the_request_in_flight_then_exits(served):
    """Last in this module: it stops the module's server."""
    proc, got = served["proc"], []

    def stream():
        body = {"model": "regex-python", "prompt": REQUEST, "max_tokens": 48, "stream": True}
        with httpx.stream("POST", served["url"] + "/v1/completions", json=body, timeout=120) as r:
            got.extend(line for line in r.iter_lines() if line)

    t = threading.Thread(target=stream)
    t.start()
    time.sleep(0.3)  # the request is in flight (48 tokens take longer than this here)
    os.killpg(proc.pid, signal.SIGTERM)
    t.join(120)
    assert got and got[-1] == "data: [DONE]", got[-3:]  # the request in flight was finished
    assert proc.wait(60) in (0, -signal.SIGTERM)  # graceful exit (uvicorn re-raises the SIGTERM it handled)
    with pytest.raises(httpx.TransportError):  # no longer accepting
        httpx.get(served["url"] + "/healthz", timeout=5)
