"""identify.py's numbers on the built-in demo (docs/identify.md, "Measured on the demo").

    python tools/measure_identify.py RUN [--work DIR]

RUN: a finished demo classification run. Writes the demo's recordings as files under DIR
(default: a temporary folder), then, through utils/orchestration/identify.py:
- classifier: calibrated on each trained person's 5th walk and new people 1-10 (three walks
  each), then scored on the 6th walks (never trained on) and new people 11-20;
- gallery: the 20 people enrolled from their four training walks (the threshold by
  leave-one-out), then scored on the same 6th walks and new people 11-20.
Both at the default operating point (--max_reject 0.05) and at --max_false_accept 0.05.
Prints the identification rate of known people's walks, the false-accept rate of people the
run never saw and the seconds per recording (reading, windows, encoding, scoring).
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from utils.foundation.errors import guarded  # noqa: E402
from utils.orchestration.cli import select_device  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="measure_identify.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run")
    p.add_argument("--work", default="")
    args = p.parse_args(argv)

    def work():
        from utils.orchestration.config import RunConfig
        select_device(RunConfig(gpu=-1))
        from utils.data.demo import generate_recordings, unseen_recordings, write_recordings
        from utils.orchestration.identify import load_identifier
        root = args.work or tempfile.mkdtemp(prefix="identify-measure-")
        trained, new = generate_recordings(), unseen_recordings(20, 3)
        j = lambda *p: os.path.join(root, *p)   # noqa: E731
        write_recordings(j("calibrate"), trained, which=[4])
        write_recordings(j("calibrate"), {k: new[k] for k in range(1, 11)}, prefix="new")
        write_recordings(j("enrol"), trained, which=[0, 1, 2, 3])
        known = write_recordings(j("known"), trained, which=[5])
        unseen = write_recordings(j("unseen"), {k: new[k] for k in range(11, 21)}, prefix="new")
        identifier = load_identifier(args.run, by="classifier", need_scores=False)
        for point in (dict(max_reject=0.05), dict(max_reject=None, max_false_accept=0.05)):
            identifier.calibrate_classifier(j("calibrate"), **point)
            identifier.enrol(j("enrol"), j("gallery.npz"), **point)
            for by in ("classifier", "gallery"):
                identifier.by = by
                start = time.perf_counter()
                hits = [identifier.identify_file(path) for path in known]
                misses = [identifier.identify_file(path) for path in unseen]
                seconds = (time.perf_counter() - start) / (len(known) + len(unseen))
                truth = lambda r: os.path.basename(os.path.dirname(r.source))   # noqa: E731
                named = sum(r.decision == truth(r) for r in hits)
                top1 = sum(r.top[0][0] == truth(r) for r in hits)
                accepted = sum(r.decision != "unknown" for r in misses)
                print(f"{by}, {' '.join(f'--{k} {v}' for k, v in point.items() if v)}: known "
                      f"people's held-out walks identified {named}/{len(hits)} "
                      f"({named / len(hits):.0%}; top-1 right before the threshold {top1}/"
                      f"{len(hits)}), new people's walks named {accepted}/{len(misses)} "
                      f"({accepted / len(misses):.0%} false accepts), {seconds:.3f} s per recording")
    return guarded(work)


if __name__ == "__main__":
    sys.exit(main())
