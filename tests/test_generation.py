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
