"""Inference-time alignment: better answers from the same weights, by spending more samples or
more turns per prompt instead of training. Each method is one module with its paper in the
docstring; each returns, per prompt, the answer it picked and what it cost, so it can stand as
the output of `autoalign generate` or as the preferred side of a preference pair.

    best_of_n.py         sample N, keep the one a judge, reward model or verifier scores highest
    self_refine.py       feedback -> revision rounds, the best-scored round kept
    constitutional.py    critique and revise against a principle drawn from a constitution
    self_consistency.py  agreement among samples: majority answer, confidence, pairs
    urial.py             a preamble and demonstrations that align a base model in context
"""
