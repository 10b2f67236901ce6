"""Generators: turn chat requests into sampled candidates. See base.Generator for the contract."""

from autoalign.generation.base import Generator, SamplingParams

__all__ = ["Generator", "SamplingParams"]
