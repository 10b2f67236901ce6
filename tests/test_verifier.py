"""IFEval checkers as the feedback judge: scores on the rubric's 0..5 scale, unknown prompts
unscored, and a loop whose pairs come from the verifier and never train on evaluation prompts."""

from __future__ import annotations

import pytest

from autoalign.verifiers.ifeval import IFEvalPrompt
from autoalign.io import read_json, read_jsonl
from autoalign.judges.base import JudgeItem
from autoalign.judges.verifier import IFEvalVerifier, VerifierJudgeFactory
from autoalign.loops import iterate
from autoalign.loops.context import build_context
from autoalign.pairs import NoPairsError
from test_loop_tiny import tiny_config


def test_verifier_scores_share_of_instructions_followed():
    spec = IFEvalPrompt(
        "1",
        "Write a haiku without commas, ending with 'Done.'",
        ["punctuation:no_comma", "startend:end_checker"],
        [{}, {"end_phrase": "Done."}],
    )
    verifier = IFEvalVerifier([spec])
    ask = lambda response, prompt=spec.prompt: JudgeItem([{"role": "user", "content": prompt}], response)
    both, one, unknown = verifier.judge(
        [ask("Quiet pond at dusk. Done."), ask("Quiet pond at dusk."), ask("x", prompt="other")]
    )
    assert both.score == 5.0 and both.parsed
    assert one.score == pytest.approx(2.5)  # no comma: followed; end phrase: not
    assert unknown.score is None and not unknown.parsed


def test_loop_with_the_verifier_never_trains_on_evaluation_prompts(tiny_model_dir, tmp_path):
    from test_loop_tiny import make_verifier

    cfg = tiny_config(
        tiny_model_dir,
        tmp_path,
        "iterations=1",
        "judge.verifier=ifeval",
        "create_prompts.from_file=builtin:ifeval_input_data.jsonl",
        "create_prompts.num_prompts=4",
        "eval.ifeval_prompts=2",
        "eval.ifeval_sampling.max_new_tokens=8",
        "eval.pairwise=false",
    )
    ctx, _ = build_context(cfg, log=lambda m: None, make_judge=make_verifier)
    assert isinstance(ctx.make_judge, VerifierJudgeFactory)  # the feedback judge
    assert ctx.make_eval_judge is make_verifier  # the evaluation keeps its own judge
    try:
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    except NoPairsError:
        pass  # a random tiny model's answers may all follow the same instructions: no pairs
    it = tmp_path / "tiny/iter_1"
    prompts = read_json(it / "prompts/metrics.json")
    assert prompts["dropped"] == {"evaluation_prompt": 2} and prompts["kept"] == 4
    judgments = [j for r in read_jsonl(it / "judgments/data.jsonl") for j in r["judgments"]]
    assert len(judgments) == 16 and all(j["raw"][0].startswith("verifier:") and j["parsed"] for j in judgments)
    from autoalign.summary import iteration_rows

    assert read_json(it / "judgments/metrics.json")["judge_kind"] == "verifier"
    rows = dict(iteration_rows(tmp_path / "tiny", 1))
    assert "verifier parse rate" in rows and "self-judge parse rate" not in rows  # named for what judged
