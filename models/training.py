"""Training steps: self-supervised pre-training (method §4) and the Re-ID classifier (§5)."""
from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from models.layers import Adam
from models.sm_sge import SMSGE, ReIDClassifier, draw_lengths, ragged_draws, sample_draws


class Pretrainer:
    """One step = one batch: four losses from one forward pass, then the optimisers.

    optimizers="four" (reference): one Adam per scale's loss, each updating every
    variable that loss reaches, so shared MGRN weights take four steps per batch.
    optimizers="one": a single Adam on the sum of the four losses.
    """

    LAYOUTS = ("ragged", "per_draw")

    def __init__(self, model: SMSGE, lr: float, length: int, loss: str = "l1",
                 sample_num: int = 1, optimizers: str = "four", layout: str = "ragged",
                 jit: bool = False):
        """layout: "ragged" (all draws in one ragged batch, one LSTM call per scale and
        step; the default) or "per_draw" (one LSTM call per draw, the reference's
        structure; kept for tests and the benchmark)."""
        assert layout in self.LAYOUTS, layout
        self.model, self.length, self.loss = model, length, loss
        self.sample_num, self.layout, self.optimizers = sample_num, layout, optimizers
        # Draw lengths do not depend on the frames drawn: one layout serves the whole run.
        self.ragged = ragged_draws(draw_lengths(length, sample_num), loss)
        if optimizers == "four":
            self.opts = {s: Adam(lr, model.scale_variables(s), name=f"adam_{s}")
                         for s in model.scales}
        else:
            self.opts = {"all": Adam(lr, model.trainable_variables, name="adam_all")}
        self._step = tf.function(self._step_impl, jit_compile=jit, autograph=False)

    def _step_impl(self, x, *frames):
        with tf.GradientTape(persistent=True) as tape:
            if self.layout == "per_draw":
                losses = self.model.pretext_losses_per_draw(x, frames, self.loss)
            else:
                losses = self.model.pretext_losses(x, frames[0], self.ragged, self.loss)
            total = tf.add_n(list(losses.values()))   # inside the tape, or it has no gradient
        if self.optimizers == "four":
            for s, opt in self.opts.items():
                opt.apply(tape.gradient(losses[s], opt.variables_))
        else:
            opt = self.opts["all"]
            opt.apply(tape.gradient(total, opt.variables_))
        del tape
        return losses

    def step(self, x: np.ndarray, rng: np.random.Generator) -> Dict[str, float]:
        draws = sample_draws(self.length, self.sample_num, rng)
        if self.layout == "per_draw":
            frames = [tf.constant(d, tf.int32) for d in draws]
        else:
            frames = [tf.constant(self.ragged.frames(draws))]
        losses = self._step(tf.convert_to_tensor(x), *frames)
        return {s: float(v) for s, v in losses.items()}


class Encoder:
    """Frozen-encoder inference, compiled once: x [B, f, V, 3] -> prefix encodings."""

    def __init__(self, model: SMSGE, zero_frame: bool = True):
        self.model, self.zero_frame = model, zero_frame
        self._encode = tf.function(lambda x: model.encode(x, zero_frame), autograph=False)

    def __call__(self, x) -> tf.Tensor:
        return self._encode(tf.convert_to_tensor(x))

    def encode_all(self, sequences: np.ndarray, batch_size: int, progress=None) -> np.ndarray:
        """[N, f, V, 3] -> [N, K, E] float32, in batches (the last one may be short)."""
        out = []
        starts = range(0, len(sequences), batch_size)
        for s in (progress(starts) if progress else starts):
            out.append(self(sequences[s:s + batch_size]).numpy())
        return np.concatenate(out)


class ReIDTrainer:
    """The classifier on frozen encodings (cached) or on raw sequences (uncached)."""

    def __init__(self, classifier: ReIDClassifier, lr: float, encoder: Optional[Encoder] = None):
        self.classifier, self.encoder = classifier, encoder
        self.opt = Adam(lr, classifier.trainable_variables, name="adam_reid")
        self._train = tf.function(self._train_impl, autograph=False)
        self._eval = tf.function(self._eval_impl, autograph=False)
        if encoder is not None:
            self._train_raw = tf.function(
                lambda x, y: self._train_impl(tf.stop_gradient(encoder.model.encode(
                    x, encoder.zero_frame)), y), autograph=False)

    def _loss(self, logits, labels):
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))

    def _train_impl(self, encodings, labels):
        with tf.GradientTape() as tape:
            logits = self.classifier(encodings)
            loss = self._loss(logits, labels)
        self.opt.apply(tape.gradient(loss, self.opt.variables_))
        return loss, logits

    def _eval_impl(self, encodings, labels):
        logits = self.classifier(encodings)
        return self._loss(logits, labels), logits

    def train_batch(self, batch, labels: np.ndarray, raw: bool = False):
        """batch: cached encodings [B, K, E], or raw sequences with raw=True."""
        fn = self._train_raw if raw else self._train
        loss, logits = fn(tf.convert_to_tensor(batch), tf.constant(labels, tf.int64))
        return float(loss), logits.numpy()

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
            loss, logits = self._eval(tf.convert_to_tensor(encodings[s:s + len(y)]),
                                      tf.constant(y, tf.int64))
            logits = logits.numpy()
            losses.append(float(loss))
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
