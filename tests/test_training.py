"""Training options: mid-training checkpoints (a run killed after a checkpoint and restarted ends
with exactly the weights and metrics of an uninterrupted run) and frozen embeddings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autoalign.config import DPOConfig, SFTConfig
from autoalign.data import load_ift
from autoalign.models.loading import load_model
from autoalign.train.dpo import train_dpo
from autoalign.train.resume import TrainCheckpointer
from autoalign.train.sft import train_sft
from autoalign.types import Pair

FIX = Path(__file__).parent / "fixtures"


class Crash(Exception):
    pass


class CrashAfterSaves(TrainCheckpointer):
    """Checkpoints after every step and dies right after the given number of saves."""

    def __init__(self, dir: Path, saves_before_crash: int):
        super().__init__(dir, every_minutes=1e-9)
        self.left = saves_before_crash

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        self.left -= 1
        if self.left == 0:
            raise Crash


class Resuming(TrainCheckpointer):
    """Records the step it resumed from, to show the restart skipped the finished steps."""

    def __init__(self, dir: Path):
        super().__init__(dir, every_minutes=0)
        self.resumed_at = None

    def load(self, *args):
        step, history = super().load(*args)
        self.resumed_at = step
        return step, history


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_sft_resumed_after_crash_matches_uninterrupted(tiny_model_dir, tmp_path):
    conversations = load_ift(str(FIX / "ift_small.jsonl"))
    cfg = SFTConfig(
        learning_rate=1e-3, epochs=2, batch_size=1, grad_accum=2, warmup_ratio=0.25, max_length=128
    )  # 6 steps

    model, straight_history, _ = train_sft(load_model(tiny_model_dir), conversations, cfg, seed=3)
    straight = _weights(model)

    state_dir = tmp_path / "train_state"
    with pytest.raises(Crash):
        train_sft(load_model(tiny_model_dir), conversations, cfg, seed=3, checkpointer=CrashAfterSaves(state_dir, 2))
    assert (state_dir / "progress.json").exists()
    assert not list(tmp_path.glob(".train_state.*"))  # no half-written checkpoint left behind

    resuming = Resuming(state_dir)
    model, resumed_history, _ = train_sft(load_model(tiny_model_dir), conversations, cfg, seed=3, checkpointer=resuming)
    assert resuming.resumed_at == 2
    assert len(resumed_history) == len(straight_history) == 6
    assert resumed_history == straight_history
    _assert_same(_weights(model), straight)


def test_dpo_lora_resumed_after_crash_matches_uninterrupted(tiny_model_dir, tmp_path):
    conversations = load_ift(str(FIX / "ift_small.jsonl"))
    pairs = [
        Pair(
            prompt_id=f"p{i}",
            prompt=c[:-1],
            chosen=c[-1]["content"],
            rejected=conversations[(i + 1) % len(conversations)][-1]["content"],
            chosen_score=5,
            rejected_score=1,
            source="test",
        )
        for i, c in enumerate(conversations)
    ]
    cfg = DPOConfig.model_validate(
        {
            "learning_rate": 1e-2,
            "epochs": 2,
            "batch_size": 2,
            "grad_accum": 1,
            "max_length": 128,
            "lora": {"enabled": True, "r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
        }
    )
    model, straight_history, _ = train_dpo(load_model(tiny_model_dir), pairs, cfg, seed=1)
    straight = _weights(model)

    ref = tmp_path / "reference.json"
    state_dir = tmp_path / "train_state"
    with pytest.raises(Crash):
        train_dpo(
            load_model(tiny_model_dir),
            pairs,
            cfg,
            seed=1,
            reference_cache=ref,
            checkpointer=CrashAfterSaves(state_dir, 3),
        )
    saved = torch.load(state_dir / "train_state.pt", weights_only=True)["trainable"]
    assert saved and all("lora_" in name for name in saved)  # LoRA checkpoints hold only the adapters

    resuming = Resuming(state_dir)
    model, resumed_history, _ = train_dpo(
        load_model(tiny_model_dir), pairs, cfg, seed=1, reference_cache=ref, checkpointer=resuming
    )
    assert resuming.resumed_at == 3
    assert resumed_history == straight_history
    _assert_same(_weights(model), straight)


def test_checkpoint_of_another_model_is_refused(tiny_model_dir, tmp_path):
    state_dir = tmp_path / "train_state"
    state_dir.mkdir()
    (state_dir / "progress.json").write_text('{"step": 1, "history": []}')
    torch.save(
        {
            "trainable": {"not.a.param": torch.zeros(1)},
            "optimizer": {},
            "scheduler": {},
            "torch_rng": torch.get_rng_state(),
        },
        state_dir / "train_state.pt",
    )
    cfg = SFTConfig(epochs=1, batch_size=1, grad_accum=1, max_length=64)
    with pytest.raises(RuntimeError, match="does not match the model"):
        train_sft(
            load_model(tiny_model_dir),
            load_ift(str(FIX / "ift_small.jsonl")),
            cfg,
            seed=0,
            checkpointer=TrainCheckpointer(state_dir, 0),
        )


def test_freeze_embeddings_keeps_the_vocabulary_matrix(tiny_model_dir):
    before = _weights(load_model(tiny_model_dir).model)
    cfg = SFTConfig(learning_rate=1e-2, epochs=1, batch_size=2, grad_accum=1, max_length=128, freeze_embeddings=True)
    model, _, _ = train_sft(load_model(tiny_model_dir), load_ift(str(FIX / "ift_small.jsonl")), cfg, seed=0)
    after = _weights(model)
    assert torch.equal(before["model.embed_tokens.weight"], after["model.embed_tokens.weight"])
    assert not torch.equal(before["model.layers.0.mlp.up_proj.weight"], after["model.layers.0.mlp.up_proj.weight"])


def test_dpo_with_the_chosen_nll_term_at_the_first_step(tiny_model_dir):
    """Before any update the policy is the reference: the step's loss is ln 2 + sft_weight x the
    chosen answers' NLL, and without the term it is ln 2."""
    import math

    conversations = load_ift(str(FIX / "ift_small.jsonl"))[:4]
    pairs = [
        Pair(f"p{i}", c[:-1], c[-1]["content"], conversations[i - 1][-1]["content"], 5, 1, "test")
        for i, c in enumerate(conversations)
    ]
    settings = {"learning_rate": 1e-3, "epochs": 1, "batch_size": 4, "grad_accum": 1, "max_length": 128}
    plain = train_dpo(load_model(tiny_model_dir), pairs, DPOConfig.model_validate(settings), seed=1)[1][0]
    cfg = DPOConfig.model_validate(settings | {"sft_weight": 0.5})
    first = train_dpo(load_model(tiny_model_dir), pairs, cfg, seed=1)[1][0]
    assert plain["loss"] == pytest.approx(math.log(2), abs=1e-6) and "chosen_nll" not in plain
    assert first["chosen_nll"] > 1.0  # a tiny random model: far from the answers
    assert first["loss"] == pytest.approx(math.log(2) + 0.5 * first["chosen_nll"], abs=1e-5)


def test_bf16_autocast_runs_both_dpo_passes_in_bf16_and_keeps_fp32_weights(tiny_model_dir, tmp_path):
    """dpo.autocast=bf16: the reference log-probs differ from fp32 ones (bf16 matmuls ran) but
    only slightly; the policy and the reference still agree before the first update (loss ln 2,
    reward margin 0), and the trained weights are fp32."""
    import json
    import math

    conversations = load_ift(str(FIX / "ift_small.jsonl"))[:4]
    pairs = [
        Pair(f"p{i}", c[:-1], c[-1]["content"], conversations[i - 1][-1]["content"], 5, 1, "test")
        for i, c in enumerate(conversations)
    ]
    settings = {"learning_rate": 1e-3, "epochs": 1, "batch_size": 4, "grad_accum": 1, "max_length": 128}
    references = {}
    for mode in ("off", "bf16"):
        cfg = DPOConfig.model_validate(settings | {"autocast": mode})
        cache = tmp_path / f"reference_{mode}.json"
        model, history, stats = train_dpo(load_model(tiny_model_dir), pairs, cfg, seed=1, reference_cache=cache)
        references[mode] = torch.tensor(json.loads(cache.read_text()))
        assert history[0]["loss"] == pytest.approx(math.log(2), abs=1e-4), mode
        assert all(p.dtype == torch.float32 for p in model.parameters())
    difference = (references["bf16"] - references["off"]).abs()
    tokens = stats["mean_tokens"]
    assert difference.max() > 0  # bf16 ran
    assert difference.mean() / tokens < 0.05  # nats per token (real 135M model: 0.008, bench/dpo.py)


def test_bf16_autocast_sft_loss_close_to_fp32(tiny_model_dir):
    conversations = load_ift(str(FIX / "ift_small.jsonl"))
    settings = {"learning_rate": 1e-3, "epochs": 1, "batch_size": 2, "grad_accum": 1, "max_length": 128}
    first = {}
    for mode in ("off", "bf16"):
        cfg = SFTConfig.model_validate(settings | {"autocast": mode})
        first[mode] = train_sft(load_model(tiny_model_dir), conversations, cfg, seed=0)[1][0]["loss"]
    assert first["bf16"] != first["off"]
    assert first["bf16"] == pytest.approx(first["off"], rel=1e-2)


def test_autocast_auto_follows_the_device(tiny_loaded, monkeypatch):
    """ "auto" is bf16 only where bf16 matmuls are native: elsewhere they are emulated and slow."""
    from autoalign.train import loop

    model = tiny_loaded.model
    for native, expected in ((True, "bf16"), (False, "off")):
        monkeypatch.setattr(loop, "fast_bf16", lambda device, native=native: native)
        assert loop.autocast_mode(DPOConfig(autocast="auto"), model) == expected
        with loop.precision(DPOConfig(autocast="auto"), model):
            assert torch.is_autocast_enabled("cpu") == native
    assert loop.autocast_mode(DPOConfig(autocast="bf16"), model) == "bf16"  # explicit wins
    assert loop.autocast_mode(DPOConfig(), model) == "off"


@pytest.mark.parametrize("lora_enabled", [False, True])
def test_activation_checkpointing_trains_the_same_model(tiny_model_dir, lora_enabled):
    """Recomputing the decoder layers' activations in backward changes memory, not maths: the
    loss history and the trained weights match the run that keeps them, and the returned model
    no longer checkpoints."""
    conversations = load_ift(str(FIX / "ift_small.jsonl"))[:6]
    pairs = [
        Pair(f"p{i}", c[:-1], c[-1]["content"], conversations[i - 1][-1]["content"], 5, 1, "test")
        for i, c in enumerate(conversations)
    ]
    settings = {"learning_rate": 1e-3, "epochs": 2, "batch_size": 2, "grad_accum": 1, "max_length": 128}
    settings["lora"] = {"enabled": lora_enabled, "r": 4}
    runs = {}
    for every in (0, 1):
        cfg = DPOConfig.model_validate(settings | {"activation_checkpointing": every, "sft_weight": 0.5})
        model, history, _ = train_dpo(load_model(tiny_model_dir), pairs, cfg, seed=3)
        runs[every] = (_weights(model), [row["loss"] for row in history])
        assert not model.is_activation_checkpointing
    (plain_weights, plain_losses), (checkpointed_weights, checkpointed_losses) = runs[0], runs[1]
    assert len(plain_losses) == 6 and checkpointed_losses == pytest.approx(plain_losses, abs=1e-5)
    assert plain_losses[-1] != pytest.approx(plain_losses[0], abs=1e-3)  # it trained
    for key, value in plain_weights.items():
        assert torch.allclose(checkpointed_weights[key], value, atol=1e-5), key


def test_activation_checkpointing_keeps_fewer_tensors_for_backward(tiny_loaded):
    """What autograd saves for backward during one training forward (chunked log-probs + layers):
    with every layer checkpointed, only the layers' inputs are kept."""
    import copy

    from autoalign.train.data import answer_logprobs, encode_chat
    from autoalign.train.loop import activation_checkpointing

    model = copy.deepcopy(tiny_loaded.model).train()
    tok = tiny_loaded.tokenizer
    examples = [encode_chat(tok, [{"role": "user", "content": "Name a fruit."}], "A ripe pear, sweet and soft.", 128)]

    def saved_elements(every: int) -> int:
        total = 0

        def pack(tensor):
            nonlocal total
            total += tensor.numel()
            return tensor

        with activation_checkpointing(model, every), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            answer_logprobs(model, examples, tok.pad_token_id)[0].sum()
        return total

    plain, checkpointed = saved_elements(0), saved_elements(1)
    assert checkpointed < 0.5 * plain
    assert not model.is_activation_checkpointing


def _padding_share(batches: list[list[int]], lengths: list[int]) -> float:
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1 - sum(lengths[i] for b in batches for i in b) / padded


@pytest.mark.parametrize("epochs", [1.0, 2.5])
def test_length_grouped_batches_cover_each_epoch_and_pad_less(epochs):
    import random

    from autoalign.train.loop import micro_batches

    rng = random.Random(1)
    lengths = [rng.randint(20, 400) for _ in range(203)]
    grouped_cfg = DPOConfig(batch_size=4, epochs=epochs)
    grouped = micro_batches(len(lengths), grouped_cfg, seed=3, lengths=lengths)
    shuffled = micro_batches(len(lengths), DPOConfig(batch_size=4, epochs=epochs, group_by_length=False), 3, lengths)
    total = round(len(lengths) * epochs)
    order = [i for b in grouped for i in b]
    assert len(order) == total and all(0 < len(b) <= 4 for b in grouped)
    for start in range(0, total - len(lengths) + 1, len(lengths)):  # every whole epoch: each example once
        assert sorted(order[start : start + len(lengths)]) == list(range(len(lengths)))
    assert _padding_share(grouped, lengths) < 0.1 < 0.3 < _padding_share(shuffled, lengths)
    # deterministic in the seed, and not simply sorted: batch order is shuffled
    assert micro_batches(len(lengths), grouped_cfg, seed=3, lengths=lengths) == grouped
    widths = [max(lengths[i] for i in b) for b in grouped]
    assert widths != sorted(widths) and widths != sorted(widths, reverse=True)
