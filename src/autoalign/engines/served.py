"""The Generator over a server autoalign started (llama.cpp's llama-server, `vllm serve`): the
HTTP backend (generation/openai.py: retries, accounting) aimed at the managed server's
OpenAI-compatible API, as many requests at once as the server decodes side by side."""

from __future__ import annotations

import dataclasses

from autoalign.config import EndpointConfig
from autoalign.engines.server import ManagedServer
from autoalign.generation.base import SamplingParams
from autoalign.generation.openai import OpenAIGenerator
from autoalign.types import Candidate, Message

SERVED_NAME = "autoalign"
"""The model name every managed server answers to."""


class ServedGenerator:
    """Generator protocol over a running managed server."""

    def __init__(self, server: ManagedServer, label: str, parallel: int):
        self.server = server
        self._label = label
        endpoint = EndpointConfig(
            base_url=server.base_url + "/v1",
            model=SERVED_NAME,
            max_concurrency=parallel,
            timeout_seconds=600,
            max_retries=2,
        )
        self.http = OpenAIGenerator(endpoint, cache=None)
        self.usage = self.http.usage

    @property
    def label(self) -> str:
        return self._label

    def generate(self, requests: list[list[Message]], params: SamplingParams) -> list[list[Candidate]]:
        # Stripped as the in-process backend does, so a critic sees the same kind of text.
        return [
            [dataclasses.replace(c, text=c.text.strip()) for c in candidates]
            for candidates in self.http.generate(requests, params)
        ]

    def close(self) -> None:
        self.http.close()  # the server itself belongs to the pool (shared by batch sizes)
