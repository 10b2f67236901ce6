"""Collapse and drift monitors over one iteration's samples.

A policy trained on its own preferences can drift into long, repetitive or identical answers;
these numbers make that visible at a glance, per iteration:
- length: mean tokens and characters per answer, and the share cut at max tokens;
- distinct-n: unique n-grams / all n-grams over every answer (whitespace tokens, lowercased);
  falls toward 0 when answers repeat themselves or each other;
- self-BLEU: for each prompt, the BLEU of each of its N answers against the other N-1, averaged
  (sacrebleu, sentence level with effective order), in [0, 1]; rises toward 1 when the N samples
  for a prompt become the same answer.
Judge score distribution and parse-failure rate come from the judging stage's own metrics.
"""

from __future__ import annotations

from statistics import mean

from sacrebleu.metrics import BLEU

from autoalign.types import Candidate


def distinct_n(texts: list[str], n: int) -> float | None:
    ngrams = []
    for text in texts:
        tokens = text.lower().split()
        ngrams += [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(ngrams)) / len(ngrams) if ngrams else None


def self_bleu(groups: list[list[str]]) -> float | None:
    bleu = BLEU(effective_order=True)
    scores = []
    for texts in groups:
        texts = [t for t in texts if t.strip()]
        for i, hypothesis in enumerate(texts):
            others = texts[:i] + texts[i + 1 :]
            if others:
                scores.append(bleu.sentence_score(hypothesis, others).score / 100)
    return mean(scores) if scores else None


MONITOR_FIELDS = ("mean_tokens", "mean_chars", "truncated_rate", "distinct_1", "distinct_2", "self_bleu")


def sample_monitors(candidates: dict[str, list[Candidate]]) -> dict:
    answers = [c for group in candidates.values() for c in group if c.finish_reason != "error"]
    texts = [c.text for c in answers]
    if not answers:  # every field present, so tables and plots never meet a missing key
        return {"answers": 0, **{k: None for k in MONITOR_FIELDS}}
    return {
        "answers": len(answers),
        "mean_tokens": mean(c.num_tokens for c in answers),
        "mean_chars": mean(len(t) for t in texts),
        "truncated_rate": sum(c.finish_reason == "length" for c in answers) / len(answers),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "self_bleu": self_bleu(
            [[c.text for c in group if c.finish_reason != "error"] for group in candidates.values()]
        ),
    }
