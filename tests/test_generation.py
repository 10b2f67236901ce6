"""The batched decode loop against transformers' own generate(), on the tiny model."""

import torch
from transformers import GenerationConfig

from autoalign.chat import render_prompt
from autoalign.generation.base import SamplingParams
from autoalign.generation.hf import HFGenerator

REQUESTS = [
    [{"role": "user", "content": "Write a short poem about the sea."}],
    [{"role": "user", "content": "Hi"}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France? Explain why."},
    ],
]


def hf_greedy(loaded, messages, max_new_tokens):
    tok = loaded.tokenizer
    ids = tok(render_prompt(tok, messages), return_tensors="pt", add_special_tokens=False).input_ids
    cfg = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=loaded.stop_token_ids,
        pad_token_id=tok.pad_token_id,
    )
    out = loaded.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=cfg)
    return tok.decode(
        [t for t in out[0, ids.shape[1] :].tolist() if t not in loaded.stop_token_ids], skip_special_tokens=True
    ).strip()


def test_greedy_batched_with_left_padding_matches_unbatched_hf_generate(tiny_loaded):
    gen = HFGenerator(tiny_loaded, batch_size=3)
    outputs = gen.generate(REQUESTS, SamplingParams(n=2, temperature=0.0, max_new_tokens=20))
    for messages, cands in zip(REQUESTS, outputs):
        expected = hf_greedy(tiny_loaded, messages, 20)
        assert [c.text for c in cands] == [expected, expected]
        assert all(c.num_tokens == len(c.logprobs) <= 20 for c in cands)
        assert all(lp <= 0 for c in cands for lp in c.logprobs)


def test_sampling_is_seeded_and_gives_n_candidates_in_request_order(tiny_loaded):
    gen = HFGenerator(tiny_loaded, batch_size=2)
    params = SamplingParams(n=4, temperature=1.0, top_p=0.9, max_new_tokens=12, seed=7)
    first = gen.generate(REQUESTS, params)
    again = gen.generate(REQUESTS, params)
    assert first == again
    assert [len(c) for c in first] == [4, 4, 4]
    assert len({c.text for c in first[0]}) > 1  # sampling, not greedy
    other_seed = gen.generate(REQUESTS, SamplingParams(n=4, temperature=1.0, top_p=0.9, max_new_tokens=12, seed=8))
    assert other_seed != first


def test_finish_reason_and_stop_token(tiny_loaded):
    gen = HFGenerator(tiny_loaded, batch_size=4)
    outputs = gen.generate(REQUESTS, SamplingParams(n=8, temperature=1.0, max_new_tokens=6, seed=0))
    for c in (c for cands in outputs for c in cands):
        assert c.finish_reason in {"stop", "length"}
        if c.finish_reason == "length":
            assert c.num_tokens == 6
        else:
            assert c.num_tokens <= 6
        assert "<|im_end|>" not in c.text


def test_shared_prefix_prefill_matches_hf_generate(tiny_loaded):
    from autoalign.generation.hf import MIN_SHARED_PREFIX, shared_prefix_length

    rubric = "Review the user's question and the assistant's response below, and score the response. " * 3
    requests = [
        [{"role": "user", "content": rubric + q}]
        for q in ("Hi", "What is the capital of France? Explain why.", "Write a short poem about the sea.")
    ]
    lists = [
        tiny_loaded.tokenizer(render_prompt(tiny_loaded.tokenizer, r), add_special_tokens=False).input_ids
        for r in requests
    ]
    assert shared_prefix_length(lists) >= MIN_SHARED_PREFIX
    outputs = HFGenerator(tiny_loaded, batch_size=3).generate(
        requests, SamplingParams(n=2, temperature=0.0, max_new_tokens=16)
    )
    for messages, cands in zip(requests, outputs):
        expected = hf_greedy(tiny_loaded, messages, 16)
        assert [c.text for c in cands] == [expected, expected]


def test_shared_prefix_length_leaves_each_row_a_token():
    from autoalign.generation.hf import shared_prefix_length

    assert shared_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 5]]) == 2
    assert shared_prefix_length([[7, 2], [1, 2]]) == 0


def test_top_logprobs_hold_the_chosen_token_and_match_a_full_forward(tiny_loaded):
    gen = HFGenerator(tiny_loaded, batch_size=3)
    plain = gen.generate(REQUESTS, SamplingParams(temperature=0.0, max_new_tokens=8))
    outputs = gen.generate(REQUESTS, SamplingParams(temperature=0.0, max_new_tokens=8, top_logprobs=3))
    assert [c[0].text for c in outputs] == [c[0].text for c in plain]  # asking changes nothing else
    assert plain[0][0].top_logprobs is None
    tok = tiny_loaded.tokenizer
    for messages, (cand,) in zip(REQUESTS, outputs):
        assert len(cand.tokens) == len(cand.top_logprobs) == cand.num_tokens
        for token, lp, top in zip(cand.tokens, cand.logprobs, cand.top_logprobs):
            assert len(top) <= 3 and max(top.values()) == top[token] == lp  # greedy: the chosen token is the best
        # The first step's alternatives equal a plain forward pass over the prompt.
        ids = tok(render_prompt(tok, messages), return_tensors="pt", add_special_tokens=False).input_ids
        with torch.no_grad():
            expected = torch.log_softmax(tiny_loaded.model(ids).logits[0, -1].float(), -1).topk(3)
        got = sorted(cand.top_logprobs[0].values(), reverse=True)
        assert torch.allclose(torch.tensor(got), expected.values, atol=1e-4)


def test_a_sample_does_not_depend_on_the_batch_it_runs_in(tiny_loaded):
    from autoalign.generation.base import SamplingParams
    from autoalign.generation.hf import HFGenerator

    ask = lambda text: [{"role": "user", "content": text}]
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=12, seed=3)
    together = HFGenerator(tiny_loaded, batch_size=8).generate(
        [ask("Name a fruit."), ask("Write a short poem about the sea."), ask("Hi")], params
    )
    alone = HFGenerator(tiny_loaded, batch_size=1).generate([ask("Hi"), ask("Name a fruit.")], params)
    texts = lambda cands: [c.text for c in cands]
    assert texts(alone[1]) == texts(together[0]) and texts(alone[0]) == texts(together[2])
    assert texts(together[0])[0] != texts(together[0])[1]  # the n samples of one request still differ
    other_seed = HFGenerator(tiny_loaded, batch_size=8).generate(
        [ask("Name a fruit.")], SamplingParams(n=2, temperature=1.0, max_new_tokens=12, seed=4)
    )
    assert texts(other_seed[0]) != texts(together[0])


def test_continuous_batching_joins_waiting_requests_and_changes_no_answer(tiny_model_dir, monkeypatch):
    """Rows that stop leave, waiting requests join the running batch (their caches padded on the
    left to its length), and every answer equals the one decoded alone."""
    from collections import Counter

    from autoalign.generation import hf
    from autoalign.generation.base import request_seed
    from autoalign.models.loading import load_model

    loaded = load_model(tiny_model_dir)  # a private copy: its stop tokens change below
    requests = [
        [{"role": "user", "content": q}]
        for q in ("Hi", "Name a fruit.", "Write a short poem about the sea.", "Why is the sky blue?")
    ]
    requests += [
        [{"role": "user", "content": q}]
        for q in ("Give three tips.", "What is 2 + 2?", "Score this answer.", "Explain rain.")
    ]
    joins = []
    original_join = hf.Running.join

    def counted_join(self, other):
        joins.append(len(other.rows))
        return original_join(self, other)

    monkeypatch.setattr(hf.Running, "join", counted_join)
    prompts = [loaded.tokenizer(render_prompt(loaded.tokenizer, r)).input_ids for r in requests]
    eos = loaded.model.generation_config.eos_token_id
    for params in (
        SamplingParams(temperature=1.0, max_new_tokens=24, seed=5),
        SamplingParams(n=2, temperature=0.8, top_p=0.95, max_new_tokens=24, seed=6),
    ):
        # Stop on a token that many rows sample and some do not, so rows end at different steps
        # (the random model's greedy answer is one token repeated).
        loaded.model.generation_config.eos_token_id = eos
        seeds = [request_seed(params.seed, r, k) for r in requests for k in range(params.n)]
        sampled, *_ = HFGenerator(loaded, batch_size=8)._decode(prompts, params, seeds)
        rows_with = Counter(t for tokens in sampled for t in set(tokens[1:16]))
        stop = max((t for t, rows in rows_with.items() if rows < len(sampled)), key=rows_with.get)
        loaded.model.generation_config.eos_token_id = [*loaded.stop_token_ids, stop]

        joins.clear()
        together = HFGenerator(loaded, batch_size=3).generate(requests, params)
        assert joins, "no request joined a running batch"
        alone = [HFGenerator(loaded, batch_size=1).generate([r], params)[0] for r in requests]
        assert [[c.text for c in cands] for cands in together] == [[c.text for c in cands] for cands in alone]
        for got, want in zip(together, alone):
            for a, b in zip(got, want):
                assert a.finish_reason == b.finish_reason
                assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-4)
        reasons = Counter(c.finish_reason for cands in together for c in cands)
        assert reasons["stop"] and reasons["length"]  # rows did end at different steps


def test_join_rows_pads_the_shorter_cache_on_the_left():
    from transformers.cache_utils import Cache

    from autoalign.generation.kv_cache import GrowableLayer, join_rows

    def cache_of(rows: int, length: int, fill: float) -> Cache:
        cache = Cache(layer_class_to_replicate=GrowableLayer)
        states = torch.full((rows, 2, length, 4), fill)
        cache.update(states, states + 100, layer_idx=0)
        return cache

    running, joining = cache_of(2, 5, 1.0), cache_of(1, 3, 7.0)
    assert join_rows(running, joining) == 5
    keys, values = running.layers[0].keys, running.layers[0].values
    assert keys.shape == (3, 2, 5, 4)
    assert torch.equal(keys[:2], torch.full((2, 2, 5, 4), 1.0))
    assert torch.equal(keys[2, :, :2], torch.zeros(2, 2, 4)) and torch.equal(keys[2, :, 2:], torch.full((2, 3, 4), 7.0))
    assert torch.equal(values[2, :, 2:], torch.full((2, 3, 4), 107.0))
    # The running side is the shorter one: its rows move right.
    short, long = cache_of(1, 2, 3.0), cache_of(1, 4, 5.0)
    assert join_rows(short, long) == 4
    assert torch.equal(short.layers[0].keys[0, :, :2], torch.zeros(2, 2, 4))
    assert torch.equal(short.layers[0].keys[0, :, 2:], torch.full((2, 2, 4), 3.0))
    running.update(torch.zeros(3, 2, 1, 4), torch.zeros(3, 2, 1, 4), layer_idx=0)  # it still grows
    assert running.layers[0].keys.shape == (3, 2, 6, 4)


def test_decoding_builds_no_autograd_graph(tiny_loaded, monkeypatch):
    """Every forward pass of generation runs without autograd (a graph kept across steps holds
    every step's activations: memory grew ~150 MB per step on SmolLM2 before this was caught)."""
    grad_enabled = []
    forward = tiny_loaded.model.forward

    def recording_forward(*args, **kwargs):
        grad_enabled.append(torch.is_grad_enabled())
        return forward(*args, **kwargs)

    monkeypatch.setattr(tiny_loaded.model, "forward", recording_forward)
    HFGenerator(tiny_loaded, batch_size=2).generate(REQUESTS, SamplingParams(n=2, temperature=1.0, max_new_tokens=8))
    assert len(grad_enabled) > 8 and not any(grad_enabled)
