"""Pairwise LLM-as-a-judge: which of two answers is better, asked in both orders.

Position bias is real (judges favour the first, or the second, answer), so every comparison is
asked twice, with the answers swapped. Verdicts that agree across the two orders decide; verdicts
that disagree are a tie ("the judge could not tell"), and a verdict that does not parse makes the
preference None, counted by callers, never silently a tie. With token log-probabilities the
preference also carries p_first, the probability that the first answer is better, averaged over
both orders.

Parsing is strict: only the judge's final non-empty line, which must read `Winner: A` or
`Winner: B` (optionally in bold), ASCII only; a quoted or code line, output cut at max tokens, or
a verdict line copied from one of the answers gives no verdict. The answers are shown with our
fence tags in them neutralised, so one cannot close its block and address the judge.

Single-pass (judge.single_pass): each order's reply is started with `Winner:` and the verdict is
read from the next-token distribution over A and B (verdict_probs.next_label_mass): the likelier
label is that order's verdict, and p_first averages P(first wins) over the two orders. One
prompt pass per order, nothing written to parse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from autoalign.config import JudgeConfig
from autoalign.data import BUILTIN_DIR
from autoalign.generation.base import Generator, SamplingParams, sampling_params
from autoalign.io import iter_jsonl
from autoalign.judges.verdict_probs import (
    SINGLE_PASS_ALTERNATIVES,
    label_distribution,
    next_label_mass,
    single_pass_sampling,
)
from autoalign.prompts import neutralize_tags, render, template_digest
from autoalign.store import content_key, file_digest
from autoalign.types import Candidate, Message, Preference
from autoalign.verdicts import copied_from, final_line, parse_winner


def trusted_winner(output: Candidate, answers: list[str]) -> str | None:
    """The verdict of one order, or None when it is cut off, failed, or copied from an answer."""
    if output.error or output.finish_reason == "length":
        return None
    label = parse_winner(output.text)
    return None if label is None or copied_from(final_line(output.text), answers) else label


@dataclass(frozen=True)
class PairwiseItem:
    prompt: list[Message]
    first: str
    second: str


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + " [...]"


def comparison_prompt(
    item: PairwiseItem, swapped: bool, max_response_chars: int, template: str = "judge_pairwise"
) -> str:
    """The comparison in `template` (the judge's, or the critic's critic_pairwise)."""
    a, b = (item.second, item.first) if swapped else (item.first, item.second)
    return render(
        template,
        instruction=neutralize_tags(item.prompt[-1]["content"]),
        response_a=neutralize_tags(_clip(a, max_response_chars)),
        response_b=neutralize_tags(_clip(b, max_response_chars)),
    )


def combine(straight: Candidate, swapped: Candidate, answers: list[str] = ()) -> Preference:
    """straight asked (first=A, second=B); swapped asked (second=A, first=B). answers: the two
    answers under review (a verdict line copied from one is not trusted)."""
    errors = [c.error for c in (straight, swapped) if c.error]
    labels = [trusted_winner(straight, list(answers)), trusted_winner(swapped, list(answers))]
    # Map each order's letter back to "first"/"second".
    verdicts = [
        None if labels[0] is None else ("first" if labels[0] == "A" else "second"),
        None if labels[1] is None else ("first" if labels[1] == "B" else "second"),
    ]
    if None in verdicts:
        winner = None
    elif verdicts[0] == verdicts[1]:
        winner = verdicts[0]
    else:
        winner = "tie"
    p_first = None
    if winner is not None:
        d0 = label_distribution(straight, ["A", "B"])
        d1 = label_distribution(swapped, ["A", "B"])
        if d0 is not None and d1 is not None:
            p_first = (d0["A"] + d1["B"]) / 2
        else:
            p_first = {"first": 1.0, "second": 0.0, "tie": 0.5}[winner]
    return Preference(
        winner=winner,
        verdicts=verdicts,
        raw=[straight.text, swapped.text],
        p_first=p_first,
        error="; ".join(errors) or None,
    )


VERDICT_LEAD_IN = "Winner:"


def single_pass_preference(straight: Candidate, swapped: Candidate) -> Preference:
    """straight asked (first=A, second=B), swapped (second=A, first=B), each a reply started with
    `Winner:`. An order whose next-token alternatives hold neither label (or that failed) gives
    no verdict, and so no preference."""
    errors = [c.error for c in (straight, swapped) if c.error]
    p_first_wins = []  # per order, renormalised between the two labels
    for output, first_label in ((straight, "A"), (swapped, "B")):
        mass = {} if output.error else next_label_mass(output, ["A", "B"])
        total = sum(mass.values())
        p_first_wins.append(mass.get(first_label, 0.0) / total if total > 0 else None)
    verdicts = [None if p is None else ("first" if p >= 0.5 else "second") for p in p_first_wins]
    letters = [None if v is None else ("A" if (v == "first") == (i == 0) else "B") for i, v in enumerate(verdicts)]
    raw = [f"{VERDICT_LEAD_IN} {letter}" if letter else "" for letter in letters]
    if None in verdicts:
        return Preference(winner=None, verdicts=verdicts, raw=raw, error="; ".join(errors) or None)
    winner = verdicts[0] if verdicts[0] == verdicts[1] else "tie"
    return Preference(winner=winner, verdicts=verdicts, raw=raw, p_first=sum(p_first_wins) / 2)


def demonstration_turns(max_response_chars: int = 2000, template: str = "judge_pairwise") -> list[Message]:
    """Two worked comparisons as earlier chat turns (data/pairwise_demos.jsonl), one won by each
    position so they teach the format without teaching a side. Small judges that answer the
    question instead of comparing follow the `Winner:` line far more often with them."""
    turns: list[Message] = []
    for _, row in iter_jsonl(BUILTIN_DIR / "pairwise_demos.jsonl"):
        item = PairwiseItem([{"role": "user", "content": row["instruction"]}], row["response_a"], row["response_b"])
        turns += [
            {"role": "user", "content": comparison_prompt(item, False, max_response_chars, template)},
            {"role": "assistant", "content": row["judgement"]},
        ]
    return turns


class PairwiseJudge:
    def __init__(
        self,
        generator: Generator,
        sampling: SamplingParams,
        max_response_chars: int = 2000,
        demonstrations: list[Message] | None = None,
        single_pass: bool = False,
        single_pass_alternatives: int = SINGLE_PASS_ALTERNATIVES,
    ):
        self.generator = generator
        self.single_pass = single_pass
        if single_pass:
            self.sampling = single_pass_sampling(VERDICT_LEAD_IN, sampling.seed, single_pass_alternatives)
        else:
            self.sampling = SamplingParams(**{**sampling.to_dict(), "n": 1})
        self.max_response_chars = max_response_chars
        self.demonstrations = list(demonstrations or [])

    def compare(self, items: list[PairwiseItem]) -> list[Preference]:
        requests = [
            [
                *self.demonstrations,
                {"role": "user", "content": comparison_prompt(item, swapped, self.max_response_chars)},
            ]
            for item in items
            for swapped in (False, True)
        ]
        outputs = self.generator.generate(requests, self.sampling)
        if self.single_pass:
            return [single_pass_preference(outputs[2 * i][0], outputs[2 * i + 1][0]) for i in range(len(items))]
        return [
            combine(outputs[2 * i][0], outputs[2 * i + 1][0], [item.first, item.second]) for i, item in enumerate(items)
        ]


@dataclass(frozen=True)
class PairwiseJudgeFactory:
    """The one way a pairwise judge is built (teacher comparisons, head-to-head evaluation):
    top-5 token log-probabilities are always asked for (win rates weight by the judge's
    confidence), the worked comparisons shown when judge.pairwise_fewshot is set.
    pool: a runtime ModelPool."""

    kind = "pairwise"

    pool: Any
    TOP_LOGPROBS: ClassVar[int] = 5

    @property
    def key(self) -> str:
        return content_key(template_digest("judge_pairwise"), file_digest(BUILTIN_DIR / "pairwise_demos.jsonl"))

    def __call__(self, ref, cfg: JudgeConfig, seed: int) -> PairwiseJudge:
        params = sampling_params(cfg.sampling, 1, seed, top_logprobs=self.TOP_LOGPROBS)
        demos = demonstration_turns(cfg.max_response_chars) if cfg.pairwise_fewshot else None
        generator = self.pool.generator(ref, cfg.sampling.batch_size)
        return PairwiseJudge(generator, params, cfg.max_response_chars, demos, cfg.single_pass)
