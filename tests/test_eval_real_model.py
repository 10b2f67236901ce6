"""The evaluation suite on real models: SmolLM2-135M-Instruct answers IFEval prompts and judges
a head-to-head against a model that writes noise; the IFEval checkers see real answers."""

from __future__ import annotations

import pytest

from autoalign.config import JudgeConfig, SamplingConfig
from autoalign.eval import suite
from autoalign.verifiers.ifeval import load_ifeval
from autoalign.runtime.pool import ModelPool, ModelRef
from autoalign.config import ModelConfig
from autoalign.models import resolve_model
from autoalign.stages.common import StageContext
from autoalign.store import RunStore
from autoalign.types import user_message, Prompt

pytestmark = pytest.mark.slow

QUESTIONS = [
    "What is the capital of France?",
    "Name three primary colours.",
    "How many legs does a spider have?",
    "What is 12 times 12?",
    "Give one tip for sleeping well.",
    "What gas do plants absorb from the air?",
]


@pytest.fixture(scope="module")
def smollm():
    path = resolve_model("smollm2-135m-instruct", log=lambda m: None)
    return ModelRef("smollm2", path, "smollm2")


def test_ifeval_on_real_answers(smollm, tmp_path):
    items = load_ifeval("builtin:ifeval_input_data.jsonl")[:6]
    at = StageContext(RunStore(tmp_path), 0, ModelPool(ModelConfig()), 0)
    m = suite.ifeval(at, smollm, items, SamplingConfig(temperature=0.0, max_new_tokens=96, batch_size=6))
    assert m["prompts"] == 6 and m["instructions"] == sum(len(i.instruction_ids) for i in items)
    assert m["prompt_loose"] >= m["prompt_strict"] and m["instruction_loose"] >= m["instruction_strict"]
    assert 0 < m["instruction_loose"] < 1  # a 135M model follows some instructions, not all


def test_head_to_head_prefers_answers_over_noise(smollm, tiny_model_dir, tmp_path):
    """The real model's answers against a random tiny model's token soup, judged by the real
    model in both orders with token probabilities: the real answers win."""
    noise = ModelRef("noise", tiny_model_dir, "noise")
    prompts = [Prompt(f"q{i}", user_message(q)) for i, q in enumerate(QUESTIONS)]
    at = StageContext(RunStore(tmp_path), 0, ModelPool(ModelConfig()), 0)
    sampling = SamplingConfig(temperature=0.0, max_new_tokens=48, batch_size=6)
    answers = {
        ref.label: suite.answers(at, ref, prompts, sampling, name=f"answers_{ref.label}") for ref in (smollm, noise)
    }
    judge_cfg = JudgeConfig(
        pairwise_fewshot=True, sampling=SamplingConfig(temperature=0.0, max_new_tokens=96, batch_size=6)
    )
    m = suite.head_to_head(at, prompts, answers, smollm, judge_cfg)
    assert m["prompts"] == 6 and m["wins"] + m["ties"] + m["losses"] + m["unparsed"] == 6
    assert m["n"] + m["dropped"] == 6
    assert m["win_rate"] is not None and m["win_rate"] > 50
