"""Single-pass rubric verdicts: the answer is started with `Score:` and the verdict is the expected
score under the next-token distribution, checked against a hand computation from the logits."""

from __future__ import annotations

import math

import torch

from autoalign.chat import render_prompt
from autoalign.generation.base import SamplingParams
from autoalign.generation.hf import HFGenerator
from autoalign.generation.openai import OpenAIGenerator
from autoalign.config import EndpointConfig
from autoalign.judges.base import JudgeItem
from autoalign.judges.rubric import RubricJudge, judge_prompt, single_pass_judgment
from autoalign.types import Candidate

ITEMS = [
    JudgeItem([{"role": "user", "content": "What is the capital of France?"}], "Paris."),
    JudgeItem([{"role": "user", "content": "Write a short poem about the sea."}], "The sea is blue."),
    JudgeItem([{"role": "user", "content": "Give three tips for staying focused."}], "Sleep. Plan. Rest."),
]


def digit_probabilities(tokenizer, probs: torch.Tensor) -> dict[int, float]:
    mass = {d: 0.0 for d in range(6)}
    for token_id in range(probs.shape[0]):
        label = tokenizer.decode([token_id]).strip()
        if label in {str(d) for d in range(6)}:
            mass[int(label)] += probs[token_id].item()
    return mass


def hand_expected_score(loaded, item: JudgeItem) -> tuple[float, float]:
    """(expected score over the digit tokens, their total probability) from plain forward passes:
    P(d) = P(d | "Score:") + P(space | "Score:") x P(d | "Score: ") when the greedy first token is a
    space."""
    tokenizer = loaded.tokenizer
    text = render_prompt(tokenizer, [{"role": "user", "content": judge_prompt(item, 2000)}]) + "Score:"
    ids = tokenizer(text, add_special_tokens=False).input_ids
    with torch.no_grad():
        first = torch.softmax(loaded.model(input_ids=torch.tensor([ids])).logits[0, -1].float(), dim=-1)
        mass = digit_probabilities(tokenizer, first)
        top = int(first.argmax())
        if not tokenizer.decode([top]).strip():
            second = torch.softmax(loaded.model(input_ids=torch.tensor([ids + [top]])).logits[0, -1].float(), dim=-1)
            for d, p in digit_probabilities(tokenizer, second).items():
                mass[d] += first[top].item() * p
    total = sum(mass.values())
    return sum(d * p for d, p in mass.items()) / total, total


def test_single_pass_verdicts_equal_a_hand_computation(tiny_loaded):
    vocab = len(tiny_loaded.tokenizer)
    judge = RubricJudge(
        HFGenerator(tiny_loaded, batch_size=2),
        SamplingParams(temperature=0.0),
        single_pass=True,
        single_pass_alternatives=vocab,  # the whole distribution, so nothing falls outside the top-k
    )
    verdicts = judge.judge(ITEMS)
    for item, verdict in zip(ITEMS, verdicts):
        expected, mass = hand_expected_score(tiny_loaded, item)
        assert verdict.parsed and verdict.unparsed == []
        assert math.isclose(verdict.score, expected, abs_tol=1e-4)
        assert math.isclose(verdict.confidence, min(1.0, mass), rel_tol=1e-3)
        assert 0.0 <= verdict.score <= 5.0
    # at most two generated tokens per item (the digit, or a space and the digit): one prefill
    assert judge.generator.usage.snapshot()["completion_tokens"] <= 2 * len(ITEMS)


def test_single_pass_judgment_reads_the_first_position():
    top = {" 4": math.log(0.5), "4": math.log(0.1), " 2": math.log(0.2), " **": math.log(0.2)}
    verdict = single_pass_judgment(Candidate(text=" 4", num_tokens=1, finish_reason="length", top_logprobs=[top]))
    # digits renormalised among themselves: P(4) = 0.6 / 0.8, P(2) = 0.2 / 0.8
    assert math.isclose(verdict.score, 4 * 0.75 + 2 * 0.25)
    assert math.isclose(verdict.confidence, 0.8)
    assert verdict.samples == [4] and verdict.raw == ["Score: 4"]
    none = single_pass_judgment(Candidate(text=" **", num_tokens=1, finish_reason="length", top_logprobs=[{"**": 0.0}]))
    assert none.score is None and not none.parsed and none.unparsed == ["no_score_token"]
    # "Score:" then a space then the digit: P(d) = P(" d") + P(" ") x P("d" | " ")
    first = {" ": math.log(0.6), " 5": math.log(0.1), "N": math.log(0.3)}
    second = {"3": math.log(0.5), "1": math.log(0.5)}
    spaced = single_pass_judgment(
        Candidate(text=" 3", num_tokens=2, finish_reason="length", tokens=[" ", "3"], top_logprobs=[first, second])
    )
    mass = {5: 0.1, 3: 0.3, 1: 0.3}
    assert math.isclose(spaced.confidence, 0.7)
    assert math.isclose(spaced.score, sum(d * p for d, p in mass.items()) / 0.7)
    failed = single_pass_judgment(Candidate.failed("timeout"))
    assert failed.score is None and failed.unparsed == ["failed"] and failed.error == "timeout"


def test_single_pass_needs_one_sample():
    import pytest

    with pytest.raises(ValueError, match="samples must be 1"):
        RubricJudge(None, SamplingParams(temperature=0.7), samples=3, single_pass=True)


def test_assistant_prefix_keys_and_request_body():
    plain = SamplingParams()
    assert "assistant_prefix" not in plain.to_dict()  # answers cached before the field keep their keys
    assert SamplingParams(**plain.to_dict()) == plain
    prefixed = SamplingParams(max_new_tokens=1, assistant_prefix="Score:")
    assert prefixed.to_dict()["assistant_prefix"] == "Score:"
    http = OpenAIGenerator(EndpointConfig(base_url="http://127.0.0.1:9/v1", model="m"))
    messages = [{"role": "user", "content": "Rate this."}]
    body = http.body(messages, prefixed, 0)
    assert body["messages"] == [*messages, {"role": "assistant", "content": "Score:"}]
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert "continue_final_message" not in http.body(messages, plain, 0)
    http.close()
