"""The reference's research switches and behaviours that change the maths, each checked
against what the reference's code does (docs/results.md: "Research switches"; docs/parity.md: the quirk table)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from models.draws import S_RANGES, draw_lengths, ragged_draws, reid_prefixes, sample_draws
from models.sm_sge import SMSGE
from models.training import Encoder, Pretrainer
from utils.foundation.graphs import build_graph
from utils.foundation.skeleton import KINECT_V1
from utils.orchestration.stages import reid_progress

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "parity")


def batch(b=4, f=6, v=20, seed=0):
    x = np.random.default_rng(seed).normal(0, 0.3, size=(b, f, v, 3)).astype(np.float32)
    return x - x[..., :1, :]


@pytest.fixture(scope="module")
def model():
    return SMSGE(build_graph(KINECT_V1), lstm_size=8, heads=2, seed=1)


def test_draw_lengths_follow_the_reference_loops():
    assert draw_lengths(6, 1) == [1, 2, 3, 4, 5, 6]
    assert draw_lengths(6, 2) == [1, 2, 3, 4, 5, 6] * 2
    # pred_margin m: draws of k = 1..f-m, but the loss loops stop after (f-2m)*r of them
    assert draw_lengths(6, 1, margin=1) == [1, 2, 3, 4]
    assert draw_lengths(6, 2, margin=1) == [1, 2, 3, 4, 5, 1, 2, 3]
    assert draw_lengths(6, 1, margin=2) == [1, 2]
    # s_range: whatever the value, anything but "all" keeps only the first draw (k = 1)
    for value in S_RANGES[1:]:
        assert draw_lengths(6, 2, s_range=value) == [1]


def test_draws_are_sorted_distinct_frames_left_room_for_the_margin():
    rng = np.random.default_rng(0)
    for _ in range(20):
        for d in sample_draws(6, 1, rng, margin=2):
            assert np.all(np.diff(d) > 0) and d.max() + 2 <= 5
    ordered = sample_draws(6, 1, rng, ordered=True)
    assert [d.tolist() for d in ordered] == [list(range(k)) for k in range(1, 7)]


def test_reid_prefixes():
    assert reid_prefixes(6) == slice(0, 7)                     # 1..f+1, the last a zero frame
    assert reid_prefixes(6, zero_frame=False) == slice(0, 6)
    assert reid_prefixes(6, margin=1) == slice(0, 6)           # 1..f-m+1: no zero frame
    assert reid_prefixes(6, margin=2) == slice(0, 5)
    assert reid_prefixes(6, last_only=True) == slice(6, 7)     # --last_pre: the zero-frame prefix


@pytest.mark.slow
def test_draws_are_fixed_for_the_run_unless_fresh(model):
    fixed = Pretrainer(model, 1e-4, 6, rng=np.random.default_rng(0))
    first = [d.copy() for d in fixed.draws]
    fixed.step(batch())
    fixed.step(batch(seed=1))
    assert all(np.array_equal(a, b) for a, b in zip(first, fixed.draws))
    fresh = Pretrainer(model, 1e-4, 6, rng=np.random.default_rng(0), fresh_draws=True)
    seen = set()
    for seed in range(3):
        fresh.step(batch(seed=seed))
        seen.add(tuple(np.concatenate(fresh.draws)))
    assert len(seen) > 1


@pytest.mark.parametrize("margin", [1, 2])
def test_pred_margin_targets_later_frames_in_both_layouts(model, margin):
    x = batch()
    draws = sample_draws(6, 1, np.random.default_rng(2), margin=margin)
    per_draw = model.pretext_losses_per_draw(x, draws, margin=margin)
    layout = ragged_draws([len(d) for d in draws])
    ragged = model.pretext_losses(x, layout.frame_indices(draws), layout, margin=margin)
    recon = model.pretext_losses_per_draw(x, draws, margin=0)
    for s in model.scales:
        assert float(ragged[s]) == pytest.approx(float(per_draw[s]), rel=1e-5)
        assert float(per_draw[s]) != pytest.approx(float(recon[s]), rel=1e-3)
    # by hand for the body scale and one draw: the target is the skeleton m frames later
    d = draws[-1]
    coords = np.asarray(model.scale_coordinates(x)["body"]).reshape(4, 6, 15)
    feats = model.frame_features(model.scale_coordinates(x))["body"]
    pred = np.asarray(model.heads["body"]["body"](model.lstms["body"](np.asarray(feats)[:, d])))
    alone = model.pretext_losses_per_draw(x, [d], margin=margin)["body"]
    assert float(alone) == pytest.approx(np.abs(pred - coords[:, d + margin]).mean(), rel=1e-5)


def test_struct_only_drops_the_collaborative_relations():
    coords = {s: c.astype(np.float32) for s, c in
              build_graph(KINECT_V1).scale_coordinates(batch(1, 3)[0]).items()}
    plain = SMSGE(build_graph(KINECT_V1), 8, 2, seed=3, struct_only=True)
    fused = SMSGE(build_graph(KINECT_V1), 8, 2, seed=3)
    assert len(plain.trainable_variables) == len(fused.trainable_variables)   # same checkpoint
    out_plain, out_fused = plain.mgrn(coords), fused.mgrn(coords)
    for s in coords:
        structural = np.asarray(plain.mgrn.structural[s](coords[s]))
        np.testing.assert_allclose(np.asarray(out_plain[s]), structural, rtol=1e-6)
        assert not np.allclose(np.asarray(out_fused[s]), structural)


def test_global_att_and_n_hood_masks():
    assert all(np.all(m == 0) for m in build_graph(KINECT_V1, global_att=True).masks.values())
    one, two = build_graph(KINECT_V1, 1), build_graph(KINECT_V1, 2)
    assert (two.masks["joint"] == 0).sum() > (one.masks["joint"] == 0).sum()
    for s in ("part", "body", "hyper"):            # n_hood widens the joint scale only
        np.testing.assert_array_equal(one.masks[s], two.masks[s])


def test_last_pre_reads_only_the_zero_frame_prefix(model):
    x = batch()
    last = np.asarray(Encoder(model, reid_prefixes(6, last_only=True))(x))
    every = np.asarray(Encoder(model, reid_prefixes(6))(x))
    assert last.shape[1] == 1 and every.shape[1] == 7
    np.testing.assert_allclose(last[:, 0], every[:, 6], rtol=1e-6)


@pytest.mark.parametrize("acc, loss, epoch, min_save, expected", [
    (0.5, 2.0, 3, 0, (True, True)),       # beats the best: progress, kept
    (0.4, 2.0, 3, 0, (True, False)),      # equals the best accuracy: progress, not kept
    (0.3, 0.5, 3, 0, (True, False)),      # lowest loss only: progress, not kept
    (0.3, 2.0, 3, 0, (False, False)),
    (0.5, 2.0, 9, 10, (True, False)),     # IAS: not before epoch 10 (0-based)
    (0.5, 2.0, 10, 10, (True, True)),
])
def test_reid_keep_rule(acc, loss, epoch, min_save, expected):
    assert reid_progress(acc, loss, 0.4, 1.0, epoch, min_save) == expected
    assert reid_progress(0.0, 9.0, 0.0, 9.5, 0, 0) == (True, False)   # best starts at 0


def run(script, args, cwd):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, os.path.join(ROOT, script)] + args, cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=900)


@pytest.mark.parametrize("args, message", [
    (["--pred_margin", "2", "--length", "4"], "--pred_margin 2 leaves no draw for --length 4"),
    (["--encoder_ckpt", "x"], "use it with --pre_train 0"),
    (["--pre_train", "0", "--encoder_ckpt", "nowhere"], "no checkpoint at nowhere"),
    (["--pre_train", "0", "--dataset", "IAS", "--split", "A", "--encoder_ckpt",
      os.path.join(FIXTURES, "ks20", "init")], "is a 25-joint model, but IAS has 20 joints"),
])
@pytest.mark.slow
def test_switch_errors(tmp_path, args, message):
    proc = run("SM-SGE.py", args + ["--no_progress"], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert message in proc.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_reid_from_the_authors_pretrained_encoder(tmp_path):
    args = ["--dataset", "KS20", "--data_dir", os.path.join(FIXTURES, "ks20", "Datasets"),
            "--pre_train", "0", "--encoder_ckpt", os.path.join(FIXTURES, "ks20", "init"),
            "--batch_size", "20", "--max_reid_epochs", "2", "--save_flag", "0", "--no_progress"]
    proc = run("SM-SGE.py", args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Loaded the authors' pre-trained encoder" in proc.stdout
    # LSTM 32 and 8 heads read off the checkpoint, not the dataset's LSTM 256
    from tests.helpers import expected_encoder_parameters
    encoder = expected_encoder_parameters(25, 24, 32)
    assert f"(encoder {encoder / 1e6:.2f} M + " in proc.stdout
    assert "Test (80 of 80 sequences scored)" in proc.stdout
