"""Building blocks: initialisers, a TF1-style stacked LSTM, Adam with TF1 semantics.

The reference initialises most weights with tf.random_normal (std 1) and biases with
zeros; GAT projections and LSTM kernels use Glorot-uniform, as TF1's layers did.
"""
import contextlib
from typing import List

import numpy as np
import tensorflow as tf

# The float type new variables and constants are built in. float32 is the model's; the
# parity tests build a float64 twin to measure float32 rounding (float_precision).
_FLOAT = np.float32


def float_dtype():
    return _FLOAT


@contextlib.contextmanager
def float_precision(dtype):
    """Build models in `dtype` (np.float32 or np.float64) inside the block."""
    global _FLOAT
    previous, _FLOAT = _FLOAT, np.dtype(dtype).type
    try:
        yield
    finally:
        _FLOAT = previous


def normal_var(shape, rng: np.random.Generator, name: str, std: float = 1.0) -> tf.Variable:
    return tf.Variable(rng.normal(0.0, std, size=shape).astype(_FLOAT), name=name)


def glorot_var(shape, rng: np.random.Generator, name: str, fans=None) -> tf.Variable:
    """Glorot-uniform; `fans` = (fan_in, fan_out) where they are not the last two axes
    (several heads' kernels stacked in one variable keep the limit of a single head)."""
    fan_in, fan_out = fans or (shape[-2], shape[-1])
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return tf.Variable(rng.uniform(-limit, limit, size=shape).astype(_FLOAT), name=name)


def zeros_var(shape, name: str) -> tf.Variable:
    return tf.Variable(np.zeros(shape, _FLOAT), name=name)


class StackedLSTM(tf.Module):
    """Multi-layer LSTM (TF1 LSTMCell maths: gates i, j, f, o; forget bias 1.0).

    Written out by hand, not keras.layers.LSTM, because it runs on a ragged, time-major
    batch: step t holds the rows of every sequence still running at t, and those rows come
    first in step t-1 (sequences sorted by length, longest first). The random draws of
    the pretext task have lengths 1..f, so no step works on padding (models/sm_sge.py).
    Each layer runs over all steps before the next layer starts, so a layer's input
    projection is one large product, not one per step.
    """

    def __init__(self, input_dim: int, hidden: int, num_layers: int,
                 rng: np.random.Generator, name: str):
        super().__init__(name=name)
        self.hidden = hidden
        self.kernels, self.biases = [], []
        dim = input_dim
        for layer in range(num_layers):
            self.kernels.append(glorot_var([dim + hidden, 4 * hidden], rng, f"kernel{layer}"))
            self.biases.append(zeros_var([4 * hidden], f"bias{layer}"))
            dim = hidden
        self.input_dim = input_dim

    def project_input(self, x: tf.Tensor) -> tf.Tensor:
        """First layer's input projection x W_x + b for every frame: [..., D] -> [..., 4H]."""
        return tf.tensordot(x, self.kernels[0][:self.input_dim], 1) + self.biases[0]

    def _recur(self, projected: List[tf.Tensor], w_h: tf.Tensor) -> List[tf.Tensor]:
        """projected: per step [n_t, 4H] with n_t non-increasing -> per step h [n_t, H]."""
        h = c = None
        outputs = []
        for t, z in enumerate(projected):
            n = z.shape[0]
            if t > 0:   # the state starts at zero: the first step has no recurrent product
                h, c = h[:n], c[:n]
                z = z + tf.matmul(h, w_h)
            i, j, f, o = tf.split(z, 4, axis=-1)
            c = tf.sigmoid(i) * tf.tanh(j) if t == 0 else (
                tf.sigmoid(f + 1.0) * c + tf.sigmoid(i) * tf.tanh(j))
            h = tf.sigmoid(o) * tf.tanh(c)
            outputs.append(h)
        return outputs

    def run_steps(self, projected: List[tf.Tensor]) -> List[tf.Tensor]:
        """All layers on a ragged time-major batch, given the first layer's projected
        inputs per step ([n_t, 4H], n_t non-increasing); returns the top layer's outputs
        per step ([n_t, H])."""
        sizes = [p.shape[0] for p in projected]
        out = self._recur(projected, self.kernels[0][self.input_dim:])
        for kernel, bias in zip(self.kernels[1:], self.biases[1:]):
            proj = tf.matmul(tf.concat(out, 0), kernel[:self.hidden]) + bias
            out = self._recur(tf.split(proj, sizes, 0), kernel[self.hidden:])
        return out

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        """x [B, T, D] (equal lengths) -> outputs [B, T, H]."""
        projected = self.project_input(x)
        steps = self.run_steps([projected[:, t] for t in range(x.shape[1])])
        return tf.stack(steps, axis=1)


class Adam(tf.Module):
    """Adam exactly as TF1's AdamOptimizer (epsilon outside the bias correction)."""

    def __init__(self, learning_rate: float, variables, beta1=0.9, beta2=0.999, eps=1e-8,
                 name: str = "adam"):
        super().__init__(name=name)
        self.lr, self.beta1, self.beta2, self.eps = learning_rate, beta1, beta2, eps
        self.variables_ = list(variables)
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.variables_]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.variables_]
        self.step = tf.Variable(0.0, trainable=False)

    def slot_variables(self) -> list:
        return self.m + self.v + [self.step]

    def apply(self, grads) -> None:
        self.step.assign_add(1.0)
        t = self.step
        lr_t = self.lr * tf.sqrt(1.0 - self.beta2 ** t) / (1.0 - self.beta1 ** t)
        for var, m, v, g in zip(self.variables_, self.m, self.v, grads):
            if g is None:
                continue
            m.assign(self.beta1 * m + (1.0 - self.beta1) * g)
            v.assign(self.beta2 * v + (1.0 - self.beta2) * tf.square(g))
            var.assign_sub(lr_t * m / (tf.sqrt(v) + self.eps))
