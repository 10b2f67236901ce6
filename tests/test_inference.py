"""Inference-time methods: each checked by hand on hand-made scores or on the tiny model's real
samples judged by a scripted judge."""

from __future__ import annotations

from itertools import combinations

import pytest

from autoalign.inference.best_of_n import best_of_n, expected_best_of_n, pick_best
from autoalign.types import Judgment


class LengthJudge:
    """Scripted: an answer's score is its length in characters (None for an empty answer)."""

    def judge(self, items):
        return [
            Judgment(score=float(len(i.response)) if i.response else None, raw=["len"], parsed=bool(i.response))
            for i in items
        ]


def test_pick_best_takes_the_first_highest_and_never_an_unparsed_verdict():
    assert pick_best([1.0, 3.0, 3.0, 2.0]) == 1
    assert pick_best([None, 0.0, None]) == 1  # a parsed 0 beats an unparsed verdict
    assert pick_best([None, None]) == 0  # nothing parsed: what plain sampling would have returned


def brute_force(values, scores, n):
    """The mean over every n-subset of the value of its pick, ties split evenly."""
    ranks = [float("-inf") if s is None else s for s in scores]
    total = 0.0
    subsets = list(combinations(range(len(values)), n))
    for subset in subsets:
        top = max(ranks[i] for i in subset)
        tied = [values[i] for i in subset if ranks[i] == top]
        total += sum(tied) / len(tied)
    return total / len(subsets)


def test_expected_best_of_n_by_hand():
    values, scores = [1.0, 0.0, 0.0, 1.0], [5.0, 4.0, 3.0, 2.0]
    # n = 2 of 4: 6 pairs; the top-scored answer (value 1) is in 3 of them, the pair without it
    # picks answer 2 (value 0) twice (with 3 or 4) and answer 3 (value 0) once (with 4): 3/6.
    assert expected_best_of_n(values, scores, 2) == pytest.approx(0.5)
    assert expected_best_of_n(values, scores, 1) == pytest.approx(0.5)  # the plain mean
    assert expected_best_of_n(values, scores, 4) == pytest.approx(1.0)  # the best-scored one
    values, scores = [1.0, 0.0, 1.0, 0.0, 0.0], [2.0, 2.0, None, 1.0, 1.0]
    # n = 5: the two tied at 2 are each picked half the time -> 0.5
    assert expected_best_of_n(values, scores, 5) == pytest.approx(0.5)
    for n in range(1, 6):
        assert expected_best_of_n(values, scores, n) == pytest.approx(brute_force(values, scores, n))


def test_expected_best_of_n_rejects_bad_sizes():
    with pytest.raises(ValueError, match="needs 1 <= n <= 2"):
        expected_best_of_n([1.0, 0.0], [1.0, 2.0], 3)
    with pytest.raises(ValueError, match="2 values but 1 scores"):
        expected_best_of_n([1.0, 0.0], [1.0], 1)


def test_best_of_n_on_the_tiny_model_keeps_the_judges_favourite(tiny_model_dir):
    from autoalign.config import ModelConfig
    from autoalign.generation.base import SamplingParams
    from autoalign.runtime.pool import ModelPool, ModelRef
    from autoalign.types import user_message

    pool = ModelPool(ModelConfig(backend="transformers"))
    generator = pool.generator(ModelRef("tiny", tiny_model_dir, "tiny"), 4)
    requests = [user_message("Write a short poem about the sea."), user_message("What is the capital of France?")]
    params = SamplingParams(n=4, temperature=1.0, top_p=1.0, max_new_tokens=12, seed=3)
    picked = best_of_n(generator, LengthJudge(), requests, params)
    plain = generator.generate(requests, params)
    pool.close()
    assert [len(p.candidates) for p in picked] == [4, 4]
    for result, same in zip(picked, plain):
        assert [c.text for c in result.candidates] == [c.text for c in same]  # the same samples, seeded
        lengths = [len(c.text) for c in same]
        assert result.answer.text == same[lengths.index(max(lengths))].text
        assert result.scores == [float(n) if n else None for n in lengths]


def test_rouge_l_is_the_lcs_f1_on_words():
    from autoalign.inference.self_consistency import rouge_l

    # LCS("the cat sat on the mat", "The cat lay on a mat.") = "the cat on mat": 2 x 4 / (6 + 6)
    assert rouge_l("the cat sat on the mat", "The cat lay on a mat.") == pytest.approx(8 / 12)
    assert rouge_l("Paris", "paris!") == 1.0 and rouge_l("yes", "no") == 0.0


def test_clusters_by_each_agreement():
    from autoalign.inference.self_consistency import clusters

    texts = ["Paris", "paris.", "PARIS", "Lyon", "Paris"]
    assert clusters(texts, "exact") == [0, 1, 2, 3, 0]
    assert clusters(texts, "normalised") == [0, 0, 0, 1, 0]
    free = [
        "The sky is blue because air scatters blue light more than red light.",
        "Air scatters blue light more than red light, so the sky is blue.",
        "Because of Rayleigh scattering of sunlight by the air.",
        "The sky is blue because air scatters blue light more strongly than red.",
    ]
    # ROUGE-L with the first: the reordered one shares 8 of 12 words in order (16/24 = 0.67), the
    # near copy 12 of 12 and 13 (24/25 = 0.96), the Rayleigh one 2 of 12 and 9 (4/21 = 0.19).
    assert clusters(free, "rouge", threshold=0.7) == [0, 1, 2, 0]
    assert clusters(free, "rouge", threshold=0.6) == [0, 0, 1, 0]
    with pytest.raises(ValueError, match="agreement must be"):
        clusters(free, "embedding")


def test_consensus_confidence_ties_and_pairs_by_hand():
    from autoalign.inference.self_consistency import consensus, final_answer

    c = consensus(["4", "four", "4.", "5", "4"], "normalised")
    assert c.cluster == [0, 1, 0, 2, 0] and c.majority == 0 and c.confidence == pytest.approx(0.6) and not c.tied
    assert c.representative == 0
    assert c.preference_pairs(0.5) == [(0, 1), (0, 3)]  # the majority's "4" over "four" and over "5"
    assert c.preference_pairs(0.7) == []  # 3 of 5 is not sure enough
    tied = consensus(["a", "b", "a", "b"])
    assert tied.tied and tied.majority == 0 and tied.preference_pairs(0.0) == []
    assert consensus(["x", "x"]).preference_pairs() == []  # unanimous: nothing to prefer over
    assert final_answer("2 + 2 = 4, so\nthe answer is 4") == "4"
    assert final_answer("Answer: 7. Checking again, the answer is 12") == "12"
    assert final_answer("First line\n\n  42  \n") == "42"


class ScriptedReviser:
    """A generator that answers "draft" and revises by appending " +" to the draft it is shown
    (the revision prompt quotes the draft between <response> tags)."""

    label, usage = "scripted", None

    def generate(self, requests, params):
        from autoalign.types import Candidate

        out = []
        for messages in requests:
            text = messages[-1]["content"]
            if "<response>" in text:
                draft = text.split("<response>\n", 1)[1].split("\n</response>", 1)[0]
                out.append([Candidate(draft + " +", 2, "stop")])
            else:
                out.append([Candidate("draft", 1, "stop")])
        return out


class ScoreByRevisions:
    """Scripted judge: the k-th revision (k pluses) scores table[k]; None past the table."""

    def __init__(self, table):
        self.table = table

    def judge(self, items):
        ks = [i.response.count("+") for i in items]
        return [Judgment(score=self.table[k] if k < len(self.table) else None, raw=[], parsed=True) for k in ks]


def test_self_refine_keeps_the_best_round_and_stops_when_a_revision_is_no_better():
    from autoalign.generation.base import SamplingParams
    from autoalign.inference.self_refine import self_refine
    from autoalign.types import user_message

    always = lambda requests, answers: ["- be better"] * len(answers)
    params = SamplingParams(temperature=0.0)
    [r] = self_refine(ScriptedReviser(), ScoreByRevisions([1.0, 3.0, 2.0, 5.0]), always, [user_message("q")], params, 3)
    # round 1 improves (1 -> 3), round 2 does not (2): stop there, keep round 1, never see the 5
    assert [x.text for x in r.rounds] == ["draft", "draft +", "draft + +"]
    assert r.best == 1 and r.answer == "draft +" and r.stopped == "no_improvement"
    assert [x.feedback for x in r.rounds] == ["- be better", "- be better", None]
    assert r.tokens == 1 + 2 + 2
    [r] = self_refine(ScriptedReviser(), ScoreByRevisions([1.0, 2.0, 3.0, 4.0]), always, [user_message("q")], params, 2)
    assert len(r.rounds) == 3 and r.best == 2 and r.stopped == "max_rounds"
    # feedback with nothing to fix after the first revision
    once = lambda requests, answers: [None if "+" in a else "- add a plus" for a in answers]
    [r] = self_refine(ScriptedReviser(), ScoreByRevisions([1.0, 2.0, 3.0]), once, [user_message("q")], params, 3)
    assert len(r.rounds) == 2 and r.best == 1 and r.stopped == "nothing_to_fix"


LOWER_ENGLISH = "a cat is a small furry animal that likes to sleep in the sun"


def test_verifier_feedback_names_what_the_answer_misses():
    from autoalign.inference.self_refine import VerifierFeedback
    from autoalign.types import user_message
    from autoalign.verifiers.ifeval import IFEvalPrompt

    spec = IFEvalPrompt(
        key=1,
        prompt="Describe a cat.",
        instruction_ids=["punctuation:no_comma", "change_case:english_lowercase"],
        kwargs=[{}, {}],
    )
    feedback = VerifierFeedback([spec])
    notes = feedback(
        [user_message("Describe a cat.")] * 2 + [user_message("Other")], ["A cat, a pet.", LOWER_ENGLISH, "x"]
    )
    assert notes[0].startswith("- ") and len(notes[0].splitlines()) == 2  # a comma and a capital letter
    assert "comma" in notes[0].splitlines()[0]
    assert notes[1] is None and notes[2] is None  # follows both; a prompt without instructions
    # lowercase but too short to read as English: the feedback says so, not "0 capital letters"
    [note] = feedback([user_message("Describe a cat.")], ["a cat"])
    assert note == "- the text is not recognised as English (the language detector decides)"


def test_self_refine_on_the_tiny_model_with_its_own_feedback(tiny_model_dir):
    from autoalign.config import ModelConfig
    from autoalign.generation.base import SamplingParams
    from autoalign.inference.self_refine import SelfFeedback, self_refine
    from autoalign.runtime.pool import ModelPool, ModelRef
    from autoalign.types import user_message

    pool = ModelPool(ModelConfig(backend="transformers"))
    generator = pool.generator(ModelRef("tiny", tiny_model_dir, "tiny"), 4)
    params = SamplingParams(temperature=0.0, max_new_tokens=8)
    critic = SelfFeedback(generator, params)
    results = self_refine(
        generator, LengthJudge(), critic, [user_message("Write a poem."), user_message("Hi")], params, 2
    )
    pool.close()
    for r in results:
        assert 1 <= len(r.rounds) <= 3 and r.stopped in ("nothing_to_fix", "no_improvement", "max_rounds")
        scores = [x.score for x in r.rounds]
        assert r.best == pick_best(scores) and r.answer == r.rounds[r.best].text
        assert 0 < r.tokens <= 8 * len(r.rounds)  # every answer and revision, at most 8 tokens each
    assert critic.tokens > 0


def test_the_default_constitution_loads_and_principles_are_drawn_reproducibly():
    from autoalign.inference.constitutional import draw_principle, load_constitution
    from autoalign.types import user_message

    principles = load_constitution("builtin:constitution.yaml")
    assert len(principles) == 6 and principles[0].name == "follows_instructions"
    assert all(p.critique and p.revision for p in principles)
    request = user_message("Write a haiku about rain.")
    assert draw_principle(principles, 0, request) == draw_principle(principles, 0, request)
    drawn = {draw_principle(principles, 0, user_message(f"question {i}")).name for i in range(60)}
    assert drawn == {p.name for p in principles}  # every principle is drawn over 60 requests


def test_constitution_files_are_checked_with_file_and_line(tmp_path):
    from autoalign.inference.constitutional import load_constitution
    from autoalign.io import DataError

    text = tmp_path / "rules.txt"
    text.write_text("# mine\nBe kind.\n\nNever guess a number.\n")
    rules = load_constitution(str(text))
    assert [r.name for r in rules] == ["line_2", "line_4"]
    assert rules[1].critique.endswith("this principle: Never guess a number.")
    bad = tmp_path / "bad.yaml"
    bad.write_text("principles:\n  - name: a\n    critique: c\n    revision: r\n  - name: b\n    critique: ''\n")
    with pytest.raises(DataError, match=r"bad.yaml:5: principles\[1\]: field 'critique': missing or empty"):
        load_constitution(str(bad))
    bad.write_text("principles:\n  - name: a\n    critique: c\n    revision: r\n    weight: 2\n")
    with pytest.raises(DataError, match=r"bad.yaml:2: principles\[0\]: unknown field 'weight'"):
        load_constitution(str(bad))
    bad.write_text("rules: []\n")
    with pytest.raises(DataError, match="field 'principles'"):
        load_constitution(str(bad))
    bad.write_bytes(b"principles:\n  - name: caf\xe9\n")
    with pytest.raises(DataError, match="not UTF-8"):
        load_constitution(str(bad))
    with pytest.raises(DataError, match="not found"):
        load_constitution(str(tmp_path / "none.yaml"))


def test_critique_and_revise_on_the_tiny_model(tiny_model_dir):
    from autoalign.config import ModelConfig
    from autoalign.generation.base import SamplingParams
    from autoalign.inference.constitutional import critique_and_revise, draw_principle, load_constitution
    from autoalign.runtime.pool import ModelPool, ModelRef
    from autoalign.types import user_message

    principles = load_constitution("builtin:constitution.yaml")
    pool = ModelPool(ModelConfig(backend="transformers"))
    generator = pool.generator(ModelRef("tiny", tiny_model_dir, "tiny"), 4)
    requests = [user_message("Name a fruit."), user_message("Hi")]
    params = SamplingParams(temperature=0.0, max_new_tokens=6)
    out = critique_and_revise(generator, principles, requests, ["apple", "hello there"], params, seed=1)
    pool.close()
    assert [r.original for r in out] == ["apple", "hello there"]
    assert [r.principle for r in out] == [draw_principle(principles, 1, q).name for q in requests]
    assert all(0 < r.tokens <= 12 for r in out)


def test_in_context_prompt_puts_preamble_and_demonstrations_before_the_request():
    from autoalign.inference.urial import InContextPrompt, load_in_context

    prompt = InContextPrompt("Be helpful.", [("Q1", "A1"), ("Q2", "A2")])
    request = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert prompt.messages(request) == [
        {"role": "system", "content": "Be helpful.\n\nBe brief."},
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2"},
        {"role": "assistant", "content": "A2"},
        {"role": "user", "content": "Hi"},
    ]
    default = load_in_context("builtin:urial.yaml")
    assert default.preamble.startswith("You are a helpful") and len(default.demonstrations) == 3


def test_in_context_files_are_checked(tmp_path):
    from autoalign.inference.urial import load_in_context
    from autoalign.io import DataError

    bad = tmp_path / "urial.yaml"
    bad.write_text("preamble: ''\n")
    with pytest.raises(DataError, match="field 'preamble'"):
        load_in_context(str(bad))
    bad.write_text("preamble: Be good.\ndemonstrations:\n  - query: q\n")
    with pytest.raises(DataError, match=r"demonstrations\[0\]: expected exactly a non-empty query and answer"):
        load_in_context(str(bad))
    bad.write_text("preamble: Be good.\nshots: 3\n")
    with pytest.raises(DataError, match="unknown field 'shots'"):
        load_in_context(str(bad))


def test_in_context_generator_samples_what_the_model_samples_for_the_full_conversation(tiny_model_dir):
    from autoalign.config import ModelConfig
    from autoalign.generation.base import SamplingParams
    from autoalign.inference.urial import InContextGenerator, load_in_context
    from autoalign.runtime.pool import ModelPool, ModelRef
    from autoalign.types import user_message

    prompt = load_in_context("builtin:urial.yaml")
    pool = ModelPool(ModelConfig(backend="transformers"))
    inner = pool.generator(ModelRef("tiny", tiny_model_dir, "tiny"), 4)
    wrapped = InContextGenerator(inner, prompt)
    requests = [user_message("Name a fruit.")]
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=6, seed=5)
    aligned = wrapped.generate(requests, params)
    direct = inner.generate([prompt.messages(requests[0])], params)
    plain = inner.generate(requests, params)
    pool.close()
    assert [c.text for c in aligned[0]] == [c.text for c in direct[0]]
    assert [c.text for c in aligned[0]] != [c.text for c in plain[0]]  # another conversation, other answers
    assert wrapped.label == f"{inner.label}+in-context"


class ScriptedDebateModel:
    """Records every prompt. As a debater it argues "answer A is right" (its own answer is always
    shown as A); as the judge it picks the response that contains "correct"."""

    label, usage = "scripted", None

    def __init__(self):
        self.prompts = []

    def generate(self, requests, params):
        from autoalign.types import Candidate

        out = []
        for messages in requests:
            text = messages[-1]["content"]
            self.prompts.append(text)
            if text.endswith("now."):
                out.append([Candidate("Answer A is right.", 4, "stop")])
                continue
            a = text.split("<response_A>\n", 1)[1].split("\n</response_A>", 1)[0]
            out.append([Candidate("Reasons.\nWinner: " + ("A" if "correct" in a else "B"), 3, "stop")])
        return out


def test_debate_transcript_labels_follow_each_order_and_the_verdict_maps_back():
    from autoalign.generation.base import SamplingParams
    from autoalign.inference.debate import debate, judged_without_debate, render_transcript
    from autoalign.judges.pairwise import PairwiseItem
    from autoalign.types import user_message

    items = [
        PairwiseItem(user_message("2+2?"), first="4, correct", second="5"),
        PairwiseItem(user_message("Capital of France?"), first="Lyon", second="Paris, correct"),
    ]
    debater, judge = ScriptedDebateModel(), ScriptedDebateModel()
    params = SamplingParams(temperature=0.0)
    results = debate((debater, debater), judge, items, rounds=2, params=params, judge_params=params)
    assert [r.preference.winner for r in results] == ["first", "second"]
    assert [r.preference.verdicts for r in results] == [["first", "first"], ["second", "second"]]
    turns = results[0].turns
    assert [(t.round, t.defends) for t in turns] == [(1, "first"), (1, "second"), (2, "first"), (2, "second")]
    assert results[0].tokens == 4 * 4 + 2 * 3
    # 2 rounds x 2 debaters x 2 items, then 2 orders x 2 items for the judge
    assert len(debater.prompts) == 8 and len(judge.prompts) == 4
    # the second debater of round 2 sees its own answer as A and the first debater's argument as B's
    second_round_2 = debater.prompts[6]
    assert "<response_A>\n5\n</response_A>" in second_round_2
    assert "Round 1, debater for answer B: Answer A is right." in second_round_2
    assert "Round 1, debater for answer A: Answer A is right." in second_round_2
    swapped_judge = judge.prompts[1]
    assert "<response_A>\n5\n</response_A>" in swapped_judge
    assert swapped_judge.index("debater for answer B") < swapped_judge.index(
        "debater for answer A"
    )  # first's turn first
    assert render_transcript([], "A").startswith("(nothing yet")
    plain = judged_without_debate(ScriptedDebateModel(), items, params)
    assert [p.winner for p in plain] == ["first", "second"]


def test_debate_verdicts_that_disagree_across_orders_are_a_tie():
    from autoalign.generation.base import SamplingParams
    from autoalign.inference.debate import debate
    from autoalign.judges.pairwise import PairwiseItem
    from autoalign.types import Candidate, user_message

    class AlwaysA(ScriptedDebateModel):
        def generate(self, requests, params):
            return [[Candidate("Winner: A", 2, "stop")] for _ in requests]

    items = [PairwiseItem(user_message("q"), first="x", second="y")]
    params = SamplingParams(temperature=0.0)
    [result] = debate((ScriptedDebateModel(),) * 2, AlwaysA(), items, rounds=1, params=params, judge_params=params)
    assert result.preference.winner == "tie"  # position bias shows as disagreement, never as a verdict


def test_single_pass_debate_verdicts_come_from_the_label_probabilities_in_both_orders():
    import math

    from autoalign.generation.base import SamplingParams
    from autoalign.inference.debate import debate, judged_without_debate
    from autoalign.judges.pairwise import PairwiseItem
    from autoalign.types import Candidate, user_message

    class LeaningJudge(ScriptedDebateModel):
        """Started with `Winner:`, puts 0.8 on the response that contains "correct"."""

        def generate(self, requests, params):
            assert params.assistant_prefix == "Winner:" and params.max_new_tokens == 2 and params.top_logprobs
            out = []
            for messages in requests:
                a = messages[-1]["content"].split("<response_A>\n", 1)[1].split("\n</response_A>", 1)[0]
                p_a = 0.8 if "correct" in a else 0.2
                top = {" A": math.log(p_a), " B": math.log(1 - p_a)}
                out.append([Candidate(" A" if p_a > 0.5 else " B", 1, "length", tokens=[" A"], top_logprobs=[top])])
            return out

    items = [
        PairwiseItem(user_message("2+2?"), first="4, correct", second="5"),
        PairwiseItem(user_message("Capital of France?"), first="Lyon", second="Paris, correct"),
    ]
    params = SamplingParams(temperature=0.0)
    results = debate((ScriptedDebateModel(),) * 2, LeaningJudge(), items, 1, params, params, single_pass=True)
    assert [r.preference.winner for r in results] == ["first", "second"]
    # p_first averages P(first is better) over the two orders: 0.8 both times, then 0.2 both times
    assert [r.preference.p_first for r in results] == [pytest.approx(0.8), pytest.approx(0.2)]
    assert results[0].tokens == 2 * 4 + 2 * 1
    plain = judged_without_debate(LeaningJudge(), items, params, single_pass=True)
    assert [p.winner for p in plain] == ["first", "second"]


def test_consensus_pairs_by_hand():
    from autoalign.pairs import consensus_pairs
    from autoalign.types import Candidate, Prompt

    def cands(*texts, cut=()):
        return [Candidate(t, 3, "length" if i in cut else "stop") for i, t in enumerate(texts)]

    prompts = [Prompt(f"p{i}", [{"role": "user", "content": f"q{i}"}]) for i in range(6)]
    candidates = {
        "p0": cands("Paris.", "paris", "Lyon", "Paris", "Nice"),  # majority 3/5: over Lyon and over Nice
        "p1": cands("a", "b", "a", "b"),  # tied
        "p2": cands("x", "x", "x"),  # unanimous
        "p3": cands("y", "z"),  # two singletons: tied
        "p4": cands("k", "k", "m", cut=(0, 1)),  # the majority never finished
        "p5": cands("only one"),
    }
    pairs, dropped, metrics = consensus_pairs(prompts, candidates, "normalised", 0.5, 0.5, "self_consistency")
    assert [(p.prompt_id, p.chosen, p.rejected) for p in pairs] == [("p0", "Paris.", "Lyon"), ("p0", "Paris.", "Nice")]
    assert pairs[0].chosen_score == pytest.approx(0.6) and pairs[0].rejected_score == pytest.approx(0.2)
    assert dropped == {"uncertain": 2, "unanimous": 1, "majority_truncated": 1, "too_few_samples": 1}
    # confidences 0.6, 0.5, 1, 0.5, 2/3 over the five prompts that voted
    assert metrics["mean_confidence"] == pytest.approx((0.6 + 0.5 + 1 + 0.5 + 2 / 3) / 5)
    pairs, dropped, _ = consensus_pairs(prompts[:1], candidates, "normalised", 0.5, 0.7, "self_consistency")
    assert pairs == [] and dropped == {"uncertain": 1}  # 3 of 5 is below 0.7
    final = {"p0": cands("so the answer is 4", "2+2, answer: 4", "the answer is 5")}
    pairs, _, _ = consensus_pairs(prompts[:1], final, "normalised", 0.5, 0.5, "sc", vote_on=lambda t: t[-1])
    assert [(p.chosen, p.rejected) for p in pairs] == [("so the answer is 4", "the answer is 5")]  # whole samples
