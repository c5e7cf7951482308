import json

import numpy as np
import pytest

from tools.seeds import summarise


def test_seed_summary_mean_and_std():
    table = summarise([dict(rank1=0.5, nauc=0.9), dict(rank1=0.7, nauc=0.8)])
    assert table["rank1"]["mean"] == pytest.approx(0.6)
    assert table["rank1"]["std"] == pytest.approx(0.1)
    assert table["nauc"]["values"] == [0.9, 0.8]
    assert "mAP" not in table


@pytest.mark.slow
def test_seed_runner_end_to_end(tmp_path, monkeypatch, capsys):
    from tools import seeds
    monkeypatch.chdir(tmp_path)
    rc = seeds.main(["--seeds", "2", "--length", "4", "--batch_size", "128", "--pre_epochs", "0",
                     "--max_reid_epochs", "2", "--xla", "0", "--no_progress", "--save_flag", "0",
                     "--protocol", "retrieval"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "Over 2 seeds" in out and "mAP" in out
    (path,) = (tmp_path / "RN" / "demo" / "4").glob("seeds_retrieval_*.json")
    saved = json.loads(path.read_text())
    assert saved["seeds"] == [0, 1] and "seed" not in saved["config"]
    assert saved["config"]["length"] == 4 and saved["config"]["protocol"] == "retrieval"
    for metric in ("rank1", "mAP"):
        row = saved["summary"][metric]
        assert len(row["values"]) == 2 and all(0 <= v <= 1 for v in row["values"])
        assert row["mean"] == pytest.approx(np.mean(row["values"]))
        assert row["std"] == pytest.approx(np.std(row["values"]))
    assert seeds.main(["--seeds", "0"]) == 2


def test_benchmark_rejects_an_unknown_section_in_one_line(tmp_path):
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, os.path.join(root, "benchmarks", "benchmark.py"),
                           "--sections", "pretrain,speed", "--out", str(tmp_path / "b.json")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert ("unknown section(s) speed; choose from size, pretrain, kgbd, breakdown, reid, "
            "sweeps, step") in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "b.json").exists()


def test_the_benchmark_counts_the_kernels_an_hlo_module_launches():
    import importlib.util
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("bench", os.path.join(root, "benchmarks", "benchmark.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    text = """HloModule step

%fused_computation (p: f32[4]) -> f32[4] {
  %p = f32[4]{0} parameter(0)
  ROOT %n = f32[4]{0} negate(f32[4]{0} %p)
}

ENTRY %main (a: f32[4], b: f32[4,4]) -> (f32[4], f32[4]) {
  %a = f32[4]{0} parameter(0)
  %b = f32[4,4]{1,0} parameter(1)
  %c = f32[] constant(1)
  %fusion = f32[4]{0} fusion(f32[4]{0} %a), kind=kLoop, calls=%fused_computation
  %dot = f32[4]{0} dot(f32[4,4]{1,0} %b, f32[4]{0} %fusion), lhs_contracting_dims={1}
  %t = (f32[4]{0}, f32[4]{0}) tuple(f32[4]{0} %dot, f32[4]{0} %fusion)
  %copy = f32[4]{0} copy(f32[4]{0} %dot)
  ROOT %r = (f32[4]{0}, f32[4]{0}) tuple(f32[4]{0} %copy, f32[4]{0} %fusion)
}
"""
    assert bench.hlo_kernels(text) == dict(total=3, fusions=1, dots=1,
                                           by_opcode=dict(fusion=1, dot=1, copy=1))


def write_run(folder, pre_epochs, rank1, nauc, history=None, steps=316):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(dict(data_dir="d", protocol="classification",
                                                        pre_epochs=pre_epochs)))
    (folder / "metrics.json").write_text(json.dumps(dict(
        rank1=rank1, nauc=nauc, selection_set="test", best_epoch=2, steps_per_epoch=steps,
        reid_history=history or [dict(sel_acc=0.5), dict(sel_acc=0.61), dict(sel_acc=0.6)],
        pretrain_seconds=600.0, reid_seconds=60.0)))
    return str(folder)


def test_compare_runs_table_and_learning_curve(tmp_path, capsys):
    from tools import compare_runs
    a = write_run(tmp_path / "a", 40, 0.61, 0.9)
    b = write_run(tmp_path / "b", 20, 0.5, 0.85, [dict(sel_acc=0.5), dict(sel_acc=0.45)])
    png = tmp_path / "curve.png"
    assert compare_runs.main([a + "=forty", b, "--plot", str(png)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(" | ")[:4] == ["| run", "data", "pre-training epochs", "pre-training steps"]
    assert "mAP" not in lines[0]                    # no run has one: the column is left out
    assert lines[2] == "| forty | d | 40 | 12640 | 3 | 2 | 61.00 % | 90.00 % | 60.00 % | 11.0 |"
    assert lines[3].startswith("| b | d | 20 | 6320 | 2 | 2 | 50.00 % | 85.00 % | 45.00 %")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_runs_refuses_an_unfinished_folder_in_one_line(tmp_path, capsys):
    from tools import compare_runs
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    assert compare_runs.main([str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path / 'run'} holds no metrics.json: not a finished SM-SGE.py run folder"]
