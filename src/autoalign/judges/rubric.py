"""LLM-as-a-judge with the additive 5-point rubric (Yuan et al. 2024, "Self-Rewarding Language
Models", figure 2), pointwise: one judge call per (prompt, response), k samples averaged.

Parsing is strict and looks only at the judge's own generated text: the verdict is the judge's
*final* non-empty line, which must read `Score: N` (optionally in bold) with N one ASCII digit
0..5. Anything else is None and counted: no score line, a score out of range or in other digits,
a line quoted (`> Score: 5`) or in code (`` `Score: 5` ``), output cut at max tokens (its last
line is not a finished verdict), or a verdict line the judge copied from the answer under review.
Earlier `Score:` lines are ignored (a running tally, or text quoted from the response under
review, cannot decide the verdict); the prompt itself is never parsed. The answer is shown inside
<response> tags with any of our fence tags in it neutralised (prompts.neutralize_tags), so it
cannot close its block and address the judge.

With use_logprobs and a backend that returns top-k token log-probabilities, a parsed verdict's
score is the expected score under the judge's distribution over 0..5 at the verdict token
(judges/verdict_probs.py) instead of the integer it wrote.

Single-pass (judge.single_pass): the same prompt, but the judge's answer is started with the
verdict line's lead-in, `Score:`, and the verdict is read from the next-token distribution: the
expected score over the digits 0..5 (renormalised among them), no justification generated. One
prompt pass per item (the rubric's shared prefix prefilled once per batch) and at most one
decoding step (for tokenizers that write the space before the digit as its own token).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import mean
from typing import Any

from autoalign.data import EFTExample
from autoalign.config import JudgeConfig
from autoalign.generation.base import Generator, SamplingParams, sampling_params
from autoalign.io import DataError
from autoalign.judges.base import JudgeItem
from autoalign.judges.verdict_probs import (
    SINGLE_PASS_ALTERNATIVES,
    expected_score,
    next_label_mass,
    single_pass_sampling,
)
from autoalign.prompts import neutralize_tags, render, template_digest
from autoalign.store import content_key
from autoalign.types import Candidate, Judgment, Message
from autoalign.verdicts import copied_from, final_line, parse_score


def unparsed_reason(output: Candidate, untrusted: list[str]) -> str | None:
    """Why a judge output gives no verdict (None when it gives one)."""
    if output.error:
        return "failed"
    if output.finish_reason == "length":
        return "cut_at_max_tokens"
    if parse_score(output.text) is None:
        return "no_verdict_line"
    if copied_from(final_line(output.text), untrusted):
        return "copied_from_response"
    return None


def judge_prompt(item: JudgeItem, max_response_chars: int) -> str:
    response = item.response
    if len(response) > max_response_chars:
        response = response[:max_response_chars] + " [...]"
    return render(
        "judge_rubric", instruction=neutralize_tags(item.prompt[-1]["content"]), response=neutralize_tags(response)
    )


VERDICT_LEAD_IN = "Score:"
SCORE_LABELS = [str(s) for s in range(6)]


class RubricJudge:
    """demonstrations: earlier chat turns (rubric prompt, judgement) shown before each verdict.
    They are the same for every item, so the generator prefills them once per batch."""

    LOGPROB_ALTERNATIVES = 10  # enough to see all six score digits and their spacing variants

    def __init__(
        self,
        generator: Generator,
        sampling: SamplingParams,
        samples: int = 1,
        max_response_chars: int = 2000,
        demonstrations: list[Message] | None = None,
        use_logprobs: bool = False,
        single_pass: bool = False,
        single_pass_alternatives: int = SINGLE_PASS_ALTERNATIVES,
    ):
        if samples > 1 and sampling.temperature == 0:
            raise ValueError("averaging k > 1 judge samples needs judge temperature > 0 (greedy samples are identical)")
        if samples > 1 and single_pass:
            raise ValueError("a single-pass verdict is one distribution: judge.samples must be 1")
        self.generator = generator
        self.single_pass = single_pass
        if single_pass:
            self.sampling = single_pass_sampling(VERDICT_LEAD_IN, sampling.seed, single_pass_alternatives)
        else:
            top = self.LOGPROB_ALTERNATIVES if use_logprobs else 0
            self.sampling = SamplingParams(**{**sampling.to_dict(), "n": samples, "top_logprobs": top})
        self.max_response_chars = max_response_chars
        self.demonstrations = list(demonstrations or [])

    def judge(self, items: list[JudgeItem]) -> list[Judgment]:
        requests = [
            [*self.demonstrations, {"role": "user", "content": judge_prompt(item, self.max_response_chars)}]
            for item in items
        ]
        outputs = self.generator.generate(requests, self.sampling)
        if self.single_pass:
            return [single_pass_judgment(cands[0]) for cands in outputs]
        return [judgment_from_outputs(cands, [item.response]) for item, cands in zip(items, outputs)]


def single_pass_judgment(output: Candidate) -> Judgment:
    """The verdict from the distribution of the token after `Score:` (verdict_probs.next_label_mass):
    the expected score over 0..5; confidence = the probability that a score digit comes next at
    all. No digit among the top-k alternatives (or none returned) is no verdict, counted as
    no_score_token."""
    if output.error:
        return Judgment(score=None, raw=[""], parsed=False, samples=[None], error=output.error, unparsed=["failed"])
    mass = next_label_mass(output, SCORE_LABELS)
    total = sum(mass.values())
    if total <= 0:
        return Judgment(score=None, raw=[output.text], parsed=False, samples=[None], unparsed=["no_score_token"])
    likeliest = max(mass, key=mass.get)
    return Judgment(
        score=sum(int(label) * p for label, p in mass.items()) / total,
        raw=[f"{VERDICT_LEAD_IN} {likeliest}"],
        parsed=True,
        samples=[int(likeliest)],
        confidence=min(1.0, total),
    )


def judgment_from_outputs(outputs: list[Candidate], untrusted: list[str] = ()) -> Judgment:
    """k judge samples -> one Judgment: the mean over the samples that parsed (each the expected
    score when log-probabilities are there, else the integer written); confidence = the share
    of samples that parsed. untrusted: the answer under review (see copied_from)."""
    reasons = [unparsed_reason(c, list(untrusted)) for c in outputs]
    scores = [parse_score(c.text) if reason is None else None for c, reason in zip(outputs, reasons)]
    values = []
    for c, score in zip(outputs, scores):
        if score is not None:
            expected = expected_score(c)
            values.append(expected if expected is not None else score)
    errors = [c.error for c in outputs if c.error]
    return Judgment(
        score=mean(values) if values else None,
        raw=[c.text for c in outputs],
        parsed=bool(values),
        samples=scores,
        confidence=len(values) / len(scores),
        error="; ".join(errors) if errors and not values else None,
        unparsed=[r for r in reasons if r is not None],
    )


def eft_conversation(example: EFTExample, max_response_chars: int = 2000) -> list[Message]:
    """An EFT example as the chat it teaches: the rubric prompt, then the judge's judgement."""
    item = JudgeItem(prompt=[{"role": "user", "content": example.instruction}], response=example.response)
    return [
        {"role": "user", "content": judge_prompt(item, max_response_chars)},
        {"role": "assistant", "content": example.judgement},
    ]


def judge_demonstrations(
    examples: list[EFTExample], scores: list[int], max_response_chars: int = 2000, source: str = "the EFT data"
) -> list[Message]:
    """Chat turns showing one EFT judgement per requested score, in order: for each score the
    shortest example with that score (short demonstrations keep every judge prompt short)."""
    turns: list[Message] = []
    used: set[int] = set()
    for score in scores:
        candidates = [i for i, e in enumerate(examples) if e.score == score and i not in used]
        if not candidates:
            raise DataError(f"{source}: no unused EFT example with score {score} for judge.fewshot_scores {scores}")
        best = min(
            candidates,
            key=lambda i: len(examples[i].instruction) + len(examples[i].response) + len(examples[i].judgement),
        )
        used.add(best)
        turns += eft_conversation(examples[best], max_response_chars)
    return turns


@dataclass(frozen=True)
class RubricJudgeFactory:
    """The default judge: the additive 5-point rubric, asked of the given model, optionally after
    a few EFT demonstrations. pool: a runtime ModelPool (gives the model's generator)."""

    kind = "rubric"

    pool: Any
    demonstrations: tuple = ()

    @property
    def key(self) -> str:
        return content_key(template_digest("judge_rubric"), list(self.demonstrations))

    def __call__(self, ref, cfg: JudgeConfig, seed: int) -> RubricJudge:
        return self.judge_on(self.pool.generator(ref, cfg.sampling.batch_size), cfg, seed)

    def judge_on(self, generator, cfg: JudgeConfig, seed: int) -> RubricJudge:
        """The same judge asking a given generator (e.g. one that counts the tokens it costs)."""
        return RubricJudge(
            generator,
            sampling_params(cfg.sampling, n=1, seed=seed),
            cfg.samples,
            cfg.max_response_chars,
            list(self.demonstrations),
            cfg.use_logprobs,
            cfg.single_pass,
        )
