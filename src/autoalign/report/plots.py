"""The report's figures: matplotlib (Agg, no display), each returned as a base64 PNG so the
HTML file is self-contained."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from autoalign.report.collect import LineReport  # noqa: E402


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def training_curves(report: LineReport) -> str | None:
    keys = [
        (k, title)
        for k, title in (
            ("loss", "loss"),
            ("rewards/accuracy", "DPO reward accuracy"),
            ("rewards/margins", "DPO reward margin"),
            ("reward", "RL reward (samples)"),
            ("kl", "KL to the reference (RL; KTO: z0)"),
            ("entropy", "RL entropy (nats/token)"),
            ("length", "RL answer tokens"),
        )
        if any(k in h for history in report.training.values() for h in history)
    ]
    if not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for ax, (key, title) in zip(axes[0], keys):
        for name, history in report.training.items():
            points = [(h["step"], h[key]) for h in history if key in h]
            if points:
                ax.plot(*zip(*points), marker=".", label=name)
        ax.set_title(title)
        ax.set_xlabel("optimizer step")
    axes[0][0].legend(fontsize=8)
    return _png(fig)


def score_histograms(report: LineReport) -> str | None:
    histograms = {name: h for name, h in report.histograms.items() if sum(h.values())}  # all unparsed: nothing to draw
    if not histograms:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.2))
    width = 0.8 / len(histograms)
    for i, (name, histogram) in enumerate(histograms.items()):
        scores = sorted(histogram, key=int)
        ax.bar([int(s) + i * width for s in scores], [histogram[s] for s in scores], width=width, label=name)
    ax.set_xlabel("judge score (rounded)")
    ax.set_ylabel("candidates")
    ax.legend(fontsize=8)
    return _png(fig)


def length_drift(report: LineReport) -> str | None:
    samples = [m for m in report.monitors if m["what"] == "student samples" and m.get("answers")]
    panels = ([samples] if samples else []) + ([report.eval_lengths] if report.eval_lengths else [])
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.2), squeeze=False)
    axes = list(axes[0])
    if samples:
        ax = axes.pop(0)
        ax.plot([m["iteration"] for m in samples], [m["mean_tokens"] for m in samples], marker="o")
        ax.set_xticks([m["iteration"] for m in samples])
        ax.set_title("student samples: mean tokens")
        ax.set_xlabel("iteration")
    if report.eval_lengths:
        ax = axes.pop(0)
        labels = list(report.eval_lengths)
        ax.bar(labels, [report.eval_lengths[k] for k in labels])
        ax.set_title("held-out answers: mean characters")
    return _png(fig)


def win_rates(report: LineReport) -> str | None:
    if not report.head_to_head:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.2))
    names = [f"{h['model']} vs {h['baseline']}" for h in report.head_to_head]
    x = range(len(names))
    for offset, (key, se, label) in enumerate(
        (("win_rate", "standard_error", "win rate"), ("lc_win_rate", "lc_standard_error", "length-controlled"))
    ):
        values = [h[key] if h[key] is not None else 0 for h in report.head_to_head]
        errors = [h[se] or 0 for h in report.head_to_head]
        ax.bar([i + offset * 0.4 for i in x], values, width=0.4, yerr=errors, capsize=3, label=label)
    ax.axhline(50, color="gray", linewidth=0.8, linestyle="--")
    ax.set_xticks([i + 0.2 for i in x], names)
    ax.set_ylim(0, 100)
    ax.set_ylabel("% (baseline = 50)")
    ax.legend(fontsize=8)
    return _png(fig)


def ifeval_bars(report: LineReport) -> str | None:
    if not report.ifeval:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.2))
    keys = ["prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose"]
    labels = list(report.ifeval)
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        ax.bar(
            [k + i * width for k in range(len(keys))],
            [100 * report.ifeval[label][k] for k in keys],
            width=width,
            label=label,
        )
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(keys))], [k.replace("_", " ") for k in keys])
    ax.set_ylabel("accuracy %")
    ax.legend(fontsize=8)
    return _png(fig)


def critic_coverage_error(report: LineReport) -> str | None:
    """The routed critic's trade-off on its calibration slice: trusting more items costs accuracy."""
    if not report.calibration:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for t, c in report.calibration.items():
        points = [(p["coverage"], p["error"]) for p in c["curve"]]
        ax.plot(*zip(*points), marker=".", label=f"iter {t} ({c['slice']} pairs)")
        if c["trust_threshold"] is not None:
            ax.plot([c["coverage"]], [c["error"]], marker="o", markersize=9, fillstyle="none", color="black")
    target = next(iter(report.calibration.values()))["target_error"]
    ax.axhline(target, linestyle="--", color="grey", label=f"target error {target:.0%}")
    ax.set_xlabel("share of items trusted (coverage)")
    ax.set_ylabel("error among trusted")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    return _png(fig)


FIGURES = {
    "Training curves": training_curves,
    "Judge score distribution": score_histograms,
    "Length drift": length_drift,
    "Head-to-head win rates": win_rates,
    "IFEval accuracy": ifeval_bars,
    "Critic: coverage vs error on the calibration slice": critic_coverage_error,
}
