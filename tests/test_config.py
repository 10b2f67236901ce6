from pathlib import Path

import pytest

from autoalign.config import ConfigError, load_config


def test_defaults_and_overrides_parse_yaml_values(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("iterations: 2\ndpo:\n  beta: 0.2\n")
    cfg = load_config(
        recipe,
        ["dpo.learning_rate=1e-4", "sample.n=8", "dpo.lora.enabled=true", "dpo.lora.target_modules=[q_proj,v_proj]"],
    )
    assert cfg.name == "r" and cfg.iterations == 2
    assert cfg.dpo.beta == 0.2 and cfg.dpo.learning_rate == 1e-4
    assert cfg.sample.n == 8 and cfg.dpo.lora.enabled and cfg.dpo.lora.target_modules == ["q_proj", "v_proj"]
    assert cfg.run_dir == tmp_path.__class__("runs") / "r"


@pytest.mark.parametrize(
    "override,message",
    [
        ("dpo.betta=0.1", "dpo.betta: unknown key"),
        ("sample.n=many", "sample.n: Input should be a valid integer"),
        ("sample.n=0", "sample.n: Input should be greater than or equal to 1"),
        ("sample.n=1", "self_reward compares sample.n candidates per prompt: sample.n must be >= 2"),
        ("loop=teacher_demo", "teacher_demo needs a teacher: set teacher.name or teacher.endpoint"),
        ("loop=mixed", "loop=mixed needs mix"),
        ("teacher.endpoint.model=x", "teacher.endpoint.base_url: Field required"),
        ("data.ift=/nonexistent/seed.jsonl", "data.ift: Value error, file not found: /nonexistent/seed.jsonl"),
        ("create_prompts.from_file=missing.jsonl", "create_prompts.from_file: Value error, file not found"),
        (
            "loop=unknown_loop",
            "loop: Value error, unknown feedback source 'unknown_loop' (known: self_reward, teacher_reward",
        ),
        ("dpo=3", "override 'dpo' must look like key=value"),
    ],
)
def test_config_errors_name_the_key(override, message):
    if override == "dpo=3":
        override = "dpo"
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert message in str(err.value)


def test_missing_recipe_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="recipe not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("dpo: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)


def test_bundled_recipes_validate():
    recipes = sorted(Path("recipes").glob("*.yaml"))
    assert len(recipes) >= 9
    for path in recipes:
        cfg = load_config(path)
        assert cfg.name == path.stem
    replica = load_config("recipes/paper_replica.yaml")
    assert (
        replica.branches == ["self_reward", "teacher_reward", "teacher_demo"] and replica.model.name == "gemma-3-270m"
    )
    assert (
        replica.teacher.name == "smollm2-135m-instruct"
        and replica.create_prompts.num_prompts == 1000
        and replica.sft.max_examples is None
    )
    assert load_config("recipes/teacher_endpoint.yaml").teacher.endpoint.model == "smollm2"


def test_fewshot_judge_needs_eft_and_valid_scores():
    with pytest.raises(ConfigError, match="judge.fewshot_scores needs data.eft"):
        load_config(None, ["judge.fewshot_scores=[5,1]", "data.eft=null"])
    with pytest.raises(ConfigError, match="judge.fewshot_scores: Value error, scores must be between 0 and 5"):
        load_config(None, ["judge.fewshot_scores=[7]"])


def test_recipe_extends_another_and_keeps_its_own_name(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "name: base\nsample:\n  n: 6\n  sampling: {temperature: 0.5, max_new_tokens: 99}\ndpo: {beta: 0.3}\n"
    )
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nsample:\n  sampling: {temperature: 0.9}\n")
    cfg = load_config(tmp_path / "child.yaml", ["dpo.beta=0.2"])
    assert cfg.name == "child"
    assert cfg.sample.n == 6 and cfg.sample.sampling.temperature == 0.9 and cfg.sample.sampling.max_new_tokens == 99
    assert cfg.dpo.beta == 0.2
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "loop.yaml")
    (tmp_path / "orphan.yaml").write_text("extends: missing.yaml\n")
    with pytest.raises(ConfigError, match="recipe not found: .*missing.yaml"):
        load_config(tmp_path / "orphan.yaml")


def test_stage_keys_hash_only_settings_that_differ_from_defaults():
    from autoalign.config import CreatePromptsConfig, SamplingConfig, SFTConfig

    assert (
        SFTConfig().key() == {} and SFTConfig(checkpoint_minutes=1).key() == {}
    )  # checkpointing never changes results
    assert SFTConfig(learning_rate=1e-4).key() == {"learning_rate": 1e-4}

    class NewerSFT(SFTConfig):  # a later version adds a setting whose default keeps the old behaviour
        new_option: bool = False

    assert NewerSFT().key() == SFTConfig().key()
    # Dumps relative to the defaults still tell different configs apart (nested sections too).
    keys = [
        CreatePromptsConfig().key(),
        CreatePromptsConfig(sampling=SamplingConfig()).key(),
        CreatePromptsConfig(sampling=SamplingConfig(temperature=1.0, max_new_tokens=200)).key(),
        CreatePromptsConfig(sampling=SamplingConfig(temperature=0.8, max_new_tokens=200)).key(),
    ]
    assert keys[0] == keys[2] and len({str(k) for k in keys}) == 3


def test_pairwise_only_settings_leave_rubric_verdict_keys_alone():
    from autoalign.config import JudgeConfig

    plain, with_demos = JudgeConfig(), JudgeConfig(pairwise_fewshot=True)
    assert with_demos.key() != plain.key()  # pairwise stages re-run
    assert with_demos.key_without(*JudgeConfig.PAIRWISE_ONLY) == plain.key_without(*JudgeConfig.PAIRWISE_ONLY)


@pytest.mark.parametrize(
    "override, message",
    [
        ("dpo.beta=[1,", r"override 'dpo.beta=\[1,': the value is not valid YAML \(.* at line 1, column \d+\)"),
        ("=0.3", r"override '=0.3': the key '' has an empty part"),
        ("dpo..beta=0.3", r"override 'dpo..beta=0.3': the key 'dpo..beta' has an empty part"),
        ("dpo.beta", r"override 'dpo.beta' must look like key=value"),
    ],
)
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_config(None, [override])
    assert "\n" not in str(err.value)


def test_bad_recipe_files_are_one_line_errors(tmp_path):
    (tmp_path / "empty.yaml").write_text("\n# nothing here\n")
    with pytest.raises(ConfigError, match=r"empty.yaml: the recipe is empty"):
        load_config(tmp_path / "empty.yaml")
    (tmp_path / "bad.yaml").write_text("name: x\ndpo: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: invalid YAML: .* at line \d+, column \d+$") as err:
        load_config(tmp_path / "bad.yaml")
    assert "\n" not in str(err.value)
    (tmp_path / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin1.yaml: not UTF-8 text"):
        load_config(tmp_path / "latin1.yaml")


@pytest.mark.parametrize("name", ["..", "../escape", "a/b", "/abs", ".hidden", "", "x" * 101, "with space"])
def test_run_name_must_be_a_safe_file_name(name):
    with pytest.raises(ConfigError, match=r"name: Value error, must be 1-100 letters"):
        load_config(None, [f"name={name!r}" if name else "name=''"])


def test_credentials_in_endpoint_urls_are_redacted_where_shown():
    from autoalign.config import redact_url

    assert (
        redact_url("https://user:s3cret@api.example.com/v1?key=abc&x=1")
        == "https://***@api.example.com/v1?key=***&x=***"
    )
    assert redact_url("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080/v1"
    cfg = load_config(
        None, ["teacher.endpoint.base_url=https://user:s3cret@api.example.com/v1", "teacher.endpoint.model=m"]
    )
    assert (
        "s3cret" not in str(cfg.redacted_dump())
        and cfg.teacher.endpoint.display_url == "https://***@api.example.com/v1"
    )
    assert cfg.teacher.endpoint.base_url == "https://user:s3cret@api.example.com/v1"  # still used to connect
    with pytest.raises(ConfigError) as err:
        load_config(None, ["teacher.endpoint.base_url=ftp://user:s3cret@host/v1", "teacher.endpoint.model=m"])
    assert "s3cret" not in str(err.value) and "ftp://***@host/v1" in str(err.value)


def test_a_partial_override_keeps_the_sections_own_defaults():
    cfg = load_config(
        None,
        [
            "judge.sampling.max_new_tokens=8",
            "eval.sampling.batch_size=2",
            "teacher.name=t",
            "teacher.sampling.max_new_tokens=9",
        ],
    )
    assert (cfg.judge.sampling.temperature, cfg.judge.sampling.max_new_tokens) == (0.0, 8)  # still greedy
    assert (cfg.eval.sampling.temperature, cfg.eval.sampling.batch_size) == (0.0, 2)
    assert (cfg.teacher.sampling.temperature, cfg.teacher.sampling.top_p, cfg.teacher.sampling.max_new_tokens) == (
        0.7,
        0.9,
        9,
    )


def test_batch_sizes_of_generation_never_reach_a_stage_key():
    plain = load_config(None, [])
    fast = load_config(
        None,
        [
            "sample.sampling.batch_size=32",
            "judge.sampling.batch_size=2",
            "eval.sampling.batch_size=4",
            "create_prompts.sampling.batch_size=64",
            "eval.ifeval_sampling.batch_size=1",
        ],
    )
    for section in ("sample", "judge", "eval", "create_prompts"):
        assert getattr(fast, section).key() == getattr(plain, section).key(), section
    assert load_config(None, ["sample.sampling.temperature=0.5"]).sample.key() != plain.sample.key()
    assert load_config(None, ["dpo.batch_size=4"]).dpo.key() != plain.dpo.key()  # a training batch changes the result


def test_replaced_copies_are_validated():
    cfg = load_config(None, [])
    assert cfg.sample.replaced(n=1).n == 1
    with pytest.raises(Exception, match="greater than or equal to 1"):
        cfg.sample.replaced(n=0)


def test_autocast_off_on_the_command_line_is_not_a_boolean_error():
    """YAML turns a bare `off` into False: `dpo.autocast=off` must still mean "off"."""
    from autoalign.config.loading import load_config

    assert load_config("recipes/verifiable_if_small.yaml", ["dpo.autocast=off"]).dpo.autocast == "off"
    assert load_config("recipes/verifiable_if_small.yaml", ["dpo.autocast=on"]).dpo.autocast == "bf16"
    assert load_config("recipes/verifiable_if_small.yaml", ["sft.autocast=bf16"]).sft.autocast == "bf16"
