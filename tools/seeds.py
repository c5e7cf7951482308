"""Repeat one SM-SGE configuration over several seeds; print mean ± std of every metric.

    python tools/seeds.py --seeds 5 --dataset demo --selection val
    python tools/seeds.py --seeds 3 --dataset KS20 --protocol retrieval

Takes every flag of SM-SGE.py (except --seed) plus --seeds N and --first_seed S; runs
seeds S..S+N-1 one after another and writes the table as JSON under RN/.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from utils.foundation.errors import guarded  # noqa: E402
from utils.orchestration.cli import select_device, training_options, training_parser  # noqa: E402

METRICS = ("rank1", "rank5", "rank10", "nauc", "mAP", "nauc_cmc")


def summarise(results: list) -> dict:
    """{metric: (mean, std, values)} over the runs that report it (std: population, ddof=0)."""
    table = {}
    for m in METRICS:
        values = [r[m] for r in results if r.get(m) is not None]
        if values:
            table[m] = dict(mean=float(np.mean(values)), std=float(np.std(values)),
                            values=[float(v) for v in values])
    return table


def main(argv=None) -> int:
    parser = training_parser()
    parser.prog = "tools/seeds.py"
    parser.add_argument("--seeds", default="3", help="number of seeds")
    parser.add_argument("--first_seed", default="0", help="first seed")
    args = parser.parse_args(argv)
    try:
        n, first = int(args.seeds), int(args.first_seed)
        if n < 1 or first < 0:
            raise ValueError
    except ValueError:
        print("error: --seeds must be a positive integer and --first_seed at least 0", file=sys.stderr)
        return 2

    def work():
        cfg = training_options(args)
        select_device(cfg)
        from utils.foundation.io import atomic_save_json
        from utils.orchestration.pipeline import run_training
        from utils.orchestration.run import resolve
        results = []
        for seed in range(first, first + n):
            print(f"===== seed {seed} ({seed - first + 1}/{n}) =====", flush=True)
            results.append(vars(run_training(cfg.replace(seed=seed))))
        table = summarise(results)
        print(f"\nOver {n} seeds ({first}..{first + n - 1}), mean ± std:")
        for m, row in table.items():
            print(f"  {m:9s} {100 * row['mean']:6.2f} ± {100 * row['std']:5.2f}   "
                  f"({', '.join(f'{100 * v:.2f}' for v in row['values'])})")
        out = os.path.join(resolve(cfg).runs_parent,
                           f"seeds_{cfg.protocol}_{cfg.selection}_{first}-{first + n - 1}.json")
        config = {k: v for k, v in cfg.saved().items() if k != "seed"}
        atomic_save_json(out, dict(config=config, seeds=list(range(first, first + n)), summary=table))
        print(f"written {out}")
    return guarded(work)


if __name__ == "__main__":
    sys.exit(main())
