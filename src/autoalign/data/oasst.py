"""IFT and EFT seed data from an OpenAssistant-style message-tree export (JSONL, one tree per
line: {"prompt": {"role": "prompter", "text", "lang", "replies": [...]}}, where each assistant
reply carries "rank", 0 = best, as ranked by human annotators).

IFT: for every English user turn, the conversation so far plus its best-ranked English reply.
EFT: for every English user turn with at least two ranked English replies, one evaluation
example per reply, scored so that rank order is respected: rank r of k gets
5 - round(4 r / (k - 1)), i.e. 5 for the best and 1 for the worst, strictly decreasing for
k <= 5 and never increasing. The judgement text names the rubric points that score implies
(from a template file), since the export has rankings, not written rubric judgements.
"""

from __future__ import annotations

from pathlib import Path

from autoalign.data import EFTExample
from autoalign.io import DataError, iter_jsonl
from autoalign.prompts import load_prompt
from autoalign.types import Message

ROLE = {"prompter": "user", "assistant": "assistant"}


def rank_to_score(rank: int, count: int) -> int:
    if count < 2:
        raise ValueError("a score from rank needs at least two ranked replies")
    return 5 - round(4 * rank / (count - 1))


def rank_judgement(score: int) -> str:
    """Rubric-style justification for a score, from prompts/eft_rank_judgements.txt."""
    lines = load_prompt("eft_rank_judgements").template.splitlines()
    by_score = dict(line.split("|", 1) for line in lines if "|" in line)
    return f"{by_score[str(score)].strip()}\nScore: {score}"


def _check_node(path: Path, line: int, node: object, where: str) -> dict:
    if not isinstance(node, dict):
        raise DataError(f"{path}:{line}: field '{where}' must be an object")
    for name, kind in (("text", str), ("role", str)):
        if not isinstance(node.get(name), kind):
            raise DataError(f"{path}:{line}: field '{where}.{name}' missing or not a {kind.__name__}")
    if node["role"] not in ROLE:
        raise DataError(f"{path}:{line}: field '{where}.role' must be 'prompter' or 'assistant', got {node['role']!r}")
    replies = node.get("replies", [])
    if not isinstance(replies, list):
        raise DataError(f"{path}:{line}: field '{where}.replies' must be a list")
    return node


def load_oasst(path: str | Path, lang: str = "en") -> tuple[list[list[Message]], list[EFTExample]]:
    path = Path(path)
    ift: list[list[Message]] = []
    eft: list[EFTExample] = []

    def visit(node: dict, history: list[Message], line: int, where: str) -> None:
        node = _check_node(path, line, node, where)
        turn = [*history, {"role": ROLE[node["role"]], "content": node["text"]}]
        replies = [_check_node(path, line, r, f"{where}.replies[{i}]") for i, r in enumerate(node.get("replies", []))]
        if node["role"] == "prompter" and node.get("lang") == lang:
            ranked = sorted(
                (
                    r
                    for r in replies
                    if r["role"] == "assistant" and r.get("lang") == lang and isinstance(r.get("rank"), int)
                ),
                key=lambda r: r["rank"],
            )
            if ranked:
                ift.append([*turn, {"role": "assistant", "content": ranked[0]["text"]}])
            if len(ranked) >= 2 and len(turn) == 1:  # EFT from first turns: the rubric judges one question
                for position, reply in enumerate(ranked):
                    score = rank_to_score(position, len(ranked))
                    eft.append(EFTExample(node["text"], reply["text"], rank_judgement(score), score))
        for i, reply in enumerate(replies):
            visit(reply, turn, line, f"{where}.replies[{i}]")

    for line, row in iter_jsonl(path):
        if "prompt" not in row:
            raise DataError(f"{path}:{line}: missing field 'prompt' (the root message of the tree)")
        visit(row["prompt"], [], line, "prompt")
    return ift, eft
