"""Training stages: SFT (M0 -> M1) and the preference optimisation of each iteration."""

from __future__ import annotations

import importlib.util
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from autoalign.config.base import Section, registered
from autoalign.config.models import LoraConfig
from autoalign.registry import PREFERENCE_LOSSES


class TrainConfig(Section):
    enabled: bool = True
    learning_rate: float = Field(5e-6, gt=0)
    epochs: float = Field(1.0, gt=0)
    batch_size: int = Field(2, gt=0)
    grad_accum: int = Field(4, gt=0)
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    max_length: int = Field(512, gt=8)
    lora: LoraConfig = LoraConfig()
    freeze_embeddings: bool = False
    """Keep the token embeddings (and a tied output layer) fixed. With a large vocabulary (Gemma's
    262k) they are most of the parameters; freezing them cuts a full fine-tuning step by ~40%."""
    autocast: Literal["off", "bf16", "auto"] = "off"
    """Run the forward passes (training and DPO's reference pass) under bf16 autocast; weights,
    gradients and optimizer state stay fp32. On a CPU with bf16 matmuls (avx512_bf16, AMX) a
    135M DPO step is ~1.5x faster and the reference pass ~2x (bench/dpo.py); the log-probs move
    by ~0.01 nats per token. Without such hardware bf16 is much slower. "auto": bf16 where the
    device has fast bf16 matmuls (that CPU, or a GPU that supports bf16), else off."""
    checkpoint_minutes: float = Field(10.0, ge=0)
    """Save a resumable training state this often (wall time); 0 = never. A crashed stage
    resumes from the last one and ends bit-identical to an uninterrupted run."""
    activation_checkpointing: int = Field(0, ge=0)
    """Keep the activations of only every n-th decoder layer's input and recompute the rest in
    the backward pass (0 = off, 1 = every layer). Training memory then holds little more than
    weights, gradients and optimizer state (135M full DPO at batch 4 x ~170 tokens: 6.6 -> 3.7 GB,
    bench/dpo.py) for ~10% fewer pairs/s. Same results, so not in stage keys."""
    optimizer: Literal["adamw", "adamw_8bit"] = "adamw"
    """adamw: AdamW with fp32 moments (torch's fused kernel on CPU and CUDA). adamw_8bit: AdamW whose
    two moments are stored block-wise quantised to 8 bits (bitsandbytes; Dettmers et al. 2022,
    "8-bit Optimizers via Block-wise Quantization"): 2 bytes of state per weight instead of 8,
    -0.8 GB for 135M full DPO, whose CPU step is slower (1.6 s against 0.08 s per step here).
    Needs `pip install 'autoalign[lowmem]'`."""
    release_freed_memory: bool = False
    """Before each backward pass, hand the pages glibc's heap holds free back to the OS
    (malloc_trim; nothing happens with other C libraries), which otherwise keeps ~1 GB of a 135M
    DPO step's freed activations resident. With adamw_8bit, 135M full DPO under bf16 autocast and
    activation checkpointing peaks at 2.7 GB instead of 3.7 GB, at ~15% fewer pairs/s
    (bench/dpo.py). Same results, so not in stage keys."""
    group_by_length: bool = True
    """Batch examples of similar length together (within a shuffled window of 16 batches; the
    batches themselves are then shuffled), so a batch is padded less: on pairs from the
    verifiable loop, 44% of a random batch's positions were padding, 20% of a grouped one's."""
    nonfinite: Literal["stop", "skip"] = "stop"
    """A step whose loss or gradient norm is NaN or infinite never updates the weights. stop: training
    ends there with an error naming the step and its examples (the state before it is checkpointed);
    skip: the batch is dropped, counted in the metrics (`skipped_batches`). Not in stage keys, so
    switching a stopped stage to skip resumes it from that step."""
    NOT_IN_KEY: ClassVar[frozenset[str]] = frozenset(
        {"checkpoint_minutes", "activation_checkpointing", "release_freed_memory", "nonfinite"}
    )

    @field_validator("autocast", mode="before")
    @classmethod
    def _yaml_switch(cls, value: object) -> object:
        """YAML reads a bare `off` / `on` (as in `dpo.autocast=off`) as a boolean."""
        return {False: "off", True: "bf16"}.get(value, value) if isinstance(value, bool) else value

    @field_validator("optimizer")
    @classmethod
    def _optimizer_installed(cls, value: str) -> str:
        """Checked when the recipe is read, so a run never starts without it."""
        if value == "adamw_8bit" and importlib.util.find_spec("bitsandbytes") is None:
            raise ValueError("adamw_8bit needs bitsandbytes: pip install 'autoalign[lowmem]'")
        return value


class SFTConfig(TrainConfig):
    enabled: bool = False
    learning_rate: float = Field(2e-5, gt=0)
    use_eft: bool = True
    max_examples: int | None = Field(None, gt=0)
    """Train on a random subset of this many IFT (+EFT) examples (for quick runs)."""


class DPOConfig(TrainConfig):
    beta: float = Field(0.1, gt=0)
    loss: str = "dpo"
    """The preference loss, by its name in autoalign/registry.py PREFERENCE_LOSSES: dpo (= sigmoid),
    cdpo, robust, ipo (with the reference); slic, simpo, orpo (reference-free); kto (unpaired);
    rrhf, pro (every judged answer of a prompt); coh (Chain of Hindsight, SFT)."""
    sft_weight: float | None = Field(None, ge=0)
    """Add this x the chosen (best) answer's mean token NLL to the preference loss (RPO; see
    train.losses.with_chosen_nll): the verified answers are imitated, not only preferred. Unset:
    the SFT term of the loss's own paper (ORPO, RRHF and SLiC 1, PRO 0.1), else none."""
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)
    """cdpo / robust: the assumed rate of flipped labels (self-judged pairs have some)."""
    simpo_gamma: float = Field(0.5, ge=0)
    """simpo: the target margin of length-normalised rewards (the paper's gamma)."""
    desirable_weight: float = Field(1.0, gt=0)
    """kto: lambda_D, the weight of a desirable answer's term."""
    undesirable_weight: float = Field(1.0, gt=0)
    """kto: lambda_U, the weight of an undesirable answer's term."""

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, value: str) -> str:
        return registered(value, PREFERENCE_LOSSES, "preference loss")


class RLConfig(TrainConfig):
    """loop: rl (loops/rl.py): online RL on the current model's own samples (sample.n per prompt)."""

    learning_rate: float = Field(2e-6, gt=0)
    batch_size: int = Field(8, gt=0)
    """Sampled answers per micro-batch."""
    grad_accum: int = Field(2, gt=0)
    scheduler: Literal["cosine", "linear", "constant"] = "constant"
    """A round is a few steps of one long run: the rate stays, round after round."""
    warmup_ratio: float = Field(0.0, ge=0, le=1)
    algorithm: Literal["grpo", "rloo"] = "grpo"
    """grpo: advantage = (r - group mean) / group std (Shao et al. 2024); rloo: r minus the mean of
    the other answers to the prompt (Ahmadian et al. 2024). Both with the clipped ratio below."""
    scale_rewards: bool = True
    """grpo: divide by the group's standard deviation (False: Dr. GRPO, Liu et al. 2025)."""
    reward: Literal["verifier", "judge"] = "verifier"
    """verifier: synthesised verifiable prompts (verifiable.*), reward = the programmatic critic's
    score / 5 (IFEval checkers + quality guard). judge: created prompts, reward = the recipe's
    judge (rubric, judge.reward_model or judge.verifier) score."""
    kl_coef: float = Field(0.04, ge=0)
    """beta of the per-token KL penalty to the reference (the model RL started from); 0 skips the
    reference pass."""
    clip: float = Field(0.2, gt=0, lt=1)
    """epsilon of the clipped ratio pi / pi_old (matters when epochs > 1 reuse the samples)."""
