"""Finished runs side by side: a markdown table, and optionally a learning-curve plot.

    python tools/compare_runs.py RN/KGBD/6/<run>=default RN/KGBD/6/<run>="files' order"
    python tools/compare_runs.py RN/KGBD/6/<run1> RN/KGBD/6/<run2> --plot curve.png

Each argument is a run folder written by SM-SGE.py (config.json and metrics.json), with an
optional "=label". The table gives what each run was (data, pre-training epochs, training
steps, Re-ID epochs) and what it scored: Rank-1 and nAUC of the kept model, and, for runs
whose model was chosen on the test set, the last Re-ID epoch's test Rank-1, which no
selection touched; "minutes trained" counts this run's own pre-training and Re-ID stage
(a run on a saved encoder has no pre-training time). --plot draws Rank-1 and nAUC against
the pre-training epochs.
Nothing is recomputed: only the runs' own files are read.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from utils.foundation.errors import guarded  # noqa: E402
from utils.foundation.errors import UserError  # noqa: E402
from utils.orchestration.storage import load_config, load_metrics  # noqa: E402


def read_run(argument: str) -> dict:
    """{"label", "config", "metrics"} of one 'FOLDER[=LABEL]' argument."""
    folder, _, label = argument.partition("=")
    return dict(label=label or os.path.basename(os.path.normpath(folder)),
                config=load_config(folder), metrics=load_metrics(folder))


def run_row(run: dict) -> dict:
    """One run's table row (numbers as fractions; None where the run has no such value)."""
    cfg, m = run["config"], run["metrics"]
    history = m.get("reid_history") or []
    steps = m.get("steps_per_epoch")
    test_selected = m.get("selection_set") == "test" and history
    return dict(
        label=run["label"], data=os.path.basename(os.path.normpath(cfg.get("data_dir") or "")) or None,
        pre_epochs=cfg.get("pre_epochs"), steps_per_epoch=steps,
        pre_steps=steps * cfg["pre_epochs"] if steps and cfg.get("pre_epochs") is not None else None,
        reid_epochs=len(history) or None, kept_epoch=m.get("best_epoch"),
        rank1=m.get("rank1"), nauc=m.get("nauc"), mAP=m.get("mAP"), nauc_cmc=m.get("nauc_cmc"),
        last_rank1=history[-1]["sel_acc"] if test_selected else None,
        minutes=sum(m.get(k) or 0.0 for k in ("pretrain_seconds", "reid_seconds")) / 60)


COLUMNS = (("label", "run", str), ("data", "data", str), ("pre_epochs", "pre-training epochs", str),
           ("pre_steps", "pre-training steps", str), ("reid_epochs", "Re-ID epochs", str),
           ("kept_epoch", "kept", str), ("rank1", "Rank-1", "pct"), ("nauc", "nAUC", "pct"),
           ("mAP", "mAP", "pct"), ("nauc_cmc", "CMC nAUC", "pct"),
           ("last_rank1", "last-epoch Rank-1", "pct"), ("minutes", "minutes trained", "min"))


def markdown_table(rows: list) -> str:
    """The rows as a markdown table; a column that no row has a value for is left out."""
    columns = [c for c in COLUMNS if any(r[c[0]] is not None for r in rows)]

    def cell(value, kind):
        if value is None:
            return "—"
        if kind == "pct":
            return f"{100 * value:.2f} %"
        if kind == "min":
            return f"{value:.1f}"
        return str(value)
    lines = ["| " + " | ".join(c[1] for c in columns) + " |",
             "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r[key], kind) for key, _, kind in columns) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tools/compare_runs.py", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders, each optionally FOLDER=LABEL")
    parser.add_argument("--plot", default="", help="write Rank-1 and nAUC against the "
                        "pre-training epochs to this PNG (a learning curve)")
    parser.add_argument("--title", default="Learning curve", help="the plot's title")
    args = parser.parse_args(argv)

    def work():
        rows = [run_row(read_run(a)) for a in args.runs]
        print(markdown_table(rows))
        if args.plot:
            from utils.foundation.plots import plot_learning_curve
            for r in rows:
                if r["nauc"] is None or r["pre_epochs"] is None:
                    raise UserError(f"--plot draws classification runs against their pre-training "
                                    f"epochs; {r['label']} has no classification nAUC")
            points = sorted((r["pre_epochs"], r["rank1"], r["nauc"]) for r in rows)
            plot_learning_curve(points, args.plot, args.title)
            print(f"written {args.plot}", file=sys.stderr)
    return guarded(work)


if __name__ == "__main__":
    sys.exit(main())
