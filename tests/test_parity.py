"""Parity with the authors' own code, on the outputs it produced (tests/fixtures/parity,
recorded from the authors' code; their README says how they were made).

For a 25-joint (KS20) and a 20-joint (IAS) case: from the reference's initial checkpoint,
our MGRN features, prefix encodings and summed logits, the four pretext losses with the
recorded draws and every gradient; from its trained Re-ID checkpoint, the test logits; the
reference's training order; and evaluate.py on its checkpoint. Tolerances come from our
float64 twin of the same computation (tools/parity_report.py says why they hold on any CPU),
and changes to the maths that matter are shown to be caught.
"""
import functools
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from models.draws import ragged_draws
from models.reference_checkpoint import (LETTER, ReferenceCheckpoint, load_reference_classifier,
                                         load_reference_encoder)
from models.sm_sge import SMSGE, ReIDClassifier
from tools.parity_report import (DRAW_BATCHINGS, FIXTURES, REFERENCE_FACTOR, ParityCase, own_factor,
                                 parity_table, relative_error, within_bounds)
from utils.data.reid_data import labels_for, read_split, reference_epoch_order
from utils.foundation.errors import UserError
from utils.foundation.graphs import build_graph
from utils.foundation.skeleton import KINECT_V1, KINECT_V2
from tests.helpers import CASES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
@pytest.fixture(scope="module", params=sorted(CASES))
def init_case(request):
    return ParityCase(request.param)


@pytest.fixture(scope="module", params=sorted(CASES))
def rn_case(request):
    return ParityCase(request.param, "rn")


@pytest.fixture(scope="module", params=[(n, s) for n in sorted(CASES) for s in ("init", "rn")],
                ids=lambda p: "-".join(p))
def table(request):
    return cached_table(*request.param)


@functools.lru_cache(maxsize=None)
def cached_table(name, stage):
    """parity_table is ~15 s a case: computed once per module for every test that reads it."""
    return parity_table(name, stage)


def test_sizes_are_read_off_the_checkpoint(init_case):
    sizes = init_case.ckpt.sizes()
    assert sizes["lstm_size"] == init_case.meta["LSTM_embed"] == 32
    assert sizes["num_joints"] == init_case.meta["nb_nodes"]
    assert sizes["heads"] == 8
    assert sizes["num_classes"] == init_case.ref["labels"].shape[1]


def test_scale_inputs_and_masks_equal_the_reference_preprocessing(init_case):
    inputs = init_case.scale_inputs()
    for scale, letter in LETTER.items():
        ref = init_case.ref[f"in_{letter}"]
        # coordinates of about 1 m, each an average of at most 4 joints: float32 rounding
        # is below 1e-6 m on any CPU
        np.testing.assert_allclose(inputs[scale].reshape(ref.shape), ref, atol=1e-6)
        allowed = init_case.model.graph.masks[scale] == 0
        np.testing.assert_array_equal(allowed, init_case.ref[f"bias_{letter}"][0] == 0)


@pytest.mark.slow
def test_every_quantity_is_the_reference_up_to_float32_rounding(table):
    """MGRN features, prefix encodings, logits, Re-ID loss, the four pretext losses and
    every gradient (both draw batchings); for the trained model its encodings, logits and loss.
    Both the reference's float32 outputs and ours lie within float32 rounding of our float64
    twin; the bound is argued in tools/parity_report.py ("Tolerances that hold on any CPU")."""
    assert len(table) > 100 or set(table) == {"encodings", "logits", "loss"}
    for key, row in table.items():
        assert within_bounds(key, row), (key, row)


@pytest.mark.slow
@pytest.mark.parametrize("draw_batching", DRAW_BATCHINGS)
def test_pretext_gradients_reach_exactly_the_references_variables(init_case, draw_batching):
    _, grads, reached = init_case.pretext(draw_batching)
    for scale, letter in LETTER.items():
        names = {k[len(f"grad_{letter}/"):] for k in init_case.ref.files
                 if k.startswith(f"grad_{letter}/")}
        assert names and reached[scale] == names, scale


def _caught(table, key, value, ref):
    """Our float32 value passes only within own_factor * scale of the float64 twin, which is
    within REFERENCE_FACTOR * scale of the reference: whether `value` is beyond both."""
    return relative_error(value, ref) > (own_factor(key) + REFERENCE_FACTOR) * table[key]["scale"]


def test_a_missing_zero_frame_is_caught():
    case, table = ParityCase("ias"), cached_table("ias", "init")
    logits = np.asarray(case.classifier(case.model.encode(case.x, zero_frame=False)))
    assert _caught(table, "logits", logits, case.ref["logits"])


def test_a_missing_cross_scale_head_is_caught():
    case, table = ParityCase("ks20"), cached_table("ks20", "init")
    del case.model.heads["joint"]["body"]
    draws = [case.ref[f"draw_{i}"] for i in range(case.length)]
    ragged = ragged_draws([len(d) for d in draws])
    losses = case.model.pretext_losses(case.x, ragged.frame_indices(draws), ragged)
    assert _caught(table, "loss_J@ragged", np.float64(losses["joint"]), case.ref["loss_J"])


def test_missing_scorer_biases_are_caught():
    case, table = ParityCase("ks20", "rn"), cached_table("ks20", "rn")
    layers = case.model.mgrn.structural.values()
    assert any(np.abs(l.a_src_bias.numpy()).max() > 0 for l in layers)   # trained: not zero
    for layer in layers:
        layer.a_src_bias.assign(np.zeros_like(layer.a_src_bias.numpy()))
        layer.a_dst_bias.assign(np.zeros_like(layer.a_dst_bias.numpy()))
    assert _caught(table, "encodings", case.encodings(), case.ref["encodings"])


def test_encodings_in_another_scale_order_are_caught():
    case, table = ParityCase("ias", "rn"), cached_table("ias", "rn")
    enc = case.encodings()
    h = enc.shape[1] // 4
    swapped = np.concatenate([enc[:, h:2 * h], enc[:, :h], enc[:, 2 * h:]], axis=1)   # J, I, P, B
    assert _caught(table, "encodings", swapped, case.ref["encodings"])


def test_untrained_copy_is_not_taken_for_the_trained_classifier(rn_case):
    untrained = ReIDClassifier(rn_case.model.embedding_size, rn_case.ref["labels"].shape[1])
    load_reference_classifier(rn_case.ckpt, untrained, trained=False)
    assert not np.allclose(untrained.w1.numpy(), rn_case.classifier.w1.numpy())


@pytest.mark.parametrize("name", sorted(CASES))
def test_training_order_labels_equal_the_references(name):
    case = CASES[name]
    ds = case["dataset"]
    train = read_split(os.path.join(FIXTURES, name, "Datasets", ds, "6", f"{ds}_train_npy_data"),
                       ds, 6, 25 if ds == "KS20" else 20, False, ds)
    labels = labels_for(train.person_ids, np.unique(train.person_ids))
    ref = np.load(os.path.join(FIXTURES, name, "init", "reference_outputs.npz"))
    batch = ref["in_J"].shape[0] // 6
    for seed in (0, 1):   # only which sample fills a re-draw slot depends on the seed
        order = reference_epoch_order(labels, batch, np.random.default_rng(seed))
        np.testing.assert_array_equal(labels[order], ref["epoch_labels"])
    # the first batch holds no re-draw: it is exactly the reference's first batch
    first = train.sequences[order[:batch]]
    np.testing.assert_allclose(first.reshape(ref["in_J"].shape), ref["in_J"], atol=1e-6)


def test_checkpoint_errors_name_the_problem(tmp_path):
    case_dir = os.path.join(FIXTURES, "ks20", "rn")
    wrong = SMSGE(build_graph(KINECT_V1), 32, 8)          # a 20-joint model
    with pytest.raises(UserError, match=r"variable .* has shape .*needs"):
        load_reference_encoder(case_dir, wrong)
    with pytest.raises(UserError, match="no variable"):
        load_reference_encoder(case_dir, SMSGE(build_graph(KINECT_V2), 32, 9))
    with pytest.raises(UserError, match="no TF checkpoint"):
        ReferenceCheckpoint(str(tmp_path))
    (tmp_path / "m.ckpt.index").write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        ReferenceCheckpoint(str(tmp_path / "m.ckpt"))
    init = ReferenceCheckpoint(os.path.join(FIXTURES, "ks20", "init", "model.ckpt"))
    with pytest.raises(UserError, match="no trained Re-ID classifier"):
        load_reference_classifier(init, ReIDClassifier(128, 20))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_evaluate_script_prints_the_reference_rank1(name):
    case = CASES[name]
    ref = np.load(os.path.join(FIXTURES, name, "rn", "reference_outputs.npz"))
    batch = ref["labels"].shape[0]
    args = ["--dataset", case["dataset"], "--model_dir", os.path.join(FIXTURES, name, "rn"),
            "--data_dir", os.path.join(FIXTURES, name, "Datasets"), "--batch_size", str(batch),
            "--no_progress"] + (["--split", case["split"]] if "split" in case else [])
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "evaluate.py")] + args,
                          capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Confusion matrix" in proc.stdout
    rank1 = float(re.search(r"Rank-1 ([0-9.]+) ", proc.stdout).group(1))
    assert rank1 == pytest.approx(case["rank1"], abs=1e-6)


@pytest.mark.slow
def test_evaluate_script_runs_retrieval_on_an_authors_checkpoint():
    """IAS-A probes against IAS-B as gallery, encoded by the reference's trained encoder."""
    args = ["--dataset", "IAS", "--split", "A", "--protocol", "retrieval",
            "--model_dir", os.path.join(FIXTURES, "ias", "rn"),
            "--data_dir", os.path.join(FIXTURES, "ias", "Datasets"), "--batch_size", "22",
            "--no_progress"]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "evaluate.py")] + args,
                          capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r"Retrieval \(44 probes, gallery 44\): Rank-1 [0-9.]+ .* mAP [0-9.]+", proc.stdout)
