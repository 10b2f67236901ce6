"""The models a recipe names: the student (model), a teacher, an endpoint, and how they sample."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from autoalign.config.base import Section, redact_url, registered
from autoalign.registry import BACKENDS


class LoraConfig(Section):
    enabled: bool = False
    r: int = Field(16, gt=0)
    alpha: int = Field(32, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj"]


class LlamaCppConfig(Section):
    """The llama.cpp engine (model.backend: llamacpp): each checkpoint is exported to GGUF and
    served by a llama-server that autoalign starts on 127.0.0.1 and stops by its PID."""

    outtype: Literal["auto", "f32", "f16", "bf16", "q8_0"] = "auto"
    """Weight type of the exported GGUF (norms stay f32); part of the answers' key. auto = bf16
    where the CPU multiplies bf16 natively (avx512_bf16, AMX: ~1.7x f16's prompt reading and
    batched decoding in llama.cpp, bench/README.md), else f16."""
    parallel: int = Field(16, gt=0)
    """Sequences the server decodes at once (its slots); requests are sent this many at a time."""
    context_per_slot: int = Field(2048, gt=0)
    """Tokens of context each slot holds (prompt + answer)."""
    threads: int | None = Field(None, gt=0)
    """CPU threads; None = every core."""
    server: str | None = None
    """A llama-server binary to use; None = $AUTOALIGN_LLAMA_SERVER, `llama-server` on PATH, or
    one built once from llama.cpp's sources (engines/llamacpp_build.py)."""
    template_gguf: str | None = None
    """A GGUF file of the same architecture and tokenizer whose metadata the export reuses; None =
    the bundled model's own GGUF, or for other models llama.cpp's converter (convert_hf_to_gguf.py)."""

    NOT_IN_KEY: ClassVar[frozenset[str]] = frozenset({"parallel", "context_per_slot", "threads", "server"})


class VLLMConfig(Section):
    """The vLLM engine (model.backend: vllm, for a GPU machine with vLLM installed): each
    checkpoint directory is served by `vllm serve`, which autoalign starts on 127.0.0.1, waits for
    (GET /health), talks to through the HTTP backend and stops by its PID before training."""

    command: list[str] = ["vllm", "serve"]
    """The launcher; the checkpoint directory and the serving options are appended."""
    parallel: int = Field(64, gt=0)
    """Sequences decoded at once (vLLM's --max-num-seqs); requests are sent this many at a time."""
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1)
    extra_args: list[str] = []
    """More `vllm serve` options, e.g. ["--tensor-parallel-size", "2"]."""
    startup_seconds: float = Field(900.0, gt=0)
    """How long the server may take to load the model and capture its graphs."""

    NOT_IN_KEY: ClassVar[frozenset[str]] = frozenset(
        {"command", "parallel", "gpu_memory_utilization", "extra_args", "startup_seconds"}
    )


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
    """How the model generates (autoalign/registry.py BACKENDS): "transformers" (in-process),
    "llamacpp" (a managed llama.cpp server), "vllm" (a managed vLLM server), or "auto": vLLM on a
    GPU where it is installed, else llama.cpp when its server is installed, else transformers
    (decided when the run starts, and written to the run's config.yaml). Training always uses
    transformers."""
    llamacpp: LlamaCppConfig = LlamaCppConfig()
    vllm: VLLMConfig = VLLMConfig()

    NOT_IN_KEY: ClassVar[frozenset[str]] = frozenset({"device"})

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        return value if value == "auto" else registered(value, BACKENDS, "generation backend")


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
    """Requests decoded together (in-process; their n samples each are rows of the batch; a
    finished request's place is taken by a waiting one): speed and memory only (every sample has
    its own seed), so it is never part of a stage key."""
    NOT_IN_KEY: ClassVar[frozenset[str]] = frozenset({"batch_size"})


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
