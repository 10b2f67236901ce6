"""Debate: two debaters argue for two candidate answers, a judge decides from the transcript.

Irving, Christiano and Amodei, "AI safety via debate" (2018), propose it for questions a judge
cannot check alone; Khan et al., "Debating with More Persuasive LLMs Leads to More Truthful
Answers" (ICML 2024), measure that judges reading a debate pick the true answer more often than
judges reading the answers alone. Here each round both debaters (the model, or the model and a
teacher) see the question, both answers and the transcript so far, and each argues for its own;
after r rounds the judge reads it all and ends with `Winner: A|B`. As with the pairwise judge
(judges/pairwise.py) the verdict is asked in both orders, the answers and the debaters' labels
swapped, and only verdicts that agree decide; the verdict becomes a preference pair. With
single_pass the judge's reply is started with `Winner:` and read from the next token's
probabilities (judges/pairwise.py), so every verdict parses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from autoalign.generation.base import Generator, SamplingParams
from autoalign.judges.pairwise import VERDICT_LEAD_IN, PairwiseItem, combine, single_pass_preference
from autoalign.judges.verdict_probs import single_pass_sampling
from autoalign.prompts import neutralize_tags, render
from autoalign.types import Candidate, Preference, user_message

TURN_TEMPLATE = "debate_turn"
JUDGE_TEMPLATE = "debate_judge"
NO_DEBATE_YET = "(nothing yet: this is the first round)"


@dataclass(frozen=True)
class Turn:
    round: int
    defends: str
    """"first" or "second": which answer this argument is for."""
    text: str


@dataclass(frozen=True)
class Debate:
    turns: list[Turn]
    preference: Preference
    tokens: int
    """Tokens the debaters and the judge generated."""

    def to_dict(self) -> dict:
        return {"turns": [vars(t) for t in self.turns], "preference": self.preference.to_dict(), "tokens": self.tokens}


def render_transcript(turns: list[Turn], first_label: str) -> str:
    """The transcript as one order's judge sees it: "first" is shown as first_label (A or B)."""
    if not turns:
        return NO_DEBATE_YET
    other = "B" if first_label == "A" else "A"
    lines = []
    for turn in turns:
        label = first_label if turn.defends == "first" else other
        lines.append(f"Round {turn.round}, debater for answer {label}: {neutralize_tags(turn.text.strip())}")
    return "\n\n".join(lines)


def _shown(item: PairwiseItem, swapped: bool) -> dict[str, str]:
    a, b = (item.second, item.first) if swapped else (item.first, item.second)
    return {
        "instruction": neutralize_tags(item.prompt[-1]["content"]),
        "response_a": neutralize_tags(a),
        "response_b": neutralize_tags(b),
    }


def debate(
    debaters: tuple[Generator, Generator],
    judge: Generator,
    items: list[PairwiseItem],
    rounds: int,
    params: SamplingParams,
    judge_params: SamplingParams,
    single_pass: bool = False,
) -> list[Debate]:
    """r rounds of arguments (debaters[0] defends each item's first answer, debaters[1] its
    second; each debater is shown its answer as A), then the judge's verdict in both orders."""
    one = replace(params, n=1)
    turns: list[list[Turn]] = [[] for _ in items]
    tokens = [0] * len(items)
    for r in range(1, rounds + 1):
        for side, generator in zip(("first", "second"), debaters):
            swapped = side == "second"  # the debater's own answer is always A
            prompts = [
                user_message(
                    render(
                        TURN_TEMPLATE,
                        side="A",
                        transcript=render_transcript(t, "B" if swapped else "A"),
                        **_shown(i, swapped),
                    )
                )
                for i, t in zip(items, turns)
            ]
            for k, [argument] in enumerate(generator.generate(prompts, one)):
                turns[k].append(Turn(r, side, argument.text))
                tokens[k] += argument.num_tokens
    asked = [
        user_message(
            render(JUDGE_TEMPLATE, transcript=render_transcript(t, "B" if swapped else "A"), **_shown(i, swapped))
        )
        for i, t in zip(items, turns)
        for swapped in (False, True)
    ]
    decided = _decide(judge, asked, items, judge_params, single_pass)
    return [Debate(t, preference, n + used) for t, n, (preference, used) in zip(turns, tokens, decided)]


def _decide(
    judge: Generator, asked: list, items: list[PairwiseItem], judge_params: SamplingParams, single_pass: bool
) -> list[tuple[Preference, int]]:
    """(preference, verdict tokens) per item from its two judge prompts (straight, swapped)."""
    seed = judge_params.seed
    params = single_pass_sampling(VERDICT_LEAD_IN, seed) if single_pass else replace(judge_params, n=1)
    verdicts: list[Candidate] = [c for [c] in judge.generate(asked, params)]
    out = []
    for k, item in enumerate(items):
        straight, swapped = verdicts[2 * k], verdicts[2 * k + 1]
        # A verdict line copied from an answer is not trusted; the debaters may say who should win.
        if single_pass:
            preference = single_pass_preference(straight, swapped)
        else:
            preference = combine(straight, swapped, [item.first, item.second])
        out.append((preference, straight.num_tokens + swapped.num_tokens))
    return out


def judged_without_debate(
    judge: Generator, items: list[PairwiseItem], judge_params: SamplingParams, single_pass: bool = False
) -> list[Preference]:
    """The same judge prompt with no debate (the transcript says so): the baseline debate is
    measured against, differing only in the arguments shown."""
    asked = [
        user_message(render(JUDGE_TEMPLATE, transcript="(no debate was held)", **_shown(i, swapped)))
        for i in items
        for swapped in (False, True)
    ]
    return [preference for preference, _ in _decide(judge, asked, items, judge_params, single_pass)]
