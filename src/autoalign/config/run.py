"""The whole recipe: which loop, its sections, and the rules that span sections."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from autoalign.config.base import Section, redact_url, registered
from autoalign.config.data import DataConfig
from autoalign.config.evaluation import EvalConfig, InferenceTimeConfig
from autoalign.config.feedback import (
    DebateConfig,
    SelfRefineConfig,
    ConsistencyConfig,
    ConstitutionConfig,
    CreatePromptsConfig,
    GoldConfig,
    JudgeConfig,
    PairsConfig,
    SampleConfig,
    TeacherDemoConfig,
    TeacherRewardConfig,
    VerifiableConfig,
)
from autoalign.config.models import ModelConfig, TeacherConfig
from autoalign.config.oversight import CriticConfig, ReviewConfig, W2SConfig
from autoalign.config.training import DPOConfig, RLConfig, SFTConfig
from autoalign.registry import FEEDBACK


def _known_source(name: str) -> str:
    return registered(name, FEEDBACK, "feedback source")


SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class RunConfig(Section):
    name: str = "run"
    """The run's directory under runs_dir: letters, digits, '.', '_' and '-', starting with a
    letter or digit (so it can never point outside runs_dir)."""
    loop: str = "self_reward"
    """Where the preference signal comes from; "mixed" combines the sources listed in `mix`; "rl"
    trains by online RL on the model's own rewarded samples instead of preference pairs (rl.*);
    "inference_time" trains nothing and compares inference-time methods (inference_time.*)."""
    mix: dict[str, float] = {}
    """loop=mixed: source -> weight of its pairs in the DPO loss, e.g. {teacher_demo: 1, self_reward: 0.5}."""
    branches: list[str] = []
    """Compare paradigms: from one M1 and the same prompts, train one M2 per listed source, each
    under runs/<name>/<source>/, and print a table comparing M1 and every M2."""
    optimizers: dict[str, list[str]] = {}
    """Compare optimisers on the same feedback: name -> dotted overrides of this recipe, e.g.
    {ipo: [dpo.loss=ipo, dpo.beta=0.5], grpo: [loop=rl]}. From one M1, each trains its own M2
    under runs/<name>/<optimiser>/ on the same prompts and samples (the verifiable loop and RL
    share them), and the summary compares every M2 with M1."""
    runs_dir: str = "runs"
    seed: int = 0
    iterations: int = Field(1, ge=1)
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    sft: SFTConfig = SFTConfig()
    create_prompts: CreatePromptsConfig = CreatePromptsConfig()
    sample: SampleConfig = SampleConfig()
    judge: JudgeConfig = JudgeConfig()
    pairs: PairsConfig = PairsConfig()
    teacher: TeacherConfig | None = None
    teacher_reward: TeacherRewardConfig = TeacherRewardConfig()
    teacher_demo: TeacherDemoConfig = TeacherDemoConfig()
    gold: GoldConfig = GoldConfig()
    constitution: ConstitutionConfig = ConstitutionConfig()
    consistency: ConsistencyConfig = ConsistencyConfig()
    self_refine: SelfRefineConfig = SelfRefineConfig()
    debate: DebateConfig = DebateConfig()
    verifiable: VerifiableConfig = VerifiableConfig()
    critic: CriticConfig = CriticConfig()
    review: ReviewConfig = ReviewConfig()
    w2s: W2SConfig = W2SConfig()
    dpo: DPOConfig = DPOConfig()
    rl: RLConfig = RLConfig()
    eval: EvalConfig = EvalConfig()
    inference_time: InferenceTimeConfig = InferenceTimeConfig()

    @field_validator("loop")
    @classmethod
    def _known_loop(cls, value: str) -> str:
        return value if value in ("mixed", "rl", "inference_time") else _known_source(value)

    @field_validator("mix", "branches")
    @classmethod
    def _known_sources(cls, value):
        for source in value:
            _known_source(source)
        return value

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not SAFE_NAME.match(value):
            raise ValueError("must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    def redacted_dump(self) -> dict[str, Any]:
        """The resolved config as written to config.yaml: endpoint URLs without credentials."""
        tree = self.model_dump(mode="json")
        for section in (tree.get("teacher") or {},):
            if section.get("endpoint"):
                section["endpoint"]["base_url"] = redact_url(section["endpoint"]["base_url"])
        return tree

    def optimizer_config(self, name: str) -> RunConfig:
        """The recipe with optimizers[name]'s overrides applied (and no comparison of its own)."""
        from autoalign.config.loading import apply_override

        tree = self.model_dump(mode="json") | {"optimizers": {}, "branches": []}
        for assignment in self.optimizers[name]:
            apply_override(tree, assignment)
        return RunConfig.model_validate(tree)

    @property
    def sources(self) -> dict[str, float]:
        """Feedback source -> pair weight, for this run (or its first branch)."""
        if self.loop == "mixed":
            return dict(self.mix)
        return {} if self.loop in ("rl", "inference_time") else {self.loop: 1.0}

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if self.judge.fewshot_scores and not self.data.eft:
            raise ValueError("judge.fewshot_scores needs data.eft (the judgements to show)")
        if self.loop == "mixed" and not self.mix:
            raise ValueError("loop=mixed needs mix: {source: weight, ...}")
        if self.loop != "mixed" and self.mix:
            raise ValueError(f"mix is only read when loop=mixed (loop is {self.loop})")
        if any(w <= 0 for w in self.mix.values()):
            raise ValueError("mix weights must be > 0")
        if self.branches and self.optimizers:
            raise ValueError("branches compare feedback sources and optimizers compare optimisers: set one")
        for name in self.optimizers:
            if not SAFE_NAME.match(name):
                raise ValueError(f"optimizers: {name!r} must be 1-100 letters, digits, '.', '_' or '-'")
            try:
                self.optimizer_config(name)
            except ValueError as e:
                raise ValueError(f"optimizers.{name}: {e}") from None
        used = set(self.branches) or set(self.sources)
        needs_teacher = sorted(s for s in used if FEEDBACK[s].needs_teacher)
        teacher_roles = {
            "constitutional": ("constitution.reviser", self.constitution.reviser),
            "self_refine": ("self_refine.critic", self.self_refine.critic),
            "debate": ("debate.judge", self.debate.judge),
        }
        needs_teacher += [f"{k}=teacher" for s, (k, who) in teacher_roles.items() if s in used and who == "teacher"]
        if "debate" in used and self.debate.second_debater == "teacher":
            needs_teacher.append("debate.second_debater=teacher")
        if needs_teacher and self.teacher is None:
            raise ValueError(f"{', '.join(needs_teacher)} needs a teacher: set teacher.name or teacher.endpoint")
        if self.loop == "inference_time" and self.inference_time.base_methods and not self.sft.enabled:
            raise ValueError("inference_time.base_methods compare M0 with its SFT (M1): set sft.enabled=true")
        if self.eval.judge == "teacher" and self.teacher is None:
            raise ValueError("eval.judge=teacher needs a teacher")
        needs_samples = sorted(s for s in used if self.sample.n < FEEDBACK[s].min_samples)
        if needs_samples:
            least = max(FEEDBACK[s].min_samples for s in needs_samples)
            raise ValueError(
                f"{', '.join(needs_samples)} compares sample.n candidates per prompt: sample.n must be >= {least}"
            )
        return self

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name
