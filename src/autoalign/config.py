"""Typed recipe configuration: YAML file + dotted `key=value` overrides.

Every section forbids unknown keys, so a typo fails before any model is loaded, with the
full dotted key in the message. Paths to data files are checked for existence here too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from autoalign.registry import BACKENDS, FEEDBACK, PREFERENCE_LOSSES

BUILTIN_PREFIX = "builtin:"


class ConfigError(ValueError):
    """A bad recipe: unknown key, wrong type, missing file. The message names the key."""


def redact_url(url: str) -> str:
    """The URL as it may be shown or written: credentials (user:password@) and query-string
    values (often keys or tokens) become ***."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "&".join(f"{k}=***" for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def registered(name: str, registry: dict, what: str) -> str:
    """name, if the registry (autoalign/registry.py) has it; else an error listing what it has."""
    if name not in registry:
        raise ValueError(f"unknown {what} {name!r} (known: {', '.join(registry)})")
    return name


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    NOT_IN_KEY: ClassVar[frozenset[str]] = frozenset()
    """Settings that never change a stage's result (e.g. how often to checkpoint)."""

    def key(self) -> dict[str, Any]:
        """What a stage key hashes: the settings that differ from their defaults (a dump relative
        to the defaults still tells any two configs apart). A setting added in a later version,
        with a default that keeps the old behaviour, so leaves finished stages and resumable
        checkpoints valid; changing a default's value means giving that setting a new name.
        Execution settings (NOT_IN_KEY, in nested sections too) never reach a key."""
        return self._execution_defaults().model_dump(mode="json", exclude_defaults=True, exclude=set(self.NOT_IN_KEY))

    def _execution_defaults(self) -> Section:
        """A copy whose nested sections have their NOT_IN_KEY settings at the default values."""
        updates = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, Section):
                default = field.default if isinstance(field.default, Section) else type(value)()
                reset = {n: getattr(default, n) for n in value.NOT_IN_KEY}
                updates[name] = value._execution_defaults().model_copy(update=reset)
        return self.model_copy(update=updates) if updates else self

    @model_validator(mode="before")
    @classmethod
    def _partial_sections_keep_their_defaults(cls, data: Any) -> Any:
        """`judge.sampling.max_new_tokens=8` changes that one setting of the judge's sampling
        section: the others keep the judge's defaults (greedy), not SamplingConfig's."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, field in cls.model_fields.items():
            if isinstance(field.default, Section) and isinstance(out.get(name), dict):
                out[name] = _deep_merge(field.default.model_dump(), out[name])
        return out

    def replaced(self, **changes: Any) -> Section:
        """A validated copy with some settings changed (model_copy(update=...) skips validation)."""
        return type(self).model_validate({**self.model_dump(), **changes})

    def key_without(self, *names: str) -> dict[str, Any]:
        """key() minus settings a particular stage does not read."""
        return {k: v for k, v in self.key().items() if k not in names}


class LoraConfig(Section):
    enabled: bool = False
    r: int = Field(16, gt=0)
    alpha: int = Field(32, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj"]


class ModelConfig(Section):
    name: str = "smollm2-135m-instruct"
    """A bundled name (see `autoalign models`), a local Hugging Face directory, or a hub id."""
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    """"auto": bfloat16 on a GPU, float32 on the CPU."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the model runs: "auto" is cuda when a GPU is present, else cpu. Not in stage keys."""
    chat_template: str | None = None
    """A Jinja chat template file, or a built-in name ("chatml", "gemma"); needed for base models
    that carry none."""
    backend: str = "transformers"
    """How the model generates (autoalign/registry.py BACKENDS); training always uses transformers."""

    NOT_IN_KEY: ClassVar[frozenset[str]] = frozenset({"device"})

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        return registered(value, BACKENDS, "generation backend")


class EndpointConfig(Section):
    """Any OpenAI-compatible chat-completions server: vLLM, llama.cpp server, Ollama, hosted APIs."""

    base_url: str
    """Up to and including the version prefix, e.g. http://127.0.0.1:8000/v1"""
    model: str
    """The model name the server expects in requests."""
    api_key_env: str | None = None
    """Name of the environment variable that holds the API key (the key itself is never written
    to the run store or the logs); None = send no key, as local servers expect."""
    max_concurrency: int = Field(4, gt=0)
    timeout_seconds: float = Field(120.0, gt=0)
    max_retries: int = Field(6, ge=0)
    """Retries per request on timeouts, connection errors, malformed replies, 429 and 5xx."""
    backoff_seconds: float = Field(1.0, gt=0)
    """First retry delay; doubles each retry, with jitter, up to backoff_max_seconds. A 429's
    Retry-After header takes precedence."""
    backoff_max_seconds: float = Field(60.0, gt=0)
    max_requests: int | None = Field(None, gt=0)
    """Budget: at most this many HTTP requests over the whole run, resumes included; items beyond
    it are recorded as failed ("request budget exhausted"). Cached answers cost nothing."""

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @property
    def display_url(self) -> str:
        """base_url without credentials: what logs, metrics, reports and config.yaml show."""
        return redact_url(self.base_url)


class SamplingConfig(Section):
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_new_tokens: int = Field(160, gt=0)
    batch_size: int = Field(8, gt=0)
    """Requests per forward pass: speed and memory only (every sample has its own seed), so it is
    never part of a stage key."""
    NOT_IN_KEY: ClassVar[frozenset[str]] = frozenset({"batch_size"})


class DataConfig(Section):
    ift: str = "builtin:seed_ift.jsonl"
    """IFT seed: JSONL/Parquet of {messages} or {prompt, response}; or builtin:NAME."""
    eft: str | None = "builtin:seed_eft.jsonl"
    heldout: str = "builtin:heldout_prompts.jsonl"
    """Held-out prompts for evaluation: {prompt} or {messages} rows."""

    @field_validator("ift", "eft", "heldout")
    @classmethod
    def _exists(cls, value: str | None) -> str | None:
        if value is None or value.startswith(BUILTIN_PREFIX):
            return value
        if not Path(value).exists():
            raise ValueError(f"file not found: {value}")
        return value


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
    checkpoint_minutes: float = Field(10.0, ge=0)
    """Save a resumable training state this often (wall time); 0 = never. A crashed stage
    resumes from the last one and ends bit-identical to an uninterrupted run."""
    NOT_IN_KEY: ClassVar[frozenset[str]] = frozenset({"checkpoint_minutes"})


class SFTConfig(TrainConfig):
    enabled: bool = False
    learning_rate: float = Field(2e-5, gt=0)
    use_eft: bool = True
    max_examples: int | None = Field(None, gt=0)
    """Train on a random subset of this many IFT (+EFT) examples (for quick runs)."""


class DPOConfig(TrainConfig):
    beta: float = Field(0.1, gt=0)
    loss: str = "dpo"
    """The preference loss, by its name in autoalign/registry.py PREFERENCE_LOSSES."""

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, value: str) -> str:
        return registered(value, PREFERENCE_LOSSES, "preference loss")


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
        return DataConfig._exists(value)


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
    pairwise_fewshot: bool = False
    """Show two worked pairwise comparisons (data/pairwise_demos.jsonl) before each pairwise
    verdict (teacher_reward.mode=pairwise, eval.pairwise): small judges need them to answer in
    the `Winner: A|B` format."""
    verifier: Literal["ifeval"] | None = None
    """A program judges the feedback instead of a model: "ifeval" scores each candidate 5 x the
    share of its prompt's verifiable instructions it follows (prompts from verifier_file, e.g.
    create_prompts.from_file set to the same file). The evaluation keeps the rubric judge."""
    verifier_file: str = "builtin:ifeval_input_data.jsonl"
    fewshot_scores: list[int] = []
    PAIRWISE_ONLY: ClassVar[frozenset[str]] = frozenset({"pairwise_fewshot"})
    """Read only by pairwise judging: rubric verdicts stay valid when they change."""
    """Show EFT judgements with these scores, in this order, as earlier chat turns before each
    verdict (e.g. [5, 1]). Lets a model that was not trained on EFT data (an instruct model used
    without SFT) follow the verdict format; needs data.eft."""

    @field_validator("fewshot_scores")
    @classmethod
    def _scores_in_range(cls, value: list[int]) -> list[int]:
        if any(not 0 <= s <= 5 for s in value):
            raise ValueError("scores must be between 0 and 5")
        return value


class TeacherConfig(Section):
    """A stronger (or better aligned) model that supplies the feedback: either in-process
    (`name`: a bundled name, local directory or hub id) or behind an OpenAI-compatible server
    (`endpoint`)."""

    name: str | None = None
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    chat_template: str | None = None
    endpoint: EndpointConfig | None = None
    sampling: SamplingConfig = SamplingConfig(temperature=0.7, top_p=0.9, max_new_tokens=256)
    """How the teacher writes its own answers (teacher_demo)."""

    @model_validator(mode="after")
    def _one_backend(self) -> TeacherConfig:
        if (self.name is None) == (self.endpoint is None):
            raise ValueError(
                "set exactly one of teacher.name (in-process model) and teacher.endpoint (OpenAI-compatible server)"
            )
        return self

    def model_config_for_pool(self) -> ModelConfig:
        return ModelConfig(name=self.name or "", dtype=self.dtype, chat_template=self.chat_template)


class TeacherRewardConfig(Section):
    mode: Literal["pointwise", "pairwise"] = "pointwise"
    """pointwise: the teacher scores each candidate with the 5-point rubric, best vs worst.
    pairwise: the teacher compares candidates two at a time, in both orders; an order-
    inconsistent verdict is a tie."""


class TeacherDemoConfig(Section):
    min_chars: int = Field(1, ge=1)
    """Teacher answers shorter than this count as empty and make no pair."""


class GoldConfig(Section):
    """gold_vs_sample: chosen = the dataset's reference answer, rejected = the student's sample."""

    file: str = "builtin:seed_ift.jsonl"
    """SFT data with reference answers: {messages} or {prompt, response} rows."""
    num_prompts: int = Field(16, gt=0)
    """The same prompts every iteration (the newest model plays against the data, as in SPIN)."""

    @field_validator("file")
    @classmethod
    def _exists(cls, value: str) -> str:
        return DataConfig._exists(value)


class PairsConfig(Section):
    min_margin: float = Field(0.0, ge=0)
    """Keep a pair only if chosen - rejected score exceeds this (ties are always dropped)."""


class EvalConfig(Section):
    enabled: bool = True
    num_prompts: int = Field(16, gt=0)
    judge: Literal["initial", "previous", "teacher"] = "initial"
    """Which model judges the comparison: "initial" = M1, the loop's first model (M0 after SFT, or
    M0 itself when SFT is off), fixed across iterations so scores stay comparable; "previous" =
    the iterate M_t being compared against; "teacher" = the recipe's teacher."""
    sampling: SamplingConfig = SamplingConfig(temperature=0.0)
    pairwise: bool = True
    """Also compare the two models' answers head to head: the judge picks the better answer,
    asked in both orders (win/tie/loss, order consistency, win rate, length-controlled win rate)."""
    ifeval_prompts: int = Field(0, ge=0)
    """Verifiable instruction following on the first N prompts of ifeval_file, for both models
    (0 = off; the full bundled set is 541 prompts)."""
    ifeval_file: str = "builtin:ifeval_input_data.jsonl"
    ifeval_sampling: SamplingConfig = SamplingConfig(temperature=0.0, max_new_tokens=384)
    reward_data: str | None = None
    """Prompts with ranked responses (see data/ranked.py): how well each new model judges,
    against the gold ranking (pairwise accuracy, Spearman, Kendall tau...). None = off."""
    reward_pool: bool = False
    """Rank all reward_data responses against each other (for files with one response per prompt)."""

    @field_validator("ifeval_file", "reward_data")
    @classmethod
    def _exists(cls, value: str | None) -> str | None:
        return DataConfig._exists(value)


def _known_source(name: str) -> str:
    return registered(name, FEEDBACK, "feedback source")


SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class RunConfig(Section):
    name: str = "run"
    """The run's directory under runs_dir: letters, digits, '.', '_' and '-', starting with a
    letter or digit (so it can never point outside runs_dir)."""
    loop: str = "self_reward"
    """Where the preference signal comes from; "mixed" combines the sources listed in `mix`."""
    mix: dict[str, float] = {}
    """loop=mixed: source -> weight of its pairs in the DPO loss, e.g. {teacher_demo: 1, self_reward: 0.5}."""
    branches: list[str] = []
    """Compare paradigms: from one M1 and the same prompts, train one M2 per listed source, each
    under runs/<name>/<source>/, and print a table comparing M1 and every M2."""
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
    dpo: DPOConfig = DPOConfig()
    eval: EvalConfig = EvalConfig()

    @field_validator("loop")
    @classmethod
    def _known_loop(cls, value: str) -> str:
        return value if value == "mixed" else _known_source(value)

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

    @property
    def sources(self) -> dict[str, float]:
        """Feedback source -> pair weight, for this run (or its first branch)."""
        if self.loop == "mixed":
            return dict(self.mix)
        return {self.loop: 1.0}

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
        used = set(self.branches) or set(self.sources)
        needs_teacher = sorted(s for s in used if FEEDBACK[s].needs_teacher)
        if needs_teacher and self.teacher is None:
            raise ValueError(f"{', '.join(needs_teacher)} needs a teacher: set teacher.name or teacher.endpoint")
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


def apply_override(tree: dict[str, Any], assignment: str) -> None:
    """Apply one `a.b.c=value` override; the value is parsed as YAML (so 3, 0.1, true, [a,b])."""
    if "=" not in assignment:
        raise ConfigError(f"override '{assignment}' must look like key=value")
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    if not all(p.strip() for p in parts):
        raise ConfigError(f"override '{assignment}': the key '{key}' has an empty part (expected e.g. dpo.beta=0.2)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"override '{assignment}': the value is not valid YAML ({_yaml_problem(e)})") from None
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override '{key}': '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def _yaml_problem(err: yaml.YAMLError) -> str:
    """One line: what is wrong and where (line:column, 1-based)."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key")
        elif not key:  # a rule across keys: the message names them
            lines.append(f"  {e['msg'].removeprefix('Value error, ')}")
        else:
            got = e.get("input")
            got = redact_url(got) if key.endswith("base_url") and isinstance(got, str) else got
            shown = repr(got)
            lines.append(f"  {key}: {e['msg']} (got {shown if len(shown) <= 120 else shown[:117] + '...'})")
    return f"invalid config {source}:\n" + "\n".join(lines)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_recipe(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The recipe's keys, with `extends: other.yaml` (relative to this file) merged underneath:
    a recipe states only what differs from the one it extends. `name` is never inherited."""
    if not path.exists():
        raise ConfigError(f"recipe not found: {path}" + (f" (extended by {seen[-1]})" if seen else ""))
    if path.resolve() in seen:
        raise ConfigError(f"{path}: recipes extend each other in a cycle")
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {_yaml_problem(e)}") from None
    if tree is None:
        raise ConfigError(f"{path}: the recipe is empty (write at least `name: my_run`, or extend another recipe)")
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of keys to values")
    name = tree.get("name", path.stem)
    if "extends" in tree:
        base = read_recipe(path.parent / str(tree.pop("extends")), (*seen, path.resolve()))
        tree = _deep_merge(base, tree)
    tree["name"] = name
    return tree


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    tree: dict[str, Any] = {}
    source = "(defaults)"
    if path is not None:
        path = Path(path)
        source = str(path)
        tree = read_recipe(path)
    for assignment in overrides or []:
        apply_override(tree, assignment)
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as e:
        raise ConfigError(_format_errors(e, source)) from None
