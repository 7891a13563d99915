"""Scale-out on vLLM's multi-LoRA engine: the ``vllm serve`` line for the promoted adapters, and runtime registration
of a new champion with a running vLLM (``/v1/load_lora_adapter``; the server needs
``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``).

Every adapter version gets its own immutable name, ``<domain>@<adapter_id>``: reloading new weights under an old
name can serve stale cached state (vllm#42125). vLLM refuses adapters with ``modules_to_save`` (the random-init
tiny student trains its embeddings and head that way), so such an adapter is refused here with that reason.

``serve.vllm_url`` in the domain file (or ``$LORAFORGE_VLLM_URL``) turns registration on; the API key is read from
the environment variable ``serve.vllm_api_key_env``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from schemas.config import available_domains, load_domain
from schemas.run import Home
from tasks.serve.engine import AdapterInfo, adapter_info

log = logging.getLogger("loraforge.serve")
URL_ENV = "LORAFORGE_VLLM_URL"
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the values vLLM's --max-lora-rank accepts


class ExportError(ValueError):
    """The adapters cannot be served by vLLM as they are (the message says why)."""


def lora_name(domain: str, adapter_id: str) -> str:
    return f"{domain}@{adapter_id}"


def servable(domain: str, info: AdapterInfo) -> None:
    if info.modules_to_save:
        raise ExportError(f"{domain}: adapter {info.adapter_id} has modules_to_save {info.modules_to_save}; vLLM "
                          "refuses adapters with modules_to_save (train on a pretrained base with plain LoRA, e.g. "
                          "training.base_model: smollm2-135m-instruct)")


def promoted(domains: list[str] | None, home: Home) -> list[tuple[str, AdapterInfo]]:
    names = domains or [d for d in available_domains() if (home.adapters / d / "promoted").is_symlink()]
    out = []
    for d in names:
        link = home.adapters / d / "promoted"
        if not link.is_symlink():
            raise ExportError(f"{d}: no promoted adapter (loraforge promote --domain {d} ...)")
        out.append((d, adapter_info(os.readlink(link))))
    if not out:
        raise ExportError("no domain has a promoted adapter: nothing to export")
    return out


def export_command(domains: list[str] | None = None, home: Home | None = None) -> str:
    """``vllm serve BASE_DIR --enable-lora --lora-modules NAME=PATH … --max-lora-rank R`` for every promoted adapter;
    BASE_DIR is the exact base directory the adapters were trained on."""
    adapters = promoted(domains, home or Home.from_env())
    for d, info in adapters:
        servable(d, info)
    bases = {info.base_model for _, info in adapters}
    if len(bases) != 1:
        raise ExportError(f"the adapters were trained on different bases {sorted(bases)}; one vLLM serves one base: "
                          "export the domains of each base separately (--domain)")
    rank = max(info.r for _, info in adapters)
    max_rank = next((r for r in LORA_RANKS if r >= rank), rank)
    modules = " ".join(f"{lora_name(d, i.adapter_id)}={Path(i.path).resolve()}" for d, i in adapters)
    return (f"VLLM_ALLOW_RUNTIME_LORA_UPDATING=True vllm serve {Path(bases.pop()).resolve()} --enable-lora "
            f"--lora-modules {modules} --max-lora-rank {max_rank} --max-loras {max(1, len(adapters))}")


def _post(url: str, path: str, body: dict, api_key: str | None) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    r = httpx.post(url.rstrip("/") + path, json=body, headers=headers, timeout=60)
    if r.status_code >= 400:
        raise ExportError(f"vLLM {path} answered {r.status_code}: {r.text[:300]}")


def sync_promotion(domain: str, adapter_path: str, previous_adapter_id: str | None) -> dict | None:
    """Register the domain's new champion with the configured vLLM, then unload the one it replaced.

    None when no vLLM is configured. Never raises: the registry change is already recorded, so a vLLM that is down
    or refuses is reported (log + the returned ``error``) and the operator re-registers by hand."""
    try:
        cfg = load_domain(domain, "full").serve
    except Exception as e:  # the registry may hold a domain whose file is gone: only $LORAFORGE_VLLM_URL applies
        log.debug("no serve config for %s: %s", domain, e)
        cfg = None
    url = os.environ.get(URL_ENV) or (cfg.vllm_url if cfg else None)
    if not url:
        return None
    key = os.environ.get(cfg.vllm_api_key_env if cfg else "VLLM_API_KEY") or None
    result = {"url": url, "loaded": None, "unloaded": None, "error": None}
    try:
        info = adapter_info(adapter_path)
        servable(domain, info)
        name = lora_name(domain, info.adapter_id)
        _post(url, "/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(Path(adapter_path).resolve())}, key)
        result["loaded"] = name
        if previous_adapter_id and previous_adapter_id != info.adapter_id:
            old = lora_name(domain, previous_adapter_id)
            _post(url, "/v1/unload_lora_adapter", {"lora_name": old}, key)
            result["unloaded"] = old
    except Exception as e:
        result["error"] = f"{type(e).__name__}: {e}"
        log.warning("the registry changed but vLLM at %s was not updated: %s", url, result["error"])
    return result
