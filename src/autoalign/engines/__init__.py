"""Inference engines that serve the current checkpoint (llama.cpp now; vLLM next): exporting the
weights to the engine's format, starting and stopping its server, and talking to it through the
HTTP backend."""


class EngineError(RuntimeError):
    """An engine could not serve the model; the message says why and what to do."""
