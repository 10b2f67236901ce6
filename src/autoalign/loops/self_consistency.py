"""Self-consistency feedback (Wang et al. 2023, "Self-Consistency Improves Chain of Thought
Reasoning in Language Models"): what most of the model's samples agree on is preferred. No judge.

    samples  = N samples per prompt from M_t (shared with the other paradigms)
    votes    = samples clustered by agreement (consistency.agreement: exact, normalised, ROUGE-L),
               optionally on each sample's final answer only (consistency.final_answer)
    pairs    = the majority's answer over each minority cluster's; prompts where the majority is
               tied or holds less than consistency.min_confidence of the votes are uncertain and
               make no pair (counted), as do unanimous ones (nothing to prefer)

Run it:  autoalign run recipes/self_reward_small.yaml loop=self_consistency sample.n=6
"""

from __future__ import annotations

from autoalign.inference.self_consistency import final_answer
from autoalign.loops.context import RunContext
from autoalign.pairs import consensus_pairs
from autoalign.runtime.pool import ModelRef
from autoalign.stages.pairs import pairs_stage
from autoalign.stages.sampling import sample_candidates
from autoalign.types import Pair, Prompt

SOURCE = "self_consistency"


def make_pairs(ctx: RunContext, t: int, student: ModelRef, prompts: list[Prompt]) -> list[Pair]:
    cfg = ctx.cfg
    candidates = sample_candidates(ctx.at(t, shared=True), student, prompts, cfg.sample)
    vote = cfg.consistency
    inputs = [p.id + str([c.text for c in candidates[p.id]]) for p in prompts]
    vote_on = final_answer if vote.final_answer else (lambda text: text)
    build = lambda: consensus_pairs(
        prompts, candidates, vote.agreement, vote.threshold, vote.min_confidence, SOURCE, vote_on
    )
    return pairs_stage(ctx.at(t), SOURCE, build, config={"cfg": vote.key()}, inputs=inputs, prompts=len(prompts))
