import os

import numpy as np
import pytest

from utils.data.demo import generate_recordings, write_demo
from utils.data.reid_data import (full_batches, load_reid_data, read_split, reference_epoch_order,
                        stratified_holdout, write_split)
from utils.foundation.errors import UserError
from tests.helpers import locate, random_sequences, read_dataset, write_ias


def test_loader_reads_released_layout_with_ias_names(tmp_path):
    train = write_ias(str(tmp_path))
    names = sorted(os.listdir(tmp_path / "IAS" / "4" / "IAS_test_npy_data"))
    assert "t_source_x_IAS-A_4.npy" in names and "ids_IAS-B_4.npy" in names
    data = read_dataset("IAS", 4, str(tmp_path), split="A")
    assert data.train.sequences.shape == (12, 4, 20, 3)
    assert data.test.sequences.shape == (6, 4, 20, 3)
    assert data.num_classes == 3
    np.testing.assert_array_equal(data.train_labels, np.repeat([0, 1, 2], 4))
    # centred on joint 0, per frame and axis
    np.testing.assert_allclose(data.train.sequences[..., 0, :], 0.0)
    expected = train[0][1, 2, 5] - train[0][1, 2, 0]
    np.testing.assert_allclose(data.train.sequences[1, 2, 5], expected, rtol=1e-6)


def test_frame_level_ids_are_accepted(tmp_path):
    rng = np.random.default_rng(1)
    seqs, ids = random_sequences(rng)
    folder = str(tmp_path / "d")
    write_split(folder, "KGBD", 4, seqs, ids, test=False)
    np.save(os.path.join(folder, "frame_id_KGBD_4.npy"), np.repeat(ids, 4))
    split = read_split(folder, "KGBD", 4, 20, False, "KGBD")
    np.testing.assert_array_equal(split.person_ids, ids)


def test_missing_folder_says_where_files_go(tmp_path):
    with pytest.raises(UserError, match=r"KS20_train_npy_data not found.*Kali-Hac/SM-SGE"):
        read_dataset("KS20", 6, str(tmp_path))


def test_wrong_joint_count_is_reported(tmp_path):
    rng = np.random.default_rng(2)
    folder = str(tmp_path / "d")
    write_split(folder, "KS20", 4, *random_sequences(rng, v=20), test=False)
    with pytest.raises(UserError, match="20 joints per frame but KS20 uses 25"):
        read_split(folder, "KS20", 4, 25, False, "KS20")


def test_wrong_length_and_malformed_file_are_reported(tmp_path):
    rng = np.random.default_rng(3)
    folder = str(tmp_path / "d")
    write_split(folder, "KGBD", 4, *random_sequences(rng), test=False)
    with pytest.raises(UserError, match="not a multiple of --length 5"):
        # files are named for length 4: rename one set to pretend length 5
        for a in "xyz":
            os.rename(os.path.join(folder, f"source_{a}_KGBD_4.npy"),
                      os.path.join(folder, f"source_{a}_KGBD_5.npy"))
        read_split(folder, "KGBD", 5, 20, False, "KGBD")
    with open(os.path.join(folder, "source_x_KGBD_5.npy"), "wb") as fh:
        fh.write(b"not a numpy file")
    with pytest.raises(UserError, match="cannot read skeleton file"):
        read_split(folder, "KGBD", 5, 20, False, "KGBD")


def test_ids_file_must_agree_with_frame_ids(tmp_path):
    rng = np.random.default_rng(4)
    seqs, ids = random_sequences(rng)
    folder = str(tmp_path / "d")
    write_split(folder, "KGBD", 4, seqs, ids, test=False)
    np.save(os.path.join(folder, "ids_KGBD_4.npy"), np.array({10: [5]}, dtype=object))
    with pytest.raises(UserError, match="disagrees with the frame_id file"):
        read_split(folder, "KGBD", 4, 20, False, "KGBD")


@pytest.mark.parametrize("kwargs,message", [
    (dict(dataset="IAS", length=6), "IAS needs --split A or --split B"),
    (dict(dataset="IAS", length=6, split="C"), "IAS needs --split A or --split B"),
    (dict(dataset="KS20", length=6, split="A"), "--split applies to IAS only"),
    (dict(dataset="CASIA_B", length=20, view=11), "unknown CASIA-B view 11"),
    (dict(dataset="CASIA_B", length=20), "CASIA_B needs --view"),
    (dict(dataset="CASIA_B", length=20, probe_type="xx"), "unknown CASIA-B --probe_type"),
    (dict(dataset="NTU", length=6), "unknown dataset 'NTU'"),
])
def test_bad_variant_flags(kwargs, message):
    with pytest.raises(UserError, match=message):
        locate(**kwargs)


def test_casia_layouts():
    cross = locate("CASIA_B", 20, view=3, root="D")
    assert cross.train_dir == os.path.join("D", "CASIA_B", "20", "view_3", "CASIA_B_train_npy_data")
    match = locate("CASIA_B", 20, probe_type="cl.nm", root="D")
    # the reference reads the folder of the probe condition, the part before the dot
    assert match.test_dir == os.path.join("D", "CASIA_B_match", "20", "CASIA_B_test_npy_data", "cl")


def test_reference_epoch_order_blocks_and_redraws():
    # 3 identities with 5, 2 and 3 samples (stored interleaved); batch 6 -> 2 per identity
    labels = np.array([0, 1, 2, 0, 0, 1, 2, 0, 2, 0])
    order = reference_epoch_order(labels, 6, np.random.default_rng(0))
    assert len(order) == 2 * (10 // 6) * 3 * 2                  # 2*floor(N/batch) blocks of C*bpc
    np.testing.assert_array_equal(labels[order], [0, 0, 1, 1, 2, 2] * 2)
    # block 0 takes every identity's first two samples in stored order
    np.testing.assert_array_equal(order[:6], [0, 3, 1, 5, 2, 6])
    # block 1: identity 0 still has samples 3..4 of its list; identity 1 has none left and
    # identity 2 only one, so both are re-drawn from their own samples
    np.testing.assert_array_equal(order[6:8], [4, 7])
    assert set(order[8:10]) <= {1, 5} and set(order[10:12]) <= {2, 6, 8}
    again = reference_epoch_order(labels, 6, np.random.default_rng(0))
    np.testing.assert_array_equal(order, again)                # seeded re-draws
    with pytest.raises(UserError, match="smaller than the 3 identities"):
        reference_epoch_order(labels, 2, np.random.default_rng(0))
    assert 9 not in order   # as in the reference, two blocks never reach identity 0's 5th sample
    assert [len(b) for b in full_batches(order, 5)] == [5, 5]   # the last partial batch dropped
    with pytest.raises(UserError, match="12 training sequences .* make no full batch of 16"):
        full_batches(order, 16)


def test_stratified_holdout_is_disjoint_and_covers_every_identity():
    labels = np.repeat(np.arange(5), 10)
    tr, va = stratified_holdout(labels, 0.2, np.random.default_rng(0))
    assert not set(tr) & set(va) and len(tr) + len(va) == 50
    assert np.all(np.bincount(labels[va]) == 2)


def test_demo_is_deterministic_and_in_released_layout(tmp_path):
    a = generate_recordings(seed=5)
    b = generate_recordings(seed=5)
    assert all(np.array_equal(x, y) for pid in a for x, y in zip(a[pid], b[pid]))
    base = write_demo("demo20", 4, root=str(tmp_path))
    data = read_dataset("demo20", 4, str(tmp_path))
    assert data.num_classes == 20 and data.train.sequences.shape[2] == 20
    assert os.path.isdir(os.path.join(base, "demo20_test_npy_data", "probe"))
    # Train and test windows come from distinct recordings: no test window equals a train one.
    train = data.train.sequences.reshape(len(data.train_labels), -1)
    test = data.test.sequences.reshape(len(data.test_labels), -1)
    assert np.min(np.abs(train[:, None, :50] - test[None, :, :50]).sum(-1)) > 1e-3
