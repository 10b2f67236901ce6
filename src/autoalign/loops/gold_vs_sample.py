"""Gold-vs-sample feedback (self-play fine-tuning; Chen et al. 2024, "Self-Play Fine-Tuning
Converts Weak Language Models to Strong Language Models"): the newest model plays against the
data. chosen = the SFT dataset's reference answer, rejected = the student's own sample.

    prompts  = the same gold prompts every iteration (gold.file, gold.num_prompts)
    samples  = one sample per prompt from the student M_t
    pairs    = chosen = gold answer, rejected = sample; identical answers dropped (counted)

DPO's sigmoid loss with reference M_t is SPIN's logistic loss, so training is shared.
Run it:  autoalign run recipes/gold_vs_sample.yaml
"""

from __future__ import annotations

import random

from autoalign.data import load_ift
from autoalign.stages.sampling import sample_candidates
from autoalign.loops.context import RunContext
from autoalign.stages.pairs import reference_pairs
from autoalign.runtime.pool import ModelRef
from autoalign.types import Candidate, Pair, Prompt

SOURCE = "gold_vs_sample"


def gold_prompts(spec: str, count: int, seed: int) -> tuple[list[Prompt], dict[str, Candidate]]:
    conversations = load_ift(spec)
    order = list(range(len(conversations)))
    random.Random(seed).shuffle(order)
    prompts, gold = [], {}
    for i in order[:count]:
        conv = conversations[i]
        prompt = Prompt(id=f"gold-{i:05d}", messages=conv[:-1], source="gold")
        prompts.append(prompt)
        gold[prompt.id] = Candidate(text=conv[-1]["content"], num_tokens=0, finish_reason="stop")
    return prompts, gold


def make_pairs(ctx: RunContext, t: int, student: ModelRef, _created: list[Prompt]) -> list[Pair]:
    cfg = ctx.cfg
    prompts, gold = gold_prompts(cfg.gold.file, cfg.gold.num_prompts, ctx.seed)
    samples = sample_candidates(ctx.at(t), student, prompts, cfg.sample.replaced(n=1), name="gold_samples")
    return reference_pairs(ctx.at(t), prompts, gold, samples, source=SOURCE, min_chars=1)
