"""Chain of Hindsight (Liu et al. 2023, "Chain of Hindsight Aligns Language Models with
Feedback"), in chat form: supervised learning on answers conditioned on feedback about them,
so the model learns from the rejected answers too, as what a "bad" condition produces.

    chosen answer     trained under the plain prompt              (the positive condition)
    rejected answer   trained under the prompt plus a system line saying the answer below
                      is a poor one (one of the phrasings in prompts/hindsight.txt, sampled)

The paper puts both answers and their feedback in one sequence and asks for the "good" one at
inference time. Here the positive condition is the model's default rendering, so the aligned
model needs no special prompt: whatever the evaluation or a user sends is already the "good"
condition. The loss is the SFT loss on answer tokens only (feedback tokens carry none).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from autoalign.prompts import load_prompt
from autoalign.types import Message, Pair

TEMPLATE = "hindsight"


def negative_feedback() -> list[str]:
    return [line.strip() for line in load_prompt(TEMPLATE).template.splitlines() if line.strip()]


def with_feedback(prompt: list[Message], feedback: str) -> list[Message]:
    """The prompt under a feedback system line (joined to a system message it already has)."""
    if prompt and prompt[0]["role"] == "system":
        return [{"role": "system", "content": f"{feedback}\n\n{prompt[0]['content']}"}, *prompt[1:]]
    return [{"role": "system", "content": feedback}, *prompt]


def hindsight_conversations(pairs: list[Pair], seed: int) -> list[list[Message]]:
    """Two SFT conversations per pair: the chosen answer under the plain prompt, the rejected one
    under negative feedback; the phrasing is drawn per pair (seeded)."""
    phrasings = negative_feedback()
    rng = random.Random(seed)
    conversations = []
    for p in pairs:
        conversations.append([*p.prompt, {"role": "assistant", "content": p.chosen}])
        bad = with_feedback(p.prompt, rng.choice(phrasings))
        conversations.append([*bad, {"role": "assistant", "content": p.rejected}])
    return conversations


@dataclass(frozen=True)
class ChainOfHindsight:
    """dpo.loss: coh. Trained as SFT on hindsight_conversations (train/dpo.py dispatches on kind)."""

    reference_free = True
    kind = "hindsight"
    templates = (TEMPLATE,)
