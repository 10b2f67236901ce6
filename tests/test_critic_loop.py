"""The routed-critic loop on the tiny model, with people in it: items the critic cannot judge go
to the review queue, a person answers in headless Chromium and a script through the HTTP API,
and the answers become training pairs (this iteration with wait_for=quota, the next one with
continue)."""

from __future__ import annotations

import json
import math
import os
import random
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from fault_server import FaultServer
from test_loop_tiny import FIX, make_verifier, tiny_config
from test_report import CHROMIUM, CHROMIUM_ARGS
from test_teacher_loops import ENDPOINT
from toy_backend import EchoGenerator

from autoalign.engines.server import free_port
from autoalign.generation.base import request_seed
from autoalign.io import read_json, read_jsonl
from autoalign.judges.critic import CriticVerdict
from autoalign.loops import iterate
from autoalign.pairs import NoPairsError
from autoalign.review.queue import ReviewQueue
from autoalign.review.wait import TOKEN_ENV
from autoalign.types import Candidate

TOKEN = "scripted-reviewer-token"


def critic_config(model_dir: Path, runs: Path, *extra: str):
    return tiny_config(
        model_dir,
        runs,
        "loop=critic",
        "iterations=1",
        "eval.enabled=false",
        f"critic.calibration_file={FIX / 'oasst_small.jsonl'}",
        "critic.samples=1",
        "critic.fewshot=false",
        "critic.sampling.max_new_tokens=8",
        "review.weight=2.0",
        *extra,
    )


def wait_for_items(base: str, headers: dict, want: int, timeout: float = 300) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            items = httpx.get(f"{base}/api/items", headers=headers, timeout=5).json()
            if len(items) >= want:
                return items
        except httpx.TransportError:
            pass  # the loop has not started the app yet
        time.sleep(0.2)
    raise AssertionError("the loop never served its review queue")


def test_escalated_items_labelled_in_the_browser_become_training_pairs(tiny_model_dir, tmp_path, monkeypatch):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium for the review UI tests")
        pytest.skip("no /usr/bin/chromium on this machine")
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    port = free_port()
    cfg = critic_config(
        tiny_model_dir,
        tmp_path,
        "review.wait_for=quota",
        "review.quota=2",
        f"review.port={port}",
        "review.timeout_minutes=5",
    )
    failure: list[BaseException] = []

    def run_loop():
        try:
            iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
        except Exception as e:  # surfaced in the test thread
            failure.append(e)

    loop = threading.Thread(target=run_loop)
    loop.start()
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {TOKEN}"}
    items = wait_for_items(base, auth, want=2)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{base}/?token={TOKEN}")
            shown = page.locator("#response-1").inner_text()
            with page.expect_navigation():
                page.keyboard.press("b")  # the person prefers B on the first queued item
        finally:
            browser.close()
    answer = {"item_id": items[1]["item_id"], "kind": "preference", "value": "A", "note": "scripted"}
    assert httpx.post(f"{base}/api/labels", headers=auth, json=answer).status_code == 200
    loop.join(timeout=600)
    assert not loop.is_alive() and not failure, failure

    it = tmp_path / "tiny" / "iter_1"
    routing = read_json(it / "routing/metrics.json")
    # The random tiny critic writes no verdict: nothing is trusted, and without a teacher
    # everything goes to a person.
    assert routing["shares"] == {"trust": 0.0, "escalate": 0.0, "human": 1.0}
    assert read_json(it / "critic_calibration/metrics.json")["trust_threshold"] is None
    pairs = read_jsonl(it / "pairs_critic/data.jsonl")
    assert [p["source"] for p in pairs] == ["human", "human"]
    by_prompt = {p["prompt_id"]: p for p in pairs}
    first = by_prompt[items[0]["prompt_id"]]
    assert first["chosen"][-1]["content"] == items[0]["responses"][1] == shown  # B, as pressed
    second = by_prompt[items[1]["prompt_id"]]
    assert second["chosen"][-1]["content"] == items[1]["responses"][0]
    assert len(read_json(it / "pairs_critic/metrics.json")["human_labels"]) == 2
    trained = read_jsonl(it / "pairs/data.jsonl")  # the DPO training set of this iteration
    assert len(trained) == 2 and all(p["weight"] == 2.0 and p["source"] == "human" for p in trained)
    assert read_json(it / "dpo/metrics.json")["pairs"] == 2
    assert "no majority verdict" in items[0]["reason"]

    # wait_for: continue, nothing answered since, and the critic trusts nothing: the iteration
    # stops before recording its pairs and says what to do; the same command then resumes.
    cfg2 = critic_config(tiny_model_dir, tmp_path, "iterations=2", "review.wait_for=continue")
    with pytest.raises(
        NoPairsError, match=r"iteration 2: the critic trusted none of its \d+ verdicts and \d+ items wait"
    ):
        iterate.run(cfg2, log=lambda m: None, make_judge=make_verifier)
    assert not (tmp_path / "tiny" / "iter_2" / "pairs_critic" / "metrics.json").exists()

    # Later answers to the other queued items feed the next iteration; the two already used are
    # not used again. Iteration 1 is read back, not redone.
    with ReviewQueue(tmp_path / "tiny" / "review.sqlite") as queue:
        from autoalign.review.queue import HumanLabel

        late = [i for i in queue.items(pending_only=True)][:3]
        for item in late:
            queue.answer(HumanLabel(item.item_id, "preference", "A", who="dee"))
    iterate.run(cfg2, log=lambda m: None, make_judge=make_verifier)
    assert read_jsonl(it / "pairs_critic/data.jsonl") == pairs
    pairs2 = read_jsonl(tmp_path / "tiny" / "iter_2" / "pairs_critic/data.jsonl")
    assert sorted(p["prompt_id"] for p in pairs2) == sorted(item.prompt_id for item in late)
    assert all(
        p["chosen"][-1]["content"] == item.responses[0]
        for p, item in zip(sorted(pairs2, key=lambda p: p["prompt_id"]), sorted(late, key=lambda i: i.prompt_id))
    )


class LengthTeacher(FaultServer):
    """A stronger critic behind an OpenAI-compatible endpoint, scripted: in the pairwise prompt
    it prefers the longer response, in either order."""

    @staticmethod
    def completion(body: dict) -> dict:
        prompt = body["messages"][-1]["content"]
        a = prompt.split("<response_A>\n", 1)[1].split("\n</response_A>", 1)[0]
        b = prompt.split("<response_B>\n", 1)[1].split("\n</response_B>", 1)[0]
        reply = FaultServer.completion(body)
        reply["choices"][0]["message"]["content"] = "Longer.\nWinner: " + ("A" if len(a) >= len(b) else "B")
        reply["choices"][0]["logprobs"] = None
        return reply


class LengthCritic:
    """The critic, scripted: the longer answer wins; the closer the two lengths, the more its
    (pretend) samples disagree."""

    def review(self, items):
        out = []
        for item in items:
            a, b = len(item.first), len(item.second)
            spread = abs(a - b) / max(1, a, b)
            out.append(
                CriticVerdict(
                    winner="first" if a > b else "second" if b > a else None,
                    critique="the shorter one leaves things out",
                    votes={"first": int(a > b), "second": int(b > a), "none": int(a == b)},
                    signals={"disagreement": round(1 - spread, 3), "order_flip": 0.0, "entropy": None},
                )
            )
        return out


class LengthCriticFactory:
    key = "length-critic"

    def __init__(self, pool):
        pass

    def __call__(self, ref, cfg, seed):
        return LengthCritic()


def test_routes_split_between_trust_the_teacher_and_people(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("autoalign.loops.critic.PairwiseCriticFactory", LengthCriticFactory)
    # Calibration truth: longer is better when the lengths differ by 20-80%; of two answers within
    # 5% of each other the shorter is. The critic's uncertainty is (1 - relative spread) / 2.
    spreads = [0.2 + 0.6 * k / 7 for k in range(8)]
    rows = [
        {"prompt": f"q{k}", "responses": ["x" * 100, "x" * round(100 * (1 - s))], "scores": [1, 0]}
        for k, s in enumerate(spreads)
    ]
    rows += [{"prompt": f"r{k}", "responses": ["y" * 100, "y" * 95], "scores": [0, 1]} for k in range(2)]
    calibration = tmp_path / "calibration.jsonl"
    calibration.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with LengthTeacher() as teacher:
        cfg = critic_config(
            tiny_model_dir,
            tmp_path,
            f"critic.calibration_file={calibration}",
            "critic.target_error=0.1",
            "critic.human_share=0.25",
            f"teacher.endpoint.base_url={teacher.base_url}",
            *ENDPOINT,
            "sample.sampling.max_new_tokens=24",
        )
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
        asked = len(teacher.bodies)
    it = tmp_path / "tiny" / "iter_1"
    cal = read_json(it / "critic_calibration/metrics.json")
    # The 8 clear pairs (uncertainty 0.1-0.4) are right, the 2 close ones (0.475) wrong: trust up to 0.4.
    assert cal["coverage"] == 0.8 and cal["error"] == 0.0 and cal["trust_threshold"] == pytest.approx(0.4)
    routes = read_jsonl(it / "routing/data.jsonl")
    counts = read_json(it / "routing/metrics.json")["counts"]
    assert sum(counts.values()) == len(routes) >= 4
    for r in routes:
        trusted = r["uncertainty"] <= cal["trust_threshold"]
        assert (r["route"] == "trust") == trusted
    humans = [r for r in routes if r["route"] == "human"]
    assert len(humans) == int(0.25 * len(routes))  # the most uncertain quarter
    escalated = [r for r in routes if r["route"] == "escalate"]
    assert all(h["uncertainty"] >= e["uncertainty"] for h in humans for e in escalated)
    assert counts.get("trust", 0) >= 1 and escalated and humans  # every route is taken
    assert asked == 2 * len(escalated)  # the teacher saw only the escalated items, in both orders
    pairs = read_jsonl(it / "pairs_critic/data.jsonl")
    sources = Counter(p["source"] for p in pairs)
    assert sources["critic"] == counts.get("trust", 0) and sources["critic_escalated"] == len(escalated)
    for p in pairs:  # both the critic and the teacher prefer the longer answer
        assert len(p["chosen"][-1]["content"]) >= len(p["rejected"][-1]["content"])
    with ReviewQueue(tmp_path / "tiny" / "review.sqlite") as queue:
        assert {i.prompt_id for i in queue.items()} == {r["id"] for r in humans}
    from autoalign.report import render_report

    page = render_report(tmp_path / "tiny")
    assert "Critic: coverage vs error on the calibration slice" in page
    assert "critic calibration (10 pairs" in page and "routing (" in page and "human answers used" in page


GOOD = ["the sea is blue", "waves of the sea", "a poem about the sea", "the sea at night"]
BAD = ["0 1 2 3 4 5", "def add(a, b)", "{ } [ ] ( )", "6 7 8 9 + *"]


class SeaOrNumbers(EchoGenerator):
    """Each sample, by its seed, a line about the sea (the labelled data's better kind) or numbers."""

    def generate(self, requests, params):
        out = []
        for messages in requests:
            rng = random.Random(request_seed(params.seed, messages, 0))
            texts = [rng.choice(GOOD + BAD) for _ in range(params.n)]
            out.append([Candidate(text=t, num_tokens=len(t.split()), finish_reason="stop") for t in texts])
        return out


def make_sea_or_numbers(pool, ref, batch_size):
    return SeaOrNumbers(f"sea or numbers {ref.label}")


def test_a_reward_model_critic_trained_off_the_slice_routes_by_its_margin(tiny_model_dir, tmp_path, monkeypatch):
    """critic.kind=reward_model: trained on the labelled pairs of the prompts the calibration slice
    does not use, calibrated on the slice, its margin deciding each item's route."""
    from autoalign import registry

    monkeypatch.setitem(registry.BACKENDS, "toy_sea", "test_critic_loop:make_sea_or_numbers")
    good, bad = GOOD, BAD
    rows = [
        {"prompt": f"Tip {k}: how to stay focused?", "responses": [good[k % 4], bad[(k // 4) % 4]], "scores": [1, 0]}
        for k in range(40)
    ]
    calibration = tmp_path / "labelled.jsonl"
    calibration.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prompts = tmp_path / "prompts.jsonl"  # new prompts of the same kind, to be answered and routed
    prompts.write_text(
        "".join(json.dumps({"id": f"t{k}", "prompt": f"Tip {100 + k}: how to stay focused?"}) + "\n" for k in range(12))
    )
    cfg = critic_config(
        tiny_model_dir,
        tmp_path,
        f"critic.calibration_file={calibration}",
        "critic.kind=reward_model",
        "critic.calibration_pairs=12",
        "critic.target_error=0.15",
        "critic.reward_model.train.learning_rate=0.003",
        "critic.reward_model.train.epochs=3",
        "critic.reward_model.train.grad_accum=1",
        "critic.reward_model.train.warmup_ratio=0",
        "critic.reward_model.train.max_length=64",
        "model.backend=toy_sea",
        f"create_prompts.from_file={prompts}",
        "create_prompts.num_prompts=12",
    )
    iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    it = tmp_path / "tiny" / "iter_1"
    trained = read_json(it / "critic_reward_model/metrics.json")
    assert trained["trained_on"] == 40 - 12  # one pair per prompt; the slice's 12 prompts left out
    margins = {r["id"]: r["margin"] for r in read_jsonl(it / "critic_reward_model/data.jsonl")}
    cal = read_json(it / "critic_calibration/metrics.json")
    assert cal["slice"] == 12 and cal["accuracy"] >= 0.9  # the sea beats the numbers on unseen prompts
    assert cal["coverage"] >= 0.5 and cal["error"] <= 0.15
    for row in read_jsonl(it / "critic_calibration/data.jsonl"):
        m = margins[f"calibration:{row['id']}"]
        assert row["uncertainty"] == pytest.approx(1 - abs(math.tanh(m / 2)))
        assert row["winner"] == ("first" if m > 0 else "second")
    routes = read_jsonl(it / "routing/data.jsonl")
    assert routes and {r["id"] for r in routes} == {i.split(":", 1)[1] for i in margins if i.startswith("item:")}
    for r in routes:
        assert r["uncertainty"] == pytest.approx(1 - abs(math.tanh(margins[f"item:{r['id']}"] / 2)))
        assert (r["route"] == "trust") == (r["uncertainty"] <= cal["trust_threshold"])
        assert r["route"] in ("trust", "human")  # no teacher: what is not trusted goes to a person
    pairs = read_jsonl(it / "pairs_critic/data.jsonl")
    assert len(pairs) == sum(r["route"] == "trust" for r in routes) >= 1
    for p in pairs:  # trusted: the sea over the numbers, as the labelled prompts taught it
        assert p["chosen"][-1]["content"] in GOOD and p["rejected"][-1]["content"] in BAD
    critiques = {i.item_id: i.critique for i in ReviewQueue(tmp_path / "tiny" / "review.sqlite").items()}
    assert len(critiques) == sum(r["route"] == "human" for r in routes)
    assert all(c.startswith("reward model margin ") for c in critiques.values())

    # The same command again reads the reward model's verdicts back: nothing is trained.
    def no_training(*a, **k):
        raise AssertionError("a finished stage trained again")

    monkeypatch.setattr("autoalign.stages.reward_model.train_reward_model", no_training)
    iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
