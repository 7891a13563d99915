"""Serving what the gate promotes: an OpenAI-compatible HTTP app (app.py) over a request batcher (batcher.py) that
answers with one base model per distinct base and every champion adapter attached (engine.py), following a live
view of the registry (routes.py); in-process ``ask`` and the server's start-up in server.py; vLLM export and
runtime registration in vllm.py; the kind-specific parts (prompt, answer, test panel) from the
domain's kind (``get_kind(cfg.task.kind).serving(cfg)``)."""
