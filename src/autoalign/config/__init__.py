"""Typed recipe configuration: YAML file + dotted `key=value` overrides.

Every section forbids unknown keys, so a typo fails before any model is loaded, with the
full dotted key in the message. Paths to data files are checked for existence here too.
The schema is split by area (models, data, feedback, training, evaluation, the run); reading
recipes is loading.py; what of a section enters a stage key is Section.key (base.py).
"""

from autoalign.config.base import BUILTIN_PREFIX, ConfigError, Section, redact_url, registered
from autoalign.config.data import DataConfig
from autoalign.config.evaluation import EvalConfig
from autoalign.config.feedback import (
    CreatePromptsConfig,
    ConsistencyConfig,
    DebateConfig,
    SelfRefineConfig,
    ConstitutionConfig,
    GoldConfig,
    JudgeConfig,
    PairsConfig,
    SampleConfig,
    TeacherDemoConfig,
    TeacherRewardConfig,
    VerifiableConfig,
)
from autoalign.config.oversight import CriticConfig, ReviewConfig, W2SConfig
from autoalign.config.loading import apply_override, load_config, read_recipe
from autoalign.config.models import (
    EndpointConfig,
    LlamaCppConfig,
    VLLMConfig,
    LoraConfig,
    ModelConfig,
    SamplingConfig,
    TeacherConfig,
)
from autoalign.config.run import SAFE_NAME, RunConfig
from autoalign.config.training import DPOConfig, RLConfig, SFTConfig, TrainConfig

__all__ = [
    "BUILTIN_PREFIX",
    "SAFE_NAME",
    "ConfigError",
    "CreatePromptsConfig",
    "CriticConfig",
    "DPOConfig",
    "DataConfig",
    "EndpointConfig",
    "EvalConfig",
    "ConsistencyConfig",
    "DebateConfig",
    "SelfRefineConfig",
    "ConstitutionConfig",
    "GoldConfig",
    "JudgeConfig",
    "LlamaCppConfig",
    "VLLMConfig",
    "LoraConfig",
    "ModelConfig",
    "PairsConfig",
    "RLConfig",
    "ReviewConfig",
    "RunConfig",
    "SFTConfig",
    "SampleConfig",
    "SamplingConfig",
    "Section",
    "TeacherConfig",
    "TeacherDemoConfig",
    "TeacherRewardConfig",
    "TrainConfig",
    "VerifiableConfig",
    "W2SConfig",
    "apply_override",
    "load_config",
    "read_recipe",
    "redact_url",
    "registered",
]
