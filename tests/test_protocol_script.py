"""benchmarks/kgbd_protocol.sh, the resumable full protocol, end to end on the demo data
at toy length: stopped after one chunk (--time_budget 0, exit code 3), run again to the end
(resuming the stopped run), every step's run finished once, the learning curve from the
long run's snapshots, nothing run twice."""
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT, small_demo

SCRIPT = os.path.join(ROOT, "benchmarks", "kgbd_protocol.sh")
TOY = dict(DATASET="demo", LENGTH="4", PRE_EPOCHS="2", CURVE="1", REID_BUDGET="1",
           EXTRA="--batch_size 128 --xla 0 --patience 1 --max_reid_epochs 2")


def protocol(*args, **env):
    full = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2",
                PYTHON=sys.executable, **env)
    return subprocess.run(["bash", SCRIPT] + [str(a) for a in args], capture_output=True,
                          text=True, env=full, timeout=1200)


@pytest.mark.slow
def test_protocol_runs_in_chunks_to_the_end_and_goes_on_after_a_stop(tmp_path):
    data, runs = small_demo(tmp_path) / "Datasets", tmp_path / "runs"
    first = protocol(data, runs, 0, "once", **TOY)       # one chunk: one pre-training epoch
    assert first.returncode == 3, first.stderr[-2000:]
    assert "stopped after one chunk" in first.stdout
    assert not list((runs / "done").iterdir())
    whole = protocol(data, runs, 60, **TOY)
    assert whole.returncode == 0, whole.stderr[-2000:]
    assert sorted(os.listdir(runs / "done")) == ["cls", "curve1", "curve2", "ret", "val"]
    cls_log = (runs / "cls.log").read_text()
    calls = [line for line in cls_log.splitlines() if " step cls: " in line]
    assert len(calls) == 2 and "--resume" not in calls[0] and calls[1].endswith("--resume")
    assert "Resuming " in cls_log
    assert "Encoder after 1 pre-training epochs saved to" in cls_log
    assert "Loaded pre-trained encoder" in (runs / "curve1.log").read_text()
    for step in ("cls", "curve1", "curve2", "val", "ret"):
        folder = runs / (runs / "done" / step).read_text().strip()   # relative: a run root moves
        assert os.path.isfile(os.path.join(folder, "metrics.json")), step
        assert not os.path.exists(os.path.join(folder, "resume.npz")), step
    report = (runs / "protocol.md").read_text()
    for label in ("classification, test-selected", "classification, val-selected", "retrieval",
                  "| 1 epochs |", "| 2 epochs |"):
        assert label in report
    assert (runs / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    again = protocol(data, runs, 0, **TOY)                 # everything done: only the report
    assert again.returncode == 0 and "step " not in again.stdout


def test_protocol_refuses_a_missing_data_folder_in_one_line(tmp_path):
    out = protocol(tmp_path / "nowhere", tmp_path / "runs")
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: no data folder {tmp_path / 'nowhere'}"


@pytest.mark.slow
def test_protocol_stops_at_a_failing_step_naming_its_log(tmp_path):
    # An empty data folder: SM-SGE.py refuses it (no KGBD/6 inside), the script stops at the
    # first step with one line naming that step's log and marks nothing done.
    data, runs = tmp_path / "data", tmp_path / "runs"
    data.mkdir()
    out = protocol(data, runs, 1)
    assert out.returncode not in (0, 3)
    assert out.stderr.strip().splitlines()[-1] == (
        f"error: step cls failed (exit {out.returncode}); its log is {runs / 'cls.log'}")
    assert not list((runs / "done").iterdir())
    assert "step cls: " in (runs / "cls.log").read_text()
