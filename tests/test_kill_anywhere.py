"""Kill anywhere, resume, get the same run (issue 15): a 2-iteration loop on the tiny model is
killed with SIGKILL at 10 seeded points of its stage timeline (generation, judging, pair
building, DPO steps, checkpoint and model writes, chunk and manifest writes, the report), resumed
each time with the same command, and must end with every stage's data, the metrics that are not
timings and the final weights of an uninterrupted run, no row duplicated or lost.

The kill points are printed (pytest -s) and follow from the seed. The harness is kill_harness.py;
bench/kill_anywhere.py runs it on the bundled model."""

from __future__ import annotations

import os

from kill_harness import kill_anywhere

SEED = int(os.environ.get("KILL_SEED", "15"))
SETTINGS = [
    "iterations=2",
    "sample.sampling.batch_size=2",  # several chunks per sampling stage: kills land between them
    "judge.sampling.batch_size=2",
    "dpo.checkpoint_minutes=0.0001",  # a mid-training checkpoint after every step
]


def test_killed_at_ten_points_and_resumed_the_run_is_the_uninterrupted_one(tiny_model_dir, tmp_path):
    target = lambda runs: ["tiny", str(tiny_model_dir), str(runs), *SETTINGS]
    result = kill_anywhere(
        target(tmp_path / "clean"),
        target(tmp_path / "faulty"),
        tmp_path / "clean" / "tiny",
        tmp_path / "faulty" / "tiny",
        tmp_path / "work",
        points=10,
        seed=SEED,
        timeout=600,
    )
    kills = result["kills"]
    assert len(kills) == 10 and all(k["exit"] == -9 for k in kills)
    covered = {k["category"] for k in kills}
    assert {"generation", "judging", "DPO step", "checkpoint write", "model write", "manifest write"} <= covered
    compared = result["files"]  # every one equal to the uninterrupted run's
    assert "iter_2/dpo/model/model.safetensors" in compared and "iter_2/pairs/data.jsonl" in compared
    assert len(compared) > 30


def test_a_checkpoint_caught_between_its_two_renames_is_found(tmp_path):
    """save swaps the new checkpoint in by two renames (current -> old, new -> current); a kill
    between them leaves only old, which load takes back."""
    import torch

    from autoalign.train.resume import TrainCheckpointer

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    checkpoints = TrainCheckpointer(tmp_path / "train_state-k", every_minutes=1)
    checkpoints.save(model, optimizer, scheduler, step=5, history=[{"loss": 0.5}])
    checkpoints.dir.rename(checkpoints.old_dir)
    assert checkpoints.load(model, optimizer, scheduler) == (5, [{"loss": 0.5}])
    checkpoints.save(model, optimizer, scheduler, step=6, history=[{"loss": 0.5}, {"loss": 0.4}])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train_state-k"]


def test_the_writer_sweeps_what_interrupted_writes_left(tmp_path):
    from autoalign.io import sweep_temporaries

    stage = tmp_path / "iter_1" / "dpo"
    (stage / ".model.0123456789ab").mkdir(parents=True)
    (stage / ".model.0123456789ab" / "model.safetensors").write_bytes(b"half")
    (tmp_path / ".manifest.json.a1b2c3d4e5f6.tmp").write_text("{")
    kept = [tmp_path / "manifest.json", stage / "metrics.json", stage / ".hidden_user_file"]
    for path in kept:
        path.write_text("{}")
    assert sweep_temporaries(tmp_path) == 2
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        str(p.relative_to(tmp_path)) for p in kept
    )
