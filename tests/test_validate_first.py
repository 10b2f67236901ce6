"""Validate before writing (issue 15): every file a recipe names is read, encoding included, before
the run directory is created. A file with one Latin-1 byte stops the run with `file:line: not
UTF-8` (or `file: not UTF-8` for YAML) and leaves no runs/<name>/ behind."""

from __future__ import annotations

import pytest
from test_loop_tiny import make_verifier, tiny_config

from autoalign.config import ConfigError
from autoalign.io import DataError
from autoalign.loops import iterate

LATIN1_JSONL = b'\n{"prompt": "Caf\xe9 au lait?"}\n'  # line 2: the decoding fails before any field is read
LATIN1_YAML = b"preamble: caf\xe9\n"

# (setting, the recipe settings that make the run read it, the file's bytes)
LATE_READ_FILES = [
    ("data.ift", [], LATIN1_JSONL),
    ("data.eft", [], LATIN1_JSONL),
    ("data.heldout", [], LATIN1_JSONL),
    ("create_prompts.from_file", [], LATIN1_JSONL),
    ("eval.ifeval_file", ["eval.ifeval_prompts=2"], LATIN1_JSONL),
    ("eval.reward_data", [], LATIN1_JSONL),
    ("judge.verifier_file", ["judge.verifier=ifeval"], LATIN1_JSONL),
    ("gold.file", ["loop=gold_vs_sample"], LATIN1_JSONL),
    ("verifiable.task_file", ["loop=verified_samples"], LATIN1_JSONL),
    ("critic.calibration_file", ["loop=critic"], LATIN1_JSONL),
    ("constitution.file", ["loop=constitutional"], LATIN1_YAML),
    ("inference_time.urial", ["loop=inference_time", "inference_time.methods=[plain,urial]"], LATIN1_YAML),
    ("constitution.file", ["loop=inference_time", "inference_time.methods=[plain,constitutional]"], LATIN1_YAML),
]


@pytest.mark.parametrize(
    ("setting", "extra", "content"), LATE_READ_FILES, ids=[f"{s}({' '.join(e)})" for s, e, _ in LATE_READ_FILES]
)
def test_a_file_that_is_not_utf8_fails_before_the_run_directory_exists(
    tiny_model_dir, tmp_path, setting, extra, content
):
    bad = tmp_path / ("bad.yaml" if content is LATIN1_YAML else "bad.jsonl")
    bad.write_bytes(content)
    cfg = tiny_config(tiny_model_dir, tmp_path / "runs", *extra, f"{setting}={bad}")
    line = "" if content is LATIN1_YAML else ":2"
    with pytest.raises((DataError, ConfigError), match=rf"bad\.(jsonl|yaml){line}: not UTF-8"):
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    assert not cfg.run_dir.exists()
