"""The debate stage (inference/debate.py over two of a loop's sampled answers per prompt) and the
pairs its verdicts give."""

from __future__ import annotations

from collections import Counter

from autoalign.config import DebateConfig
from autoalign.generation.base import sampling_params
from autoalign.inference.debate import JUDGE_TEMPLATE, TURN_TEMPLATE, debate
from autoalign.judges.pairwise import PairwiseItem
from autoalign.runtime.pool import AnyModelRef
from autoalign.stages.common import StageContext, run_items
from autoalign.stages.pairs import pairs_stage
from autoalign.types import Candidate, Pair, Prompt


def two_answers(candidates: list[Candidate]) -> tuple[Candidate, Candidate] | None:
    """The first two finished, non-empty, different answers, or None."""
    usable = [c for c in candidates if c.finish_reason == "stop" and c.text.strip()]
    for k, other in enumerate(usable[1:], start=1):
        if " ".join(other.text.split()) != " ".join(usable[0].text.split()):
            return usable[0], usable[k]
    return None


def debate_answers(
    at: StageContext,
    debaters: tuple[AnyModelRef, AnyModelRef],
    judge: AnyModelRef,
    prompts: list[Prompt],
    pairs: dict[str, tuple[Candidate, Candidate]],
    cfg: DebateConfig,
) -> dict[str, dict]:
    """iter_t/debates: {prompt id: {"first", "second", "turns", "preference", "tokens"}}."""
    todo = [p for p in prompts if p.id in pairs]
    by_id = {p.id: p for p in todo}
    inputs = [debaters[0].key, debaters[1].key, judge.key]
    inputs += [p.id + p.text + pairs[p.id][0].text + pairs[p.id][1].text for p in todo]
    config = {"cfg": cfg.key(), "seed": at.seed}
    stage = at.stage("debates", config, inputs, (TURN_TEMPLATE, JUDGE_TEMPLATE), kind="debates")
    params = sampling_params(cfg.sampling, n=1, seed=at.seed)
    judge_params = sampling_params(cfg.judge_sampling, n=1, seed=at.seed)

    def process(ids: list[str]) -> list[dict]:
        batch = cfg.sampling.batch_size
        generators = tuple(at.pool.generator(d, batch) for d in debaters)
        items = [PairwiseItem(by_id[i].messages, pairs[i][0].text, pairs[i][1].text) for i in ids]
        held = debate(
            generators, at.pool.generator(judge, batch), items, cfg.rounds, params, judge_params, cfg.single_pass
        )
        return [{"id": i, "first": it.first, "second": it.second, **d.to_dict()} for i, it, d in zip(ids, items, held)]

    def summarize(rows: list[dict], seconds: float) -> dict:
        winners = Counter(r["preference"]["winner"] for r in rows)
        return {
            "debates": len(rows),
            "rounds": cfg.rounds,
            "judge": judge.label,
            "decided": winners["first"] + winners["second"],
            "ties": winners["tie"],
            "unparsed": winners[None],
            "mean_tokens": sum(r["tokens"] for r in rows) / max(1, len(rows)),
        }

    chunk = cfg.sampling.batch_size
    rows = run_items(
        at, stage, todo, process, summarize, lambda r: None, chunk_size=chunk, model=judge, concurrent=False
    )
    return {r["id"]: r for r in rows}


def debate_pairs(at: StageContext, prompts: list[Prompt], debates: dict[str, dict], source: str) -> list[Pair]:
    """Chosen = the answer the judge picked after the debate; ties and unparsed verdicts give none."""

    def build():
        pairs, dropped = [], Counter()
        for p in prompts:
            row = debates.get(p.id)
            winner = row["preference"]["winner"] if row else None
            if row is None:
                dropped["no_two_answers"] += 1
            elif winner in ("first", "second"):
                chosen, rejected = (row["first"], row["second"]) if winner == "first" else (row["second"], row["first"])
                pairs.append(Pair(p.id, p.messages, chosen, rejected, source=source))
            else:
                dropped["tie" if winner == "tie" else "unparsed"] += 1
        return pairs, dropped

    inputs = [p.id + str(debates.get(p.id, {}).get("preference")) for p in prompts]
    return pairs_stage(at, source, build, config={}, inputs=inputs, prompts=len(prompts))
