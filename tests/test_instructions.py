import random

import pytest

from autoalign.synth.instructions import PromptFilter, fewshot_request, parse_tasks, rouge_l_f1, words


def test_rouge_l_hand_computed():
    a = words("the cat sat on the mat")
    b = words("the cat lay on the mat")
    # LCS = the cat on the mat = 5; P = R = 5/6
    assert rouge_l_f1(a, b) == pytest.approx(5 / 6)
    assert rouge_l_f1(words("a b c d"), words("d c b a")) == pytest.approx(0.25)
    assert rouge_l_f1([], b) == 0.0


def test_parse_tasks_and_truncated_last_line():
    text = "Sure! Here are tasks:\nTask: Write a poem about tea.\n2. Task: Explain tides to a child.\nTask 3: Give five uses for vinegar\nTask: List the"
    tasks, cut = parse_tasks(text, truncated=True)
    assert tasks == ["Write a poem about tea.", "Explain tides to a child.", "Give five uses for vinegar"]
    assert cut == 1
    assert len(parse_tasks(text, truncated=False)[0]) == 4


def test_filter_counts_every_drop_reason():
    f = PromptFilter(
        existing=["Write a short poem about the sea."], similarity_threshold=0.7, min_chars=12, max_chars=80
    )
    offered = [
        "Explain how tides work.",  # kept
        "  Explain how   tides work. ",  # exact duplicate after normalising
        "write a short poem about the sea!",  # exact duplicate of the seed (case/punctuation)
        "Write a short poem about the blue sea.",  # near duplicate of the seed
        "",  # empty
        "Hi there",  # too short
        "Describe " + "a very long thing " * 10,  # too long
        "Draw a picture of a horse.",  # unsuitable for a text model
        "Give three tips for saving money on food.",  # kept
    ]
    kept = [f.offer(t) for t in offered]
    assert kept == [True, False, False, False, False, False, False, False, True]
    assert f.kept == ["Explain how tides work.", "Give three tips for saving money on food."]
    assert f.dropped == {
        "exact_duplicate": 2,
        "near_duplicate": 1,
        "empty": 1,
        "too_short": 1,
        "too_long": 1,
        "unsuitable": 1,
    }


def test_fewshot_request_shows_k_seed_examples():
    seed = [f"Seed task number {i}." for i in range(20)]
    msgs = fewshot_request(seed, shots=8, rng=random.Random(0), count=8)
    content = msgs[0]["content"]
    assert content.count("Task: Seed task number") == 8
    assert "Write 8 new tasks" in content
