"""Compare feedback paradigms on equal terms: one M1, the same created prompts and the same
student samples, then one M2 per source in `branches`, each evaluated against M1 by the same
judge on the same held-out prompts.

    runs/<name>/iter_0/sft, iter_1/prompts, iter_1/candidates    shared by every branch
    runs/<name>/<source>/iter_1/...                               that source's feedback, DPO, eval

Run it:  autoalign run recipes/paper_replica.yaml
"""

from __future__ import annotations

from autoalign.io import write_json
from autoalign.pairs import NoPairsError
from autoalign.loops.context import RunContext
from autoalign.loops.rounds import initial_model, iterate
from autoalign.runtime.pool import ModelRef


def run(ctx: RunContext, m0: ModelRef) -> dict:
    cfg, log = ctx.cfg, ctx.log
    m1 = initial_model(ctx, m0)
    results: dict = {"branches": {}}
    for source in cfg.branches:
        log(f"branch {source}")
        branch_cfg = cfg.replaced(loop=source, mix={}, branches=[])
        branch = ctx.branch(branch_cfg, ctx.store.child(source))
        try:
            results["branches"][source] = iterate(branch, m1)
        except NoPairsError as e:  # one paradigm giving no signal must not hide the others
            log(f"branch {source}: {e}")
            results["branches"][source] = {"error": str(e), "final_model": None}
    write_json(
        ctx.store.root / "branches.json",
        {"m1": str(m1.path), "branches": list(cfg.branches), "results": results["branches"]},
    )
    return results
