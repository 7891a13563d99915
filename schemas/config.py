"""Domain configuration: one YAML file per domain under ``configs/domains/``, one section per concern.

A *domain* instantiates a task *kind* (``task.kind``; tasks/kinds/) for one user: prompt template, topic mix,
teacher, sizes, training recipe, evaluation and gate thresholds. Every model forbids unknown keys, so a typo fails
at load time with a message naming the file, the key and what is allowed. ``training.sft``, ``training.lora``
and ``training.quantization`` are the exception that proves it: they take any argument of TRL's ``SFTConfig``,
PEFT's ``LoraConfig`` and ``BitsAndBytesConfig``, checked against those classes' own arguments.

The models here hold the generic keys of each section; a kind adds its own keys (a dialect, a house style, its
gate checks) by subclassing sections in its config model (``Kind.config_model``, a ``DomainConfig`` subclass), and
``parse_domain`` validates a file with the model of the kind it names, so a file keeps one section per concern.

Profiles (``tiny`` for tests, ``quick`` for a look, ``full`` = the default) are dotted-key overrides in the
domain's ``profiles:`` section, applied before validation so an override is checked like any other key.
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib
import inspect
import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from tasks.kinds import DEFAULT_KIND

DEFAULT_DOMAIN = "regex-python"  # what the CLI and the pipeline run without --domain; the example in messages
PROFILES = ("tiny", "quick", "full")
Profile = Literal["tiny", "quick", "full"]
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def project_root() -> Path:
    return Path(__file__).resolve().parents[1]


def configs_dir() -> Path:
    return Path(os.environ.get("LORAFORGE_CONFIGS", project_root() / "configs"))


class ConfigError(ValueError):
    """A configuration file or value is wrong; the message says where and what is allowed."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskConfig(Strict):
    """What the student learns: the kind, the fixed prompt the student sees, and the mix of requests (topics,
    difficulties, phrasing styles: the names are the kind's teacher's)."""

    style_names: ClassVar[tuple[str, ...]] = ()  # the styles the kind's teacher honours (empty: any)

    kind: str = DEFAULT_KIND  # tasks/kinds/<kind>/, resolved by tasks.kinds.get_kind
    # Ends on a newline so the prompt is a token-boundary prefix of prompt+completion.
    prompt_template: str = "{description}\n"
    topics: dict[str, float] = Field(default_factory=dict)
    difficulties: dict[int, float] = Field(default_factory=lambda: {1: 0.3, 2: 0.4, 3: 0.3})
    # phrasing styles of the teacher's requests and their weights (none: the teacher draws one per request)
    styles: dict[str, float] = Field(default_factory=dict)

    @field_validator("styles")
    @classmethod
    def _known_styles(cls, v: dict) -> dict:
        unknown = sorted(set(v) - set(cls.style_names)) if cls.style_names else []
        if unknown:
            raise ValueError(f"unknown style(s) {unknown}; allowed: {', '.join(cls.style_names)}")
        return v

    @field_validator("prompt_template")
    @classmethod
    def _template_has_description(cls, v: str) -> str:
        if "{description}" not in v:
            raise ValueError("prompt_template must contain the placeholder {description}")
        return v

    @field_validator("topics", "difficulties", "styles")
    @classmethod
    def _positive_weights(cls, v: dict) -> dict:
        if not v or any(w <= 0 for w in v.values()):
            raise ValueError("needs at least one entry and every weight must be > 0")
        return v


class ModelPrice(Strict):
    """USD per 1,000 tokens for one model (look the figures up on the provider's price page)."""

    input_per_1k: float = Field(0.0, ge=0)
    output_per_1k: float = Field(0.0, ge=0)


class TeacherConfig(Strict):
    """Who writes the examples. ``grammar`` is offline and free; ``openai`` is any OpenAI-compatible URL."""

    provider: Literal["grammar", "openai"] = "grammar"
    model: str = "grammar-v1"
    # batches on a Dask LocalCluster (prefect-dask, the `dask` extra) instead of in-process; LORAFORGE_TASK_RUNNER wins
    task_runner: Literal["thread", "dask"] = "thread"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = Field(0.8, ge=0, le=2)
    max_tokens: int = Field(400, gt=0)
    concurrency: int = Field(16, gt=0, le=1024)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(4, ge=0, le=20)
    batch_size: int = Field(50_000, gt=0)  # requests per Prefect task / Batch API file (its maximum)
    # Answers are stored in DuckDB while a batch runs, every ``store_every`` answers or ``store_interval_s``
    # seconds, so a crash loses at most the requests in flight plus that window, never a whole batch.
    store_every: int = Field(200, gt=0)
    store_interval_s: float = Field(2.0, gt=0)
    # Structured output: ``json_schema`` (strict schema), ``json_object`` (JSON mode) or ``none`` (plain text,
    # tolerant parse). With ``structured_output_fallback`` a server that rejects response_format gets plain text.
    structured_output: Literal["json_schema", "json_object", "none"] = "json_schema"
    structured_output_fallback: bool = True
    # Rate limits (client side, smooth: no burst beyond about one second's worth). None = unlimited.
    rpm: int | None = Field(None, gt=0)
    tpm: int | None = Field(None, gt=0)
    # ``chat``: concurrent chat completions; ``batch``: the provider's Batch API (JSONL upload, poll, download).
    mode: Literal["chat", "batch"] = "chat"
    batch_completion_window: str = "24h"
    batch_poll_interval_s: float = Field(30.0, gt=0)
    batch_max_wait_s: float = Field(86_400.0, gt=0)
    batch_price_factor: float = Field(0.5, ge=0, le=1)  # Batch API discount on the price table
    # Cost: a price table per model (USD per 1k tokens), the completion length used for estimates, and hard caps.
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    est_completion_tokens: int = Field(200, gt=0)
    max_cost_usd: float | None = Field(None, gt=0)
    max_requests: int | None = Field(None, gt=0)

    def price(self) -> ModelPrice:
        """This model's price (zero when the table has no entry: local servers cost nothing)."""
        return self.prices.get(self.model, ModelPrice())

    @model_validator(mode="after")
    def _budget_needs_a_price(self) -> TeacherConfig:
        if (self.max_cost_usd is not None and self.provider == "openai"
                and self.price() == ModelPrice()):
            raise ValueError(f"max_cost_usd is set but teacher.prices has no entry for model {self.model!r}; "
                             f"add prices: {{{self.model}: {{input_per_1k: ..., output_per_1k: ...}}}}")
        return self


class ValidationConfig(Strict):
    """What an example must satisfy to be accepted (reason codes: tasks/validate.py and the kind's checks)."""

    # description (the request as a person types it)
    min_description_chars: int = Field(3, ge=1)
    max_description_chars: int = Field(300, gt=0)
    # per output: the kind's checks run in worker processes that are killed past this
    match_timeout_s: float = Field(2.0, gt=0)
    # dedup and decontamination
    max_per_equivalence_class: int = Field(5, ge=1)  # paraphrases of one answer survive, no answer dominates
    eval_sets: list[str] = Field(default_factory=list)  # extra JSONL evaluation sets besides configs/golden/

    @model_validator(mode="after")
    def _bounds(self) -> ValidationConfig:
        if self.min_description_chars > self.max_description_chars:
            raise ValueError("min_description_chars must be <= max_description_chars")
        return self


class DatasetConfig(Strict):
    """How many examples to request and how to split them; what a focused run (``--focus failures``) spends on the
    champion's failures and trains on (docs/failure-loop.md)."""

    n_requests: int = Field(30_000, gt=0)
    val_fraction: float = Field(0.02, ge=0, lt=0.5)
    test_fraction: float = Field(0.05, gt=0, lt=0.5)
    # also publish snapshots and adapters to this fsspec URL (s3://…, file://…); LORAFORGE_STORAGE_URL wins
    storage_url: str | None = None
    # failures: plan the requests from the champion's failure report (`loraforge run --focus failures`)
    focus: Literal["none", "failures"] = "none"
    focus_share: float = Field(0.5, ge=0, le=1)  # share of n_requests asked about the failing slices' items
    focus_min_failed: int = Field(2, ge=1)  # a slice is targeted with at least this many failures (and above the mean)
    # union: train on the champion's examples plus the new ones; continue: the new ones, from the champion's adapter
    focus_train: Literal["union", "continue"] = "union"


# ---- training: the libraries' own arguments, handed over whole ----------------------------------------------

# The library class each training section is the arguments of ("module:Class"). It is imported only when a
# section holds a key loraforge does not declare: the import costs ~5 s (torch), and shipped domains need none.
LIBRARY_CLASSES = {"lora": "peft:LoraConfig", "sft": "trl:SFTConfig", "quantization": "transformers:BitsAndBytesConfig"}


@functools.cache
def library_arguments(target: str) -> frozenset[str]:
    """The keyword arguments a library config class takes: the named parameters of its ``__init__``. For a
    dataclass (``SFTConfig``, ``LoraConfig``) these are exactly its init fields, ``dataclasses.fields``; a
    hand-written ``__init__`` (``BitsAndBytesConfig``) names its own."""
    module, _, name = target.partition(":")
    params = inspect.signature(getattr(importlib.import_module(module), name).__init__).parameters.values()
    return frozenset(p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


def _closest(key: str, allowed: frozenset[str], declared: set[str]) -> str:
    """The argument a misspelt key most likely meant ("" if none is close); on a tie, one loraforge declares."""
    def score(candidate: str) -> tuple[float, bool]:
        return difflib.SequenceMatcher(None, key, candidate).ratio(), candidate in declared

    best = max(sorted(allowed | declared), key=score)
    return best if score(best)[0] >= 0.6 else ""


class LibraryArgs(BaseModel):
    """A library config's keyword arguments, spelled as the library spells them and handed to it whole.

    The fields a subclass declares are loraforge's own defaults (where they differ from the library's, or the
    YAMLs and loraforge's code rely on them) and loraforge's own keys (``own_keys``, never handed over). Any other
    key is the library's: it is checked against the library class's own arguments, so a typo fails naming the
    key (with the closest argument as a hint), and passed through as written."""

    model_config = ConfigDict(extra="allow", frozen=True)
    library: ClassVar[str]
    own_keys: ClassVar[frozenset[str]] = frozenset()
    reserved: ClassVar[dict[str, str]] = {}  # library arguments loraforge sets itself, and why

    @model_validator(mode="after")
    def _library_keys(self) -> LibraryArgs:
        extra = sorted(self.model_extra or {})
        if not extra:
            return self
        taken = [k for k in extra if k in self.reserved]
        if taken:
            raise PydanticCustomError("reserved_library_key", "{key}: set by loraforge ({why})",
                                      {"key": taken[0], "why": self.reserved[taken[0]]})
        allowed = library_arguments(self.library)
        unknown = [k for k in extra if k not in allowed]
        if unknown:
            hints = {k: _closest(k, allowed, set(type(self).model_fields)) for k in unknown}
            raise PydanticCustomError(
                "unknown_library_key", "unknown key(s) {keys}: not arguments of {library}",
                {"keys": unknown, "library": self.library.replace(":", "."), "hints": hints})
        return self

    def library_kwargs(self) -> dict[str, Any]:
        """The section as the library's keyword arguments: every key set or defaulted, loraforge's own left out."""
        return self.model_dump(exclude=set(self.own_keys))


class LoraSettings(LibraryArgs):
    """PEFT ``LoraConfig`` arguments (``task_type`` defaults to CAUSAL_LM)."""

    library: ClassVar[str] = LIBRARY_CLASSES["lora"]

    r: int = Field(16, gt=0)
    lora_alpha: int = Field(32, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"
    modules_to_save: list[str] | None = None


class SFTSettings(LibraryArgs):
    """TRL ``SFTConfig`` arguments (TrainingArguments included: ``optim``, ``max_grad_norm``, ``report_to`` …).

    Declared: loraforge's recipe where it differs from TRL's defaults, and the keys the YAMLs or loraforge's own
    checks use. tasks/train.py adds what the hardware decides (bf16, pinned memory) unless a key here says
    otherwise, and always the output directory (the adapter's checkpoints, for resume)."""

    library: ClassVar[str] = LIBRARY_CLASSES["sft"]
    reserved: ClassVar[dict[str, str]] = {
        "output_dir": "OUTPUT/checkpoints, where a rerun resumes from",
        "include_num_input_tokens_seen": "non_padding, which the tokens/s and MFU figures count",
    }

    num_train_epochs: float = Field(1.0, gt=0)
    max_steps: int = -1
    learning_rate: float = Field(2e-4, gt=0)
    lr_scheduler_type: str = "linear"
    warmup_steps: int = Field(0, ge=0)
    per_device_train_batch_size: int = Field(16, gt=0)
    max_length: int = Field(256, gt=0)
    logging_steps: int = Field(25, gt=0)
    seed: int = 0
    # Checkpoints (a rerun resumes from the newest one) and validation-loss evaluation
    save_steps: int = Field(200, gt=0)
    save_total_limit: int | None = Field(2, gt=0)
    eval_strategy: Literal["no", "steps"] = "steps"
    eval_steps: int = Field(200, gt=0)
    per_device_eval_batch_size: int = Field(64, gt=0)
    load_best_model_at_end: bool = False  # with early stopping: keep the best-val-loss checkpoint, not the last
    # Throughput knobs (see bench/train_throughput.py)
    gradient_checkpointing: bool = False  # TRL defaults to True; checkpointing was 1.8x slower on CPU
    padding_free: bool = False
    train_sampling_strategy: Literal["random", "group_by_length"] = "random"
    use_liger_kernel: bool = False


class QuantizationSettings(LibraryArgs):
    """bitsandbytes ``BitsAndBytesConfig`` arguments; ``load_in_4bit: auto`` means NF4 on CUDA only."""

    library: ClassVar[str] = LIBRARY_CLASSES["quantization"]
    own_keys: ClassVar[frozenset[str]] = frozenset({"load_in_4bit", "prepare_model_for_kbit_training"})

    load_in_4bit: bool | Literal["auto"] = "auto"  # loraforge's: true/false, or auto = on CUDA, off on CPU
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = "nf4"
    bnb_4bit_use_double_quant: bool = True
    bnb_4bit_compute_dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    # peft's prepare_model_for_kbit_training on the 4-bit base: it also casts embeddings, norms and LM head to
    # fp32. Off by default, as TRL loads a QLoRA base: on an H100 the fp32 copies cost +60 % peak memory at the
    # same batch (74.7 vs 47.0 GiB, bench/results/train_throughput.json) and keep Liger's kernels off the table.
    prepare_model_for_kbit_training: bool = False


class TrainingConfig(Strict):
    """Student base model and the LoRA/SFT recipe."""

    base_model: str = "tiny-llama"  # a name in configs/students/, an HF model id, or a local path
    lora: LoraSettings = LoraSettings()
    sft: SFTSettings = SFTSettings()
    quantization: QuantizationSettings = QuantizationSettings()
    max_train_examples: int | None = Field(None, gt=0)
    max_val_examples: int = Field(512, gt=0)
    # transformers' EarlyStoppingCallback: stop after this many evaluations without a better eval_loss
    early_stopping_patience: int | None = Field(None, gt=0)
    early_stopping_threshold: float = Field(0.0, ge=0)
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2"] | None = None  # None: transformers picks
    # an adapter directory whose LoRA weights training starts from (the pipeline sets it: dataset.focus_train continue)
    init_adapter: str | None = None
    # local: the pipeline runs the train-adapter flow in-process; deployment: run_deployment on the gpu pool
    train_on: Literal["local", "deployment"] = "local"
    deployment: str = "train-adapter/train-adapter"  # FLOW_NAME/DEPLOYMENT_NAME for train_on: deployment
    deployment_timeout_s: float | None = Field(None, gt=0)  # None: wait until the training run ends

    @model_validator(mode="after")
    def _early_stopping_needs_eval(self) -> TrainingConfig:
        sft = self.sft
        if self.early_stopping_patience is not None and sft.eval_strategy == "no":
            raise ValueError("early_stopping_patience needs sft.eval_strategy: steps (it watches eval_loss)")
        if sft.load_best_model_at_end and (sft.eval_strategy == "no" or sft.save_steps % sft.eval_steps):
            raise ValueError("sft.load_best_model_at_end needs sft.eval_strategy: steps and save_steps a multiple of "
                             f"eval_steps (got save_steps {sft.save_steps}, eval_steps {sft.eval_steps})")
        return self


class EvalConfig(Strict):
    """How adapters are measured: which items, how generation runs, what is cached."""

    n_test: int = Field(1000, gt=0)  # deterministic sample of the held-out test split
    n_golden: int | None = Field(None, gt=0)  # items of configs/golden/<domain>.jsonl per run (None = all)
    sample_seed: int = 0  # the test sample is the first n_test items in hash(seed, example_id) order
    batch_size: int = Field(64, gt=0)
    max_new_tokens: int = Field(64, gt=0)
    parity_n: int = Field(32, ge=0)  # serving-parity sample: merged vs unmerged adapter outputs
    cache: bool = True  # reuse a model's results on the very same items and settings (base model, champion)


class GateConfig(Strict):
    """When a candidate may replace the champion; every check is reported with its value and threshold.

    A kind's gate section (a subclass) adds its own thresholds and the checks that read them: ``candidate_checks``
    run first (floors on the candidate alone), ``champion_checks`` after the generic champion comparison."""

    min_semantic_accuracy: float = Field(0.5, ge=0, le=1)
    # margin the 95 % CI lower bound of (candidate - champion) semantic accuracy must clear
    min_improvement_over_champion: float = Field(0.0, ge=-1, le=1)
    max_topic_regression: float | None = Field(0.05, ge=0, le=1)  # worst per-topic drop vs the champion
    min_topic_n: int = Field(20, ge=1)  # topic slices smaller than this are reported, not gated
    max_mean_output_tokens: float | None = Field(None, gt=0)
    max_golden_regression: float | None = Field(0.0, ge=0, le=1)  # golden-set drop vs the champion allowed
    # the golden set (hand-written requests) judges every candidate, champion or not; None turns a check off
    min_golden_semantic_accuracy: float | None = Field(0.5, ge=0, le=1)
    # margin the 95 % CI lower bound of (candidate - base model) golden semantic accuracy must clear
    min_golden_improvement_over_base: float | None = Field(0.1, ge=-1, le=1)
    min_serving_parity: float | None = Field(0.99, ge=0, le=1)  # merged vs unmerged outputs that agree
    bootstrap_resamples: int = Field(1000, ge=1000)
    confidence: float = Field(0.95, gt=0.5, lt=1)
    bootstrap_seed: int = 0

    def candidate_checks(self, candidate: dict) -> list[dict]:
        """The kind's checks of the candidate's metrics M alone (tasks/registry.py ``gate_check`` dicts)."""
        return []

    def champion_checks(self, candidate: dict, champion: dict | None) -> list[dict]:
        """The kind's comparisons with the champion's M (``gate_skipped`` when there is no champion)."""
        return []


class ServeConfig(Strict):
    """`loraforge serve`: bind address, request limits and batching (tasks/serve/). Server-wide keys are read from
    the first served domain; ``max_tokens`` and ``max_request_chars`` apply per domain."""

    host: str = "127.0.0.1"  # loopback; any other address needs LORAFORGE_API_KEY (or --insecure)
    port: int = Field(8000, gt=0, lt=65536)
    max_tokens: int = Field(64, gt=0)  # cap on a request's max_tokens (and its default)
    max_request_chars: int = Field(2000, gt=0)  # the user's request text
    max_body_bytes: int = Field(65536, gt=0)
    batch_window_ms: float = Field(5.0, ge=0)  # how long the batcher gathers concurrent requests
    max_batch: int = Field(32, gt=0)
    queue_limit: int = Field(256, gt=0)  # waiting requests beyond this get 429 + Retry-After
    request_timeout_s: float = Field(30.0, gt=0)
    cpu_threads: int = Field(1, ge=1)  # torch threads on CPU: one is fastest for small batches on a busy machine
    # former champions kept attached (least recently used first out): a rollback or re-promotion is a route switch
    keep_warm_adapters: int = Field(2, ge=0)
    # per domain: its newest complete candidates (adapters/<domain>/<id>/ with metrics.json, same base) are attached
    # before any promotion, so promoting one is a route switch with no load on the swap's path
    preload_candidates: int = Field(1, ge=0)
    cors_origins: list[str] = Field(default_factory=list)  # none: no CORS headers at all
    vllm_url: str | None = None  # a running vLLM (--enable-lora): promotion/rollback register adapters with it
    vllm_api_key_env: str = "VLLM_API_KEY"


class DomainConfig(Strict):
    """One domain = one YAML file = one customer's recipe."""

    name: str
    description: str = ""
    seed: int = 0
    task: TaskConfig = TaskConfig()
    teacher: TeacherConfig = TeacherConfig()
    validation: ValidationConfig = ValidationConfig()
    dataset: DatasetConfig = DatasetConfig()
    training: TrainingConfig = TrainingConfig()
    eval: EvalConfig = EvalConfig()
    gate: GateConfig = GateConfig()
    serve: ServeConfig = ServeConfig()
    profiles: dict[Profile, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not SLUG.match(v):
            raise ValueError(f"must be a slug: lowercase letters, digits and '-' (e.g. {DEFAULT_DOMAIN})")
        return v

    @model_validator(mode="after")
    def _teacher_model(self) -> DomainConfig:
        if self.teacher.provider == "openai" and self.teacher.model == "grammar-v1":
            raise ValueError("teacher.model must name the OpenAI-compatible model when provider is openai")
        return self


def validate_domain_name(domain: str) -> str:
    if not isinstance(domain, str) or not SLUG.match(domain):
        raise ConfigError(
            f"invalid domain name {domain!r}: use a slug of lowercase letters, digits and '-' (e.g. {DEFAULT_DOMAIN})"
        )
    return domain


def available_domains() -> list[str]:
    return sorted(p.stem for p in (configs_dir() / "domains").glob("*.yaml"))


# A domain name as a flow parameter: the Prefect UI renders the domains shipped under configs/domains/ as a
# choice (listed when this module is imported, e.g. by `prefect deploy`); any slug validates at run time.
DomainName = Annotated[str, Field(pattern=SLUG.pattern, description="A domain: a file under configs/domains/",
                                  json_schema_extra={"enum": available_domains()})]


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """``--set`` arguments, the CLI's and ``python -m tasks.train``'s, as dotted overrides:
    ``["training.sft.optim=adamw_torch", "training.sft.learning_rate=1e-3"]`` →
    ``{"training.sft.optim": "adamw_torch", "training.sft.learning_rate": 0.001}``.

    Values are parsed as YAML scalars (so ``3``, ``1e-3``, ``true``, ``null``, ``[a, b]`` and JSON work);
    anything else stays a string. The keys are checked later, by ``parse_domain``, like the YAML's own."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not all(p.isidentifier() for p in key.split(".")):
            raise ConfigError(f"--set {item!r}: expected dotted.key=value, e.g. training.sft.learning_rate=1e-3")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str) and _looks_like_float(raw):
            value = float(raw)  # YAML 1.1 reads "1e-3" as a string
        out[key] = value
    return out


def _looks_like_float(raw: str) -> bool:
    try:
        float(raw)
    except ValueError:
        return False
    return not raw.strip().lstrip("+-").isdigit()


def _apply_override(data: dict, dotted: str, value: Any, source: str) -> None:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: override {dotted!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def student_training_defaults(student: str) -> dict[str, Any]:
    """The ``training:`` block of ``configs/students/<student>.yaml`` as dotted keys (``training.lora.r`` …): the
    recipe a student brings to any domain that selects it. It replaces the domain file's keys; a profile's or the
    caller's overrides still win. Not a student file (an HF id, a local path): no defaults."""
    path = configs_dir() / "students" / f"{student}.yaml"
    if not SLUG.match(student) or not path.is_file():
        return {}
    section = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("training") or {}

    def flat(node: dict, prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(flat(v, f"{prefix}.{k}") if isinstance(v, dict) else {f"{prefix}.{k}": v})
        return out

    return flat(section, "training")


def _format_errors(path: Path | str, err: ValidationError) -> str:
    lines = [f"invalid domain config {path}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"  - {key}: unknown key (check the spelling; see configs/domains/{DEFAULT_DOMAIN}.yaml)")
        elif e["type"] == "unknown_library_key":
            ctx = e["ctx"]
            for k in ctx["keys"]:
                hint = f"; did you mean {ctx['hints'][k]!r}?" if ctx["hints"][k] else ""
                lines.append(f"  - {key}.{k}: unknown key, not an argument of {ctx['library']}{hint}")
        elif e["type"] == "reserved_library_key":
            lines.append(f"  - {key}.{e['ctx']['key']}: set by loraforge ({e['ctx']['why']}), not by the config")
        else:
            lines.append(f"  - {key}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def domain_model(data: dict, source: str = "<dict>") -> type[DomainConfig]:
    """The config model of the kind a raw mapping names (``task.kind``; the default kind when it names none)."""
    from tasks.kinds import KindError, get_kind

    task = data.get("task") if isinstance(data, dict) else None
    name = task.get("kind", DEFAULT_KIND) if isinstance(task, dict) else DEFAULT_KIND
    try:
        return get_kind(name).config_model
    except KindError as e:
        raise ConfigError(f"invalid domain config {source}:\n  - task.kind: {e}") from None


def validate_config(data: dict) -> DomainConfig:
    """A resolved config (as stored with a run) back into its kind's model; raises ``ValidationError``."""
    return domain_model(data).model_validate(data)


def parse_domain(data: dict, *, source: str = "<dict>", profile: Profile = "full",
                 overrides: dict[str, Any] | None = None) -> DomainConfig:
    """Validate a raw mapping, apply the profile's and the caller's dotted overrides, and re-validate."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; allowed: {', '.join(PROFILES)}")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        base = domain_model(data, source).model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_errors(source, e)) from None
    merged = copy.deepcopy(data)
    layers = {**base.profiles.get(profile, {}), **(overrides or {})}
    student = layers.get("training.base_model", base.training.base_model)
    for key, value in {**student_training_defaults(student), **layers}.items():
        _apply_override(merged, key, value, source)
    try:
        return domain_model(merged, f"{source} (profile {profile})").model_validate(merged)
    except ValidationError as e:
        raise ConfigError(_format_errors(f"{source} (profile {profile})", e)) from None


def load_domain(domain: str, profile: Profile = "full", overrides: dict[str, Any] | None = None) -> DomainConfig:
    """Load ``configs/domains/<domain>.yaml`` for a profile; unknown domains list the ones that exist."""
    validate_domain_name(domain)
    path = configs_dir() / "domains" / f"{domain}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown domain {domain!r}; available: {', '.join(available_domains()) or '(none)'}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason}); save the file as UTF-8") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    cfg = parse_domain(data, source=str(path), profile=profile, overrides=overrides)
    if cfg.name != domain:
        raise ConfigError(f"{path}: name is {cfg.name!r} but the file is for domain {domain!r}")
    return cfg
