"""Compare feedback paradigms on equal terms: one M1, the same created prompts and the same
student samples, then one M2 per source in `branches`, each evaluated against M1 by the same
judge on the same held-out prompts.

    runs/<name>/iter_0/sft, iter_1/prompts, iter_1/candidates    shared by every branch
    runs/<name>/<source>/iter_1/...                               that source's feedback, DPO, eval

With `optimizers` instead, each branch is the recipe under its own overrides (dpo.loss=ipo,
loop=rl, ...) and trains on the same pairs, or for RL the same prompts and samples.

Run it:  autoalign run recipes/paper_replica.yaml   (optimisers: recipes/optimizers.yaml)
"""

from __future__ import annotations

from autoalign.io import write_json
from autoalign.pairs import NoPairsError
from autoalign.loops import rl
from autoalign.loops.context import RunContext
from autoalign.loops.rounds import initial_model, iterate
from autoalign.runtime.pool import ModelRef


def branch_names(cfg) -> list[str]:
    """The feedback sources (branches) or the optimisers (optimizers) a comparison trains."""
    return list(cfg.branches) or list(cfg.optimizers)


def run(ctx: RunContext, m0: ModelRef) -> dict:
    cfg, log = ctx.cfg, ctx.log
    m1 = initial_model(ctx, m0)
    results: dict = {"branches": {}}
    for name in branch_names(cfg):
        log(f"branch {name}")
        branch_cfg = cfg.replaced(loop=name, mix={}, branches=[]) if cfg.branches else cfg.optimizer_config(name)
        branch = ctx.branch(branch_cfg, ctx.store.child(name))
        loop = rl.iterate if branch_cfg.loop == "rl" else iterate
        try:
            results["branches"][name] = loop(branch, m1)
        except NoPairsError as e:  # one paradigm giving no signal must not hide the others
            log(f"branch {name}: {e}")
            results["branches"][name] = {"error": str(e), "final_model": None}
    write_json(
        ctx.store.root / "branches.json",
        {"m1": str(m1.path), "branches": branch_names(cfg), "results": results["branches"]},
    )
    return results
