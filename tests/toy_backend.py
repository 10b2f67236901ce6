"""A toy generation backend for the registry test: it answers every request by echoing its first
words (so an answer stays on the request's topic), then words chosen by the request's seed so
the n samples differ. Registered by the test alone."""

from __future__ import annotations

import random

from autoalign.generation.base import Usage, request_seed
from autoalign.types import Candidate

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda".split()
closed: list[str] = []


class EchoGenerator:
    def __init__(self, label: str):
        self.label = label
        self.usage = Usage()

    def generate(self, requests, params):
        out = []
        for messages in requests:
            lead = " ".join(messages[-1]["content"].split()[:5])
            samples = []
            for k in range(params.n):
                rng = random.Random(request_seed(params.seed, messages, k))
                words = rng.sample(WORDS, rng.randint(1, 6))
                text = f"echo {lead} " + " ".join(words)
                samples.append(Candidate(text=text, num_tokens=len(text.split()), finish_reason="stop"))
            out.append(samples)
        self.usage.add(requests=len(requests), answered=len(requests) * params.n)
        return out

    def close(self) -> None:
        closed.append(self.label)


def make(pool, ref, batch_size):
    return EchoGenerator(f"echo {ref.label}")
