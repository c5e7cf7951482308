import numpy as np
import pytest

from models.draws import ragged_draws, reid_prefixes, sample_draws
from models.mgrn import collaborative_message
from models.sm_sge import SMSGE, ReIDClassifier
from models.training import Encoder, Pretrainer, ReIDTrainer
from utils.foundation.graphs import build_graph
from utils.foundation.skeleton import KINECT_V1, KINECT_V2
from tests.helpers import expected_encoder_parameters


@pytest.fixture(scope="module")
def small_model():
    return SMSGE(build_graph(KINECT_V1), lstm_size=16, heads=2, seed=0)


def batch(b=4, f=4, v=20, seed=0):
    x = np.random.default_rng(seed).normal(0, 0.3, size=(b, f, v, 3)).astype(np.float32)
    return x - x[..., :1, :]


def walking_batch(n=8, f=4):
    """Real structure to reconstruct: demo walking windows on the 20-joint skeleton."""
    from utils.data.demo import person_parameters, walk
    from utils.foundation.skeleton import V2_TO_V1
    rng = np.random.default_rng(9)
    seqs = np.stack([walk(person_parameters(rng), rng, f)[:, V2_TO_V1] for _ in range(n)])
    return seqs - seqs[..., :1, :]


def test_shapes_through_every_stage(small_model):
    x = batch()
    coords = small_model.scale_coordinates(x)
    assert {s: tuple(c.shape) for s, c in coords.items()} == {
        "joint": (4, 4, 20, 3), "part": (4, 4, 10, 3), "body": (4, 4, 5, 3), "hyper": (4, 4, 39, 3)}
    feats = small_model.frame_features(coords)
    assert {s: tuple(c.shape) for s, c in feats.items()} == {
        "joint": (4, 4, 160), "part": (4, 4, 80), "body": (4, 4, 40), "hyper": (4, 4, 312)}
    assert small_model.encode(x).shape == (4, 5, 64)             # f+1 prefixes (zero frame)
    assert small_model.encode(x, zero_frame=False).shape == (4, 4, 64)
    logits = ReIDClassifier(64, 7)(small_model.encode(x))
    assert logits.shape == (4, 7)


def test_full_size_parameter_count_is_exact():
    model = SMSGE(build_graph(KINECT_V2), lstm_size=256, heads=8)
    params = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    assert params == expected_encoder_parameters(25, len(KINECT_V2.bones), 256) == 4_659_455
    classifier = sum(int(np.prod(v.shape)) for v in ReIDClassifier(1024, 20).trainable_variables)
    assert classifier == 1024 * 1024 + 1024 + 1024 * 20 + 20
    assert params + classifier == 5_729_555     # the paper reports 5.58 M


def test_prefix_encodings_equal_separate_prefix_passes(small_model):
    x = batch()
    enc = np.asarray(small_model.encode(x, zero_frame=False))
    feats = small_model.frame_features(small_model.scale_coordinates(x))
    assert small_model.encoding_scales == ("hyper", "joint", "part", "body")   # the reference's I, J, P, B
    for k in (1, 3):
        last = np.asarray(small_model.lstms["part"](feats["part"][:, :k])[:, -1])
        np.testing.assert_allclose(enc[:, k - 1, 32:48], last, rtol=1e-5, atol=1e-6)


def test_zero_frame_prefix_reads_a_zero_feature(small_model):
    x = batch()
    feats = small_model.frame_features(small_model.scale_coordinates(x))
    body = np.asarray(feats["body"])
    padded = np.concatenate([body, np.zeros_like(body[:, :1])], axis=1)
    expected = np.asarray(small_model.lstms["body"](padded)[:, -1])
    np.testing.assert_allclose(np.asarray(small_model.encode(x)[:, -1, 48:64]), expected, rtol=1e-5)


def test_ragged_draws_run_each_draw_while_it_lasts():
    draws = sample_draws(6, 2, np.random.default_rng(0))
    assert [len(d) for d in draws] == list(range(1, 7)) * 2
    assert all(np.all(np.diff(d) > 0) for d in draws)           # sorted, distinct
    packed = ragged_draws([len(d) for d in draws])
    assert packed.rows_per_step == (12, 10, 8, 6, 4, 2)       # 42 slots, no padding
    assert len(packed.source) == 42 == len(packed.weight)
    assert packed.weight.sum() == pytest.approx(1.0)            # mean over draws of means
    frame_indices = packed.frame_indices(draws)
    # step 0 reads every draw's first frame, longest draws first
    assert [frame_indices[q] for q in range(12)] == [draws[d][0] for d, _ in packed.source[:12]]
    assert [len(draws[d]) for d, _ in packed.source[:12]] == [6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    # a draw keeps its row: at step t it is one of the first rows_per_step[t] rows
    for t, start in ((1, 12), (5, 40)):
        assert [d for d, p in packed.source[start:start + packed.rows_per_step[t]]] == \
            [d for d, _ in packed.source[:packed.rows_per_step[t]]]
    assert ragged_draws([1, 2, 3], "l2").weight.tolist() == [pytest.approx(1 / 3)] * 6


@pytest.mark.parametrize("loss", ["l1", "MSE", "l2"])
def test_ragged_losses_equal_per_draw_losses(small_model, loss):
    x = batch()
    draws = sample_draws(4, 2, np.random.default_rng(1))
    per_draw = small_model.pretext_losses_per_draw(x, draws, loss)
    packed = ragged_draws([len(d) for d in draws], loss)
    got = small_model.pretext_losses(x, packed.frame_indices(draws), packed, loss)
    for s in per_draw:
        assert float(got[s]) == pytest.approx(float(per_draw[s]), rel=1e-5)


def test_collaborative_message_is_attention_weighted_keys():
    q = np.array([[[1.0, 0.0]]], np.float32)
    k = np.array([[[1.0, 0.0], [0.0, 1.0]]], np.float32)
    w = np.exp([1.0, 0.0]) / np.exp([1.0, 0.0]).sum()
    np.testing.assert_allclose(np.asarray(collaborative_message(q, k))[0, 0], w, rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("optimizers", ["four", "one"])
def test_pretext_loss_falls_on_fixed_data(optimizers):
    model = SMSGE(build_graph(KINECT_V1), lstm_size=16, heads=2, seed=3)
    trainer = Pretrainer(model, 0.005, 4, "l1", 1, optimizers, jit=False)
    x = walking_batch()
    first = sum(trainer.step(x).values())
    for _ in range(30):
        last = sum(trainer.step(x).values())
    assert last < 0.7 * first


def test_an_epoch_with_its_state_kept_on_the_device_is_the_same_steps_one_by_one():
    """Pretrainer.epoch keeps the weights and optimiser states on the engine's device and
    writes them back once; the same batches stepped one by one (written back after each)
    give the same losses and weights, bit for bit, on either engine."""
    sequences = walking_batch(12)
    batches = [np.array([0, 3, 5, 7]), np.array([1, 2, 8, 11]), np.array([4, 6, 9, 10])]
    runs = []
    for whole in (True, False):
        model = SMSGE(build_graph(KINECT_V1), lstm_size=8, heads=2, seed=9)
        trainer = Pretrainer(model, 0.01, 4, rng=np.random.default_rng(3))
        losses = (trainer.epoch(sequences, batches) if whole else
                  [trainer.step(sequences[idx]) for idx in batches])
        runs.append((losses, [v.numpy() for v in model.trainable_variables
                              + trainer.optimiser_variables()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)


def _epoch_in_blocks(steps_per_call, jit, fresh_draws=False, smaller_last=True):
    """One epoch of six batches (the last one smaller, or left out) with `steps_per_call`
    steps per compiled call, 2: blocks of 2, 2, 1 (cut short where the batch size changes,
    padded) and 1: (losses per step, weights and optimiser states, the last draws)."""
    sequences = walking_batch(12)
    batches = [np.array([0, 3, 5, 7]), np.array([1, 2, 8, 11]), np.array([4, 6, 9, 10]),
               np.array([7, 1, 0, 5]), np.array([11, 4, 2, 8])]
    batches += [np.array([2, 9, 3])] if smaller_last else []
    model = SMSGE(build_graph(KINECT_V1), lstm_size=8, heads=2, seed=9)
    trainer = Pretrainer(model, 0.01, 4, rng=np.random.default_rng(3), jit=jit,
                         steps_per_call=steps_per_call, fresh_draws=fresh_draws)
    losses = trainer.epoch(sequences, batches)
    assert len(losses) == len(batches)
    if steps_per_call > 1:   # one compilation per batch size: a shorter block is padded
        from models.engine import name
        step = trainer._step
        compiled = (step.block_call.compiled.experimental_get_tracing_count()
                    if name() == "tensorflow" else step.compiled_block._cache_size())
        assert compiled == (2 if smaller_last else 1)
    return ([[step[s] for s in sorted(step)] for step in losses],
            [v.numpy() for v in model.trainable_variables + trainer.optimiser_variables()],
            [d.tolist() for d in trainer.draws])


def _same_to_rounding(one, blocks) -> None:
    """The loop's body is compiled apart from the single step (by XLA, or by TensorFlow's
    graph optimiser without XLA), which may order a fused reduction's additions
    differently: float32 rounding (about 1e-7 relative per operation) over six steps, far
    below one step's change (Adam moves a weight by up to lr, 0.01). On a 2-core AMD EPYC
    the weights came out the same bit for bit and the losses within one rounding
    (docs/runs/2026-12-07-blocks/same_bits.log), but nothing guarantees the bits."""
    assert blocks[2] == one[2]                                  # the same draws, in order
    np.testing.assert_allclose(blocks[0], one[0], rtol=1e-5)
    for a, b in zip(one[1], blocks[1]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_several_steps_per_compiled_call_are_the_same_steps():
    """Pretrainer.epoch with steps_per_call K runs K steps in one compiled call (a loop on
    the device over batches of the sequences' device copy), the last block padded: the same
    steps as one call each. (The slow test below also changes the batch size.)"""
    _same_to_rounding(*(_epoch_in_blocks(k, jit=False, smaller_last=False) for k in (1, 2)))


@pytest.mark.slow
@pytest.mark.parametrize("fresh_draws", [False, True])
def test_several_steps_per_call_with_xla_are_the_same_steps(fresh_draws):
    """The same with XLA (TensorFlow's default there is ten steps per call), a block cut
    short where the batch size changes, fresh draws taken in the same order."""
    _same_to_rounding(*(_epoch_in_blocks(k, jit=True, fresh_draws=fresh_draws) for k in (1, 2)))


@pytest.mark.slow
def test_four_optimisers_each_step_the_shared_mgrn():
    model = SMSGE(build_graph(KINECT_V1), lstm_size=8, heads=2, seed=4)
    trainer = Pretrainer(model, 0.001, 4, jit=False)
    trainer.step(batch())
    w = model.mgrn.structural["joint"].w_in
    reached = [s for s, opt in trainer.optimizers.items() if any(v is w for v in opt.variables_)]
    assert reached == ["joint", "part", "body", "hyper"]
    assert all(int(opt.step.numpy()) == 1 for opt in trainer.optimizers.values())


@pytest.mark.slow
def test_cached_and_uncached_reid_training_agree():
    model = SMSGE(build_graph(KINECT_V1), lstm_size=8, heads=2, seed=5)
    encoder = Encoder(model, reid_prefixes(4))
    x, y = batch(6, seed=7), np.array([0, 1, 2, 0, 1, 2])
    results = []
    for raw in (False, True):
        trainer = ReIDTrainer(ReIDClassifier(32, 3, seed=1), 0.001, encoder)
        data = x if raw else encoder.encode_all(x, 4)
        losses = [trainer.train_batch(data, y, raw=raw)[0] for _ in range(3)]
        results.append((losses, [v.numpy() for v in trainer.classifier.trainable_variables]))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-4)
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # and the encoder stayed frozen
    assert all(v.trainable for v in model.trainable_variables)


def test_encoder_is_frozen_during_reid():
    model = SMSGE(build_graph(KINECT_V1), lstm_size=8, heads=2, seed=6)
    before = [v.numpy().copy() for v in model.trainable_variables]
    trainer = ReIDTrainer(ReIDClassifier(32, 2), 0.01, Encoder(model, reid_prefixes(4)))
    trainer.train_batch(batch(2), np.array([0, 1]), raw=True)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.trainable_variables))


@pytest.mark.slow
def test_one_training_step_is_the_same_with_ragged_draws_and_one_call_per_draw():
    x = walking_batch(4, 4)
    weights = []
    for draw_batching in Pretrainer.DRAW_BATCHINGS:
        model = SMSGE(build_graph(KINECT_V1), lstm_size=8, heads=2, seed=8)
        Pretrainer(model, 0.01, 4, draw_batching=draw_batching, rng=np.random.default_rng(3)).step(x)
        weights.append([v.numpy() for v in model.trainable_variables])
    # Adam's first step moves every weight by lr * g / (|g| + 1e-8), about lr = 0.01 whatever
    # the gradient's size. Where g is itself float noise (|g| near 1e-8), the two batchings'
    # summation orders can change that move by a fraction of a step (measured: a thousandth
    # of a step on JAX); a wrong batching changes moves by whole steps. So the bound is a
    # tenth of a step, absolute.
    for other in weights[1:]:
        for a, b in zip(weights[0], other):
            np.testing.assert_allclose(a, b, rtol=0, atol=0.1 * 0.01)


@pytest.mark.parametrize("n_hood", [1, 2])
def test_sparse_attention_equals_dense_masked_softmax(n_hood):
    """The GAT layer attends over neighbour lists; check it against the textbook dense
    form: softmax_j(LeakyReLU(f1_i + f2_j) + mask_ij), heads averaged after ELU."""
    from models.mgrn import StructuralRelation
    graph = build_graph(KINECT_V2, n_hood)
    mask = graph.masks["hyper"]
    layer = StructuralRelation(mask, 3, np.random.default_rng(0), "sr")
    # non-zero scorer biases: before the LeakyReLU they change the attention
    layer.a_src_bias.assign([0.5, -1.0, 2.0])
    layer.a_dst_bias.assign([-0.3, 0.7, -2.5])
    coords = np.random.default_rng(1).normal(size=(5, 49, 3)).astype(np.float32)
    h = coords @ layer.w_in.numpy() + layer.b_in.numpy()
    outs = []
    for p in range(3):
        z = h @ layer.w_head.numpy()[p]
        f1 = z @ layer.a_src.numpy()[p] + layer.a_src_bias.numpy()[p]
        f2 = z @ layer.a_dst.numpy()[p] + layer.a_dst_bias.numpy()[p]
        logits = f1[:, :, None] + f2[:, None, :]
        logits = np.where(logits > 0, logits, 0.2 * logits) + mask
        att = np.exp(logits - logits.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        v = att @ z + layer.b_head.numpy()[p]
        outs.append(np.where(v > 0, v, np.expm1(v)))
    np.testing.assert_allclose(np.asarray(layer(coords.astype(np.float32))), np.mean(outs, 0),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_scale_and_csi_ablations_build_smaller_models():
    x = batch()
    model = SMSGE(build_graph(KINECT_V1), lstm_size=8, heads=2, scales=("body", "joint"),
                  cross_scale=False)
    assert model.scales == ("joint", "body")
    assert {s: tuple(h) for s, h in model.heads.items()} == {"joint": ("joint",), "body": ("body",)}
    assert model.encode(x).shape == (4, 5, 16)
    trainer = Pretrainer(model, 0.01, 4)
    assert set(trainer.step(batch())) == {"joint", "body"}
    full = SMSGE(build_graph(KINECT_V1), lstm_size=8, heads=2, scales=("joint", "part"))
    assert tuple(full.heads["joint"]) == ("joint", "part")      # CSI limited to present scales
