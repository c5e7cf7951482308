"""Training steps: self-supervised pre-training (docs/method.md §4) and the Re-ID classifier (§5).

Engine-neutral: the losses are the model's keras.ops code; the compiled step that takes
their gradients and applies the Adams comes from the selected engine (models/engine.py).
"""
from typing import Dict, List, Optional

import numpy as np

from models.draws import ragged_draws, sample_draws
from models.engine import active_engine
from models.layers import Adam, ops
from models.sm_sge import SMSGE, ReIDClassifier


class Pretrainer:
    """One step = one batch: one loss per scale (four by default) from one forward pass,
    then the optimisers.

    optimizers="four" (reference): one Adam per scale's loss, each updating every
    variable that loss reaches, so shared MGRN weights take four steps per batch.
    optimizers="one": a single Adam on the sum of the scales' losses.

    Draws (docs/method.md §4): by default, as the reference, the random subsequences are drawn
    once, here, and used at every step of every epoch; fresh_draws=True draws new ones
    at every step (the paper's wording).
    """

    DRAW_BATCHINGS = ("ragged", "per_draw")   # how the draws meet the LSTMs

    def __init__(self, model: SMSGE, lr: float, length: int, loss: str = "l1",
                 sample_num: int = 1, optimizers: str = "four", draw_batching: str = "ragged",
                 jit: bool = False, rng: Optional[np.random.Generator] = None,
                 margin: int = 0, ordered: bool = False, s_range: str = "all",
                 fresh_draws: bool = False, keep_on_device: bool = True,
                 steps_per_call: Optional[int] = None):
        """draw_batching: "ragged" (all draws in one ragged batch, one LSTM call per scale and
        step; the default) or "per_draw" (one LSTM call per draw, the reference's
        structure; kept for tests and the benchmark). margin, ordered and s_range are the
        reference's pred_margin, ord_sample and s_range (see sample_draws). keep_on_device
        False writes the state back after every step (the earlier way: the benchmark's
        "before"). steps_per_call: how many of an epoch's steps one compiled call runs
        (None: the engine's default_steps_per_call); the same mathematics either way."""
        assert draw_batching in self.DRAW_BATCHINGS, draw_batching
        self.model, self.length, self.loss = model, length, loss
        self.sample_num, self.draw_batching, self.optimizer_mode = sample_num, draw_batching, optimizers
        self.margin, self.ordered, self.s_range = margin, ordered, s_range
        self.fresh_draws = fresh_draws
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.draws = self.new_draws()
        # Draw lengths do not depend on the frames drawn: one ragged packing serves the whole run.
        self.ragged = ragged_draws([len(d) for d in self.draws], loss)
        self._frame_indices = self.frame_indices(self.draws)   # the step's index tensors, rebuilt on redraws
        if optimizers == "four":
            self.optimizers = {s: Adam(lr, model.scale_variables(s), name=f"adam_{s}")
                         for s in model.scales}
        else:
            self.optimizers = {"all": Adam(lr, model.trainable_variables, name="adam_all")}
        if optimizers == "four":
            updates = [(opt, s) for s, opt in self.optimizers.items()]
        else:
            updates = [(self.optimizers["all"], None)]
        engine = active_engine()
        self.steps_per_call = steps_per_call or engine.default_steps_per_call(jit)
        self._resident = None    # (sequences, the engine's copy of them) for blocks of steps
        self._step = engine.train_step(lambda x, *frame_indices: (self.losses(x, *frame_indices), ()),
                                          updates, jit=jit, keep_on_device=keep_on_device)

    def new_draws(self) -> List[np.ndarray]:
        return sample_draws(self.length, self.sample_num, self.rng, self.margin,
                            self.ordered, self.s_range)

    def losses(self, x, *frame_indices) -> dict:
        """The scales' pretext losses for the step's draws (frame_indices as `step` passes them)."""
        if self.draw_batching == "per_draw":
            return self.model.pretext_losses_per_draw(x, frame_indices, self.loss, self.margin)
        return self.model.pretext_losses(x, frame_indices[0], self.ragged, self.loss, self.margin)

    def optimiser_variables(self) -> list:
        """The optimisers' slots and step counters (a step also changes the model's weights)."""
        return [v for opt in self.optimizers.values() for v in opt.slot_variables()]

    def use_draws(self, draws: List[np.ndarray]) -> None:
        """Continue with these draws (a resumed run's): same lengths, so the same packing."""
        self.draws = [np.asarray(d) for d in draws]
        self._frame_indices = self.frame_indices(self.draws)

    def frame_indices(self, draws: List[np.ndarray]) -> List[np.ndarray]:
        if self.draw_batching == "per_draw":
            return [np.asarray(d, np.int32) for d in draws]
        return [self.ragged.frame_indices(draws)]

    def _next_frame_indices(self) -> List[np.ndarray]:
        """The next step's frame indices (new draws first, with fresh_draws)."""
        if self.fresh_draws:
            self.draws = self.new_draws()
            self._frame_indices = self.frame_indices(self.draws)
        return self._frame_indices

    def _queue(self, x: np.ndarray):
        """One step, its losses left on the device (the engine's arrays)."""
        losses, _ = self._step(x, *self._next_frame_indices())
        return losses

    def _queue_block(self, sequences: np.ndarray, block: list):
        """len(block) steps (batches of one size) in one compiled call, reading the
        sequences' copy on the device: ({scale: [steps_per_call] losses} left on the
        device, len(block)). A shorter block is padded with steps that are never run, so
        every block of a batch size shares one compilation."""
        if self._resident is None or self._resident[0] is not sequences:
            self._resident = (sequences, active_engine().resident(sequences))
        per_step = [self._next_frame_indices() for _ in block]
        pad = self.steps_per_call - len(block)
        per_step += per_step[-1:] * pad
        stacked = [np.stack([f[i] for f in per_step]) for i in range(len(per_step[0]))]
        losses = self._step.steps(self._resident[1], np.stack(block + block[-1:] * pad),
                                  len(block), *stacked)
        return losses, len(block)

    def step(self, x: np.ndarray) -> Dict[str, float]:
        """One step; the variables hold its result afterwards."""
        losses = self._queue(x)
        self.sync()
        return {s: float(v) for s, v in losses.items()}

    def epoch(self, sequences: np.ndarray, batches, progress=None) -> List[Dict[str, float]]:
        """One step per batch of indices into `sequences`, steps_per_call of them per
        compiled call, then the variables written once. The losses are fetched after the
        last step, so the host never waits on the device in between (on an accelerator it
        prepares the next batch meanwhile)."""
        queued, block = [], []   # queued: (losses, steps in the call; None: one step)
        try:
            for idx in (progress(batches) if progress else batches):
                if self.steps_per_call == 1:
                    queued.append((self._queue(sequences[idx]), None))
                    continue
                if block and len(idx) != len(block[0]):   # one call stacks one batch size
                    queued.append(self._queue_block(sequences, block))
                    block = []
                block.append(np.asarray(idx))
                if len(block) == self.steps_per_call:
                    queued.append(self._queue_block(sequences, block))
                    block = []
            if block:
                queued.append(self._queue_block(sequences, block))
        finally:   # an interrupted epoch leaves the variables at its last finished call
            self.sync()
        to_numpy, out = active_engine().to_numpy, []
        for losses, count in queued:
            if count is None:
                out.append({s: float(v) for s, v in losses.items()})
                continue
            rows = {s: to_numpy(v) for s, v in losses.items()}
            out += [{s: float(r[k]) for s, r in rows.items()} for k in range(count)]
        return out

    def sync(self) -> None:
        """The weights and optimiser states into the model's variables (models/engine.py)."""
        self._step.sync()


class Encoder:
    """Frozen-encoder inference, compiled once: x [B, f, V, 3] -> the prefix encodings
    that the classifier reads ([B, K, E]; see reid_prefixes)."""

    def __init__(self, model: SMSGE, prefixes: slice):
        self.model, self.prefixes = model, prefixes
        self._engine = active_engine()
        self._encode = self._engine.function(self.encode, model.trainable_variables)

    def encode(self, x):
        """Uncompiled, for use inside other compiled functions."""
        zero_frame = self.prefixes.stop > x.shape[1]
        return self.model.encode(x, zero_frame)[:, self.prefixes]

    def __call__(self, x):
        """Compiled; the engine's tensor (numpy(): encode_all)."""
        return self._encode(x)

    def encode_all(self, sequences: np.ndarray, batch_size: int, progress=None) -> np.ndarray:
        """[N, f, V, 3] -> [N, K, E] float32, in batches (the last one may be short)."""
        out = []
        starts = range(0, len(sequences), batch_size)
        for s in (progress(starts) if progress else starts):
            out.append(self._engine.to_numpy(self(sequences[s:s + batch_size])))
        return np.concatenate(out)


def sequence_encoding(prefix_encodings: np.ndarray) -> np.ndarray:
    """One vector per sequence for matching: the mean of its prefix encodings (the same
    vectors the classifier sums logits over), L2-normalised."""
    mean = prefix_encodings.mean(axis=1)
    return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)


def classifier_loss_and_logits(classifier: ReIDClassifier, encodings, labels):
    """({"reid": mean cross-entropy}, logits) of the summed prefix logits."""
    logits = classifier(encodings)
    loss = ops.mean(ops.sparse_categorical_crossentropy(labels, logits, from_logits=True))
    return {"reid": loss}, logits


class ClassifierScorer:
    """A Re-ID classifier scored on encodings: compiled inference, no optimiser."""

    def __init__(self, classifier: ReIDClassifier):
        self.classifier = classifier
        self._engine = engine = active_engine()
        self._eval = engine.function(lambda x, y: classifier_loss_and_logits(classifier, x, y),
                                     classifier.trainable_variables)

    def evaluate(self, encodings: np.ndarray, labels: np.ndarray, batch_size: int,
                 drop_last: bool = True) -> dict:
        """Batched evaluation. Loss and accuracy are means of per-batch values and, with
        drop_last (the reference), samples past the last full batch are not scored."""
        n = len(labels)
        if drop_last and n >= batch_size:
            n = (n // batch_size) * batch_size
        losses, accs, logits_all = [], [], []
        for s in range(0, n, batch_size):
            y = labels[s:min(s + batch_size, n)]
            loss, logits = self._eval(encodings[s:s + len(y)], np.asarray(y, np.int64))
            logits = self._engine.to_numpy(logits)
            losses.append(float(loss["reid"]))
            accs.append(float(np.mean(logits.argmax(1) == y)))
            logits_all.append(logits)
        logits_all, labels = np.concatenate(logits_all), labels[:n]
        if not drop_last:   # every sample scored: sample-level means
            sizes = [min(batch_size, n - s) for s in range(0, n, batch_size)]
            return dict(loss=float(np.average(losses, weights=sizes)),
                        accuracy=float(np.mean(logits_all.argmax(1) == labels)),
                        logits=logits_all, labels=labels)
        return dict(loss=float(np.mean(losses)), accuracy=float(np.mean(accs)),
                    logits=logits_all, labels=labels)


class ReIDTrainer:
    """The classifier on frozen encodings (cached) or on raw sequences (uncached)."""

    def __init__(self, classifier: ReIDClassifier, lr: float, encoder: Optional[Encoder] = None):
        self.classifier, self.encoder = classifier, encoder
        self.opt = Adam(lr, classifier.trainable_variables, name="adam_reid")
        self._engine = engine = active_engine()
        self._train = engine.train_step(self._loss_and_logits, [(self.opt, None)])
        self.scorer = ClassifierScorer(classifier)
        if encoder is not None:
            # the encoder is frozen: read as a constant of the step, never updated
            self._train_raw = engine.train_step(
                lambda x, y: self._loss_and_logits(ops.stop_gradient(encoder.encode(x)), y),
                [(self.opt, None)], constants=encoder.model.trainable_variables)

    def state_variables(self) -> list:
        return list(self.classifier.trainable_variables) + self.opt.slot_variables()

    def _loss_and_logits(self, encodings, labels):
        return classifier_loss_and_logits(self.classifier, encodings, labels)

    def train_batch(self, batch, labels: np.ndarray, raw: bool = False):
        """batch: cached encodings [B, K, E], or raw sequences with raw=True."""
        fn = self._train_raw if raw else self._train
        losses, logits = fn(batch, np.asarray(labels, np.int64))
        fn.sync()   # small and read after every batch (selection, checkpoints): written now
        return float(losses["reid"]), self._engine.to_numpy(logits)

    def evaluate(self, encodings: np.ndarray, labels: np.ndarray, batch_size: int,
                 drop_last: bool = True) -> dict:
        return self.scorer.evaluate(encodings, labels, batch_size, drop_last)
