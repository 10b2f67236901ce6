"""Probabilities of a judge's verdict, read from the token log-probabilities of its own output.

A judge ends with a verdict line ("Score: 4", "Winner: A"). When the backend returned top-k
alternatives per generated token, the alternatives at the position where the verdict label was
generated give a distribution over the labels: a judge that wrote "4" while giving "3" 40% is less
sure than one that gave "4" 99%. The expected score (or the probability of "A") is then a finer
signal than the hard label (as in AlpacaEval's probability-weighted preferences).

The position is the first label token on the judge's final non-empty line, so "Score: 5/5" reads
the numerator. Labels outside the top-k contribute nothing; the rest is renormalised.
"""

from __future__ import annotations

import math

from autoalign.generation.base import SamplingParams
from autoalign.types import Candidate

SINGLE_PASS_ALTERNATIVES = 20
"""Alternatives read after a verdict lead-in: the next token has more rivals than labels (spaces,
"**"), so the labels need room among them."""


def single_pass_sampling(lead_in: str, seed: int, alternatives: int = SINGLE_PASS_ALTERNATIVES) -> SamplingParams:
    """The request of a single-pass verdict: the reply started with the verdict line's lead-in,
    greedy, at most two tokens (the label, or a space and then the label), with the top
    alternatives at each."""
    return SamplingParams(
        n=1, temperature=0.0, max_new_tokens=2, seed=seed, top_logprobs=alternatives, assistant_prefix=lead_in
    )


def final_line_start(tokens: list[str]) -> int:
    """Index of the first token of the last non-empty line."""
    end = len(tokens)
    while end > 0 and not tokens[end - 1].strip():
        end -= 1
    start = end
    while start > 0 and "\n" not in tokens[start - 1]:
        start -= 1
    return start


def label_mass(alternatives: dict[str, float], labels: list[str]) -> dict[str, float]:
    """{label: probability} from one position's top-k {token text: log-probability}; "4" and
    " 4" both count for "4"; labels outside the top-k are absent."""
    mass: dict[str, float] = {}
    for text, logprob in alternatives.items():
        label = text.strip()
        if label in labels:
            mass[label] = mass.get(label, 0.0) + math.exp(logprob)
    return mass


def next_label_mass(output: Candidate, labels: list[str]) -> dict[str, float]:
    """{label: probability} that the judge's next token is the label, from the top-k
    alternatives of its first generated token (a single-pass verdict: the prompt ended with the
    verdict lead-in, e.g. `Score:`). Tokenizers that split digits (SmolLM2, Gemma) write "Score: 4"
    as ":", " ", "4": when the first token generated is whitespace, a label's probability is
    P(" d") + P(" ") x P("d" | " "), the second factor read at the next position."""
    rows, tokens = output.top_logprobs or [], output.tokens or []
    mass = label_mass(rows[0], labels) if rows else {}
    if len(rows) > 1 and tokens and not tokens[0].strip() and tokens[0] in rows[0]:
        after_space = math.exp(rows[0][tokens[0]])
        for label, p in label_mass(rows[1], labels).items():
            mass[label] = mass.get(label, 0.0) + after_space * p
    return mass


def label_distribution(candidate: Candidate, labels: list[str]) -> dict[str, float] | None:
    """{label: probability} at the verdict position, or None when the output carries no
    top-k log-probabilities or no label token on its final line."""
    if not candidate.tokens or not candidate.top_logprobs:
        return None
    tokens = candidate.tokens
    end = len(tokens)
    for pos in range(final_line_start(tokens), end):
        if tokens[pos].strip() in labels:
            mass = label_mass(candidate.top_logprobs[pos], labels)
            total = sum(mass.values())
            if total <= 0:
                return None
            return {label: mass.get(label, 0.0) / total for label in labels}
    return None


def expected_score(candidate: Candidate, max_score: int = 5) -> float | None:
    dist = label_distribution(candidate, [str(s) for s in range(max_score + 1)])
    if dist is None:
        return None
    return sum(int(label) * p for label, p in dist.items())
