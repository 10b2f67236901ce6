"""Pairwise verdict parsing, both-orders combination, and verdict probabilities from logprobs."""

import math

import pytest

from autoalign.judges.pairwise import PairwiseItem, PairwiseJudge, combine, parse_winner
from autoalign.judges.verdict_probs import expected_score, final_line_start, label_distribution
from autoalign.types import Candidate


@pytest.mark.parametrize(
    "text, expected",
    [
        ("A is more direct.\nWinner: A", "A"),
        ("reasons\n\n**Winner:** B\n", "B"),
        ("Winner: b.", "B"),
        ("Winner: [b].", None),  # only the plain format the prompt asks for
        ("Better response: Response A", None),
        ("Winner: A\nActually the other one is better.", None),  # the verdict must be the final line
        ("Winner: C", None),
        ("Winner: A or B", None),
        ("I prefer A.", None),
        ("", None),
        ("The user wrote 'Winner: A' in their question, and I'd say", None),  # truncated output
    ],
)
def test_parse_winner(text, expected):
    assert parse_winner(text) == expected


def cand(text: str, tokens: list[str] | None = None, top: list[dict[str, float]] | None = None) -> Candidate:
    return Candidate(text=text, num_tokens=len(tokens or []), finish_reason="stop", tokens=tokens, top_logprobs=top)


def test_combine_both_orders():
    a, b = cand("Winner: A"), cand("Winner: B")
    # straight asks first=A; swapped asks first=B. Agreeing on "first": A then B.
    assert combine(a, b).winner == "first" and combine(a, b).p_first == 1.0
    assert combine(b, a).winner == "second" and combine(b, a).p_first == 0.0
    # Position bias: the judge picks "A" whatever is shown there -> the two orders disagree.
    tie = combine(a, a)
    assert tie.winner == "tie" and tie.verdicts == ["first", "second"] and tie.p_first == 0.5
    unparsed = combine(a, cand("hmm"))
    assert unparsed.winner is None and unparsed.p_first is None
    failed = combine(a, Candidate.failed("timeout: no reply"))
    assert failed.winner is None and failed.error == "timeout: no reply"


def test_probability_weighted_preference():
    lp = math.log
    straight = cand("Winner: A", ["Winner", ":", " A"], [{"Winner": 0.0}, {":": 0.0}, {" A": lp(0.8), " B": lp(0.2)}])
    swapped = cand(
        "Winner: B", ["Winner", ":", " B"], [{"Winner": 0.0}, {":": 0.0}, {" B": lp(0.6), "B": lp(0.1), " A": lp(0.3)}]
    )
    pref = combine(straight, swapped)
    assert pref.winner == "first"
    # P(first better) = (P_straight(A) + P_swapped(B)) / 2 = (0.8 + 0.7) / 2
    assert pref.p_first == pytest.approx(0.75)


def test_label_distribution_reads_the_final_line():
    lp = math.log
    tokens = ["Score", ":", " 3", " points", "\n", "So", "\n", "Score", ":", " 4", "/", "5", "\n"]
    top = [{} for _ in tokens]
    top[2] = {" 3": lp(0.9), " 4": lp(0.1)}  # an earlier score line: ignored
    top[9] = {" 4": lp(0.5), " 3": lp(0.25), " 5": lp(0.15), "four": lp(0.1)}
    top[11] = {"5": 0.0}
    c = cand("...", tokens, top)
    assert final_line_start(tokens) == 7
    dist = label_distribution(c, [str(s) for s in range(6)])
    assert dist["4"] == pytest.approx(0.5 / 0.9) and dist["3"] == pytest.approx(0.25 / 0.9) and dist["0"] == 0
    assert expected_score(c) == pytest.approx((4 * 0.5 + 3 * 0.25 + 5 * 0.15) / 0.9)
    assert expected_score(cand("Score: 4")) is None  # no logprobs, no distribution


class ScriptedGenerator:
    """Answers each request with the next scripted output, recording the prompts it saw."""

    def __init__(self, outputs):
        self.outputs = list(outputs)
        self.seen = []

    def generate(self, requests, params):
        self.seen.extend(r[-1]["content"] for r in requests)
        return [[Candidate(text=self.outputs.pop(0), num_tokens=1, finish_reason="stop")] for _ in requests]


def test_pairwise_judge_asks_both_orders():
    from autoalign.generation.base import SamplingParams

    gen = ScriptedGenerator(["Winner: B", "Winner: A"])
    judge = PairwiseJudge(gen, SamplingParams(temperature=0))
    [pref] = judge.compare(
        [PairwiseItem(prompt=[{"role": "user", "content": "Q?"}], first="FIRST ANSWER", second="SECOND ANSWER")]
    )
    assert pref.winner == "second"
    straight, swapped = gen.seen
    assert straight.index("FIRST ANSWER") < straight.index("SECOND ANSWER")
    assert swapped.index("SECOND ANSWER") < swapped.index("FIRST ANSWER")


def test_pairwise_demonstrations_come_before_every_request_and_win_once_each_side():
    from autoalign.generation.base import SamplingParams
    from autoalign.judges.pairwise import demonstration_turns

    demos = demonstration_turns()
    verdicts = [parse_winner(t["content"]) for t in demos if t["role"] == "assistant"]
    assert sorted(verdicts) == ["A", "B"]  # no side taught
    requests = []

    class Recorder(ScriptedGenerator):
        def generate(self, reqs, params):
            requests.extend(reqs)
            return super().generate(reqs, params)

    judge = PairwiseJudge(Recorder(["Winner: A", "Winner: B"]), SamplingParams(temperature=0), demonstrations=demos)
    [pref] = judge.compare([PairwiseItem([{"role": "user", "content": "Q?"}], "x", "y")])
    assert pref.winner == "first"
    assert all(r[: len(demos)] == demos and len(r) == len(demos) + 1 for r in requests)
