"""The failure loop: where a champion fails (slices, items), a focused plan, decontamination against the failing
items, union training data, the gate's targeted/rest report, the improve deployments, and one tiny end to end."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from schemas.config import load_domain
from schemas.example import FocusHint, RequestSpec, TeacherRequest, content_hash
from tasks import failures, focus, store
from tasks.generate import plan_requests, plan_specs, uniform_specs
from tasks.kinds import get_kind

REPO = Path(__file__).resolve().parents[1]
DOMAIN = "regex-python"


def row(i: int, ok: bool, topic: str = "network", eval_set: str = "test", **labels) -> dict:
    """An evaluation item row as ``store.model_items`` returns it."""
    return {"eval_id": f"ev-{eval_set}", "example_id": f"ex-{i}", "eval_set": eval_set, "topic": topic,
            "prompt": f"regex: request number {i}\n", "reference": f"\\d{{{i}}}", "output": "x", "semantic_ok": ok,
            "labels_json": json.dumps(labels), "item_json": json.dumps({"positives": ["1" * i], "negatives": ["a"]})}


def rows_with_a_weak_concept() -> list[dict]:
    """20 items: the champion fails 8 of 10 `mac` items (difficulty 3) and 1 of 10 others."""
    mac = [row(i, ok=i >= 8, concept="mac", difficulty=3, style="question") for i in range(10)]
    rest = [row(10 + i, ok=i != 0, topic="dates", concept="iso_date", difficulty=1, style="terse") for i in range(10)]
    return mac + rest


# ---------------------------------------------------------------------------------------------- the report
def test_slices_count_failures_per_label_and_target_those_worse_than_the_champion_on_average():
    report = failures.failure_report(DOMAIN, "ad-1", rows_with_a_weak_concept(), template="regex: {description}\n")
    assert (report["n"], report["failed"], report["rate"]) == (20, 9, 0.45)
    by = {s["slice"]: s for s in report["slices"]}
    assert by["concept=mac"] == {"slice": "concept=mac", "n": 10, "failed": 8, "rate": 0.8}
    assert by["topic=dates"] == {"slice": "topic=dates", "n": 10, "failed": 1, "rate": 0.1}
    assert report["slices"][0]["rate"] == 0.8, "worst first"
    assert set(report["targeted"]) == {"concept=mac", "topic=network", "difficulty=3", "style=question"}
    assert len(report["items"]) == 9 and all(not i["failure_id"].startswith("ex") for i in report["items"])
    first = report["items"][0]
    assert first["request"] == "request number 0", "the template is stripped: the request as a person typed it"
    assert first["labels"] == {"topic": "network", "difficulty": "3", "style": "question", "concept": "mac"}
    assert first["item"] == {"positives": [""], "negatives": ["a"]}


def test_an_item_scored_twice_counts_once_at_its_latest_verdict_and_golden_rows_are_refused():
    rows = [row(1, ok=False), row(2, ok=True), row(1, ok=True)]  # item 1 failed, then a later evaluation passed it
    report = failures.failure_report(DOMAIN, "ad-1", rows)
    assert (report["n"], report["failed"]) == (2, 0)
    with pytest.raises(ValueError, match="golden"):
        failures.failure_report(DOMAIN, "ad-1", [row(3, ok=False, eval_set="golden")])


def test_a_file_item_without_a_topic_has_no_topic_slice():
    r = row(1, ok=False, topic="unknown", concept="mac")
    assert failures.slices_of(r) == ["concept=mac"]


# ---------------------------------------------------------------------------------------------- the plan
def test_a_spec_without_focus_hashes_as_before_focus_existed():
    spec = RequestSpec(index=0, seed=7, topic="text", difficulty=2, style="terse")
    req = TeacherRequest(domain=DOMAIN, teacher="grammar", model="grammar-v1", spec=spec, params={"a": 1})
    legacy = content_hash("grammar", "grammar-v1", {"index": 0, "seed": 7, "topic": "text", "difficulty": 2,
                                                    "style": "terse"}, [], {"a": 1}, n=24)
    assert req.request_hash == legacy
    focused = spec.model_copy(update={"focus": FocusHint(failure_id="fl-1", request="mac address")})
    assert TeacherRequest(domain=DOMAIN, teacher="grammar", model="grammar-v1", spec=focused,
                          params={"a": 1}).request_hash != legacy


def test_the_focused_plan_spends_its_share_on_the_targeted_slices_with_new_seeds():
    cfg = load_domain(DOMAIN, "tiny", {"dataset.n_requests": 100, "dataset.focus_share": 0.4})
    report = failures.failure_report(DOMAIN, "ad-1", rows_with_a_weak_concept())
    specs = plan_specs(cfg, report)
    assert [s.index for s in specs] == list(range(100))
    focused = [s for s in specs if s.focus]
    assert len(focused) == 40
    anchors = {i["failure_id"]: i for i in report["items"]}
    assert set(anchors) - {i["failure_id"] for i in focus.anchors(report)} == {
        i["failure_id"] for i in report["items"] if i["labels"]["topic"] == "dates"}, "only targeted slices anchor"
    for s in focused:  # the failing item's slice: topic, difficulty, style, concept
        it = anchors[s.focus.failure_id]
        assert (s.topic, str(s.difficulty), s.style, s.focus.concept) == (
            it["labels"]["topic"], it["labels"]["difficulty"], it["labels"]["style"], it["labels"]["concept"])
        assert s.focus.request == it["request"]
    assert len({s.seed for s in focused}) == 40
    assert Counter(s.focus.failure_id for s in focused).most_common(1)[0][1] == 5, "8 anchors x 5 rounds"
    plain = {s.seed for s in uniform_specs(cfg, 100)}
    assert plain.isdisjoint(s.seed for s in specs if not s.focus), "the uniform share asks for new examples"
    assert plan_specs(cfg) == uniform_specs(cfg, 100), "no report: the plain plan, unchanged"


def test_a_focused_plan_without_failures_stays_uniform():
    cfg = load_domain(DOMAIN, "tiny", {"dataset.n_requests": 30})
    report = failures.failure_report(DOMAIN, "ad-1", [row(1, ok=True)])
    specs = plan_specs(cfg, report)
    assert len(specs) == 30 and not any(s.focus for s in specs)


def test_the_grammar_answers_a_focused_request_with_the_failed_concept_in_new_words():
    kind = get_kind("regex")
    cfg = load_domain(DOMAIN, "tiny")
    params = kind.request_params(cfg)
    failing = kind.grammar_answer(RequestSpec(index=0, seed=11, topic="network", difficulty=2, style="question"),
                                  params)
    hint = FocusHint(failure_id="fl-1", request=failing["description"], concept=failing["concept"])
    answers = [kind.grammar_answer(RequestSpec(index=i, seed=500 + i, topic="network", difficulty=2,
                                               style="question", focus=hint), params) for i in range(5)]
    assert {a["concept"] for a in answers} == {failing["concept"]}
    assert failing["description"] not in {a["description"] for a in answers}
    assert len({a["description"] for a in answers}) == 5


def test_an_llm_teacher_sees_the_failing_request_as_the_example_not_to_copy():
    kind = get_kind("regex")
    params = kind.request_params(load_domain(DOMAIN, "tiny"))
    spec = RequestSpec(index=0, seed=3, topic="network", difficulty=2)
    plain = kind.teacher_messages(spec, params)[-1]["content"]
    hint = FocusHint(failure_id="fl-1", request="mac address with dashes", concept="mac")
    user = kind.teacher_messages(spec.model_copy(update={"focus": hint}), params)[-1]["content"]
    assert "example request: mac address with dashes" in user and "(concept: mac)" in user
    assert "example request" not in plain and user.startswith(plain)


# --------------------------------------------------------------------------------------- decontamination
def test_no_training_example_copies_paraphrases_or_answers_a_failing_item_equivalently():
    """Acceptance 2, the validation side: a failing evaluation item is kept out of training, as are a one-to-one
    paraphrase and an equivalent answer; an unrelated example passes. Without the failure items they would pass."""
    from tasks.validate import load_eval_items, validation_tables

    cfg = load_domain(DOMAIN, "tiny")
    kind = get_kind(cfg.task.kind)
    failing = {"request": "port number of the admin console", "reference": "\\d{4}",
               "item": {"positives": ["8080", "1234"], "negatives": ["80", "abcd"]}}
    report = {"items": [{"failure_id": "fl-1", **failing}]}
    answers = {  # raw teacher answers
        "copy": {"description": failing["request"], "regex": "\\d{4}", "positives": ["8080"], "negatives": ["80"]},
        "paraphrase": {"description": "the admin console port number", "regex": "[0-9]{4}",
                       "positives": ["9090"], "negatives": ["9"]},
        "equivalent": {"description": "four digit PIN typed at the kiosk", "regex": "[0-9][0-9][0-9][0-9]",
                       "positives": ["0000", "4821"], "negatives": ["123", "12a4"]},
        "unrelated": {"description": "lowercase hex colour like #a0b1c2", "regex": "#[0-9a-f]{6}",
                      "positives": ["#a0b1c2", "#ffffff"], "negatives": ["#FFF", "a0b1c2"]},
    }
    planned = [{"request_hash": name, "idx": i, "topic": "network"} for i, name in enumerate(answers)]
    calls = {name: {"status": "ok", "raw_response": json.dumps(a)} for name, a in answers.items()}

    def verdicts(eval_items):
        out = validation_tables(cfg, "run-x", planned, calls, eval_items=eval_items)["run_requests"].to_pylist()
        return {r["request_hash"]: r["reasons"] for r in out}

    guarded = verdicts(load_eval_items(cfg) + focus.decontamination_items(report, kind))
    assert guarded["unrelated"] == []
    for name in ("copy", "paraphrase", "equivalent"):
        assert any(r.startswith("eval_overlap") for r in guarded[name]), (name, guarded[name])
    unguarded = verdicts(load_eval_items(cfg))
    assert unguarded["equivalent"] == [] and unguarded["copy"] == [], "the test can fail: without them they pass"


def test_request_lineage_reads_labels_from_the_answer_first_and_the_failure_from_the_spec():
    from tasks.validate import request_lineage

    spec = RequestSpec(index=0, seed=1, topic="network", difficulty=3, style="terse",
                       focus=FocusHint(failure_id="fl-9", request="r", concept="mac"))
    req = json.dumps({"spec": spec.model_dump()})
    labels, failure = request_lineage(req, json.dumps({"concept": "ipv4", "style": "question"}))
    assert labels == {"difficulty": 3, "style": "question", "concept": "ipv4"} and failure == "fl-9"
    assert request_lineage(None, "not json") == ({}, None)


def _examples(ids: list[str], prompts: list[str]) -> pa.Table:
    return pa.table({"example_id": ids, "prompt": prompts, "answers_failure": [None] * len(ids)})


def test_union_training_keeps_the_champions_examples_and_drops_new_repeats():
    parent = _examples(["a", "b"], ["regex: one\n", "regex: two\n"])
    new = pa.table({"example_id": ["b", "c", "d"], "prompt": ["regex: two\n", "regex: ONE \n", "regex: three\n"],
                    "answers_failure": [None, "fl-1", "fl-2"]})
    plan = {"adapter_id": "ad-1", "dataset_id": "ds-1"}
    union, lineage = focus.training_examples(new, parent, "union", plan)
    assert union["example_id"].to_pylist() == ["a", "b", "d"]
    assert lineage == {"focus": "failures", "training": "union", "champion_adapter_id": "ad-1",
                       "champion_dataset_id": "ds-1", "n_new": 3, "n_answering_failures": 2, "n_parent": 2,
                       "n_new_dropped": 2}
    alone, lineage = focus.training_examples(new, parent, "continue", plan)
    assert alone.num_rows == 3 and lineage["training"] == "continue" and lineage["n_parent"] == 0


# ------------------------------------------------------------------------------------------------ the gate
def test_the_gate_reports_targeted_and_rest_apart_and_still_rejects_a_regression_elsewhere():
    from tasks.kinds.regex.config import RegexGate
    from tasks.registry import decide, slice_comparison

    gate = RegexGate(min_semantic_accuracy=0.1, min_golden_semantic_accuracy=None,
                     min_golden_improvement_over_base=None, max_topic_regression=0.05, min_topic_n=20)
    cand, champ = {}, {}
    for i in range(60):  # 30 mac items (targeted): the candidate fixes 20; 30 dates items: it breaks 10
        mac = i < 30
        r = row(i, ok=False, topic="network" if mac else "dates", concept="mac" if mac else "iso_date")
        cand[r["example_id"]] = {**r, "semantic_ok": (i < 20) if mac else i >= 40}
        champ[r["example_id"]] = {**r, "semantic_ok": not mac}
    mined = focus.mined_prompts({"report": {"items": [{"prompt": "regex: request number 0\n"}]}})
    parts = failures.split_pairs(cand, champ, ["concept=mac"], mined)
    assert [len(parts["targeted"][0]), len(parts["rest"][0])] == [29, 30], "the mined item is left out"
    report = slice_comparison(parts, gate, ["concept=mac"])
    assert report["targeted"]["delta"] > 0.6 and report["targeted"]["ci"][0] > 0
    assert report["rest"]["delta"] < -0.3 and report["rest"]["ci"][1] < 0

    def m(rows: dict) -> dict:
        by = {t: [r for r in rows.values() if r["topic"] == t] for t in ("network", "dates")}
        acc = sum(r["semantic_ok"] for r in rows.values()) / len(rows)
        return {"n": 60, "compile_rate": 1.0, "semantic_accuracy": acc, "mean_output_tokens": 5.0,
                "redos_vulnerable_rate": 0.0, "by_topic": {t: {"n": len(v), "semantic_accuracy": sum(
                    r["semantic_ok"] for r in v) / len(v)} for t, v in by.items()}}

    pairs = ([int(r["semantic_ok"]) for r in cand.values()], [int(r["semantic_ok"]) for r in champ.values()])
    d = decide(m(cand), m(champ), gate, pairs=pairs)
    assert not d["promote"] and "max_topic_regression" in d["failed"]
    assert next(c for c in d["checks"] if c["name"] == "max_topic_regression")["topic"] == "dates"


# ------------------------------------------------------------------------------------ store, CLI, deployments
def _store_champion(home, rows: list[dict]) -> str:
    """A promoted adapter whose stored evaluations hold ``rows`` (grouped by eval_set)."""
    store.record_adapter(home.db, {"adapter_id": "ad-champ", "domain": DOMAIN, "run_id": "r1", "dataset_id": "ds-1",
                                   "base_model": "tiny", "path": str(home.root / "adapters" / "ad-champ"),
                                   "status": "promoted"})
    for eval_set in sorted({r["eval_set"] for r in rows}):
        items = [{k: r[k] for k in ("example_id", "topic", "prompt", "reference", "output", "semantic_ok",
                                    "labels_json", "item_json")} | {"eval_id": f"ev-{eval_set}", "excluded": False}
                 for r in rows if r["eval_set"] == eval_set]
        store.save_evaluation(home.db, {"eval_id": f"ev-{eval_set}", "run_id": "r1", "domain": DOMAIN,
                                        "model_ref": "ad-champ", "role": "candidate", "dataset_id": "ds-1",
                                        "eval_set": eval_set, "metrics_json": "{}", "cache_key": eval_set},
                              pa.Table.from_pylist(items))
    return "ad-champ"


def test_failures_cli_prints_the_contract_fields_and_never_reads_the_golden_set(home):
    from typer.testing import CliRunner

    from flows.cli import app

    golden = [row(100 + i, ok=False, eval_set="golden", concept="golden_only") for i in range(5)]
    _store_champion(home, rows_with_a_weak_concept() + golden + [row(50, ok=False, eval_set="file")])
    r = CliRunner().invoke(app, ["failures", "--domain", DOMAIN, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert {"domain", "adapter_id", "slices", "items"} <= set(out)
    assert (out["domain"], out["adapter_id"], out["eval_sets"]) == (DOMAIN, "ad-champ", {"file": 1, "test": 20})
    assert all(set(s) == {"slice", "n", "failed", "rate"} for s in out["slices"])
    assert len(out["items"]) == 10 and not any("golden_only" in s["slice"] for s in out["slices"])


def test_failures_cli_says_what_is_missing_for_an_unknown_domain_or_one_without_a_champion(home):
    from typer.testing import CliRunner

    from flows.cli import app

    unknown = CliRunner().invoke(app, ["failures", "--domain", "no-such-domain"])
    assert unknown.exit_code == 2 and "unknown domain 'no-such-domain'" in unknown.output
    empty = CliRunner().invoke(app, ["failures", "--domain", DOMAIN, "--json"])
    assert empty.exit_code == 2 and "has no champion" in empty.output
    focused = CliRunner().invoke(app, ["run", "--domain", DOMAIN, "--focus", "failures", "--profile", "tiny"])
    assert focused.exit_code == 2 and "has no champion" in focused.output


def test_prefect_yaml_declares_an_inactive_improve_deployment_per_pipeline_domain():
    from flows.failures import improve_domain

    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in spec["deployments"]}
    domains = [d["parameters"]["domain"] for d in spec["deployments"]
               if d["entrypoint"] == "flows/pipeline.py:distill_to_adapter" and d["name"] == d["parameters"]["domain"]]
    assert domains
    for domain in domains:
        d = deployments[f"improve-{domain}"]
        assert d["entrypoint"] == "flows/failures.py:improve_domain" and d["parameters"]["domain"] == domain
        assert d["schedules"] and not any(s["active"] for s in d["schedules"]), "schedules ship inactive"
        assert set(d["parameters"]) <= set(improve_domain.parameters.properties)


@pytest.mark.slow
def test_continue_training_starts_from_the_champions_adapter_weights(student_dir, tmp_path):
    """``dataset.focus_train: continue``: training starts from the champion's LoRA (``training.init_adapter``), so
    its first loss is the champion's last, not a fresh adapter's."""
    import pyarrow.parquet as pq

    from schemas.config import TrainingConfig
    from tasks.kinds.regex.grammar import TOPICS, generate_example
    from tasks.train import train_lora

    rows = []
    for i in range(64):
        ex = generate_example(i, TOPICS[i % 5], 1)
        rows.append({"prompt": f"regex: {ex['description']}\n", "completion": ex["regex"]})
    data = tmp_path / "ds"
    data.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), data / "train.parquet")
    recipe = {"lora": {"r": 8, "lora_alpha": 16, "modules_to_save": ["embed_tokens", "lm_head"]},
              "sft": {"max_steps": 6, "per_device_train_batch_size": 8, "learning_rate": 3e-3, "logging_steps": 1,
                      "eval_strategy": "no", "save_steps": 100}}
    champion = train_lora(data, student_dir, tmp_path / "champion", TrainingConfig.model_validate(recipe),
                          progress=False)
    cont = train_lora(data, student_dir, tmp_path / "continued", TrainingConfig.model_validate(
        {**recipe, "init_adapter": str(tmp_path / "champion"), "sft": {**recipe["sft"], "max_steps": 2}}),
        progress=False)
    assert cont["init_adapter"] == str(tmp_path / "champion") and champion["init_adapter"] is None
    assert cont["first_logged_loss"] < 0.8 * champion["first_logged_loss"], (cont["loss_curve"],
                                                                             champion["loss_curve"])
    assert (tmp_path / "continued" / "adapter_model.safetensors").exists()


# ------------------------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_a_tiny_champion_its_failure_report_and_a_focused_run_that_keeps_eval_items_out_of_training(
        home, prefect_harness):
    """Acceptance 2 end to end: a tiny champion (forced), its report, a focused run; no failing, held-out or golden
    item, nor an equivalent answer, is in the focused run's training split; lineage and the gate's split report."""
    from flows.failures import failure_report
    from flows.pipeline import distill_to_adapter
    from tasks import dataset, registry
    from tasks.evaluate import golden_items
    from tasks.validate import prompt_key

    small = {"dataset.n_requests": 120, "eval.n_golden": 8, "eval.n_test": 12}
    first = distill_to_adapter(domain=DOMAIN, profile="tiny", home=str(home.root), overrides=small)
    champ = store.get_adapter(home.db, first["adapter"]["id"])
    if champ["status"] != "promoted":
        registry.apply_decision(home.db, home.adapters, run_id=first["run_id"], domain=DOMAIN, adapter=champ,
                                decision=registry.forced_decision("a tiny champion for the test"), key="t")
    report = failure_report(DOMAIN, home=str(home.root))
    assert report["adapter_id"] == champ["adapter_id"] and report["failed"] > 0
    assert report["eval_sets"] == {"test": report["n"]}, "held-out items only, never golden"

    run = distill_to_adapter(domain=DOMAIN, profile="tiny", home=str(home.root), overrides=small, focus="failures")
    assert run["status"] == "completed"
    plan = store.focus_plan(home.db, run["run_id"])
    assert plan["adapter_id"] == champ["adapter_id"]
    cfg = load_domain(DOMAIN, "tiny", small)
    requests = {r.request_hash: r for r in plan_requests(cfg, focus_report=plan["report"])}
    planned = store.planned_requests(home.db, run["run_id"])
    assert sum(requests[p["request_hash"]].spec.focus is not None for p in planned) == 60
    examples = store.run_examples(home.db, run["run_id"]).to_pylist()
    answering = [e for e in examples if e["answers_failure"]]
    assert answering and {e["answers_failure"] for e in answering} <= {i["failure_id"] for i in plan["report"]["items"]}

    ds = store.get_dataset(home.db, run["dataset_id"])
    lineage = json.loads(ds["manifest_json"])["lineage"]
    assert lineage["training"] == "union" and lineage["champion_adapter_id"] == champ["adapter_id"]
    assert lineage["n_parent"] == store.get_dataset(home.db, champ["dataset_id"])["n_train"] + store.get_dataset(
        home.db, champ["dataset_id"])["n_val"] + store.get_dataset(home.db, champ["dataset_id"])["n_test"]
    train = dataset.read_split(ds["path"], "train").to_pylist()
    kind = get_kind("regex")
    train_prompts = {prompt_key(r["prompt"]) for r in train}
    train_answers = {kind.completion_key(r["completion"]) for r in train}
    cand = run["eval"]["candidate"]
    scored = [r for s in (cand["eval_id"], cand["golden"]["eval_id"]) for r in store.scored_items(home.db, s).values()]
    guarded = ([(i["prompt"], i["reference"]) for i in plan["report"]["items"]]
               + [(r["prompt"], r["reference"]) for r in scored]
               + [(i["prompt"], i["completion"]) for i in golden_items(cfg)])
    assert len(guarded) > len(plan["report"]["items"])
    for prompt, reference in guarded:
        assert prompt_key(prompt) not in train_prompts, prompt
        assert kind.completion_key(reference) not in train_answers, (prompt, reference)
    mined = focus.mined_prompts(plan)
    assert not any(prompt_key(r["prompt"]) in mined for r in scored), "the mined items are not measured again"
    assert {"targeted", "rest", "targeted_slices"} <= set(run["gate"]["focus"])
