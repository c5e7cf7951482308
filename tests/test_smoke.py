"""The fast tier's reach: the smallest complete training run in one process (pre-training,
the Re-ID stage, scoring and the saved run read back), and the tools that otherwise run only
in the full suite, each through its entry point. The full suite proves them at length."""
import json
import os
import shutil

import numpy as np
import pytest

from tests.helpers import ROOT, small_opts


def test_the_smallest_run_trains_saves_and_scores_again(tmp_path, monkeypatch):
    from utils.orchestration.pipeline import run_evaluation, run_training
    monkeypatch.chdir(tmp_path)
    opts = small_opts(save_flag=True, pre_epochs=1, max_reid_epochs=1, patience=1)
    lines = []
    result = run_training(opts, log=lines.append)
    assert any(line.startswith("[1/1] pretext loss") for line in lines)
    metrics = json.loads(open(os.path.join(result.run_dir, "metrics.json")).read())
    assert len(metrics["pretext_history"]) == 1 and len(metrics["reid_history"]) == 1
    assert 0.0 <= metrics["rank1"] <= 1.0 and metrics["parts"][0]["stage"] == "pretrain"
    again = run_evaluation(opts.replace(model_dir=result.run_dir), log=lambda *_: None)
    assert again.rank1 == result.rank1


def test_an_authors_checkpoint_exports_to_numpy(tmp_path, capsys):
    from tools.export_checkpoint import main
    folder = tmp_path / "rn"
    shutil.copytree(os.path.join(ROOT, "tests", "fixtures", "parity", "ks20", "rn"), folder)
    assert main([str(folder)]) == 0
    (written,) = [line.split("written ", 1)[1] for line in capsys.readouterr().out.splitlines()]
    with np.load(written) as data:
        assert any("Recognition" in name for name in data.files) and len(data.files) > 50


@pytest.mark.parametrize("tool, args, message", [
    ("measure_identify", ["no_such_run"], "no_such_run"),
    ("video_to_skeleton", ["no_such_folder", "--out", "unused"], ""),
])
def test_measurement_and_video_tools_end_in_one_line(tool, args, message, capsys):
    import importlib
    main = importlib.import_module(f"tools.{tool}").main
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_the_training_data_digest_tells_datasets_apart():
    from utils.orchestration.stages import training_data_digest
    a = np.zeros((4, 6, 20, 3), np.float32)
    b = a.copy()
    b[3, 5, 19, 2] = 1e-3
    assert training_data_digest(a) == training_data_digest(a.copy()) != training_data_digest(b)
    assert training_data_digest(a) != training_data_digest(a[:3])
