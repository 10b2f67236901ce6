"""Every prompt the product sends lives here as a text file; `render` fills its ${fields}.

string.Template syntax (${name}) keeps literal braces in prompts (JSON, code) harmless.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

PROMPTS_DIR = Path(__file__).parent


@cache
def load_prompt(name: str) -> Template:
    path = PROMPTS_DIR / f"{name}.txt"
    return Template(path.read_text(encoding="utf-8").rstrip("\n"))


def render(name: str, **fields: str) -> str:
    """Fill a template; a missing field is an error, never a silently empty slot."""
    return load_prompt(name).substitute(**fields)
