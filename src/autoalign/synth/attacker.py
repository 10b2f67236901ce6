"""The attacker: it keeps a weakness map of the learner (how often it fails each constraint type on
each kind of task, as the critic judged) and draws new prompts where the learner fails, by
Thompson sampling on the failure rates, while a share of draws stays uniform so every cell keeps
being covered. An answer the critic could not judge on its merits (degenerate: empty, truncated,
looping; or failed to generate) counts as unknown, never as a failed or a successful attack.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

Cell = tuple[str, str]
"""(constraint type, task kind)"""


@dataclass
class WeaknessMap:
    counts: dict[Cell, Counter] = field(default_factory=dict)
    """cell -> Counter(fail=, pass=, unknown=)"""

    def add(self, instruction_id: str, kind: str, outcome: str) -> None:
        self.counts.setdefault((instruction_id, kind), Counter())[outcome] += 1

    @classmethod
    def from_rows(cls, prompt_rows: list[dict], critique_rows: list[dict]) -> WeaknessMap:
        """From a verifiable_prompts stage's rows (with task_kind) and its critiques stage's rows."""
        kinds = {r["id"]: r.get("task_kind", "unknown") for r in prompt_rows}
        weakness = cls()
        for row in critique_rows:
            for crit in row["critiques"]:
                degenerate = any(f["constraint"] == "quality" for f in crit["findings"])
                for finding in crit["findings"]:
                    if finding["constraint"] == "quality":
                        continue
                    outcome = "unknown" if degenerate else ("pass" if finding["satisfied"] else "fail")
                    weakness.add(finding["constraint"], kinds.get(row["id"], "unknown"), outcome)
        return weakness

    def merged(self, other: WeaknessMap) -> WeaknessMap:
        out = WeaknessMap({cell: Counter(c) for cell, c in self.counts.items()})
        for cell, c in other.counts.items():
            out.counts.setdefault(cell, Counter()).update(c)
        return out

    def attack_success(self) -> dict[str, dict]:
        """Per cell: failures / judged answers (unknown left out), with the counts."""
        out = {}
        for (instruction_id, kind), c in sorted(self.counts.items()):
            judged = c["fail"] + c["pass"]
            out[f"{instruction_id}|{kind}"] = {
                "success_rate": c["fail"] / judged if judged else None,
                "fail": c["fail"],
                "pass": c["pass"],
                "unknown": c["unknown"],
            }
        return out

    def thompson_weights(self, rng: random.Random, kind: str, ids: list[str], explore: float) -> dict[str, float]:
        """One draw per constraint type of its failure rate on this kind of task, from
        Beta(failures + 1, passes + 1): unseen cells draw from the uniform prior. With probability
        `explore` every type weighs the same (coverage)."""
        if rng.random() < explore:
            return {i: 1.0 for i in ids}
        weights = {}
        for instruction_id in ids:
            c = self.counts.get((instruction_id, kind), Counter())
            weights[instruction_id] = rng.betavariate(c["fail"] + 1, c["pass"] + 1) + 1e-6
        return weights
