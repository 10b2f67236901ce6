"""The answer cache around in-process backends: a request answered once is never generated again,
whatever stage, batch or process asks for it; failed answers are not cached."""

from autoalign import registry
from autoalign.config import ModelConfig, SampleConfig, SamplingConfig
from autoalign.generation.base import SamplingParams, Usage
from autoalign.generation.cached import CachedGenerator
from autoalign.generation.hf import HFGenerator
from autoalign.generation.http_cache import ResponseCache
from autoalign.runtime.pool import ModelPool, ModelRef
from autoalign.stages.common import StageContext
from autoalign.stages.sampling import sample_candidates
from autoalign.store import RunStore
from autoalign.types import Candidate, Prompt


def user(text):
    return [{"role": "user", "content": text}]


REQUESTS = [user("Name a colour."), user("Count to three."), user("Say hello.")]
PARAMS = SamplingParams(n=2, temperature=0.9, max_new_tokens=8, seed=3)


def test_cached_answers_equal_generated_ones_and_only_new_requests_reach_the_model(tiny_loaded, tmp_path):
    cache_file = tmp_path / "answers.sqlite"
    first = CachedGenerator(HFGenerator(tiny_loaded, batch_size=2), ResponseCache(cache_file), "tiny")
    fresh = first.generate(REQUESTS[:2], PARAMS)
    assert first.usage.snapshot()["requests"] == 2 and first.usage.snapshot()["cache_hits"] == 0
    first.close()

    # A new process: the cache is on disk; the third request is the only one generated.
    again = CachedGenerator(HFGenerator(tiny_loaded, batch_size=2), ResponseCache(cache_file), "tiny")
    answers = again.generate(REQUESTS, PARAMS)
    usage = again.usage.snapshot()
    assert usage["requests"] == 1 and usage["cache_hits"] == 2 and usage["answered"] == 6
    assert [[c.text for c in cands] for cands in answers[:2]] == [[c.text for c in cands] for cands in fresh]
    assert [c.to_dict() for c in answers[0]] == [c.to_dict() for c in fresh[0]]
    # The third answer is what the model gives for that request alone (per-request seeds).
    alone = HFGenerator(tiny_loaded, batch_size=1).generate(REQUESTS[2:], PARAMS)
    assert [c.text for c in answers[2]] == [c.text for c in alone[0]]

    # Other parameters or another model are other requests.
    hotter = SamplingParams(n=2, temperature=1.2, max_new_tokens=8, seed=3)
    again.generate(REQUESTS[:1], hotter)
    assert again.usage.snapshot()["requests"] == 2
    other_model = CachedGenerator(HFGenerator(tiny_loaded, batch_size=2), ResponseCache(cache_file), "other")
    other_model.generate(REQUESTS[:1], PARAMS)
    assert other_model.usage.snapshot()["requests"] == 1


class FlakyGenerator:
    """Fails every request the first time it sees it (as a backend without an answer would)."""

    def __init__(self):
        self.label, self.usage, self.seen = "flaky", Usage(), set()

    def generate(self, requests, params):
        out = []
        for messages in requests:
            text = messages[-1]["content"]
            ok = text in self.seen
            self.seen.add(text)
            out.append(
                [Candidate(text=text.upper(), num_tokens=1, finish_reason="stop") if ok else Candidate.failed("x")]
            )
        self.usage.add(requests=len(requests))
        return out

    def close(self):
        pass


def test_a_failed_answer_is_not_cached(tmp_path):
    gen = CachedGenerator(FlakyGenerator(), ResponseCache(tmp_path / "c.sqlite"), "flaky")
    assert gen.generate(REQUESTS[:1], SamplingParams())[0][0].finish_reason == "error"
    assert gen.generate(REQUESTS[:1], SamplingParams())[0][0].text == "NAME A COLOUR."
    assert gen.generate(REQUESTS[:1], SamplingParams())[0][0].text == "NAME A COLOUR."
    assert gen.usage.snapshot()["requests"] == 2 and gen.usage.snapshot()["cache_hits"] == 1


def test_a_stage_that_reruns_with_more_prompts_generates_only_the_new_ones(tiny_model_dir, tmp_path, monkeypatch):
    """Through the pool and a real sampling stage, with a registered backend: the stage's key
    changes (more prompts), the model sees only the two new prompts."""
    import toy_backend

    monkeypatch.setitem(registry.BACKENDS, "toy_echo", "toy_backend:make")
    pool = ModelPool(ModelConfig(backend="toy_echo"), answer_cache_dir=tmp_path / "answer_cache")
    at = StageContext(RunStore(tmp_path / "run"), 1, pool, seed=0)
    model = ModelRef("M1", tiny_model_dir, "m1-key")
    prompts = [Prompt(f"p{i}", user(f"Question {i}?")) for i in range(5)]
    cfg = SampleConfig(n=2, sampling=SamplingConfig(batch_size=4))
    before = sample_candidates(at, model, prompts[:3], cfg)
    generator = pool.generator(model, 4)
    assert generator.usage.snapshot()["requests"] == 3
    after = sample_candidates(at, model, prompts, cfg)
    assert generator.usage.snapshot()["requests"] == 5 and generator.usage.snapshot()["cache_hits"] == 3
    assert {pid: after[pid] for pid in before} == before
    pool.release()
    assert "echo M1" in toy_backend.closed
    assert len(list((tmp_path / "answer_cache").glob("M1-toy_echo-m1-key.sqlite"))) == 1
