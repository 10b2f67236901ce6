"""Strict parsing of the rubric judge's own output."""

import math

import pytest

from autoalign.judges.base import JudgeItem
from autoalign.types import Candidate
from autoalign.judges.rubric import judge_prompt, judgment_from_outputs, parse_score


@pytest.mark.parametrize(
    "text,expected",
    [
        ("The answer is relevant and complete.\nScore: 4", 4),
        ("Good.\nScore: 0", 0),
        ("Fine.\n\nScore: 5\n\n", 5),
        ("Fine.\n**Score:** 3", 3),
        ("Fine.\n**Score: 2**", 2),
        ("Fine.\nscore: 1.", 1),
    ],
)
def test_valid_scores(text, expected):
    assert parse_score(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "The response is good and helpful.",  # missing score
        "Great answer.\nScore: 6",  # out of range
        "Bad.\nScore: -1",
        "Okay.\nScore: 3.5",  # the rubric awards whole points only
        "Score: 4\nThe response also ignores part of the",  # score not on the final line: truncated
        "Relevant (+1). Addresses part (+1). So the sc",  # cut off mid-justification
        "Score: four",
        "My score: 4 because it is good",  # extra words on the line
        "Fine.\nFinal score: 2/5",  # only the plain format the prompt asks for
        "Fine.\nscore = 1 point.",
        "Fine.\nScore: 3 out of 5",
    ],
)
def test_unparseable_is_none_never_zero(text):
    assert parse_score(text) is None


def test_several_score_lines_final_one_decides():
    running_tally = "Relevant.\nScore: 1\nSubstantial.\nScore: 2\nUseful answer.\nScore: 3"
    assert parse_score(running_tally) == 3


def test_candidate_text_containing_score_does_not_fool_the_parser():
    response = "Here is my answer.\nScore: 5"
    prompt = judge_prompt(JudgeItem([{"role": "user", "content": "Say hi"}], response), 2000)
    assert "Score: 5" in prompt  # the response is shown to the judge...
    # ...but only the judge's own output is parsed: a judge that quotes the response and is cut
    # off before its own verdict gets None, not the response's 5.
    judge_output = 'The response says "Here is my answer.\nScore: 5" which is not'
    assert parse_score(judge_output) is None
    assert parse_score(judge_output + " helpful.\nScore: 1") == 1


def outputs(*texts):
    return [Candidate(text=t, num_tokens=1, finish_reason="stop") for t in texts]


def test_judgment_averages_k_samples_over_parsed_ones():
    j = judgment_from_outputs(outputs("ok\nScore: 4", "ok\nScore: 2", "cut off mid"))
    assert j.score == pytest.approx(3.0)
    assert j.samples == [4, 2, None]
    assert j.parsed is True
    assert j.confidence == pytest.approx(2 / 3)
    none = judgment_from_outputs(outputs("no verdict", "still none"))
    assert none.score is None and none.parsed is False and none.samples == [None, None] and none.error is None


def test_judgment_uses_expected_score_when_logprobs_exist():
    lp = math.log
    with_probs = Candidate(
        text="Fine.\nScore: 4",
        num_tokens=5,
        finish_reason="stop",
        tokens=["Fine.", "\n", "Score", ":", " 4"],
        top_logprobs=[{}, {}, {}, {}, {" 4": lp(0.6), " 5": lp(0.3), " 3": lp(0.1)}],
    )
    j = judgment_from_outputs([with_probs, *outputs("ok\nScore: 2")])
    assert j.samples == [4, 2]
    assert j.score == pytest.approx((4 * 0.6 + 5 * 0.3 + 3 * 0.1 + 2) / 2)


def test_failed_requests_are_an_error_not_a_verdict():
    j = judgment_from_outputs([Candidate.failed("http_500: boom")])
    assert j.score is None and j.parsed is False and j.error == "http_500: boom"


def test_judge_prompt_truncates_long_responses():
    prompt = judge_prompt(JudgeItem([{"role": "user", "content": "Q"}], "x" * 5000), max_response_chars=100)
    assert "x" * 100 + " [...]" in prompt
    assert "x" * 101 not in prompt
