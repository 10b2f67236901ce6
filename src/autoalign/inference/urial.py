"""In-context alignment (URIAL): align a base model with a prompt instead of training.

Lin et al., "The Unlocking Spell on Base LLMs: Rethinking Alignment via In-Context Learning"
(ICLR 2024): alignment tuning mostly changes style, so a base model with a fixed system preamble
and a few (K = 3) stylistic demonstrations of answers before each request comes close to its
aligned version. Here the demonstrations are earlier turns of the conversation, rendered with the
model's own chat template; for a base model that carries none (Gemma 3 270M), the template the
bundled entry installs, whose turn-end token the demonstrations teach it to emit.

`InContextGenerator` wraps any generator, so every place that samples (the loops, the
evaluation, `autoalign generate --urial FILE`) can run the base model aligned this way.
data/urial.yaml is our default preamble and demonstrations.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from autoalign.data import resolve_data_path
from autoalign.generation.base import Generator, SamplingParams
from autoalign.io import DataError
from autoalign.types import Candidate, Message


@dataclass(frozen=True)
class InContextPrompt:
    preamble: str
    demonstrations: list[tuple[str, str]]
    """(query, answer) pairs, shown in order."""

    def messages(self, request: list[Message]) -> list[Message]:
        """The preamble as the system turn (joined to the request's own system turn, if it has
        one), the demonstrations as earlier turns, then the request."""
        system = [m["content"] for m in request if m["role"] == "system"]
        turns = [m for m in request if m["role"] != "system"]
        shown = [
            message
            for query, answer in self.demonstrations
            for message in ({"role": "user", "content": query}, {"role": "assistant", "content": answer})
        ]
        return [{"role": "system", "content": "\n\n".join([self.preamble, *system])}, *shown, *turns]


def load_in_context(spec: str) -> InContextPrompt:
    """A YAML file (builtin:NAME or a path): `preamble: str`, `demonstrations: [{query, answer}]`."""
    path = resolve_data_path(spec)
    if not path.is_file():
        raise DataError(f"{path}: in-context alignment file not found")
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 (byte {e.start})") from None
    except yaml.YAMLError as e:
        raise DataError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(tree, dict) or not isinstance(tree.get("preamble"), str) or not tree["preamble"].strip():
        raise DataError(f"{path}: field 'preamble': a non-empty string is required")
    demos = tree.get("demonstrations") or []
    if not isinstance(demos, list):
        raise DataError(f"{path}: field 'demonstrations': expected a list of {{query, answer}}")
    pairs = []
    for i, demo in enumerate(demos):
        ok = isinstance(demo, dict) and all(
            isinstance(demo.get(k), str) and demo[k].strip() for k in ("query", "answer")
        )
        if not ok or set(demo) - {"query", "answer"}:
            raise DataError(f"{path}: demonstrations[{i}]: expected exactly a non-empty query and answer")
        pairs.append((demo["query"].strip(), demo["answer"].strip()))
    unknown = sorted(set(tree) - {"preamble", "demonstrations"})
    if unknown:
        raise DataError(f"{path}: unknown field {unknown[0]!r} (fields: preamble, demonstrations)")
    return InContextPrompt(tree["preamble"].strip(), pairs)


class InContextGenerator:
    """Any generator, each request preceded by the preamble and the demonstrations."""

    def __init__(self, inner: Generator, prompt: InContextPrompt):
        self.inner, self.prompt = inner, prompt
        self.label = f"{inner.label}+in-context"
        self.usage = inner.usage

    def generate(self, requests: list[list[Message]], params: SamplingParams) -> list[list[Candidate]]:
        return self.inner.generate([self.prompt.messages(r) for r in requests], params)

    def close(self) -> None:
        self.inner.close()
