import logging

# bitsandbytes (imported by peft when installed, and for 8-bit AdamW) warns at import that optional
# 4-bit CPU matmul kernels are missing; training never uses them.
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


class NonFiniteLossError(RuntimeError):
    """A training step's loss or gradient norm was NaN or infinite (train/loop.py). The message names
    the step and its examples; the weights from before that step are kept."""
