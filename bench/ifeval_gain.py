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
from autoalign.eval.paired import paired_difference
from autoalign.verifiers.ifeval import load_ifeval, score_response


def scored(stage_dir: Path, items_by_key: dict) -> dict:
    rows = [json.loads(line) for line in (stage_dir / "data.jsonl").read_text().splitlines()]
    out = {}
    for row in rows:
        item = items_by_key[row["id"].removeprefix("ifeval-")]
        out[item.key] = (item, row["response"], score_response(item, row["response"]))
    return out


def instruction_accuracy(results: dict, keys: list[str], wanted) -> tuple[float, int]:
    hits = [ok for k in keys for i, ok in zip(results[k][0].instruction_ids, results[k][2].strict) if wanted(i)]
    return (100 * sum(hits) / len(hits) if hits else float("nan")), len(hits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("baseline", type=Path)
    parser.add_argument("model", type=Path)
    parser.add_argument("--held-out", default=",".join(HELD_OUT_CONSTRAINTS))
    parser.add_argument("--ifeval-file", default="builtin:ifeval_input_data.jsonl")
    args = parser.parse_args()
    items = {item.key: item for item in load_ifeval(args.ifeval_file)}
    base, model = scored(args.baseline, items), scored(args.model, items)
    keys = sorted(set(base) & set(model))
    held_out = set(filter(None, args.held_out.split(",")))
    lines = []
    for level in ("strict", "loose"):
        d = paired_difference(
            [all(getattr(base[k][2], level)) for k in keys], [all(getattr(model[k][2], level)) for k in keys]
        )
        lines.append(
            f"prompt_{level}: {d['baseline']:.1f}% -> {d['model']:.1f}%  difference {d['difference']:+.1f} points, "
            f"95% CI [{d['ci_low']:+.1f}, {d['ci_high']:+.1f}], gained {d['gained']} lost {d['lost']}, "
            f"sign test p={d['sign_test_p']:.3g}"
        )
        if level == "strict":
            print(
                f"GAIN prompt_strict={d['difference']:+.1f} ci_low={d['ci_low']:+.1f} "
                f"ci_high={d['ci_high']:+.1f} p={d['sign_test_p']:.3g}"
            )
    print(f"prompts compared: {len(keys)}")
    print("\n".join(lines))
    for name, wanted in (("held-out types", lambda i: i in held_out), ("trained types", lambda i: i not in held_out)):
        (a, n), (b, _) = instruction_accuracy(base, keys, wanted), instruction_accuracy(model, keys, wanted)
        print(f"instruction strict, {name} ({n} instructions): {a:.1f}% -> {b:.1f}%")
    length = lambda results: sum(len(results[k][1]) for k in keys) / len(keys)
    print(f"mean answer length (characters): {length(base):.0f} -> {length(model):.0f}")


if __name__ == "__main__":
    main()
