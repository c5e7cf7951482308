"""Parity with the authors' own code, on the outputs it produced (tests/fixtures/parity,
copied from ../shared/parity; its README says how they were made).

For a 25-joint (KS20) and a 20-joint (IAS) case: from the reference's initial checkpoint,
our MGRN features, prefix encodings and summed logits, the four pretext losses with the
recorded draws and every gradient; from its trained Re-ID checkpoint, the test logits; the
reference's training order; and evaluate.py on its checkpoint.
"""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from models.reference_checkpoint import (LETTER, ReferenceCheckpoint, load_reference_classifier,
                                         load_reference_encoder)
from models.sm_sge import SMSGE, ReIDClassifier
from tools.parity_report import FIXTURES, ParityCase, relative_error
from utils.data import labels_for, read_split, reference_epoch_order
from utils.errors import UserError
from utils.graphs import build_graph
from utils.skeleton import layout_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {"ks20": dict(dataset="KS20", test_tag="KS20", rank1=22.5),
         "ias": dict(dataset="IAS", test_tag="IAS-A", split="A", rank1=25.0)}
FORWARD_TOL = 1e-5    # relative to the largest magnitude of the reference tensor
GRADIENT_TOL = 1e-4


@pytest.fixture(scope="module", params=sorted(CASES))
def init_case(request):
    return ParityCase(request.param)


@pytest.fixture(scope="module", params=sorted(CASES))
def rn_case(request):
    return ParityCase(request.param, "rn")


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
        np.testing.assert_allclose(inputs[scale].reshape(ref.shape), ref, atol=1e-6)
        allowed = init_case.model.graph.masks[scale] == 0
        np.testing.assert_array_equal(allowed, init_case.ref[f"bias_{letter}"][0] == 0)


def test_mgrn_features_match(init_case):
    feats = init_case.mgrn_features()
    for scale, letter in LETTER.items():
        ref = init_case.ref[f"mgrn_{letter}"]
        assert relative_error(feats[scale].reshape(ref.shape), ref) < FORWARD_TOL, scale


def test_prefix_encodings_and_summed_logits_match(init_case):
    assert relative_error(init_case.encodings(), init_case.ref["encodings"]) < FORWARD_TOL
    logits, loss = init_case.logits_and_loss()
    assert relative_error(logits, init_case.ref["logits"]) < FORWARD_TOL
    assert loss == pytest.approx(float(init_case.ref["reid_loss"]), rel=FORWARD_TOL)


@pytest.mark.parametrize("layout", ["ragged", "per_draw"])
def test_pretext_losses_and_every_gradient_match(init_case, layout):
    case = init_case
    losses, grads, reached = case.pretext(layout)
    for scale, letter in LETTER.items():
        assert losses[scale] == pytest.approx(float(case.ref[f"loss_{letter}"]), rel=FORWARD_TOL)
        keys = [k for k in case.ref.files if k.startswith(f"grad_{letter}/")]
        names = {k[len(f"grad_{letter}/"):] for k in keys}
        assert keys
        # the variables our loss reaches are exactly those the reference's reaches
        assert reached[scale] == names, scale
        for key in keys:
            ref = case.ref[key]
            err = relative_error(grads[scale][key[len(f"grad_{letter}/"):]].reshape(ref.shape), ref)
            assert err < GRADIENT_TOL, (key, err)


def test_trained_reid_checkpoint_gives_the_reference_test_logits(rn_case):
    assert relative_error(rn_case.encodings(), rn_case.ref["encodings"]) < FORWARD_TOL
    logits, loss = rn_case.logits_and_loss()
    assert relative_error(logits, rn_case.ref["logits"]) < FORWARD_TOL
    assert loss == pytest.approx(float(rn_case.ref["loss"]), rel=FORWARD_TOL)


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
    wrong = SMSGE(build_graph(layout_for(20)), 32, 8)          # a 20-joint model
    with pytest.raises(UserError, match=r"variable .* has shape .*needs"):
        load_reference_encoder(case_dir, wrong)
    with pytest.raises(UserError, match="no variable"):
        load_reference_encoder(case_dir, SMSGE(build_graph(layout_for(25)), 32, 9))
    with pytest.raises(UserError, match="no TF checkpoint"):
        ReferenceCheckpoint(str(tmp_path))
    (tmp_path / "m.ckpt.index").write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        ReferenceCheckpoint(str(tmp_path / "m.ckpt"))
    init = ReferenceCheckpoint(os.path.join(FIXTURES, "ks20", "init", "model.ckpt"))
    with pytest.raises(UserError, match="no trained Re-ID classifier"):
        load_reference_classifier(init, ReIDClassifier(128, 20))


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
