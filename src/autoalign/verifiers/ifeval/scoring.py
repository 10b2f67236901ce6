"""IFEval accuracy: prompt-level (every instruction of a prompt followed) and instruction-level
(each instruction counted alone), each strict and loose.

Loose accepts a response if any of its variants passes: the response with its first line, its
last line, or both removed, each also with markdown emphasis (`*`) stripped. This forgives a
preamble ("Sure, here is...") or a closing remark, which strict does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from autoalign.verifiers.ifeval.checkers import CHECKERS
from autoalign.verifiers.ifeval.data import IFEvalPrompt

SCORER_VERSION = 2
"""Part of the key of every stage that scores with the checkers: raise it when a checker's verdict
changes, so finished runs re-score (2: the reference implementation's conventions)."""


def follows(response: str, instruction_id: str, kwargs: dict) -> bool:
    if not response.strip():
        return False
    return CHECKERS[instruction_id](response, **kwargs)


def loose_variants(response: str) -> list[str]:
    lines = response.split("\n")
    cut = [response, "\n".join(lines[1:]), "\n".join(lines[:-1]), "\n".join(lines[1:-1])]
    return cut + [text.replace("*", "") for text in cut]


@dataclass(frozen=True)
class PromptResult:
    key: str
    strict: list[bool]
    loose: list[bool]

    def to_dict(self) -> dict:
        return {"key": self.key, "strict": self.strict, "loose": self.loose}


def score_response(item: IFEvalPrompt, response: str) -> PromptResult:
    strict = [follows(response, i, k) for i, k in zip(item.instruction_ids, item.kwargs)]
    variants = loose_variants(response)
    loose = [any(follows(v, i, k) for v in variants) for i, k in zip(item.instruction_ids, item.kwargs)]
    return PromptResult(item.key, strict, loose)


def accuracy(results: list[PromptResult], items: list[IFEvalPrompt] | None = None) -> dict:
    """Four accuracies in [0, 1], plus instruction-level accuracy per instruction id (loose and
    strict) when the items are given."""
    if not results:
        raise ValueError("no results to score")
    instructions = sum(len(r.strict) for r in results)
    out = {
        "prompts": len(results),
        "instructions": instructions,
        "prompt_strict": sum(all(r.strict) for r in results) / len(results),
        "prompt_loose": sum(all(r.loose) for r in results) / len(results),
        "instruction_strict": sum(sum(r.strict) for r in results) / instructions,
        "instruction_loose": sum(sum(r.loose) for r in results) / instructions,
    }
    if items is not None:
        per_id: dict[str, list[int]] = {}
        for item, r in zip(items, results):
            for instruction_id, s, l in zip(item.instruction_ids, r.strict, r.loose):
                counts = per_id.setdefault(instruction_id, [0, 0, 0])
                counts[0] += 1
                counts[1] += s
                counts[2] += l
        out["by_instruction"] = {
            k: {"n": n, "strict": s / n, "loose": l / n} for k, (n, s, l) in sorted(per_id.items())
        }
    return out
