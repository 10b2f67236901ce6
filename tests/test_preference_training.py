"""The trainer with every preference loss on the tiny model: what each loss is given (pairs,
whole rankings, unpaired answers with KL partners, hindsight conversations), its first step
checked against the formula, and training moving the model the way the loss says."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from autoalign.config import DPOConfig
from autoalign.data import load_ift
from autoalign.models.loading import load_model
from autoalign.registry import PREFERENCE_LOSSES
from autoalign.train.data import answer_logprobs, encode_chat
from autoalign.train.dpo import train_dpo
from autoalign.train.hindsight import hindsight_conversations, negative_feedback
from autoalign.train.losses.ranking import rrhf_loss
from autoalign.train.preference_data import Labelled, kl_partners, load_unpaired
from autoalign.types import Pair
from test_training import Crash, CrashAfterSaves, Resuming, _assert_same, _weights

FIX = Path(__file__).parent / "fixtures"
SETTINGS = {"learning_rate": 1e-3, "epochs": 1, "batch_size": 4, "grad_accum": 1, "max_length": 128}


def _pairs(n: int = 6) -> list[Pair]:
    conversations = load_ift(str(FIX / "ift_small.jsonl"))[:n]
    return [
        Pair(f"p{i}", c[:-1], c[-1]["content"], conversations[i - 1][-1]["content"], 5, 1, "test")
        for i, c in enumerate(conversations)
    ]


def _mean_logps(loaded, prompt, answers: list[str]) -> torch.Tensor:
    encoded = [encode_chat(loaded.tokenizer, prompt, a, 128) for a in answers]
    with torch.no_grad():
        logps, mask = answer_logprobs(loaded.model, encoded, loaded.tokenizer.pad_token_id)
    return logps.sum(-1) / mask.sum(-1)


def _margins(loaded, pairs: list[Pair], per_token: bool) -> list[float]:
    """log pi(chosen) - log pi(rejected) of each pair (per answer token, or summed), under the
    plain prompts."""
    margins = []
    for p in pairs:
        encoded = [encode_chat(loaded.tokenizer, p.prompt, a, 128) for a in (p.chosen, p.rejected)]
        with torch.no_grad():
            logps, mask = answer_logprobs(loaded.model, encoded, loaded.tokenizer.pad_token_id)
        scores = logps.sum(-1) / (mask.sum(-1) if per_token else 1)
        margins.append((scores[0] - scores[1]).item())
    return margins


def _margin(loaded, pairs: list[Pair], per_token: bool) -> float:
    margins = _margins(loaded, pairs, per_token)
    return sum(margins) / len(margins)


LENGTH_NORMALISED = {"ipo", "simpo", "orpo", "rrhf", "pro"}


@pytest.mark.parametrize("name", sorted(set(PREFERENCE_LOSSES) - {"sigmoid", "coh"}))
def test_every_loss_trains_the_model_toward_the_chosen_answers(tiny_model_dir, name):
    """The margin each loss works on (summed log-probs, or per token for the length-normalised
    ones) widens, with the preference term alone (no SFT term), and the loss falls. RRHF's hinge
    has no margin to widen: it only reorders the pairs the model has the wrong way round."""
    pairs, per_token = _pairs(), name in LENGTH_NORMALISED
    before = _margin(load_model(tiny_model_dir), pairs, per_token)
    misordered = lambda loaded: sum(max(0.0, -m) for m in _margins(loaded, pairs, per_token))
    extra = {"simpo": {"beta": 2.0}, "orpo": {"beta": 1.0}}.get(name, {})
    settings = {"epochs": 4, "batch_size": 2, "learning_rate": 5e-3, "sft_weight": 0.0, "label_smoothing": 0.1}
    cfg = DPOConfig.model_validate(SETTINGS | {"loss": name, **settings, **extra})
    model, history, stats = train_dpo(load_model(tiny_model_dir), pairs, cfg, seed=1)
    loaded = load_model(tiny_model_dir)
    loaded.model.load_state_dict(model.state_dict())
    if name == "rrhf":
        assert misordered(loaded) < 0.5 * misordered(load_model(tiny_model_dir))
    else:
        assert _margin(loaded, pairs, per_token) > before + (0.05 if per_token else 0.1), name
    quarter = len(history) // 4
    mean_loss = lambda rows: sum(r["loss"] for r in rows) / len(rows)
    assert mean_loss(history[-quarter:]) < mean_loss(history[:quarter]), name
    assert stats["examples"] == (2 * len(pairs) if name == "kto" else len(pairs))


@pytest.mark.parametrize(
    "name, first_loss",
    [
        ("dpo", math.log(2)),
        ("cdpo", math.log(2)),
        ("robust", math.log(2)),
        ("ipo", 1 / (4 * 0.1**2)),
        ("kto", 0.5),  # lambda / 2 with lambda 1, z0 0
    ],
)
def test_losses_with_a_reference_start_at_their_value_at_the_reference(tiny_model_dir, name, first_loss):
    cfg = DPOConfig.model_validate(SETTINGS | {"loss": name, "label_smoothing": 0.2, "sft_weight": 0.0})
    history = train_dpo(load_model(tiny_model_dir), _pairs(4), cfg, seed=1)[1]
    assert history[0]["loss"] == pytest.approx(first_loss, abs=1e-4)
    if name == "kto":
        assert history[0]["kl"] == 0.0


def test_ranking_losses_receive_every_judged_answer(tiny_model_dir):
    """A pair carrying a 4-answer ranking trains RRHF on all four: the first step's loss is RRHF
    on the untrained model's mean log-probs of the four, plus the best answer's NLL."""
    answers = [c[-1]["content"] for c in load_ift(str(FIX / "ift_small.jsonl"))[:4]]
    prompts = [[{"role": "user", "content": q}] for q in ("Say something.", "Tell me a thing.")]
    ranking = {"ranked": answers, "ranked_scores": [4.0, 3.0, 2.0, 1.0]}
    pairs = [Pair(f"p{i}", q, answers[0], answers[3], 4.0, 1.0, "test", **ranking) for i, q in enumerate(prompts)]
    loaded = load_model(tiny_model_dir)
    scores = torch.stack([_mean_logps(loaded, p.prompt, answers) for p in pairs])
    expected = rrhf_loss(scores, torch.tensor([[4.0, 3.0, 2.0, 1.0]] * 2), torch.ones(2, 4, dtype=torch.bool))[0]
    cfg = DPOConfig.model_validate(SETTINGS | {"loss": "rrhf", "batch_size": 2})
    history = train_dpo(load_model(tiny_model_dir), pairs, cfg, seed=1)[1]
    nll = -scores[:, 0].mean().item()
    assert history[0]["chosen_nll"] == pytest.approx(nll, rel=1e-4)
    assert history[0]["loss"] == pytest.approx(expected.item() + nll, rel=1e-4)
    assert history[0]["rewards/accuracy"] == pytest.approx(
        ((scores[:, :, None] < scores[:, None, :]) & torch.ones(4, 4).triu(1).T.bool()).sum().item() / 12
    )


def test_a_pair_without_a_ranking_is_its_own_two_answer_ranking():
    pair = _pairs(2)[1]
    assert pair.ranking == ([pair.chosen, pair.rejected], [5, 1])
    unscored = Pair("x", pair.prompt, "a", "b")
    assert unscored.ranking == (["a", "b"], [1.0, 0.0])
    assert "ranked" not in unscored.to_dict()  # older pair files and DPO keys stay as they were
    ranked = Pair("x", pair.prompt, "a", "c", 3, 1, ranked=["a", "b", "c"], ranked_scores=[3, 2, 1])
    assert Pair.from_dict(ranked.to_dict()) == ranked


def test_kto_on_unpaired_answers(tiny_model_dir):
    """Three desirable answers and one undesirable, to four different prompts, no pairs: the
    desirable answers gain likelihood relative to the starting model, the undesirable one much
    less (a random tiny model first learns the chat format, which every answer shares)."""
    conversations = load_ift(str(FIX / "ift_small.jsonl"))[:4]
    labels = [True, True, True, False]
    examples = [
        Labelled(f"q{i}", c[:-1], c[-1]["content"], good) for i, (c, good) in enumerate(zip(conversations, labels))
    ]
    partners = kl_partners(examples, seed=1)
    assert all(examples[j].prompt != e.prompt for e, j in zip(examples, partners))
    start = load_model(tiny_model_dir)
    before = [_mean_logps(start, e.prompt, [e.answer]).item() for e in examples]
    cfg = DPOConfig.model_validate(SETTINGS | {"loss": "kto", "epochs": 6, "batch_size": 2, "beta": 0.5})
    model, history, _ = train_dpo(load_model(tiny_model_dir), examples, cfg, seed=1)
    assert history[0]["loss"] == pytest.approx(0.5, abs=1e-4)
    start.model.load_state_dict(model.state_dict())
    after = [_mean_logps(start, e.prompt, [e.answer]).item() for e in examples]
    change = [a - b for a, b in zip(after, before)]
    assert min(change[:3]) > 0.2 and change[3] < min(change[:3]) - 0.1


def test_kto_needs_answers_to_two_prompts():
    same = [
        Labelled("a", [{"role": "user", "content": "q"}], "x", True),
        Labelled("b", [{"role": "user", "content": "q"}], "y", False),
    ]
    with pytest.raises(ValueError, match="at least two different prompts"):
        kl_partners(same, seed=0)


def test_pair_losses_refuse_labelled_answers(tiny_model_dir):
    examples = [Labelled("a", [{"role": "user", "content": "q"}], "x", True)]
    with pytest.raises(ValueError, match="need dpo.loss=kto"):
        train_dpo(load_model(tiny_model_dir), examples, DPOConfig.model_validate(SETTINGS), seed=1)


def test_unpaired_rows_in_trls_format(tmp_path):
    path = tmp_path / "kto.jsonl"
    path.write_text(
        '{"prompt": "Hi", "completion": "Hello!", "label": true}\n'
        '{"prompt": [{"role": "user", "content": "Hi"}], '
        '"completion": [{"role": "assistant", "content": "No."}], "label": false}\n'
        '{"prompt": "Hi", "completion": "Hey", "label": "yes"}\n'
    )
    with pytest.raises(Exception, match=r"kto.jsonl:3: field 'label' must be bool, got str"):
        load_unpaired(path)
    path.write_text("\n".join(path.read_text().splitlines()[:2]) + "\n")
    rows = load_unpaired(path)
    assert [(r.prompt, r.answer, r.desirable) for r in rows] == [
        ([{"role": "user", "content": "Hi"}], "Hello!", True),
        ([{"role": "user", "content": "Hi"}], "No.", False),
    ]


def test_kto_resumed_after_a_crash_matches_an_uninterrupted_run(tiny_model_dir, tmp_path):
    pairs = _pairs()
    cfg = DPOConfig.model_validate(SETTINGS | {"loss": "kto", "epochs": 2, "batch_size": 2})
    model, straight_history, _ = train_dpo(load_model(tiny_model_dir), pairs, cfg, seed=1)
    straight = _weights(model)
    ref, state_dir = tmp_path / "reference.json", tmp_path / "train_state"
    with pytest.raises(Crash):
        train_dpo(load_model(tiny_model_dir), pairs, cfg, 1, ref, CrashAfterSaves(state_dir, 2))
    resuming = Resuming(state_dir)
    model, resumed_history, _ = train_dpo(load_model(tiny_model_dir), pairs, cfg, 1, ref, resuming)
    assert resuming.resumed_at == 2
    assert resumed_history == straight_history
    _assert_same(_weights(model), straight)


def test_chain_of_hindsight_conversations():
    pair = Pair(
        "p", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "Hello.", "Go away."
    )
    good, bad = hindsight_conversations([pair], seed=0)
    assert good == [*pair.prompt, {"role": "assistant", "content": "Hello."}]
    feedback, rest = bad[0]["content"].split("\n\n")
    assert feedback in negative_feedback() and rest == "Be brief."
    assert bad[1:] == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away."}]
    plain = Pair("p", [{"role": "user", "content": "Hi"}], "Hello.", "Go away.")
    assert hindsight_conversations([plain], seed=0)[1][0]["role"] == "system"
    assert len(negative_feedback()) >= 3


def test_chain_of_hindsight_trains_the_chosen_answers_under_the_plain_prompt(tiny_model_dir):
    pairs = _pairs()
    start = load_model(tiny_model_dir)
    before = torch.stack([_mean_logps(start, p.prompt, [p.chosen]) for p in pairs]).mean().item()
    cfg = DPOConfig.model_validate(SETTINGS | {"loss": "coh", "epochs": 3, "batch_size": 2, "learning_rate": 3e-3})
    model, history, stats = train_dpo(load_model(tiny_model_dir), pairs, cfg, seed=1)
    assert stats["examples"] == 2 * len(pairs) and stats["pairs"] == len(pairs)
    start.model.load_state_dict(model.state_dict())
    after = torch.stack([_mean_logps(start, p.prompt, [p.chosen]) for p in pairs]).mean().item()
    assert after > before + 0.5
