"""Every IFEval checker with a passing and a failing case, loose scoring, accuracy, data errors."""

import json
import re

import pytest

from autoalign.verifiers.ifeval import CHECKERS, load_ifeval, score_response
from autoalign.verifiers.ifeval.checkers import sentences, words
from autoalign.verifiers.ifeval.data import IFEvalPrompt
from autoalign.verifiers.ifeval.scoring import accuracy, follows, loose_variants
from autoalign.io import DataError

BUNDLED_IFEVAL = "builtin:ifeval_input_data.jsonl"

GERMAN = "Das ist eine kurze Antwort auf Deutsch. Sie beschreibt das Wetter in der Stadt und die Menschen dort."
HINDI = "यह हिंदी में एक छोटा उत्तर है। मौसम आज बहुत अच्छा है और लोग खुश हैं।"
ENGLISH = "This is a short answer written in plain English about the weather in the city today."

# (instruction id, kwargs, response, followed?)
CASES = [
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "at least"},
        "I am VERY HAPPY today.",
        True,
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "less than"},
        "I am VERY HAPPY today.",
        False,
    ),
    ("change_case:english_capital", {}, ENGLISH.upper(), True),
    ("change_case:english_capital", {}, ENGLISH, False),
    ("change_case:english_capital", {}, GERMAN.upper(), False),
    ("change_case:english_lowercase", {}, ENGLISH.lower(), True),
    ("change_case:english_lowercase", {}, ENGLISH, False),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Write a poem."}, "write a poem. Roses are red.", True),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Write a poem."}, "Sure! Write a poem. Roses are red.", False),
    ("combination:two_responses", {}, "God.\n******\nThe Almighty.", True),
    ("combination:two_responses", {}, "God.\n******\nGod.", False),
    ("combination:two_responses", {}, "God.\n******\nAllah.\n******\nJehovah.", False),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "Dear [name], at [address].", True),
    ("detectable_content:number_placeholders", {"num_placeholders": 3}, "Dear [name], at [address].", False),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hello.\n\nP.S. See you soon.", True),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"}, "Hello.\np. p. s. one more thing", True),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hello, this has no postscript.", False),
    ("detectable_format:constrained_response", {}, "My answer is no.", True),
    ("detectable_format:constrained_response", {}, "No, it is not.", False),
    ("detectable_format:json_format", {}, '```json\n{"name": "diaper", "soft": true}\n```', True),
    ("detectable_format:json_format", {}, '{"name": "diaper", soft: true}', False),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "SECTION", "num_sections": 2},
        "SECTION 1\nIntro.\nSECTION 2\nEnd.",
        True,
    ),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "SECTION", "num_sections": 2},
        "SECTION 1\nOnly one section.",
        False,
    ),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "Points:\n* first\n* second", True),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* first\n- second\n* third", False),
    (
        "detectable_format:number_highlighted_sections",
        {"num_highlights": 2},
        "The *first part* and **second part** matter.",
        True,
    ),
    (
        "detectable_format:number_highlighted_sections",
        {"num_highlights": 2},
        "Only *one* here, and ** ** is empty.",
        False,
    ),
    ("detectable_format:title", {}, "<<A Poem About Joy>>\nJoy is here.", True),
    ("detectable_format:title", {}, "<< >>\nNo real title.", False),
    ("keywords:existence", {"keywords": ["river", "stone"]}, "The River ran past a stone.", True),
    # The benchmark matches keywords inside longer words too ("rivers" has "river").
    ("keywords:existence", {"keywords": ["river", "stone"]}, "The rivers ran past a stone.", True),
    ("keywords:existence", {"keywords": ["river", "stone"]}, "The brook ran past a stone.", False),
    ("keywords:forbidden_words", {"forbidden_words": ["bad"]}, "Nothing badly wrong here.", True),
    ("keywords:forbidden_words", {"forbidden_words": ["bad"]}, "That was Bad.", False),
    (
        "keywords:frequency",
        {"keyword": "cat", "frequency": 2, "relation": "at least"},
        "Cat and cat and a category.",
        True,
    ),
    (
        "keywords:frequency",
        {"keyword": "cat", "frequency": 2, "relation": "less than"},
        "Cat and cat and a category.",
        False,
    ),
    (
        "keywords:letter_frequency",
        {"letter": "z", "let_frequency": 3, "let_relation": "at least"},
        "Zebras zig zag.",
        True,
    ),
    (
        "keywords:letter_frequency",
        {"letter": "z", "let_frequency": 3, "let_relation": "less than"},
        "Zebras zig zag.",
        False,
    ),
    ("language:response_language", {"language": "de"}, GERMAN, True),
    ("language:response_language", {"language": "hi"}, HINDI, True),
    ("language:response_language", {"language": "de"}, ENGLISH, False),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
        'First part.\n\n"Then, the end."',
        True,
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
        "First part.\n\nAfter that, the end.",
        False,
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 3, "nth_paragraph": 2, "first_word": "then"},
        "First part.\n\nThen the end.",
        False,
    ),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "One paragraph.\n***\nTwo paragraphs.", True),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "One.\n***\n***\nTwo.", False),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "One.\n\nTwo, but no divider.", False),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": "less than"},
        "Dr. Smith came. He left!",
        True,
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": "at least"},
        "Dr. Smith came. He left!",
        False,
    ),
    (
        "length_constraints:number_words",
        {"num_words": 5, "relation": "at least"},
        "It's a well-known fact, truly.",
        True,
    ),
    # Words are runs of letters and digits, as the benchmark counts them: "It's" and "well-known" are two each.
    ("length_constraints:number_words", {"num_words": 6, "relation": "at least"}, "It's a well-known fact.", True),
    ("length_constraints:number_words", {"num_words": 7, "relation": "at least"}, "It's a well-known fact.", False),
    ("punctuation:no_comma", {}, "No commas here at all.", True),
    ("punctuation:no_comma", {}, "Yes, one comma.", False),
    (
        "startend:end_checker",
        {"end_phrase": "Is there anything else I can help with?"},
        "Done. Is there anything else I can help with?\n",
        True,
    ),
    (
        "startend:end_checker",
        {"end_phrase": "Is there anything else I can help with?"},
        "Is there anything else I can help with? Bye.",
        False,
    ),
    ("startend:quotation", {}, '  "All of it quoted."  ', True),
    ("startend:quotation", {}, '"Not closed.', False),
]


@pytest.mark.parametrize("instruction_id,kwargs,response,expected", CASES)
def test_checker(instruction_id, kwargs, response, expected):
    assert follows(response, instruction_id, kwargs) is expected


def test_every_checker_has_a_passing_and_a_failing_case():
    passing = {c[0] for c in CASES if c[3]}
    failing = {c[0] for c in CASES if not c[3]}
    assert passing == failing == set(CHECKERS)


def test_empty_response_follows_nothing():
    assert not follows("  \n", "punctuation:no_comma", {})
    assert not follows("", "keywords:forbidden_words", {"forbidden_words": ["x"]})


def test_text_units():
    assert words("It's a well-known fact, truly.") == ["It", "s", "a", "well", "known", "fact", "truly"]
    # As Punkt splits: not at a bare line break, not after a title, an initial or "U.S."; after "e.g." yes.
    assert sentences("Mr. Lee said hi. Then he left! Did he?\n* A bullet line") == [
        "Mr. Lee said hi.",
        "Then he left!",
        "Did he?",
        "* A bullet line",
    ]
    assert sentences("SECTION 1\n* first point\n* second point.") == ["SECTION 1\n* first point\n* second point."]
    assert sentences("J. Smith lives in the U.S. now. Fruit, e.g. apples. Wait... what? Yes!! ok") == [
        "J. Smith lives in the U.S. now.",
        "Fruit, e.g.",
        "apples.",
        "Wait... what?",
        "Yes!!",
        "ok",
    ]


def test_loose_forgives_a_preamble_and_emphasis():
    item = IFEvalPrompt("1", "p", ["startend:quotation", "punctuation:no_comma"], [{}, {}])
    result = score_response(item, 'Sure, here it is:\n"A quoted answer."')
    assert result.strict == [False, False]
    assert result.loose == [True, True]
    assert "**x**" not in loose_variants("**x**")[4]


def test_accuracy_levels_hand_computed():
    items = [
        IFEvalPrompt("a", "p", ["punctuation:no_comma", "startend:quotation"], [{}, {}]),
        IFEvalPrompt("b", "p", ["punctuation:no_comma"], [{}]),
    ]
    results = [
        score_response(items[0], '"no comma"'),  # 2/2 strict
        score_response(items[1], "one, comma"),
    ]  # 0/1
    acc = accuracy(results, items)
    assert acc["prompt_strict"] == 0.5
    assert acc["instruction_strict"] == pytest.approx(2 / 3)
    assert acc["by_instruction"]["punctuation:no_comma"] == {"n": 2, "strict": 0.5, "loose": 0.5}


def test_bundled_file_loads_with_every_id_known():
    prompts = load_ifeval(BUNDLED_IFEVAL)
    assert len(prompts) == 541
    assert {i for p in prompts for i in p.instruction_ids} == set(CHECKERS)


@pytest.mark.parametrize(
    "row,message",
    [
        (
            {"key": 1, "prompt": "p", "instruction_id_list": ["no:such_id"], "kwargs": [{}]},
            ":2: field 'instruction_id_list[0]': unknown instruction id",
        ),
        (
            {"key": 1, "prompt": "p", "instruction_id_list": ["punctuation:no_comma"], "kwargs": []},
            ":2: field 'kwargs' has 0 entries for 1",
        ),
        (
            {
                "key": 1,
                "prompt": "p",
                "instruction_id_list": ["keywords:frequency"],
                "kwargs": [{"keyword": "x", "frequency": 2}],
            },
            "missing ['relation']",
        ),
        (
            {
                "key": 1,
                "prompt": "p",
                "instruction_id_list": ["keywords:frequency"],
                "kwargs": [{"keyword": "x", "frequency": "2", "relation": "at least"}],
            },
            "argument 'frequency' must be int",
        ),
        (
            {
                "key": 1,
                "prompt": "p",
                "instruction_id_list": ["keywords:frequency"],
                "kwargs": [{"keyword": "x", "frequency": 2, "relation": "about"}],
            },
            "must be one of",
        ),
        ({"key": 1, "instruction_id_list": [], "kwargs": []}, ":2: missing field 'prompt'"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, row, message):
    path = tmp_path / "ifeval.jsonl"
    good = {"key": 0, "prompt": "ok", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{"relation": None}]}
    path.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError, match=re.escape(message)) as err:
        load_ifeval(path)
    assert str(path) in str(err.value)
