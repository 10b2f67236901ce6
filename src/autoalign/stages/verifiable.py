"""Stages of the verifiable-instruction feedback: synthesised prompts, the programmatic critic's
verdict on every answer, and the two kinds of pairs it yields (best vs worst sample; repaired >
original)."""

from __future__ import annotations

import random
import threading
from collections import Counter

from autoalign.config import VerifiableConfig
from autoalign.pairs import JudgedCandidates, best_vs_worst
from autoalign.generation.base import sampling_params
from autoalign.prompts import neutralize_tags, render
from autoalign.stages.common import StageContext, first_error, run_items
from autoalign.stages.pairs import pairs_stage
from autoalign.store import content_key
from autoalign.synth.constraints import SAMPLERS, phrase
from autoalign.synth.attacker import WeaknessMap
from autoalign.synth.verifiable import EvaluationFilter, Task, synthesize
from autoalign.types import Candidate, Critique, Finding, Judgment, Pair, Prompt, user_message
from autoalign.verdicts import MAX_SCORE
from autoalign.verifiers.guard import quality_problem
from autoalign.verifiers.ifeval import SCORER_VERSION, IFEvalPrompt, score_response
from autoalign.verifiers.ifeval.evidence import evidence
from autoalign.verifiers.ifeval.repair import complete_prefix, repair_response
from autoalign.verifiers.ifeval.scoring import follows


def verifiable_prompts(
    at: StageContext,
    cfg: VerifiableConfig,
    tasks: list[Task],
    evaluation_texts: list[str],
    weakness: WeaknessMap | None = None,
) -> tuple[list[IFEvalPrompt], dict[str, str]]:
    """This iteration's synthesised prompts (different in each iteration), none of the held-out
    constraint types, none too similar to an evaluation prompt; with a weakness map, constraint
    types are drawn where the learner failed (synth/attacker.py). Returns (rows, task kind by id,
    base task by id: the request without its constraints)."""
    unread = ("strict", "min_margin", "refine_samples", "repairs_per_prompt", "off_task_check", "greedy_candidate")
    config = {"cfg": cfg.key_without(*unread), "seed": at.seed}
    attack = sorted((cell, sorted(c.items())) for cell, c in weakness.counts.items()) if weakness else None
    inputs = [content_key(tasks), content_key(sorted(evaluation_texts)), content_key(attack)]
    stage = at.stage("verifiable_prompts", config, inputs, kind="verifiable_prompts")
    allowed = sorted(set(SAMPLERS) - set(cfg.held_out))

    def weights_for(rng, kind: str) -> dict[str, float] | None:
        return weakness.thompson_weights(rng, kind, allowed, cfg.explore) if weakness else None

    def build() -> tuple[list[dict], dict]:
        evaluation = EvaluationFilter(evaluation_texts, cfg.similarity_threshold)
        seed = at.seed * 1000 + at.t
        made = synthesize(
            tasks, cfg.num_prompts, seed, evaluation, allowed, cfg.max_constraints, f"v{at.t}", weights_for
        )
        rows = [
            {"id": r.key, "prompt": r.prompt, "instruction_id_list": r.instruction_ids, "kwargs": r.kwargs}
            | {"task_kind": kind, "task": task}
            for r, kind, task in zip(made.rows, made.kinds, made.tasks)
        ]
        constraints = Counter(i for r in made.rows for i in r.instruction_ids)
        metrics = {
            "prompts": len(rows),
            "dropped": dict(made.dropped),
            "constraints": dict(sorted(constraints.items())),
            "attacker": weakness is not None,
        }
        return rows, metrics

    rows = stage.ensure(build).rows()
    items = [IFEvalPrompt(r["id"], r["prompt"], r["instruction_id_list"], r["kwargs"]) for r in rows]
    tasks = {r["id"]: r["task"] for r in rows if "task" in r}  # runs before the off-task check stored none
    return items, {r["id"]: r["task_kind"] for r in rows}, tasks


CRITIC_VERSION = 3
"""Part of the critiques stage's key: raise it when the critic's verdicts or evidence change."""
OFF_TASK_VERSION = 2
"""The same for the guard's off-task check (part of the key only where it is on)."""


def as_prompts(items: list[IFEvalPrompt]) -> list[Prompt]:
    return [Prompt(id=item.key, messages=user_message(item.prompt), source="verifiable") for item in items]


def critique(item: IFEvalPrompt, answer: Candidate, strict: bool, task: str | None = None) -> Critique:
    """The programmatic critic: per constraint, followed or not, with a sentence of evidence
    ("found 3 commas; commas are not allowed"); score = 5 x the share followed, or 0 when the
    quality guard finds the answer degenerate (empty, truncated, looping; given the base task,
    off-task), whatever the constraints say."""
    if "language:response_language" in item.instruction_ids:
        task = None  # an answer in another language shares no words with the English task
    result = score_response(item, answer.text)
    followed = result.strict if strict else result.loose
    findings = [
        Finding(i, ok, "followed" if ok else evidence(i, k, answer.text))
        for i, k, ok in zip(item.instruction_ids, item.kwargs, followed)
    ]
    problem = quality_problem(answer.text, answer.finish_reason, task)
    if problem:
        findings.append(Finding("quality", False, problem))
    failed = [f.constraint for f in findings if not f.satisfied]
    text = "All constraints are met." if not failed else "Not met: " + ", ".join(failed) + "."
    score = 0.0 if problem else MAX_SCORE * sum(followed) / len(followed)
    return Critique(text=text, score=score, findings=findings, confidence=1.0)


def critique_candidates(
    at: StageContext,
    items: list[IFEvalPrompt],
    candidates: dict[str, list[Candidate]],
    strict: bool,
    kinds: dict[str, str] | None = None,
    tasks: dict[str, str] | None = None,
) -> dict[str, list[Critique]]:
    """Every answer critiqued (tasks: each prompt's base task, for the guard's off-task check);
    the metrics carry the attack success rate per (constraint type, task kind): the share of
    judged answers that failed it (degenerate answers are unknown)."""
    tasks = tasks or {}
    inputs = [
        f"{item.key}{item.prompt}{item.instruction_ids}{item.kwargs}{tasks.get(item.key, '')}"
        + str([(c.text, c.finish_reason) for c in candidates[item.key]])
        for item in items
    ]
    config = {"strict": strict, "scorer": SCORER_VERSION, "critic": CRITIC_VERSION}
    stage = at.stage("critiques", config | ({"off_task": OFF_TASK_VERSION} if tasks else {}), inputs, kind="critiques")

    def build() -> tuple[list[dict], dict]:
        rows = [
            {
                "id": item.key,
                "critiques": [critique(item, c, strict, tasks.get(item.key)).to_dict() for c in candidates[item.key]],
            }
            for item in items
        ]
        everything = [Critique.from_dict(c) for r in rows for c in r["critiques"]]
        problems = Counter(f.evidence for c in everything for f in c.findings if f.constraint == "quality")
        per_type: dict[str, list[bool]] = {}
        for c in everything:
            for f in c.findings:
                if f.constraint != "quality":
                    per_type.setdefault(f.constraint, []).append(bool(f.satisfied))
        metrics = {
            "answers": len(everything),
            "mean_score": sum(c.score for c in everything) / max(1, len(everything)),
            "all_met": sum(c.score == MAX_SCORE for c in everything),
            "degenerate": dict(problems),
            "pass_rate": {k: sum(v) / len(v) for k, v in sorted(per_type.items())},
            "attack_success": WeaknessMap.from_rows(
                [{"id": item.key, "task_kind": (kinds or {}).get(item.key, "unknown")} for item in items], rows
            ).attack_success(),
        }
        return rows, metrics

    return {r["id"]: [Critique.from_dict(c) for c in r["critiques"]] for r in stage.ensure(build).rows()}


def _judged(items, candidates, critiques) -> list[JudgedCandidates]:
    as_judgment = lambda c: Judgment(score=c.score, raw=[c.text], parsed=c.score is not None)
    prompts = as_prompts(items)
    return [JudgedCandidates(p, candidates[p.id], [as_judgment(c) for c in critiques[p.id]]) for p in prompts]


def sampled_pairs(
    at: StageContext, items, candidates, critiques, *, min_margin: float, source: str = "verified_samples"
) -> list[Pair]:
    """Rejection sampling: the critic's best answer vs its worst, per prompt."""
    groups = _judged(items, candidates, critiques)
    inputs = [g.prompt.id + str([c.text for c in g.candidates]) + str([j.score for j in g.judgments]) for g in groups]
    build = lambda: best_vs_worst(groups, min_margin, source)
    config = {"min_margin": min_margin}
    return pairs_stage(at, source, build, config=config, inputs=inputs, prompts=len(groups))


def quality_problems(crit: Critique) -> set[str]:
    """What the critic's quality guard found wrong with the answer ("truncated", ...), if anything."""
    return {f.evidence for f in crit.findings if f.constraint == "quality"}


def drafts_to_fix(critiques: list[Critique]) -> list[int]:
    """Indexes of a prompt's answers that fail a constraint but are not degenerate (the critic found
    no quality problem), lowest score first: what repair and refinement work on."""
    fixable = [k for k, c in enumerate(critiques) if c.score < MAX_SCORE and not quality_problems(c)]
    return sorted(fixable, key=lambda k: critiques[k].score)


def fixed_answer(item: IFEvalPrompt, answer: Candidate, crit: Critique) -> str | None:
    """The answer made to pass every constraint and the guard by program, or None: a cut-off
    answer is first trimmed to where it could have stopped (complete_prefix), then every failing
    constraint is repaired (repair_response). Other degenerate answers are not fixed."""
    problems = quality_problems(crit)
    text = answer.text
    if problems == {"truncated"}:
        text = complete_prefix(text)
    elif problems:
        return None
    if text is not None and not all(follows(text, i, k) for i, k in zip(item.instruction_ids, item.kwargs)):
        text = repair_response(item, text)
    return text if text is not None and not quality_problem(text) else None


def repair_pairs(
    at: StageContext, items, candidates, critiques, *, per_prompt: int = 1, source: str = "verified_repair"
) -> list[Pair]:
    """Fixed > original (fixed_answer), for up to per_prompt of a prompt's failing answers: the
    lowest-scoring first, answers that are not degenerate before cut-off ones."""
    prompts = {p.id: p for p in as_prompts(items)}
    inputs = [item.key + str([(c.text, c.finish_reason) for c in candidates[item.key]]) for item in items]

    def order(crits: list[Critique]) -> list[int]:
        cut_off = [k for k, c in enumerate(crits) if quality_problems(c) == {"truncated"}]
        return drafts_to_fix(crits) + cut_off

    def build() -> tuple[list[Pair], Counter]:
        pairs, dropped = [], Counter()
        for item in items:
            drafts = order(critiques[item.key])
            if not drafts:
                dropped["all_met_or_degenerate"] += 1
                continue
            made = 0
            for k in drafts:
                if made == per_prompt:
                    break
                answer, crit = candidates[item.key][k], critiques[item.key][k]
                fixed = fixed_answer(item, answer, crit)
                if fixed is not None:
                    pairs.append(
                        Pair(item.key, prompts[item.key].messages, fixed, answer.text, MAX_SCORE, crit.score, source)
                    )
                    made += 1
            if not made:
                dropped["no_repair"] += 1
        return pairs, dropped

    config = {"scorer": SCORER_VERSION, "per_prompt": per_prompt, "trim": 1}
    return pairs_stage(at, source, build, config=config, inputs=inputs, prompts=len(items))


def _failures(item: IFEvalPrompt, crit: Critique) -> str:
    """The failed constraints, each described in words (a phrasing of its own), one per line."""
    rng = random.Random(0)
    kwargs_of = dict(zip(item.instruction_ids, item.kwargs))
    lines = [
        f"- {phrase(f.constraint, kwargs_of[f.constraint], rng)} (the draft: {f.evidence})"
        for f in crit.findings
        if f.satisfied is False and f.constraint in kwargs_of
    ]
    return "\n".join(lines)


def refine_candidates(
    at: StageContext,
    model,
    items: list[IFEvalPrompt],
    candidates,
    critiques,
    cfg: VerifiableConfig,
    sampling,
    tasks: dict[str, str] | None = None,
) -> dict[str, dict]:
    """The learner rewrites its lowest-scoring answer that is not degenerate, given the critic's
    list of unmet constraints (prompts/refine.txt), refine_samples times; each rewrite is
    critiqued (tasks: as in critique_candidates). {prompt id: {"original": index, "refinements":
    [candidate], "critiques": [critique]}}."""
    tasks = tasks or {}
    drafts = {item.key: fixable[0] for item in items if (fixable := drafts_to_fix(critiques[item.key]))}
    todo = [i for i in items if i.key in drafts]
    by_key = {i.key: i for i in todo}
    inputs = [model.key] + [f"{i.key}{candidates[i.key][drafts[i.key]].text}" for i in todo]
    config = {"n": cfg.refine_samples, "sampling": sampling.key(), "strict": cfg.strict, "seed": at.seed}
    config |= {"off_task": OFF_TASK_VERSION, "tasks": content_key(sorted(tasks.items()))} if tasks else {}
    stage = at.stage("refinements", config, inputs, ("refine",), kind="refinements")

    def request(key: str) -> list[dict]:
        item, draft = by_key[key], candidates[key][drafts[key]]
        failures = _failures(item, critiques[key][drafts[key]])
        text = render("refine", instruction=item.prompt, draft=neutralize_tags(draft.text), failures=failures)
        return user_message(text)

    params = sampling_params(sampling, n=cfg.refine_samples, seed=at.seed)

    checking = threading.Lock()  # chunks may generate in threads; the checkers run one at a time

    def process(ids: list[str]) -> list[dict]:
        outputs = at.pool.generator(model, sampling.batch_size).generate([request(i) for i in ids], params)
        with checking:
            return [
                {
                    "id": i,
                    "original": drafts[i],
                    "refinements": [c.to_dict() for c in cands],
                    "critiques": [critique(by_key[i], c, cfg.strict, tasks.get(i)).to_dict() for c in cands],
                }
                for i, cands in zip(ids, outputs)
            ]

    def summarize(rows: list[dict], seconds: float) -> dict:
        scores = [c["score"] for r in rows for c in r["critiques"]]
        accepted = sum(any(c["score"] == MAX_SCORE for c in r["critiques"]) for r in rows)
        return {
            "drafts": len(rows),
            "rewrites": len(scores),
            "accepted_prompts": accepted,
            "mean_score": sum(scores) / max(1, len(scores)),
        }

    error_of = lambda row: first_error(c.get("error") for c in row["refinements"])
    per_item, chunk = cfg.refine_samples, sampling.batch_size
    rows = run_items(
        at,
        stage,
        as_prompts(todo),
        process,
        summarize,
        error_of,
        chunk_size=chunk,
        model=model,
        requests_per_item=per_item,
    )
    return {r["id"]: r for r in rows}


def refine_pairs(
    at: StageContext, items, candidates, critiques, refinements, *, source: str = "verified_refine"
) -> list[Pair]:
    """Refined > original, when a rewrite meets every constraint and passes the guard."""
    prompts = {p.id: p for p in as_prompts(items)}
    inputs = [
        k + str(r["critiques"]) + str([c["text"] for c in r["refinements"]]) for k, r in sorted(refinements.items())
    ]

    def build() -> tuple[list[Pair], Counter]:
        pairs, dropped = [], Counter()
        for item in items:
            row = refinements.get(item.key)
            if row is None:
                dropped["no_draft"] += 1
                continue
            accepted = [
                Candidate.from_dict(c)
                for c, crit in zip(row["refinements"], row["critiques"])
                if crit["score"] == MAX_SCORE
            ]
            if not accepted:
                dropped["no_rewrite_verified"] += 1
                continue
            original, score = candidates[item.key][row["original"]], critiques[item.key][row["original"]].score
            pairs.append(
                Pair(item.key, prompts[item.key].messages, accepted[0].text, original.text, MAX_SCORE, score, source)
            )
        return pairs, dropped

    return pairs_stage(at, source, build, config={"scorer": SCORER_VERSION}, inputs=inputs, prompts=len(items))
