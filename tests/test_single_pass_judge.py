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


def label_probabilities(tokenizer, probs: torch.Tensor, labels: list[str]) -> dict[str, float]:
    mass = dict.fromkeys(labels, 0.0)
    for token_id in range(probs.shape[0]):
        label = tokenizer.decode([token_id]).strip()
        if label in mass:
            mass[label] += probs[token_id].item()
    return mass


def hand_winner_probability(loaded, item, swapped: bool) -> float:
    """P(the letter of `first` | "Winner:") / (P(A) + P(B)), a space token followed one step as in
    hand_expected_score."""
    from autoalign.judges.pairwise import comparison_prompt

    tokenizer = loaded.tokenizer
    prompt = [{"role": "user", "content": comparison_prompt(item, swapped, 2000)}]
    ids = tokenizer(render_prompt(tokenizer, prompt) + "Winner:", add_special_tokens=False).input_ids
    with torch.no_grad():
        first = torch.softmax(loaded.model(input_ids=torch.tensor([ids])).logits[0, -1].float(), dim=-1)
        mass = label_probabilities(tokenizer, first, ["A", "B"])
        top = int(first.argmax())
        if not tokenizer.decode([top]).strip():
            second = torch.softmax(loaded.model(input_ids=torch.tensor([ids + [top]])).logits[0, -1].float(), dim=-1)
            for label, p in label_probabilities(tokenizer, second, ["A", "B"]).items():
                mass[label] += first[top].item() * p
    return mass["B" if swapped else "A"] / (mass["A"] + mass["B"])


def test_single_pass_pairwise_verdicts_equal_a_hand_computation(tiny_loaded):
    from autoalign.judges.pairwise import PairwiseItem, PairwiseJudge

    items = [
        PairwiseItem([{"role": "user", "content": "What is the capital of France?"}], "Paris.", "Lyon, I think."),
        PairwiseItem([{"role": "user", "content": "Write a short poem about the sea."}], "Waves.", "The sea is blue."),
    ]
    judge = PairwiseJudge(
        HFGenerator(tiny_loaded, batch_size=4),
        SamplingParams(temperature=0.0),
        single_pass=True,
        single_pass_alternatives=len(tiny_loaded.tokenizer),
    )
    for item, preference in zip(items, judge.compare(items)):
        straight, swapped = (hand_winner_probability(tiny_loaded, item, s) for s in (False, True))
        assert math.isclose(preference.p_first, (straight + swapped) / 2, abs_tol=1e-4)
        assert preference.verdicts == ["first" if p >= 0.5 else "second" for p in (straight, swapped)]
        expected = preference.verdicts[0] if preference.verdicts[0] == preference.verdicts[1] else "tie"
        assert preference.winner == expected
    assert judge.generator.usage.snapshot()["completion_tokens"] <= 2 * 2 * len(items)


def test_single_pass_preference_combines_both_orders_by_hand():
    from autoalign.judges.pairwise import single_pass_preference

    def reply(alternatives: dict[str, float], tokens=None, extra=None) -> Candidate:
        rows = [{k: math.log(v) for k, v in alternatives.items()}] + ([extra] if extra else [])
        return Candidate(text="x", num_tokens=len(rows), finish_reason="length", tokens=tokens, top_logprobs=rows)

    # Straight: P(A) = 0.6, P(B) = 0.2 -> first wins with 0.75. Swapped: first is B there: 0.3 / (0.3 + 0.1).
    agree = single_pass_preference(reply({" A": 0.6, " B": 0.2, "The": 0.2}), reply({"A": 0.1, "B": 0.3}))
    assert agree.winner == "first" and agree.verdicts == ["first", "first"]
    assert math.isclose(agree.p_first, (0.75 + 0.75) / 2)
    assert agree.raw == ["Winner: A", "Winner: B"]
    # The orders disagree (position bias): a tie, p_first near one half.
    biased = single_pass_preference(reply({"A": 0.8, "B": 0.2}), reply({"A": 0.7, "B": 0.3}))
    assert biased.winner == "tie" and biased.verdicts == ["first", "second"]
    assert math.isclose(biased.p_first, (0.8 + 0.3) / 2)
    # A space token first: P(B) = P(" B") + P(" ") x P("B" | " ") = 0.1 + 0.5 x 0.8 = 0.5; P(A) = 0.5 x 0.2.
    spaced = reply({" ": 0.5, " B": 0.1, "I": 0.4}, tokens=[" ", "B"], extra={"B": math.log(0.8), "A": math.log(0.2)})
    second_wins = single_pass_preference(spaced, reply({"A": 0.9, "B": 0.1}))
    assert second_wins.winner == "second" and math.isclose(second_wins.p_first, (0.1 / 0.6 + 0.1) / 2)
    # No label among the alternatives of one order: no preference at all.
    unread = single_pass_preference(reply({"The": 0.9}), reply({"A": 0.9, "B": 0.1}))
    assert unread.winner is None and unread.p_first is None and unread.verdicts == [None, "second"]
    failed = single_pass_preference(Candidate.failed("timeout"), reply({"A": 0.9, "B": 0.1}))
    assert failed.winner is None and failed.error == "timeout"
