"""The feedback side of a loop: prompt creation, sampling, judging, the sources' own settings,
and how judged candidates become pairs."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from autoalign.config.base import Section, existing_file, registered
from autoalign.config.models import SamplingConfig
from autoalign.registry import VERIFIERS


class CreatePromptsConfig(Section):
    num_prompts: int = Field(16, gt=0)
    """How many new prompts to keep per iteration."""
    from_file: str | None = None
    """Take prompts from this file ({prompt} or {messages} rows) instead of having the model write
    them: a random sample of num_prompts per iteration, different in each iteration."""
    shots: int = Field(8, gt=0)
    """Seed instructions shown in each few-shot request."""
    tasks_per_request: int = Field(5, gt=0)
    """How many new tasks each request asks for."""
    max_requests: int = Field(64, gt=0)
    """Upper bound on few-shot requests, so a model that writes nothing usable still stops."""
    similarity_threshold: float = Field(0.7, gt=0, le=1)
    """Drop a prompt whose ROUGE-L F1 against any kept or seed prompt exceeds this."""
    min_chars: int = Field(12, ge=1)
    max_chars: int = Field(400, gt=1)
    sampling: SamplingConfig = SamplingConfig(temperature=1.0, top_p=0.95, max_new_tokens=200)

    @field_validator("from_file")
    @classmethod
    def _exists(cls, value: str | None) -> str | None:
        return existing_file(value)


class SampleConfig(Section):
    n: int = Field(4, ge=1)
    """Candidates per prompt; best-vs-worst feedback (self_reward, teacher_reward) needs >= 2."""
    control_instruction: bool = True
    """Append the short "answer directly and concisely" instruction to each prompt."""
    sampling: SamplingConfig = SamplingConfig()


class JudgeConfig(Section):
    samples: int = Field(1, ge=1)
    """k judge samples per candidate; the score is their mean over the ones that parsed."""
    sampling: SamplingConfig = SamplingConfig(temperature=0.0, max_new_tokens=192)
    max_response_chars: int = Field(2000, gt=0)
    use_logprobs: bool = False
    """Score = the expected score under the judge's token probabilities at its verdict, when the
    backend returns top-k log-probabilities (both backends here do); else the integer written."""
    single_pass: bool = False
    """Verdicts without a written justification, from one prompt pass (and at most one decoding
    step): the judge's answer is started with `Score:` (rubric; the score is the expected value of
    the next token over 0..5) or `Winner:` (pairwise, each order; the likelier of A and B).
    bench/judge.py measures the speed-up over generated verdicts (2-3x for SmolLM2's rubric
    judging, whose prompts dominate the cost) and their agreement."""
    pairwise_fewshot: bool = False
    """Show two worked pairwise comparisons (data/pairwise_demos.jsonl) before each pairwise
    verdict (teacher_reward.mode=pairwise, eval.pairwise): small judges need them to answer in
    the `Winner: A|B` format."""
    verifier: str | None = None
    """A program judges the feedback instead of a model: "ifeval" scores each candidate 5 x the
    share of its prompt's verifiable instructions it follows (prompts from verifier_file, e.g.
    create_prompts.from_file set to the same file). The evaluation keeps the rubric judge."""
    verifier_file: str = "builtin:ifeval_input_data.jsonl"
    reward_model: str | None = None
    """A trained reward model judges the feedback instead (a directory `autoalign rm train` wrote,
    or any sequence classifier with one label): each answer's score is its reward. The
    evaluation keeps the rubric judge."""
    fewshot_scores: list[int] = []
    """Show EFT judgements with these scores, in this order, as earlier chat turns before each
    verdict (e.g. [5, 1]). Lets a model that was not trained on EFT data (an instruct model used
    without SFT) follow the verdict format; needs data.eft."""
    PAIRWISE_ONLY: ClassVar[frozenset[str]] = frozenset({"pairwise_fewshot"})
    """Read only by pairwise judging: rubric verdicts stay valid when they change."""

    @field_validator("verifier")
    @classmethod
    def _known_verifier(cls, value: str | None) -> str | None:
        return value if value is None else registered(value, VERIFIERS, "verifier")

    @model_validator(mode="after")
    def _one_program_or_model(self):
        if self.verifier and self.reward_model:
            raise ValueError("judge.verifier and judge.reward_model both replace the judge: set one")
        return self

    @field_validator("fewshot_scores")
    @classmethod
    def _scores_in_range(cls, value: list[int]) -> list[int]:
        if any(not 0 <= s <= 5 for s in value):
            raise ValueError("scores must be between 0 and 5")
        return value


class TeacherRewardConfig(Section):
    mode: Literal["pointwise", "pairwise"] = "pointwise"
    """pointwise: the teacher scores each candidate with the 5-point rubric, best vs worst.
    pairwise: the teacher compares candidates two at a time, in both orders; an order-
    inconsistent verdict is a tie."""


class TeacherDemoConfig(Section):
    min_chars: int = Field(1, ge=1)
    """Teacher answers shorter than this count as empty and make no pair."""


class ConstitutionConfig(Section):
    """constitutional feedback (Bai et al. 2022): each sampled answer is critiqued against a
    principle drawn from the constitution and revised; revised > original becomes a pair."""

    file: str = "builtin:constitution.yaml"
    """YAML `principles: [{name, critique, revision}]`, or a text file of one principle per line."""
    reviser: Literal["student", "teacher"] = "student"
    """Who critiques and revises: the model being trained (self-critique), or the recipe's teacher."""
    sampling: SamplingConfig = SamplingConfig(temperature=0.0, max_new_tokens=256)
    """Critique and revision sampling (greedy by default: one careful pass)."""
    min_chars: int = Field(1, ge=1)
    """Revisions shorter than this count as empty and make no pair."""


class ConsistencyConfig(Section):
    """self_consistency feedback (Wang et al. 2023): the answer most samples agree on is preferred
    over the minority's; prompts where the samples do not agree enough make no pair."""

    agreement: Literal["exact", "normalised", "rouge"] = "rouge"
    """How two samples agree: the same text, the same after normalising case, punctuation and
    spacing, or ROUGE-L F1 on words at or above `threshold` (free text)."""
    threshold: float = Field(0.5, gt=0, le=1)
    min_confidence: float = Field(0.5, ge=0, le=1)
    """The share of the samples the majority must hold (and not be tied) for a pair."""
    final_answer: bool = False
    """Vote on each sample's final answer (after "the answer is" / "Answer:", else its last
    line) instead of the whole text: for tasks with one right answer."""


class SelfRefineConfig(Section):
    """self_refine feedback (Madaan et al. 2023): an answer, feedback on it, a revision, up to
    max_rounds, each round scored by the recipe's judge; the best round is preferred over the
    first answer when it scores higher."""

    max_rounds: int = Field(2, ge=1)
    critic: Literal["student", "teacher"] = "student"
    """Who writes the feedback and the revisions: the model being trained, or the teacher."""
    sampling: SamplingConfig = SamplingConfig(temperature=0.0, max_new_tokens=256)
    """Feedback and revision sampling."""


class DebateConfig(Section):
    """debate feedback (Irving et al. 2018): two answers per prompt, two debaters argue for them
    over `rounds`, the judge decides from the transcript (in both orders); the verdict is a pair."""

    rounds: int = Field(1, ge=1)
    second_debater: Literal["student", "teacher"] = "student"
    """Who argues for the second answer (the first is always argued by the student)."""
    judge: Literal["student", "teacher"] = "student"
    sampling: SamplingConfig = SamplingConfig(temperature=0.7, max_new_tokens=128)
    """The debaters' sampling."""
    judge_sampling: SamplingConfig = SamplingConfig(temperature=0.0, max_new_tokens=128)
    single_pass: bool = False
    """The judge's reply is started with `Winner:` and its verdict read from the next token's
    probabilities in each order (as judge.single_pass): every verdict parses."""


class GoldConfig(Section):
    """gold_vs_sample: chosen = the dataset's reference answer, rejected = the student's sample."""

    file: str = "builtin:seed_ift.jsonl"
    """SFT data with reference answers: {messages} or {prompt, response} rows."""
    num_prompts: int = Field(16, gt=0)
    """The same prompts every iteration (the newest model plays against the data, as in SPIN)."""

    @field_validator("file")
    @classmethod
    def _exists(cls, value: str) -> str:
        return existing_file(value)


class PairsConfig(Section):
    min_margin: float = Field(0.0, ge=0)
    """Keep a pair only if chosen - rejected score exceeds this (ties are always dropped)."""


HELD_OUT_CONSTRAINTS = [
    "detectable_format:multiple_sections",
    "length_constraints:nth_paragraph_first_word",
    "detectable_format:constrained_response",
    "keywords:letter_frequency",
]


class VerifiableConfig(Section):
    """The verified_* feedback sources: prompts synthesised from base tasks plus verifiable
    constraints (synth/verifiable.py), answers checked by the IFEval checkers and a quality guard."""

    num_prompts: int = Field(64, gt=0)
    """New synthesised prompts per iteration (each iteration draws different ones)."""
    max_constraints: int = Field(3, ge=1, le=3)
    held_out: list[str] = HELD_OUT_CONSTRAINTS
    """Constraint types never used in training prompts; the evaluation reports them apart, to see
    whether a gain carries over to types the model was not trained on. Checked against the
    constraint registry before the run starts (loops/verified.py check_config)."""
    task_file: str | None = None
    """More base tasks: {prompt} or {messages} rows (the bundled writing tasks and the IFT seed
    prompts are always used)."""
    similarity_threshold: float = Field(0.6, gt=0, le=1)
    """Drop a synthesised prompt whose ROUGE-L F1 against an evaluation prompt exceeds this."""
    strict: bool = True
    """Score an answer by the instructions it follows strictly (else loosely: a preamble or a
    closing line forgiven)."""
    min_margin: float = Field(0.0, ge=0)
    """verified_samples: keep best vs worst only if their scores differ by more than this."""
    attacker: bool = True
    """From the second iteration on, draw constraint types where the learner failed before
    (Thompson sampling on its failure rates per type and task kind, synth/attacker.py)."""
    explore: float = Field(0.25, ge=0, le=1)
    """attacker: the share of draws that ignore the failure rates, so every type stays covered."""
    repairs_per_prompt: int = Field(1, ge=1)
    """verified_repair: fix up to this many of a prompt's failing answers (one pair each)."""
    refine_samples: int = Field(2, ge=1)
    """verified_refine: rewrites asked for per failing answer (sampled with sample.sampling)."""
    off_task_check: bool = False
    """The critic's guard also fails an answer that shares no content word with its base task
    (verifiers/guard.py off_task): verifier-trained small models drift to answers that meet the
    constraints and ignore the task. Not applied when the answer must be in another language."""
    greedy_candidate: bool = False
    """Add M_t's greedy answer to each prompt's sampled ones. Evaluation decodes greedily, and a
    degenerate greedy mode (a loop of `***`, "The End.") that sampling at T > 0 rarely shows is
    then critiqued, and rejected, like any other answer."""

    @field_validator("task_file")
    @classmethod
    def _exists(cls, value: str | None) -> str | None:
        return existing_file(value)
