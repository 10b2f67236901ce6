"""Verifiable constraints: every IFEval instruction id with a sampler for its arguments, several
phrasings of our own (prompts/constraints.yaml), and which ids cannot be asked for together.

A constraint is checked by the IFEval checker of its id (verifiers/ifeval), so a prompt built
from a task plus constraints is an IFEval-format row (prompt, instruction_id_list, kwargs) that
the existing loaders, checkers and verifier judge take as they are.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from string import Template
from typing import Any, Callable

import yaml

from autoalign.prompts import PROMPTS_DIR
from autoalign.verifiers.ifeval.checkers import CHECKERS

Kwargs = dict[str, Any]


@cache
def phrasebook() -> dict:
    return yaml.safe_load((PROMPTS_DIR / "constraints.yaml").read_text(encoding="utf-8"))


def _vocab(name: str):
    return phrasebook()["vocabulary"][name]


def _relation(rng: random.Random) -> str:
    return rng.choice(["at least", "less than"])


def _count(rng: random.Random, low: int, high: int, relation: str) -> int:
    # "less than 1" cannot be met by a non-empty answer; start "less than" at 2.
    return rng.randint(max(low, 2) if relation == "less than" else low, high)


def _sample_words(rng: random.Random, task: str) -> Kwargs:
    relation = _relation(rng)
    # Lengths a short answer can meet either way: "less than" 40-150 words, "at least" 20-120.
    num = rng.randint(40, 150) if relation == "less than" else rng.randint(20, 120)
    return {"num_words": num, "relation": relation}


def _sample_sentences(rng: random.Random, task: str) -> Kwargs:
    relation = _relation(rng)
    return {"num_sentences": _count(rng, 2, 8, relation), "relation": relation}


def _sample_capital_words(rng: random.Random, task: str) -> Kwargs:
    relation = _relation(rng)
    return {"capital_frequency": _count(rng, 1, 8, relation), "capital_relation": relation}


def _sample_keyword_frequency(rng: random.Random, task: str) -> Kwargs:
    relation = _relation(rng)
    return {"keyword": rng.choice(_vocab("keywords")), "frequency": _count(rng, 1, 4, relation), "relation": relation}


def _sample_letters(rng: random.Random, task: str) -> Kwargs:
    relation = _relation(rng)
    return {"letter": rng.choice(_vocab("letters")), "let_frequency": rng.randint(3, 25), "let_relation": relation}


def _sample_nth_paragraph(rng: random.Random, task: str) -> Kwargs:
    paragraphs = rng.randint(2, 4)
    return {
        "num_paragraphs": paragraphs,
        "nth_paragraph": rng.randint(1, paragraphs),
        "first_word": rng.choice(_vocab("first_words")),
    }


SAMPLERS: dict[str, Callable[[random.Random, str], Kwargs]] = {
    "change_case:capital_word_frequency": _sample_capital_words,
    "change_case:english_capital": lambda rng, task: {},
    "change_case:english_lowercase": lambda rng, task: {},
    "combination:repeat_prompt": lambda rng, task: {"prompt_to_repeat": task},
    "combination:two_responses": lambda rng, task: {},
    "detectable_content:number_placeholders": lambda rng, task: {"num_placeholders": rng.randint(1, 4)},
    "detectable_content:postscript": lambda rng, task: {"postscript_marker": rng.choice(["P.S.", "P.P.S"])},
    "detectable_format:constrained_response": lambda rng, task: {},
    "detectable_format:json_format": lambda rng, task: {},
    "detectable_format:multiple_sections": lambda rng, task: {
        "section_spliter": rng.choice(_vocab("section_splitters")),
        "num_sections": rng.randint(2, 4),
    },
    "detectable_format:number_bullet_lists": lambda rng, task: {"num_bullets": rng.randint(2, 6)},
    "detectable_format:number_highlighted_sections": lambda rng, task: {"num_highlights": rng.randint(1, 4)},
    "detectable_format:title": lambda rng, task: {},
    "keywords:existence": lambda rng, task: {"keywords": rng.sample(_vocab("keywords"), rng.randint(1, 3))},
    "keywords:forbidden_words": lambda rng, task: {
        "forbidden_words": rng.sample(_vocab("keywords"), rng.randint(1, 3))
    },
    "keywords:frequency": _sample_keyword_frequency,
    "keywords:letter_frequency": _sample_letters,
    "language:response_language": lambda rng, task: {"language": rng.choice(sorted(_vocab("languages")))},
    "length_constraints:nth_paragraph_first_word": _sample_nth_paragraph,
    "length_constraints:number_paragraphs": lambda rng, task: {"num_paragraphs": rng.randint(2, 5)},
    "length_constraints:number_sentences": _sample_sentences,
    "length_constraints:number_words": _sample_words,
    "punctuation:no_comma": lambda rng, task: {},
    "startend:end_checker": lambda rng, task: {"end_phrase": rng.choice(_vocab("end_phrases"))},
    "startend:quotation": lambda rng, task: {},
}

# Ids that cannot hold together (or make each other meaningless), as groups: no two from a group.
_WHOLE_SHAPE = {
    "detectable_format:json_format",
    "combination:two_responses",
    "detectable_format:constrained_response",
    "startend:quotation",
    "combination:repeat_prompt",
}
_LAYOUT = {
    "detectable_format:multiple_sections",
    "length_constraints:number_paragraphs",
    "length_constraints:nth_paragraph_first_word",
    "detectable_format:number_bullet_lists",
}
CONFLICTS: list[set[str]] = [
    {"change_case:english_capital", "change_case:english_lowercase", "change_case:capital_word_frequency"},
    {"language:response_language", "change_case:english_capital", "change_case:english_lowercase"},
    {"language:response_language", "keywords:existence", "keywords:frequency", "keywords:letter_frequency"},
    {"length_constraints:number_words", "length_constraints:number_sentences"},
    {
        "detectable_format:json_format",
        "detectable_format:title",
        "detectable_content:postscript",
        "startend:end_checker",
    },
    _WHOLE_SHAPE,
    *({shape, layout} for shape in _WHOLE_SHAPE for layout in _LAYOUT),
    _LAYOUT,
]


def conflicts(a: str, b: str) -> bool:
    return a == b or any(a in group and b in group for group in CONFLICTS)


@dataclass(frozen=True)
class Constraint:
    instruction_id: str
    kwargs: Kwargs
    text: str
    """The phrasing the prompt shows."""


def _fields(kwargs: Kwargs) -> dict[str, str]:
    """The arguments as the phrasings show them (lists quoted and joined, relation in words)."""
    fields = {k: ", ".join(f'"{w}"' for w in v) if isinstance(v, list) else str(v) for k, v in kwargs.items()}
    if "language" in kwargs:
        fields["language_name"] = _vocab("languages")[kwargs["language"]]
    fields["relation_atleast"] = "at least"
    return fields


def phrase(instruction_id: str, kwargs: Kwargs, rng: random.Random) -> str:
    relation = next((v for k, v in kwargs.items() if k.endswith("relation")), None)
    fields = _fields(kwargs)
    if relation is not None:
        fields["relation"] = rng.choice(phrasebook()["relation_words"][relation])
    return Template(rng.choice(phrasebook()["phrasings"][instruction_id])).substitute(fields)


def sample_constraints(
    rng: random.Random,
    task: str,
    count: int,
    allowed: list[str] | None = None,
    weights: dict[str, float] | None = None,
) -> list[Constraint]:
    """`count` constraints of distinct, compatible ids (drawn from `allowed`, default all 25, in
    proportion to `weights` when given: the attacker's), each with sampled arguments and a
    phrasing. Fewer when no compatible id is left."""
    pool = sorted(allowed if allowed is not None else SAMPLERS)
    chosen: list[Constraint] = []
    while len(chosen) < count:
        options = [i for i in pool if not any(conflicts(i, c.instruction_id) for c in chosen)]
        if not options:
            break
        instruction_id = rng.choices(options, [weights[i] for i in options])[0] if weights else rng.choice(options)
        kwargs = SAMPLERS[instruction_id](rng, task)
        chosen.append(Constraint(instruction_id, kwargs, phrase(instruction_id, kwargs, rng)))
    return chosen


assert set(SAMPLERS) == set(CHECKERS), "every checker needs a sampler"
