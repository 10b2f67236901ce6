"""Verifiable-instruction feedback: constraint registry and synthesis, repairs, the quality guard,
the programmatic critic, and the loop on the tiny model."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from autoalign.synth.constraints import CONFLICTS, SAMPLERS, conflicts, phrasebook, sample_constraints
from autoalign.synth.attacker import WeaknessMap
from autoalign.stages.verifiable import critique, fixed_answer
from autoalign.synth.verifiable import EvaluationFilter, Task, bundled_tasks, synthesize
from autoalign.types import Candidate
from autoalign.verifiers.guard import quality_problem
from autoalign.verifiers.ifeval import IFEvalPrompt, load_ifeval
from autoalign.verifiers.ifeval.checkers import detect_language, sentences
from autoalign.verifiers.ifeval.checkers import words as checked_words
from autoalign.verifiers.ifeval.repair import REPAIRS, complete_prefix, plain_sentences, repair_response
from autoalign.verifiers.ifeval.scoring import follows

FIX = Path(__file__).parent / "fixtures"
IFEVAL = load_ifeval("builtin:ifeval_input_data.jsonl")
MODEL_ANSWERS = [json.loads(line)["response"] for line in (FIX / "ifeval_smollm2_answers.jsonl").open()]
TASK = "Write a short note about keeping bees."


def _para(n: int, word: str = "Bees") -> str:
    return f"{word} make honey in the hive every summer day."


def compliant(instruction_id: str, k: dict) -> str:
    """A text written to follow one constraint, by hand, per type."""
    body = "Bees make honey in the hive. They work hard all summer. Keepers check them often."
    at_least = lambda rel: rel == "at least"
    texts = {
        "change_case:capital_word_frequency": lambda: " ".join(
            ["BEES"] * (k["capital_frequency"] if at_least(k["capital_relation"]) else k["capital_frequency"] - 1)
        )
        + " make honey in the hive.",
        "change_case:english_capital": lambda: body.upper(),
        "change_case:english_lowercase": lambda: body.lower(),
        "combination:repeat_prompt": lambda: k["prompt_to_repeat"] + "\n" + body,
        "combination:two_responses": lambda: body + "\n******\nHoney is sweet and bees are busy.",
        "detectable_content:number_placeholders": lambda: body
        + " "
        + " ".join(f"[f{i}]" for i in range(k["num_placeholders"])),
        "detectable_content:postscript": lambda: body + f"\n\n{k['postscript_marker']} More soon.",
        "detectable_format:constrained_response": lambda: "My answer is yes.",
        "detectable_format:json_format": lambda: json.dumps({"note": body}),
        "detectable_format:multiple_sections": lambda: "\n".join(
            f"{k['section_spliter']} {i + 1}\n{body}" for i in range(k["num_sections"])
        ),
        "detectable_format:number_bullet_lists": lambda: "\n".join(f"* point {i}" for i in range(k["num_bullets"])),
        "detectable_format:number_highlighted_sections": lambda: body
        + " "
        + " ".join(f"*part {i}*" for i in range(k["num_highlights"])),
        "detectable_format:title": lambda: "<<On Bees>>\n" + body,
        "keywords:existence": lambda: body + " " + " ".join(k["keywords"]) + ".",
        "keywords:forbidden_words": lambda: body,
        "keywords:frequency": lambda: body
        + " "
        + " ".join([k["keyword"]] * (k["frequency"] if at_least(k["relation"]) else k["frequency"] - 1)),
        "keywords:letter_frequency": lambda: body.replace(k["letter"], "")
        + " "
        + k["letter"] * (k["let_frequency"] if at_least(k["let_relation"]) else k["let_frequency"] - 1),
        "language:response_language": lambda: {
            "es": "Las abejas hacen miel en la colmena durante todo el verano y trabajan mucho.",
            "fr": "Les abeilles font du miel dans la ruche pendant tout l'été et travaillent beaucoup.",
            "de": "Die Bienen machen den ganzen Sommer Honig im Bienenstock und arbeiten sehr viel.",
            "it": "Le api producono il miele nell'alveare per tutta l'estate e lavorano molto.",
            "pt": "As abelhas fazem mel na colmeia durante todo o verão e trabalham muito.",
            "nl": "De bijen maken de hele zomer honing in de korf en werken heel erg hard.",
        }[k["language"]],
        "length_constraints:nth_paragraph_first_word": lambda: "\n\n".join(
            (f"{k['first_word'].capitalize()} bees" if i + 1 == k["nth_paragraph"] else "Bees") + " work hard."
            for i in range(k["num_paragraphs"])
        ),
        "length_constraints:number_paragraphs": lambda: "\n***\n".join(["Bees work hard."] * k["num_paragraphs"]),
        "length_constraints:number_sentences": lambda: " ".join(
            ["Bees work."] * (k["num_sentences"] if at_least(k["relation"]) else k["num_sentences"] - 1)
        ),
        "length_constraints:number_words": lambda: " ".join(
            ["bees"] * (k["num_words"] if at_least(k["relation"]) else k["num_words"] - 1)
        ),
        "punctuation:no_comma": lambda: body,
        "startend:end_checker": lambda: body + " " + k["end_phrase"],
        "startend:quotation": lambda: f'"{body}"',
    }
    return texts[instruction_id]()


def violating(instruction_id: str, k: dict) -> str:
    """A text that breaks the constraint: the compliant one, changed where it matters."""
    flip = {"at least": "less than", "less than": "at least"}
    for name in ("relation", "capital_relation", "let_relation"):
        if name in k:  # the compliant text for the other relation breaks this one
            return compliant(instruction_id, {**k, name: flip[k[name]]})
    breaks = {
        "change_case:english_capital": lambda: "Bees Make Honey.",
        "change_case:english_lowercase": lambda: "Bees make honey.",
        "combination:repeat_prompt": lambda: "Bees make honey.",
        "combination:two_responses": lambda: "Bees make honey.",
        "detectable_content:number_placeholders": lambda: "Bees make honey.",
        "detectable_content:postscript": lambda: "Bees make honey.",
        "detectable_format:constrained_response": lambda: "Maybe, who knows.",
        "detectable_format:json_format": lambda: "Bees {make} honey.",
        "detectable_format:multiple_sections": lambda: "Bees make honey.",
        "detectable_format:number_bullet_lists": lambda: "\n".join(f"* p{i}" for i in range(k["num_bullets"] + 1)),
        "detectable_format:number_highlighted_sections": lambda: "Bees make honey.",
        "detectable_format:title": lambda: "Bees make honey.",
        "keywords:existence": lambda: "Bees make honey.",
        "keywords:forbidden_words": lambda: "Bees make honey near the " + k["forbidden_words"][0] + ".",
        "language:response_language": lambda: "Bees make honey in the hive all summer and they work very hard.",
        "length_constraints:nth_paragraph_first_word": lambda: "Bees work.\n\nBees rest.\n\nBees eat.\n\nBees fly.\n\nBees x.",
        "length_constraints:number_paragraphs": lambda: "Bees work hard.",
        "punctuation:no_comma": lambda: "Bees, honey, hives.",
        "startend:end_checker": lambda: "Bees make honey.",
        "startend:quotation": lambda: "Bees make honey.",
    }
    return breaks[instruction_id]()


def test_every_constraint_type_round_trips_through_the_ifeval_format(tmp_path):
    rng = random.Random(0)
    assert set(SAMPLERS) == {i for item in IFEVAL for i in item.instruction_ids}  # all 25 ids
    rows = []
    for instruction_id in sorted(SAMPLERS):
        phrasings = phrasebook()["phrasings"][instruction_id]
        assert len(phrasings) >= 2
        for trial in range(8):
            kwargs = SAMPLERS[instruction_id](rng, TASK)
            rows.append({"key": len(rows), "prompt": TASK, "instruction_id_list": [instruction_id], "kwargs": [kwargs]})
            assert follows(compliant(instruction_id, kwargs), instruction_id, kwargs), (instruction_id, kwargs)
            assert not follows(violating(instruction_id, kwargs), instruction_id, kwargs), (instruction_id, kwargs)
    path = tmp_path / "synth.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert len(load_ifeval(str(path))) == 25 * 8  # the data validator accepts every sampled row


def test_synthesis_is_deterministic_distinct_compatible_and_never_like_an_evaluation_prompt():
    evaluation = EvaluationFilter([item.prompt for item in IFEVAL])
    held_out = ["detectable_format:title", "punctuation:no_comma"]
    allowed = sorted(set(SAMPLERS) - set(held_out))
    first = synthesize(bundled_tasks(), 1500, 7, evaluation, allowed)
    again = synthesize(bundled_tasks(), 1500, 7, evaluation, allowed)
    assert [r.prompt for r in first.rows] == [r.prompt for r in again.rows]
    assert len({r.prompt for r in first.rows}) == 1500
    ids = [i for r in first.rows for i in r.instruction_ids]
    assert not set(held_out) & set(ids) and len(set(ids)) == 23
    assert all(not conflicts(a, b) for r in first.rows for a in r.instruction_ids for b in r.instruction_ids if a != b)
    assert {len(r.instruction_ids) for r in first.rows} == {1, 2, 3}
    ifeval_texts = {item.prompt for item in IFEVAL}
    assert not any(r.prompt in ifeval_texts or evaluation.too_similar(r.prompt) for r in first.rows)
    # An evaluation prompt offered as a base task is dropped and counted.
    copied = synthesize([Task(IFEVAL[0].prompt, "user")], 5, 0, evaluation)
    assert copied.rows == [] and copied.dropped["task_like_evaluation_prompt"] > 0


def test_conflicting_types_are_never_drawn_together():
    rng = random.Random(3)
    for _ in range(300):
        drawn = [c.instruction_id for c in sample_constraints(rng, TASK, 3)]
        assert len(set(drawn)) == len(drawn)
        for group in CONFLICTS:
            assert len(group & set(drawn)) <= 1


CUTS = {"length_constraints:number_sentences", "length_constraints:number_words"}
LAYOUTS = {
    "detectable_format:number_bullet_lists",
    "length_constraints:number_paragraphs",
    "detectable_format:number_highlighted_sections",
}


def _words(text: str, dropped=frozenset()) -> list[str]:
    return [w for w in "".join(c if c.isalnum() else " " for c in text.lower()).split() if w not in dropped]


def _in_order(needles: list[str], haystack: list[str]) -> bool:
    rest = iter(haystack)
    return all(w in rest for w in needles)


def _may_refuse(instruction_id: str, kwargs: dict, text: str) -> bool:
    """Where no repair exists: the case checkers need text they can tell is English; a cut has
    nothing to drop under "at least"; a layout needs enough sentences to lay out."""
    if instruction_id.startswith("change_case:"):
        return detect_language(REPAIRS[instruction_id](text, **kwargs)) != "en"
    if instruction_id == "length_constraints:number_words":
        return kwargs["relation"] == "at least" or len(checked_words(sentences(text)[0])) >= kwargs["num_words"]
    if instruction_id == "length_constraints:number_sentences":
        return kwargs["relation"] == "at least" or kwargs["num_sentences"] == 1
    if instruction_id == "detectable_format:number_highlighted_sections":
        return sum(len(sentences(line)) for line in text.split("\n") if "*" not in line) < kwargs["num_highlights"]
    if instruction_id in LAYOUTS:
        return len(plain_sentences(text)) < max(kwargs.values())
    return False


@pytest.mark.parametrize("instruction_id", sorted(REPAIRS))
def test_every_repair_passes_its_checker_and_keeps_the_content(instruction_id):
    """Over SmolLM2's real answers (varied prose, lists, cut-off text) and sampled arguments: a
    repaired answer passes; a cut keeps a prefix of the words, a layout keeps >= 80% of them in
    order, any other repair keeps every word in order."""
    rng = random.Random(instruction_id)
    repaired_count = 0
    for text in MODEL_ANSWERS[:200]:
        kwargs = SAMPLERS[instruction_id](rng, TASK)
        if instruction_id == "keywords:forbidden_words" and len(text.split()) > 3:  # words the text does use
            kwargs = {"forbidden_words": rng.sample(sorted({w for w in text.split() if w.isalpha()} or {"x"}), 1)}
        item = IFEvalPrompt("k", TASK, [instruction_id], [kwargs])
        if follows(text, instruction_id, kwargs) or not text.strip():
            assert repair_response(item, text) is None  # nothing to repair
            continue
        fixed = repair_response(item, text)
        if fixed is None:
            assert _may_refuse(instruction_id, kwargs, text), text
            continue
        assert follows(fixed, instruction_id, kwargs)
        repaired_count += 1
        if instruction_id == "detectable_format:json_format":
            assert json.loads(fixed) == {"response": text.strip()}
            continue
        original, kept = _words(text, {w.lower() for w in kwargs.get("forbidden_words", [])}), _words(fixed)
        if instruction_id in CUTS:
            assert 0 < len(kept) < len(original) and original[: len(kept)] == kept
        elif instruction_id in LAYOUTS:
            assert _in_order(kept, original) and len(kept) >= 0.8 * len(original)
        else:
            assert _in_order(original, kept), "the original words survive, in order"
    assert repaired_count >= 20


def test_a_cut_off_answer_is_trimmed_to_where_it_could_have_stopped():
    intro = "Bees are insects that make honey and wax, and they live together in large colonies."
    listed = "Here are three facts:\n1. Bees dance to share where food is.\n2. A hive can hold"
    assert complete_prefix(f"{intro}\n\n{listed}") == intro  # the unfinished paragraph goes
    assert complete_prefix(f"{intro} {intro}\n1. Bees dance.\n2. A hive") == f"{intro} {intro}\n1. Bees dance."
    assert complete_prefix(f"{intro} They fly far to find flowers and") == intro  # last full sentence
    assert complete_prefix(f"{intro}\n\nHere are the facts:\n\n1. Bees") == intro  # a lead-in alone goes too
    assert complete_prefix("Bees make honey. They fly and") is None  # too little would remain
    # In the critic's pairs: the trimmed answer, repaired, beats the cut-off one.
    item = IFEvalPrompt("k", TASK, ["startend:end_checker"], [{"end_phrase": "Is there anything else?"}])
    cut = Candidate(f"{intro}\n\n{listed}", num_tokens=40, finish_reason="length")
    fixed = fixed_answer(item, cut, critique(item, cut, strict=True))
    assert fixed == f"{intro}\nIs there anything else?"
    looping = Candidate("Bees. " * 80, num_tokens=160, finish_reason="stop")
    assert fixed_answer(item, looping, critique(item, looping, strict=True)) is None  # only cut-offs are fixed


def test_repairs_combine_and_refuse_what_they_cannot_fix():
    item = IFEvalPrompt(
        "k",
        TASK,
        ["change_case:english_lowercase", "punctuation:no_comma", "startend:end_checker"],
        [{}, {}, {"end_phrase": "Any other questions?"}],
    )
    fixed = repair_response(item, "Bees, as you know, make Honey.")
    assert fixed == "bees as you know make honey.\nany other questions?"
    both = IFEvalPrompt(
        "k", TASK, ["punctuation:no_comma", "detectable_format:number_bullet_lists"], [{}, {"num_bullets": 3}]
    )
    assert repair_response(both, "Bees, honey.") is None  # one sentence cannot make three bullets
    bullets = repair_response(both, "Bees make honey. They live in hives, mostly. Some sting. Most do not.")
    assert bullets == "* Bees make honey. They live in hives mostly.\n* Some sting.\n* Most do not."
    unknown = IFEvalPrompt("k", TASK, ["combination:two_responses"], [{}])
    assert repair_response(unknown, "Bees make honey.") is None  # no deterministic repair


def test_the_guard_fails_degenerate_answers_whatever_the_constraints_say():
    assert quality_problem("") == "empty"
    assert quality_problem("   \n") == "empty"
    assert quality_problem("bees make honey all day long", "length") == "truncated"
    assert quality_problem("ok") == "too_short"
    assert quality_problem("i like bees. " * 40) == "repetition"
    assert quality_problem("Bees make honey.\n" * 5) == "repetition"
    assert quality_problem("Bees make honey in the hive, and keepers check the frames each week.", "stop") is None
    # An empty answer "follows" no-comma and lower-case by the checkers' letter, yet scores 0.
    from autoalign.stages.verifiable import critique

    item = IFEvalPrompt("k", TASK, ["punctuation:no_comma"], [{}])
    assert follows("no commas here at all", "punctuation:no_comma", {})
    cut = critique(item, Candidate(text="no commas here at all and", num_tokens=5, finish_reason="length"), strict=True)
    assert cut.score == 0.0 and any(f.constraint == "quality" and f.evidence == "truncated" for f in cut.findings)
    good = critique(
        item, Candidate(text="No commas here at all today.", num_tokens=6, finish_reason="stop"), strict=True
    )
    assert good.score == 5.0 and good.text == "All constraints are met."
    half = IFEvalPrompt("k", TASK, ["punctuation:no_comma", "startend:quotation"], [{}, {}])
    partial = critique(
        half, Candidate(text="No commas here at all today.", num_tokens=6, finish_reason="stop"), strict=True
    )
    assert partial.score == 2.5 and partial.text == "Not met: startend:quotation."


def test_the_guard_fails_an_answer_that_ignores_its_task():
    """Verifier-trained small models drift to answers that meet the constraints and leave the
    task: these (shapes seen in real runs) share no content word with it."""
    from autoalign.verifiers.guard import off_task

    task = "Write a short poem about the history of the bicycle."
    for drifted in (
        "The very last words of your answer must be: Thanks for reading!",
        "|Date|Saved|\n|D|199|199|\n|D|200|199|",
        "L'arte dei musei di Roma è la cioccola di Roma.",
        "The End of the tale, and a fine one it was indeed.",
    ):
        assert off_task(drifted, task), drifted
        assert quality_problem(drifted, "stop", task) == "off_task"
        assert quality_problem(drifted, "stop") is None  # without the task: not checked
    for on_topic in (
        "Two wheels and a chain, Bicycles rolled through the years.",  # plural, capitalised: same stem
        "A poem of gears and roads, of riders long ago.",
        "Historians say the first velocipede appeared in 1817.",
    ):
        assert not off_task(on_topic, task), on_topic
    # A 4-letter task word matches the longer words it begins ("moon" in "Moonlanded").
    assert not off_task("Moonlanded, the crew looked back at the Earth.", "Write a short poem about the moon landing.")
    assert off_task("The crew looked back at the Earth.", "Write a short poem about the moon.")
    assert not off_task("Anything at all, really.", "Write something about it.")  # no content word: no evidence
    # In the critic: score 0 and the reason; an answer in another language is not checked.
    item = IFEvalPrompt("k", task + " Use no commas.", ["punctuation:no_comma"], [{}])
    drifted = Candidate(text="The very last words of your answer must be: Thanks!", num_tokens=12, finish_reason="stop")
    crit = critique(item, drifted, strict=True, task=task)
    assert crit.score == 0.0 and [f.evidence for f in crit.findings if f.constraint == "quality"] == ["off_task"]
    assert critique(item, drifted, strict=True).score == 5.0  # what the verifier alone would reward
    italian = IFEvalPrompt("k", task, ["language:response_language"], [{"language": "it"}])
    answer = Candidate(
        text="Due ruote e una catena, la strada ci chiama ancora oggi.", num_tokens=14, finish_reason="stop"
    )
    assert not [f for f in critique(italian, answer, strict=True, task=task).findings if f.constraint == "quality"]


def test_the_loop_on_the_tiny_model_with_the_three_verified_sources(tiny_model_dir, tmp_path, monkeypatch):
    """The random tiny model never stops before max_new_tokens, so every answer would be truncated
    (degenerate): the toy echo backend answers instead; the tiny model trains."""
    from autoalign import registry
    from autoalign.io import read_json, read_jsonl
    from autoalign.loops import iterate
    from test_loop_tiny import make_verifier, tiny_config

    monkeypatch.setitem(registry.BACKENDS, "toy_echo", "toy_backend:make")
    cfg = tiny_config(
        tiny_model_dir,
        tmp_path,
        "model.backend=toy_echo",
        "loop=mixed",
        "mix={verified_samples: 1.0, verified_repair: 0.5, verified_refine: 1.0}",
        "verifiable.num_prompts=6",
        "verifiable.greedy_candidate=true",
        "verifiable.off_task_check=true",
        "iterations=2",
        "eval.ifeval_prompts=5",
        "eval.ifeval_final_prompts=7",
    )
    iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    ifeval_texts = {item.prompt for item in IFEVAL}
    repairs = []
    for t in (1, 2):
        it = tmp_path / f"tiny/iter_{t}"
        prompts = read_jsonl(it / "verifiable_prompts/data.jsonl")
        assert len(prompts) == 6 and not {p["prompt"] for p in prompts} & ifeval_texts
        assert not {i for p in prompts for i in p["instruction_id_list"]} & set(cfg.verifiable.held_out)
        assert all(p["prompt"].startswith(p["task"]) and p["task"] != p["prompt"] for p in prompts)
        greedy = read_jsonl(it / "verifiable_greedy/data.jsonl")
        assert len(greedy) == 6 and all(len(r["candidates"]) == 1 for r in greedy)
        critiques = read_json(it / "critiques/metrics.json")
        assert critiques["answers"] == 6 * (4 + 1) and critiques["attack_success"]  # n = 4 samples + the greedy one
        assert read_json(it / "verifiable_prompts/metrics.json")["attacker"] == (t == 2)  # from iteration 2 on
        mixed = read_json(it / "pairs/metrics.json")
        assert set(mixed["by_source"]) == {"verified_samples", "verified_repair", "verified_refine"}
        refinements = read_jsonl(it / "refinements/data.jsonl")
        assert refinements and all(len(r["refinements"]) == len(r["critiques"]) == 2 for r in refinements)
        request = "\n".join(r["text"] for r in read_jsonl(it / "refinements/data.jsonl")[0]["refinements"])
        assert request.startswith("echo ")  # the toy backend echoes the refine request's words
        repairs += read_jsonl(it / "pairs_verified_repair/data.jsonl")
        assert (it / "dpo/model/config.json").exists()
    assert repairs and all(r["source"] == "verified_repair" and r["chosen_score"] == 5.0 for r in repairs)
    assert all(r["chosen"][-1]["content"] != r["rejected"][-1]["content"] for r in repairs)
    # The evaluation pairs each new model with the one before it, on the slice ...
    for t, (new, old) in ((1, ("M2", "M1")), (2, ("M3", "M2"))):
        paired = read_json(tmp_path / f"tiny/iter_{t}/ifeval_paired_{new}_vs_{old}/metrics.json")
        assert paired["prompt_strict"]["prompts"] == 5 and paired["held_out"] == cfg.verifiable.held_out
    # ... and the final one with M1 on the larger final set (eval.ifeval_final_prompts; M1 in the shared store).
    final = read_json(tmp_path / "tiny/iter_2/ifeval_final_paired_M3_vs_M1/metrics.json")
    assert final["prompt_strict"]["prompts"] == 7 and final["model"] == "M3" and final["baseline"] == "M1"
    assert read_json(tmp_path / "tiny/iter_1/ifeval_final_M1/metrics.json")["prompts"] == 7
    from autoalign.summary import verdict

    line = verdict(tmp_path / "tiny")
    assert line.startswith("M3 vs M2: ") and "IFEval prompt strict" in line
    assert ". M3 vs M1 on 7 IFEval prompts: prompt strict " in line
    first = [p["prompt"] for p in read_jsonl(tmp_path / "tiny/iter_1/verifiable_prompts/data.jsonl")]
    second = [p["prompt"] for p in read_jsonl(tmp_path / "tiny/iter_2/verifiable_prompts/data.jsonl")]
    assert first != second  # each iteration draws new prompts


def test_an_unknown_held_out_type_fails_before_any_work(tiny_model_dir, tmp_path):
    from autoalign.config import ConfigError
    from autoalign.loops import iterate
    from test_loop_tiny import make_verifier, tiny_config

    cfg = tiny_config(tiny_model_dir, tmp_path, "loop=verified_repair", "verifiable.held_out=[no_such:type]")
    with pytest.raises(ConfigError, match=r"verifiable.held_out: unknown constraint type\(s\) \['no_such:type'\]"):
        iterate.run(cfg, log=lambda m: None, make_judge=make_verifier)
    assert not cfg.run_dir.exists()


def test_a_rewrite_is_accepted_only_when_the_critic_passes_it_in_full(tmp_path):
    from autoalign.stages.common import StageContext
    from autoalign.stages.verifiable import _failures, critique, refine_pairs
    from autoalign.store import RunStore

    item = IFEvalPrompt("p1", TASK, ["punctuation:no_comma", "startend:quotation"], [{}, {}])
    other = IFEvalPrompt("p2", TASK, ["punctuation:no_comma"], [{}])
    draft = Candidate(text="Bees, of course, make honey.", num_tokens=6, finish_reason="stop")
    crit = critique(item, draft, strict=True)
    assert crit.score == 0.0 and _failures(item, crit).count("\n- ") == 1  # two unmet, one line each
    rewrites = [
        Candidate(text='"Bees make honey."', num_tokens=4, finish_reason="stop"),  # meets both
        Candidate(text="Bees make honey.", num_tokens=4, finish_reason="stop"),  # still unquoted
    ]
    half_way = [Candidate(text="Bees make honey all day.", num_tokens=5, finish_reason="stop")]
    refinements = {
        "p1": {
            "original": 0,
            "refinements": [c.to_dict() for c in reversed(rewrites)],
            "critiques": [critique(item, c, True).to_dict() for c in reversed(rewrites)],
        },
        "p2": {
            "original": 0,
            "refinements": [c.to_dict() for c in half_way],
            "critiques": [critique(other, Candidate("Bees, yes.", 2, "stop"), True).to_dict()],
        },
    }
    at = StageContext(RunStore(tmp_path), 1, pool=None, seed=0)
    candidates = {"p1": [draft], "p2": [draft]}
    critiques = {"p1": [crit], "p2": [critique(other, draft, True)]}
    pairs = refine_pairs(at, [item, other], candidates, critiques, refinements)
    assert [(p.prompt_id, p.chosen, p.rejected, p.chosen_score, p.rejected_score) for p in pairs] == [
        ("p1", '"Bees make honey."', draft.text, 5.0, 0.0)
    ]
    from autoalign.io import read_json

    assert read_json(tmp_path / "iter_1/pairs_verified_refine/metrics.json")["dropped"] == {"no_rewrite_verified": 1}


def test_the_attacker_draws_where_the_learner_fails_yet_covers_every_type():
    """A learner that always fails no_comma on poems and always passes everything else: with a
    fixed seed, no_comma is drawn far more often for poems, and every type is still drawn."""
    ids = sorted(SAMPLERS)
    weakness = WeaknessMap()
    for instruction_id in ids:
        for _ in range(20):
            weakness.add(instruction_id, "poem", "fail" if instruction_id == "punctuation:no_comma" else "pass")
    rng = random.Random(0)
    draws = Counter()
    for _ in range(4000):
        weights = weakness.thompson_weights(rng, "poem", ids, explore=0.25)
        draws[rng.choices(ids, [weights[i] for i in ids])[0]] += 1
    others = [draws[i] for i in ids if i != "punctuation:no_comma"]
    assert draws["punctuation:no_comma"] > 10 * max(others)  # the weak spot is attacked
    assert min(others) >= 20  # and every type stays covered (explore share, ~4000 x 0.25 / 25 each)
    # On a kind of task with no history, every type is as likely.
    flat = Counter()
    for _ in range(2500):
        weights = weakness.thompson_weights(rng, "letter", ids, explore=0.0)
        flat[rng.choices(ids, [weights[i] for i in ids])[0]] += 1
    assert max(flat.values()) < 2.5 * min(flat.values())


def test_a_degenerate_answer_is_an_unknown_attack_outcome():
    prompt_rows = [{"id": "p", "task_kind": "poem"}]
    crit = lambda satisfied, degenerate: {
        "findings": [{"constraint": "punctuation:no_comma", "satisfied": satisfied, "evidence": ""}]
        + ([{"constraint": "quality", "satisfied": False, "evidence": "truncated"}] if degenerate else [])
    }
    rows = [{"id": "p", "critiques": [crit(False, False), crit(True, False), crit(True, True), crit(False, True)]}]
    cell = WeaknessMap.from_rows(prompt_rows, rows).attack_success()["punctuation:no_comma|poem"]
    assert cell == {"success_rate": 0.5, "fail": 1, "pass": 1, "unknown": 2}


def test_the_critic_gives_evidence_for_every_unmet_constraint():
    from autoalign.verifiers.ifeval.evidence import evidence

    rng = random.Random(1)
    for instruction_id in sorted(SAMPLERS):
        kwargs = SAMPLERS[instruction_id](rng, TASK)
        assert evidence(instruction_id, kwargs, compliant(instruction_id, kwargs)) == "followed"
        said = evidence(instruction_id, kwargs, violating(instruction_id, kwargs))
        assert said != "followed" and len(said) > 10, (instruction_id, said)
    assert evidence("punctuation:no_comma", {}, "Bees, honey, hives.") == "found 2 commas; commas are not allowed"
    words = {"num_words": 3, "relation": "less than"}
    assert evidence("length_constraints:number_words", words, "one two three four") == "4 words; needs fewer than 3"
    keywords = {"keywords": ["river", "stone"]}
    assert evidence("keywords:existence", keywords, "A river.") == "missing: stone"
