"""Paired IFEval comparison of two models from their scored answers (the `ifeval_<label>` stage
directories that `autoalign eval ifeval` or a run writes; the answers are re-scored here with the
current checkers, so both sides use the same scorer).

    python bench/ifeval_gain.py BASELINE_STAGE_DIR MODEL_STAGE_DIR [--held-out id,id,...]

Prints, for prompt-level strict and loose, the difference (points) with its bootstrap 95%
interval and the exact sign test; instruction-level accuracy on the held-out constraint types
(never trained on) apart from the others; and mean answer length. The first line is
`GAIN prompt_strict=<points> ci_low=<points> ci_high=<points> p=<p>`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from autoalign.config.feedback import HELD_OUT_CONSTRAINTS
from autoalign.eval.paired import ifeval_paired_metrics
from autoalign.verifiers.ifeval import load_ifeval, score_response


def scored_rows(stage_dir: Path, items_by_key: dict) -> list[dict]:
    """The stage's answers, re-scored now, as rows of an ifeval stage."""
    rows = []
    for line in (stage_dir / "data.jsonl").read_text().splitlines():
        row = json.loads(line)
        item = items_by_key[row["id"].removeprefix("ifeval-")]
        result = score_response(item, row["response"])
        rows.append(
            {"id": row["id"], "instruction_ids": item.instruction_ids, "response": row["response"]}
            | {"strict": result.strict, "loose": result.loose}
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("baseline", type=Path)
    parser.add_argument("model", type=Path)
    parser.add_argument("--held-out", default=",".join(HELD_OUT_CONSTRAINTS))
    parser.add_argument("--ifeval-file", default="builtin:ifeval_input_data.jsonl")
    args = parser.parse_args()
    items = {item.key: item for item in load_ifeval(args.ifeval_file)}
    held_out = [i for i in args.held_out.split(",") if i]
    m = ifeval_paired_metrics(scored_rows(args.model, items), scored_rows(args.baseline, items), held_out)
    s = m["prompt_strict"]
    print(
        f"GAIN prompt_strict={s['difference']:+.1f} ci_low={s['ci_low']:+.1f} ci_high={s['ci_high']:+.1f} p={s['sign_test_p']:.3g}"
    )
    print(f"prompts compared: {m['prompts']}")
    for level in ("strict", "loose"):
        d = m[f"prompt_{level}"]
        print(
            f"prompt_{level}: {d['baseline']:.1f}% -> {d['model']:.1f}%  difference {d['difference']:+.1f} points, "
            f"95% CI [{d['ci_low']:+.1f}, {d['ci_high']:+.1f}], gained {d['gained']} lost {d['lost']}, "
            f"sign test p={d['sign_test_p']:.3g}"
        )
    for name, key in (("held-out types", "held_out"), ("trained types", "trained")):
        acc = m[f"instruction_strict_{key}"]
        n, before, after = acc["instructions"], 100 * acc["baseline"], 100 * acc["model"]
        print(f"instruction strict, {name} ({n} instructions): {before:.1f}% -> {after:.1f}%")
    print(f"mean answer length (characters): {m['mean_chars']['baseline']:.0f} -> {m['mean_chars']['model']:.0f}")


if __name__ == "__main__":
    main()
