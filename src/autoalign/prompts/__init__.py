"""Every prompt the product sends lives here as a text file; `render` fills its ${fields}.

string.Template syntax (${name}) keeps literal braces in prompts (JSON, code) harmless.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path
from string import Template

PROMPTS_DIR = Path(__file__).parent


@cache
def load_prompt(name: str) -> Template:
    path = PROMPTS_DIR / f"{name}.txt"
    return Template(path.read_text(encoding="utf-8").rstrip("\n"))


def template_digest(*names: str) -> str:
    """A digest of these templates' text: part of the key of every stage that sends them, so
    editing a template re-runs what it produced."""
    blob = "\x00".join(f"{name}\x00{load_prompt(name).template}" for name in sorted(names))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def render(name: str, **fields: str) -> str:
    """Fill a template; a missing field is an error, never a silently empty slot."""
    return load_prompt(name).substitute(**fields)


# The tags judge and critic templates wrap untrusted text in (the question, the answers).
_FENCE_TAG = re.compile(r"<(\s*/?\s*)(question|response(?:[\s_-]*[ab])?)(?=[\s>/]|$)", re.IGNORECASE)


def neutralize_tags(text: str) -> str:
    """Untrusted text (an answer under review, a question) with every opening or closing fence
    tag of our templates turned into a visibly inert `&lt;/response>`, so it cannot close its
    block and speak to the judge from outside it."""
    return _FENCE_TAG.sub(lambda m: "&lt;" + m.group(1) + m.group(2), text)
