"""Online RL (loop: rl): GRPO (Shao et al. 2024, "DeepSeekMath", section 4) or RLOO (Ahmadian et
al. 2024, "Back to Basics: Revisiting REINFORCE Style Optimization for Learning from Human
Feedback in LLMs") on the current model's own answers, rewarded by a program or a judge.

    M0 --SFT (optional)--> M1 = the reference of the KL penalty
    for t = 1..T:
        prompts  = verifiable prompts synthesised anew (rl.reward=verifier: base task x 1-3
                   constraints, never IFEval's) or prompts M_t writes (rl.reward=judge)
        answers  = sample.n samples per prompt from M_t (through the recipe's engine)
        rewards  = the programmatic critic's score / 5 (IFEval checkers + quality guard), or the
                   judge's score (rubric, judge.reward_model, judge.verifier)
        M_{t+1}  = rl.epochs passes of the clipped policy-gradient loss on M_t's answers, with
                   group-relative (GRPO) or leave-one-out (RLOO) advantages and KL to M1
        eval     = M_{t+1} vs M_t as in every loop (held-out prompts, IFEval)

Each round is a set of stages like any loop's, so a killed run resumes where it stopped and ends
as an uninterrupted one would. Training runs in the main process only (no data parallelism yet).
Run it:  autoalign run recipes/rl_verifiable.yaml
"""

from __future__ import annotations

from autoalign.config import ConfigError, RunConfig
from autoalign.loops import rounds
from autoalign.loops.context import RunContext
from autoalign.loops.verified import base_tasks, evaluation_texts, weakness_before
from autoalign.runtime.pool import ModelRef
from autoalign.stages.judging import judge_candidates
from autoalign.stages.prompts import create_prompts
from autoalign.stages.rl import RolloutGroup, rl_stage
from autoalign.stages.sampling import answer_request, sample_candidates
from autoalign.stages.verifiable import as_prompts, critique_candidates, verifiable_prompts
from autoalign.verdicts import MAX_SCORE


def check_config(cfg: RunConfig) -> None:
    if cfg.sample.n < 2:
        raise ConfigError("loop=rl compares each prompt's answers with each other: sample.n must be >= 2")
    if cfg.sample.sampling.temperature <= 0:
        raise ConfigError("loop=rl learns from its own samples: sample.sampling.temperature must be > 0")


def verified_rollouts(ctx: RunContext, t: int, student: ModelRef) -> list[RolloutGroup]:
    """Synthesised verifiable prompts; reward = the critic's score / 5 (0 for a degenerate answer).
    Prompts, samples and critiques live with the shared stages, as the verifiable loop's do, so
    an optimiser comparison's RL branch learns from the same samples as its pair-based ones."""
    at, cfg = ctx.at(t, shared=True), ctx.cfg.verifiable
    items, kinds, tasks = verifiable_prompts(at, cfg, base_tasks(ctx), evaluation_texts(ctx), weakness_before(ctx, t))
    prompts = as_prompts(items)
    sample_cfg = ctx.cfg.sample.replaced(control_instruction=False)  # the constraints are the point
    candidates = sample_candidates(at, student, prompts, sample_cfg, name="verifiable_candidates")
    tasks = tasks if cfg.off_task_check else None
    critiques = critique_candidates(at, items, candidates, cfg.strict, kinds, tasks)
    return [
        RolloutGroup(p.id, p.messages, candidates[p.id], [c.score / MAX_SCORE for c in critiques[p.id]])
        for p in prompts
    ]


def judged_rollouts(ctx: RunContext, t: int, student: ModelRef) -> list[RolloutGroup]:
    """Prompts M_t writes; reward = the recipe's judge score of each answer (prompts and samples
    shared as in the self-rewarding loop)."""
    cfg, shared = ctx.cfg, ctx.at(t, shared=True)
    exclude = rounds.evaluation_texts(ctx)
    prompts = create_prompts(shared, student, ctx.seed_instructions, cfg.create_prompts, exclude=exclude)
    candidates = sample_candidates(shared, student, prompts, cfg.sample)
    judgments = judge_candidates(ctx.at(t), student, prompts, candidates, cfg.judge, ctx.make_judge, role="self-judge")
    return [
        RolloutGroup(
            p.id,
            answer_request(p, cfg.sample.control_instruction),  # trained on the prompt exactly as sampled
            candidates[p.id],
            [j.score for j in judgments[p.id]],
        )
        for p in prompts
    ]


ROLLOUTS = {"verifier": verified_rollouts, "judge": judged_rollouts}


def iterate(ctx: RunContext, m1: ModelRef) -> dict:
    cfg, pool = ctx.cfg, ctx.pool
    results: dict = {"iterations": {}}
    current = m1
    for t in range(1, cfg.iterations + 1):
        groups = ROLLOUTS[cfg.rl.reward](ctx, t, current)
        pool.release()
        trained = rl_stage(ctx.at(t), current, m1, groups, cfg.rl)
        if cfg.eval.enabled:
            rounds.evaluate_iteration(ctx, t, trained, current, m1)
        pool.release()
        results["iterations"][t] = {"model": str(trained.path)}
        current = trained
    if cfg.eval.enabled:
        rounds.final_against_start(ctx, m1, current)
    results["final_model"] = str(current.path)
    return results
