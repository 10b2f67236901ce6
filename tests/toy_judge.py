"""A toy programmatic judge for the registry test: the shorter answer scores higher. Registered by
the test alone, to show that a new kind of judge is a new file and a registry entry."""

from __future__ import annotations

from autoalign.types import Judgment


class BrevityJudge:
    def judge(self, items):
        scores = [max(0, 5 - len(item.response.split()) // 3) for item in items]
        return [Judgment(score=s, raw=["brevity"], parsed=True, samples=[s]) for s in scores]


class BrevityJudgeFactory:
    key = "brevity-v1"
    kind = "verifier"

    def __call__(self, ref, cfg, seed):
        return BrevityJudge()


def make(judge_cfg):
    return BrevityJudgeFactory()
