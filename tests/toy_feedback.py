"""A toy feedback source for the registry test: the student's longest sample is preferred over
its shortest. It is registered by the test alone, to show that a new source is a new file."""

from __future__ import annotations

from collections import Counter

from autoalign.pairs import Pair
from autoalign.stages.pairs import pairs_stage
from autoalign.stages.sampling import sample_candidates

SOURCE = "toy_length"


def make_pairs(ctx, t, student, prompts):
    candidates = sample_candidates(ctx.at(t, shared=True), student, prompts, ctx.cfg.sample)

    def build():
        pairs, dropped = [], Counter()
        for p in prompts:
            ranked = sorted(candidates[p.id], key=lambda c: len(c.text))
            if len(ranked[-1].text) == len(ranked[0].text):
                dropped["same_length"] += 1
                continue
            pairs.append(
                Pair(
                    p.id, p.messages, ranked[-1].text, ranked[0].text, len(ranked[-1].text), len(ranked[0].text), SOURCE
                )
            )
        return pairs, dropped

    inputs = [p.id + str([c.text for c in candidates[p.id]]) for p in prompts]
    return pairs_stage(ctx.at(t), SOURCE, build, config={}, inputs=inputs, prompts=len(prompts))
