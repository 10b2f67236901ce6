"""Constitutional critique and revision: improve an answer against written principles.

Bai et al., "Constitutional AI: Harmlessness from AI Feedback" (2022), section 3: for a response,
draw one principle of the constitution, ask the model to critique the response against it, then
to revise the response in the light of the critique; the revisions are supervised data (SL-CAI)
and (revised, original) a preference the model itself produced. Here the constitution is a file
the user writes (YAML principles with a critique and a revision request, or a text file of one
principle per line); data/constitution.yaml is our small default.

    autoalign generate --model smollm2-135m-instruct --input prompts.jsonl --output revised.jsonl \
        --constitution builtin:constitution.yaml
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import yaml

from autoalign.data import resolve_data_path
from autoalign.generation.base import Generator, SamplingParams, request_seed
from autoalign.io import DataError
from autoalign.prompts import neutralize_tags, render
from autoalign.types import Message, user_message

CRITIQUE_TEMPLATE = "constitution_critique"
REVISION_TEMPLATE = "constitution_revision"
FIELDS = ("name", "critique", "revision")


@dataclass(frozen=True)
class Principle:
    name: str
    critique: str
    """What the critic is asked to look for."""
    revision: str
    """How the reviser is asked to change the response."""


def _from_text(path: Path, text: str) -> list[Principle]:
    principles = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        rule = line.strip()
        if not rule or rule.startswith("#"):
            continue
        principles.append(
            Principle(
                name=f"line_{line_no}",
                critique=f"Point out every way the response does not follow this principle: {rule}",
                revision=f"Rewrite the response so that it follows this principle: {rule}",
            )
        )
    return principles


def _from_yaml(path: Path, text: str) -> list[Principle]:
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        raise DataError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(root, yaml.MappingNode):
        raise DataError(f"{path}:1: expected a mapping with a 'principles' list")
    top = {key.value: value for key, value in root.value}
    listed = top.get("principles")
    if not isinstance(listed, yaml.SequenceNode):
        raise DataError(f"{path}:1: field 'principles': expected a list of {{name, critique, revision}}")
    principles = []
    for index, node in enumerate(listed.value):
        where = f"{path}:{node.start_mark.line + 1}: principles[{index}]"
        if not isinstance(node, yaml.MappingNode):
            raise DataError(f"{where}: expected a mapping with {', '.join(FIELDS)}")
        fields = {key.value: value for key, value in node.value}
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise DataError(f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(FIELDS)})")
        values = {}
        for name in FIELDS:
            value = fields.get(name)
            if not isinstance(value, yaml.ScalarNode) or not str(value.value).strip():
                raise DataError(f"{where}: field {name!r}: missing or empty (a non-empty string)")
            values[name] = str(value.value).strip()
        principles.append(Principle(**values))
    return principles


def load_constitution(spec: str) -> list[Principle]:
    """A constitution file (builtin:NAME or a path): YAML `principles: [{name, critique,
    revision}]`, or text with one principle per line (# comments). Errors name file and line."""
    path = resolve_data_path(spec)
    if not path.is_file():
        raise DataError(f"{path}: constitution file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 (byte {e.start})") from None
    principles = _from_yaml(path, text) if path.suffix in (".yaml", ".yml") else _from_text(path, text)
    if not principles:
        raise DataError(f"{path}: the constitution has no principles")
    names = [p.name for p in principles]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(f"{path}: principle name {repeated[0]!r} appears more than once")
    return principles


def draw_principle(principles: list[Principle], seed: int, messages: list[Message], index: int = 0) -> Principle:
    """The principle an answer is revised against: a function of the run's seed, the request and
    which answer it is, so a resumed run draws the same one."""
    return principles[random.Random(request_seed(seed, messages, index)).randrange(len(principles))]


@dataclass(frozen=True)
class Revision:
    principle: str
    original: str
    critique: str
    revised: str
    tokens: int
    """Tokens generated for the critique and the revision."""
    finish_reason: str = "stop"
    """The revision's ("length": cut off at max tokens; "error": the critique or the revision failed)."""
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def critique_and_revise(
    generator: Generator,
    principles: list[Principle],
    requests: list[list[Message]],
    answers: list[str],
    params: SamplingParams,
    seed: int,
) -> list[Revision]:
    """One critique -> revision pass per answer, each against a principle drawn for it."""
    drawn = [draw_principle(principles, seed, req) for req in requests]
    quoted = [(neutralize_tags(r[-1]["content"]), neutralize_tags(a)) for r, a in zip(requests, answers)]
    one = replace(params, n=1)
    critique_prompts = [
        user_message(render(CRITIQUE_TEMPLATE, instruction=q, answer=a, critique_request=p.critique))
        for (q, a), p in zip(quoted, drawn)
    ]
    critiques = [c for [c] in generator.generate(critique_prompts, one)]
    revision_prompts = [
        user_message(
            render(
                REVISION_TEMPLATE,
                instruction=q,
                answer=a,
                critique_request=p.critique,
                critique=neutralize_tags(c.text.strip()),
                revision_request=p.revision,
            )
        )
        for (q, a), p, c in zip(quoted, drawn, critiques)
    ]
    revisions = [c for [c] in generator.generate(revision_prompts, one)]
    out = []
    for p, answer, c, r in zip(drawn, answers, critiques, revisions):
        error = c.error or r.error
        finish = "error" if error else r.finish_reason
        out.append(Revision(p.name, answer, c.text.strip(), r.text.strip(), c.num_tokens + r.num_tokens, finish, error))
    return out
