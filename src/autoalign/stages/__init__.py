"""Stages: plain functions (inputs, config and store in, artifact out) that the loops and the
evaluation call in order. A stage whose key is already recorded in the store returns its saved
artifact at once; one with work to do runs its items in chunks that survive a crash.

    common.py    seeds, sampling parameters, remote usage accounting
    prompts.py   M_t writes new instructions (or they come from a file)
    sampling.py  N answers per prompt from any model
    judging.py   every answer scored by a judge (rubric, verifier, ...)
    pairs.py     feedback -> preference pairs, and the mixed DPO training set
    training.py  SFT and DPO
"""
