"""What every recipe section shares: unknown keys are errors, settings that do not change a
stage's result stay out of its key (key policy: Section.key), and partial sections keep their
own defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, model_validator

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
                out[name] = deep_merge(field.default.model_dump(), out[name])
        return out

    def replaced(self, **changes: Any) -> Section:
        """A validated copy with some settings changed (model_copy(update=...) skips validation)."""
        return type(self).model_validate({**self.model_dump(), **changes})

    def key_without(self, *names: str) -> dict[str, Any]:
        """key() minus settings a particular stage does not read."""
        return {k: v for k, v in self.key().items() if k not in names}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def existing_file(value: str | None) -> str | None:
    """A data file setting: None, builtin:NAME, or a path that exists."""
    if value is None or value.startswith(BUILTIN_PREFIX):
        return value
    if not Path(value).exists():
        raise ValueError(f"file not found: {value}")
    return value
