"""What a preference loss trains on, built from the loops' pairs (or a file of unpaired rows):
one Group of tokenized answers per training example, in the shape the loss's kind reads.

    pairs     (chosen, rejected)                          dpo, cdpo, robust, ipo, slic, simpo, orpo
    ranking   every judged answer to the prompt, best first, with its judge score   rrhf, pro
    unpaired  (answer, another prompt's answer for the KL estimate), desirable or not   kto
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from autoalign.io import DataError, iter_rows, require_field
from autoalign.train.data import Encoded, encode_chat
from autoalign.types import Message, Pair, user_message


@dataclass(frozen=True)
class Group:
    sequences: tuple[Encoded, ...]
    rewards: tuple[float, ...] = ()
    """ranking: the judge's score of each sequence (higher is better)."""
    desirable: bool | None = None
    """unpaired: whether sequences[0] is a desirable answer (sequences[1] is its KL partner)."""
    weight: float = 1.0
    example_id: str = ""
    """What an error names this group by (the pair's prompt id)."""

    @property
    def width(self) -> int:
        """The group's sequences share a batch: its padded width is the longest's."""
        return max(len(e.input_ids) for e in self.sequences)

    @property
    def truncated(self) -> bool:
        return any(e.truncated for e in self.sequences)


@dataclass(frozen=True)
class Labelled:
    """One answer labelled desirable or not (KTO's data; TRL's unpaired {prompt, completion, label} rows)."""

    prompt_id: str
    prompt: list[Message]
    answer: str
    desirable: bool
    weight: float = 1.0


def pair_groups(tokenizer: PreTrainedTokenizerBase, pairs: list[Pair], max_length: int) -> list[Group]:
    return [
        Group(
            (
                encode_chat(tokenizer, p.prompt, p.chosen, max_length),
                encode_chat(tokenizer, p.prompt, p.rejected, max_length),
            ),
            weight=p.weight,
            example_id=p.prompt_id,
        )
        for p in pairs
    ]


def ranking_groups(tokenizer: PreTrainedTokenizerBase, pairs: list[Pair], max_length: int) -> list[Group]:
    """Each pair's whole ranking (Pair.ranking: every judged answer, best first)."""
    groups = []
    for p in pairs:
        answers, scores = p.ranking
        encoded = tuple(encode_chat(tokenizer, p.prompt, a, max_length) for a in answers)
        groups.append(Group(encoded, rewards=tuple(scores), weight=p.weight, example_id=p.prompt_id))
    return groups


def unpaired_from_pairs(pairs: list[Pair]) -> list[Labelled]:
    """A pair's chosen answer is desirable and its rejected one undesirable (KTO on paired data)."""
    return [
        Labelled(p.prompt_id, p.prompt, answer, desirable, p.weight)
        for p in pairs
        for answer, desirable in ((p.chosen, True), (p.rejected, False))
    ]


def kl_partners(examples: list[Labelled], seed: int) -> list[int]:
    """For each answer, the index of an answer to another prompt (KTO's mismatched pair for its
    KL estimate): the next one with a different prompt in a seeded shuffle, so every answer also
    serves once as someone's partner where the prompts allow."""
    if len({str(e.prompt) for e in examples}) < 2:
        raise ValueError(
            "KTO needs answers to at least two different prompts (its KL estimate pairs answers across them)"
        )
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    partners = [0] * len(examples)
    for position, i in enumerate(order):
        for step in range(1, len(order)):
            j = order[(position + step) % len(order)]
            if examples[j].prompt != examples[i].prompt:
                partners[i] = j
                break
    return partners


def unpaired_groups(
    tokenizer: PreTrainedTokenizerBase, examples: list[Labelled], max_length: int, seed: int
) -> list[Group]:
    partners = kl_partners(examples, seed)
    return [
        Group(
            (
                encode_chat(tokenizer, e.prompt, e.answer, max_length),
                encode_chat(tokenizer, e.prompt, examples[j].answer, max_length),
            ),
            desirable=e.desirable,
            weight=e.weight,
            example_id=f"{e.prompt_id} ({'desirable' if e.desirable else 'undesirable'})",
        )
        for e, j in zip(examples, partners)
    ]


def load_unpaired(path) -> list[Labelled]:
    """Unpaired rows {prompt, completion, label} (TRL's KTO format: prompt a string or a message
    list, completion a string or [{"role": "assistant", ...}], label a boolean)."""
    path, examples = Path(path), []
    for line, row in iter_rows(path):
        prompt = require_field(path, line, row, "prompt", (str, list))
        completion = require_field(path, line, row, "completion", (str, list))
        label = require_field(path, line, row, "label", bool)
        if isinstance(completion, list):
            if not completion or not isinstance(completion[-1], dict) or "content" not in completion[-1]:
                raise DataError(f"{path}:{line}: field 'completion' must be a string or a list of messages")
            completion = completion[-1]["content"]
        messages = user_message(prompt) if isinstance(prompt, str) else prompt
        examples.append(Labelled(f"{path.name}:{line}", messages, completion, label))
    if not examples:
        raise DataError(f"{path}: no rows")
    return examples
