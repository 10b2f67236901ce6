"""Seed and prompt loaders, the OASST tree loader, and errors naming file, line and field."""

import json

import pytest

from autoalign.data import load_eft, load_ift, load_prompts
from autoalign.data.oasst import load_oasst, rank_to_score
from autoalign.io import DataError
from autoalign.judges.rubric import eft_conversation
from autoalign.judges.rubric import parse_score

FIX = "tests/fixtures"


def test_ift_accepts_messages_and_prompt_response_rows():
    convs = load_ift(f"{FIX}/ift_small.jsonl")
    assert len(convs) == 6
    assert convs[0][-1]["role"] == "assistant" and convs[0][0]["content"] == "Write a short poem about the sea."
    assert convs[3] == [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
    ]


def test_ift_reads_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"prompt": "Hi?", "response": "Hello."}]), tmp_path / "ift.parquet")
    assert load_ift(str(tmp_path / "ift.parquet")) == [
        [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]
    ]


def test_prompts_loader_ids_and_messages():
    prompts = load_prompts(f"{FIX}/heldout_small.jsonl")
    assert [p.id for p in prompts] == ["h1", "h2", "h3"]
    assert prompts[2].text == "What is 3 + 4?"


def test_eft_loader_checks_the_score_line():
    examples = load_eft(f"{FIX}/eft_small.jsonl")
    assert [e.score for e in examples] == [4, 1]
    conv = eft_conversation(examples[0])
    assert conv[0]["role"] == "user" and "<response>\nParis.\n</response>" in conv[0]["content"]
    assert conv[1]["content"].endswith("Score: 4")


@pytest.mark.parametrize(
    "content,message",
    [
        ('{"prompt": "a", "response": "b"}\n{"prompt": "a"\n', "bad.jsonl:2: invalid JSON"),
        ('{"prompt": "a", "response": "b"}\n\n{"prompt": "a"}\n', "bad.jsonl:3: missing field 'response'"),
        ('{"prompt": 3, "response": "b"}\n', "bad.jsonl:1: field 'prompt' must be str"),
        (
            '{"messages": [{"role": "user", "content": "q"}]}\n',
            "bad.jsonl:1: field 'messages' must end with a 'assistant' message",
        ),
        ('{"messages": [{"role": "robot", "content": "q"}]}\n', "bad.jsonl:1: field 'messages[0]'"),
        ('{"text": "x"}\n', "bad.jsonl:1: expected field 'messages' or fields 'prompt' and 'response'"),
        ("[1, 2]\n", "bad.jsonl:1: expected a JSON object"),
    ],
)
def test_malformed_ift_names_file_line_and_field(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        load_ift(str(path))
    assert message in str(err.value)


def test_malformed_eft_names_the_judgement_field(tmp_path):
    path = tmp_path / "eft.jsonl"
    rows = [
        {"instruction": "q", "response": "r", "judgement": "fine\nScore: 3"},
        {"instruction": "q", "response": "r", "judgement": "no score here"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"eft.jsonl:2: field 'judgement' must end with a line 'Score: N'"):
        load_eft(str(path))


def test_missing_file_and_unknown_builtin():
    with pytest.raises(DataError, match="nope.jsonl: file not found"):
        load_ift("nope.jsonl")
    with pytest.raises(DataError, match="no built-in data file 'builtin:nope.jsonl'"):
        load_ift("builtin:nope.jsonl")


def test_rank_to_score_respects_order():
    assert [rank_to_score(r, 2) for r in range(2)] == [5, 1]
    assert [rank_to_score(r, 3) for r in range(3)] == [5, 3, 1]
    assert [rank_to_score(r, 5) for r in range(5)] == [5, 4, 3, 2, 1]
    six = [rank_to_score(r, 6) for r in range(6)]
    assert six[0] == 5 and six[-1] == 1 and all(a >= b for a, b in zip(six, six[1:]))


def test_oasst_loader_on_fixture():
    ift, eft = load_oasst(f"{FIX}/oasst_small.jsonl")
    # English user turns with a ranked English reply: egg (t1), soft yolk follow-up, prime (t3).
    assert len(ift) == 3
    egg = ift[0]
    assert egg[0]["content"] == "How do I boil an egg?" and egg[1]["content"].startswith("Cover the egg")
    follow_up = ift[1]
    assert [m["role"] for m in follow_up] == ["user", "assistant", "user", "assistant"]
    assert follow_up[-1]["content"] == "Simmer for about 6 minutes instead."
    assert all("Wie" not in c[0]["content"] for c in ift)
    # EFT: egg has 3 ranked English replies (the Spanish and unranked ones are skipped), prime has 2.
    egg_eft = [e for e in eft if e.instruction == "How do I boil an egg?"]
    assert [e.score for e in egg_eft] == [5, 3, 1]
    assert egg_eft[0].response.startswith("Cover the egg") and egg_eft[2].response == "Eggs are laid by hens."
    assert [e.score for e in eft if e.instruction == "Name a prime number."] == [5, 1]
    assert all(parse_score(e.judgement) == e.score for e in eft)


def test_oasst_malformed_tree_names_line_and_field(tmp_path):
    path = tmp_path / "trees.jsonl"
    good = open(f"{FIX}/oasst_small.jsonl").readline()
    bad = {
        "prompt": {
            "role": "prompter",
            "text": "q",
            "lang": "en",
            "replies": [{"role": "assistant", "lang": "en", "rank": 0}],
        }
    }
    path.write_text(good + json.dumps(bad) + "\n")
    with pytest.raises(DataError, match=r"trees.jsonl:2: field 'prompt.replies\[0\].text' missing"):
        load_oasst(path)


def test_judge_demonstrations_pick_shortest_example_per_score_in_order():
    from autoalign.judges.rubric import judge_demonstrations

    examples = load_eft(f"{FIX}/eft_small.jsonl")
    turns = judge_demonstrations(examples, [1, 4])
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[1]["content"].endswith("Score: 1") and turns[3]["content"].endswith("Score: 4")
    with pytest.raises(DataError, match="no unused EFT example with score 5"):
        judge_demonstrations(examples, [5])
    with pytest.raises(DataError, match="score 4"):
        judge_demonstrations(examples, [4, 4])


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_repeated_prompt_ids_name_both_lines(tmp_path):
    spec = _write(
        tmp_path / "p.jsonl", [{"id": "a", "prompt": "x"}, {"id": "b", "prompt": "y"}, {"id": "a", "prompt": "z"}]
    )
    with pytest.raises(DataError, match=r"p.jsonl:3: field 'id' repeats 'a' from line 1"):
        load_prompts(spec)


def test_empty_files_are_errors_naming_the_file(tmp_path):
    for loader, name in ((load_prompts, "heldout.jsonl"), (load_ift, "ift.jsonl"), (load_eft, "eft.jsonl")):
        (tmp_path / name).write_text("\n")
        with pytest.raises(DataError, match=rf"{name}: no .*\(the file is empty\)"):
            loader(str(tmp_path / name))


def test_empty_prompt_text_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"p.jsonl:2: the prompt is empty"):
        load_prompts(_write(tmp_path / "p.jsonl", [{"prompt": "ok"}, {"prompt": "  "}]))


def test_non_utf8_bytes_name_file_and_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"prompt": "fine"}\n{"prompt": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"p.jsonl:2: not UTF-8 \(byte 0xe9 at column 16\)"):
        load_prompts(str(path))


def test_a_parquet_file_that_is_not_parquet(tmp_path):
    (tmp_path / "p.parquet").write_text('{"prompt": "I am JSON"}\n')
    with pytest.raises(DataError, match=r"p.parquet: not a readable Parquet file"):
        load_prompts(str(tmp_path / "p.parquet"))


def test_ifeval_keys_must_be_unique(tmp_path):
    from autoalign.verifiers.ifeval import load_ifeval

    row = {"key": 7, "prompt": "Say hi.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
    with pytest.raises(DataError, match=r"if.jsonl:2: field 'key' repeats '7' from line 1"):
        load_ifeval(_write(tmp_path / "if.jsonl", [row, row]))


def test_prompt_past_the_model_context_fails_before_any_work(tiny_model_dir, tmp_path):
    from autoalign.loops import iterate
    from test_loop_tiny import make_verifier, tiny_config

    heldout = _write(tmp_path / "heldout.jsonl", [{"prompt": "Name two planets."}, {"prompt": "planet " * 5000}])
    cfg = tiny_config(tiny_model_dir, tmp_path, f"data.heldout={heldout}")  # the tiny model's context: 4096
    with pytest.raises(
        DataError,
        match=r"heldout.jsonl:2: the prompt is \d+ tokens; with eval.sampling.max_new_tokens=8 "
        r"it does not fit the model's context of 4096 tokens",
    ):
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    assert not cfg.run_dir.exists()


def test_a_sources_own_prompt_file_is_checked_before_any_work(tiny_model_dir, tmp_path):
    """gold_vs_sample answers the prompts of gold.file (the registry names the setting)."""
    from autoalign.loops import iterate
    from test_loop_tiny import make_verifier, tiny_config

    gold = _write(
        tmp_path / "gold.jsonl", [{"prompt": "Hi", "response": "Hello"}, {"prompt": "x " * 5000, "response": "y"}]
    )
    cfg = tiny_config(tiny_model_dir, tmp_path, "loop=gold_vs_sample", f"gold.file={gold}")
    with pytest.raises(
        DataError, match=r"gold.jsonl:2: the prompt is \d+ tokens; with sample.sampling.max_new_tokens=16"
    ):
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    assert not cfg.run_dir.exists()


def test_generation_refuses_a_prompt_past_the_context(tiny_loaded):
    from autoalign.generation.base import SamplingParams
    from autoalign.generation.hf import HFGenerator

    with pytest.raises(
        DataError, match=r"a prompt of \d+ tokens \+ max_new_tokens 8 exceeds the context .* \(4096 tokens\)"
    ):
        HFGenerator(tiny_loaded).generate(
            [[{"role": "user", "content": "planet " * 5000}]], SamplingParams(max_new_tokens=8)
        )


def test_empty_inputs_fail_before_the_run_directory_exists(tiny_model_dir, tmp_path):
    from autoalign.loops import iterate
    from test_loop_tiny import make_verifier, tiny_config

    (tmp_path / "empty.jsonl").write_text("")
    for setting in ("data.heldout", "create_prompts.from_file", "data.eft"):
        cfg = tiny_config(tiny_model_dir, tmp_path, f"{setting}={tmp_path / 'empty.jsonl'}")
        with pytest.raises(DataError, match=r"empty.jsonl: no .*\(the file is empty\)"):
            iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
        assert not cfg.run_dir.exists()


def test_pickle_only_model_directory_is_refused_with_advice(tmp_path):
    from autoalign.models import ModelNotFound, resolve_model

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    with pytest.raises(ModelNotFound, match=r"only pickle weights \(pytorch_model.bin\).*use_safetensors=False"):
        resolve_model(str(tmp_path))
