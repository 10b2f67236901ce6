"""The self-rewarding loop (Yuan et al. 2024, "Self-Rewarding Language Models").

    M0 --SFT on IFT (+EFT)--> M1                                (optional for instruct models)
    for t = 1..T:
        prompts    = M_t writes new instructions from few-shot IFT examples   (section 2.2)
        candidates = N samples per prompt from M_t                            (section 2.2)
        judgments  = M_t scores each candidate with the 5-point rubric        (section 2.2)
        pairs      = best vs worst candidate per prompt, ties dropped         (section 2.3)
        M_{t+1}    = DPO(M_t, pairs), reference M_t                           (section 2.3)
        eval       = M_{t+1} vs M_t on held-out prompts, fixed judge

Run it:  autoalign run recipes/quickstart.yaml
"""

from __future__ import annotations

from autoalign.config import RunConfig
from autoalign.data import judge_demonstrations, load_eft, load_ift, load_prompts
from autoalign.eval.judge_compare import compare_models
from autoalign.loops import stages
from autoalign.loops.pool import ModelPool, ModelRef
from autoalign.models import resolve_model
from autoalign.store import RunStore, content_key


def run(cfg: RunConfig, log=print, make_judge: stages.JudgeFactory | None = None) -> dict:
    """make_judge replaces the rubric judge (M_t judging itself), e.g. by a programmatic verifier."""
    store = RunStore(cfg.run_dir)
    ift = load_ift(cfg.data.ift)
    eft = load_eft(cfg.data.eft) if cfg.data.eft else []
    heldout = load_prompts(cfg.data.heldout, source="heldout")
    seed_instructions = [conv[-2]["content"] for conv in ift]

    m0_path = resolve_model(cfg.model.name, log=log)
    m0 = ModelRef("M0", m0_path, content_key(cfg.model.model_dump(), str(m0_path)))
    pool = ModelPool(cfg.model)
    demonstrations = judge_demonstrations(eft, cfg.judge.fewshot_scores, cfg.judge.max_response_chars)
    make_judge = make_judge or stages.RubricJudgeFactory(pool, tuple(demonstrations))
    results: dict = {"iterations": {}}

    current = m0
    if cfg.sft.enabled:
        conversations = ift + ([e.to_conversation(cfg.judge.max_response_chars) for e in eft] if cfg.sft.use_eft else [])
        current = stages.train_sft_stage(store, m0, conversations, cfg.sft, pool, cfg.seed)
    else:
        current = ModelRef("M1", m0.path, m0.key)  # an instruct model stands in for M1
    eval_judge = current

    for t in range(1, cfg.iterations + 1):
        prompts = stages.create_prompts(store, t, current, seed_instructions, cfg.create_prompts, pool, cfg.seed)
        candidates = stages.sample_candidates(store, t, current, prompts, cfg.sample, pool, cfg.seed)
        judgments = stages.judge_candidates(store, t, current, prompts, candidates, cfg.judge, make_judge, cfg.seed)
        pairs = stages.build_pairs(store, t, prompts, candidates, judgments, cfg.pairs, source="self_reward")
        pool.release()
        trained = stages.train_dpo_stage(store, t, current, pairs, cfg.dpo, pool, cfg.seed)
        if cfg.eval.enabled:
            judge = eval_judge if cfg.eval.judge == "initial" else current
            compare_models(store, t, trained, current, judge, heldout, cfg.eval, cfg.judge, pool, make_judge, cfg.seed)
        pool.release()
        results["iterations"][t] = {"model": str(trained.path)}
        current = trained
    results["final_model"] = str(current.path)
    return results
