"""Building blocks on Keras 3's backend-neutral operations: variables, a module base that
finds them, initialisers, a TF1-style stacked LSTM, Adam's update with TF1 semantics.

The same code runs on TensorFlow and on JAX (models/engine.py picks one before Keras is
imported). Modules hold `keras.Variable`s: on TensorFlow they are tf.Variables that the
compiled step reads and assigns; on JAX the step passes their values in explicitly
(keras.StatelessScope), so the model code needs no second, functional form.

The reference initialises most weights with tf.random_normal (std 1) and biases with
zeros; GAT projections and LSTM kernels use Glorot-uniform, as TF1's layers did.
"""
import contextlib
from typing import List

import numpy as np

from models import engine

keras = engine.keras()
ops = keras.ops

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


def variable(value: np.ndarray, name: str, trainable: bool = True):
    value = np.asarray(value)
    return keras.Variable(value, dtype=str(value.dtype), trainable=trainable, name=name)


def normal_var(shape, rng: np.random.Generator, name: str, std: float = 1.0):
    return variable(rng.normal(0.0, std, size=shape).astype(_FLOAT), name)


def glorot_var(shape, rng: np.random.Generator, name: str, fans=None):
    """Glorot-uniform; `fans` = (fan_in, fan_out) where they are not the last two axes
    (several heads' kernels stacked in one variable keep the limit of a single head)."""
    fan_in, fan_out = fans or (shape[-2], shape[-1])
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return variable(rng.uniform(-limit, limit, size=shape).astype(_FLOAT), name)


def zeros_var(shape, name: str):
    return variable(np.zeros(shape, _FLOAT), name)


def is_variable(value) -> bool:
    return isinstance(value, keras.Variable)


def _leaves(value):
    """Nested dicts (sorted keys), lists and tuples flattened, as tf.nest orders them."""
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _leaves(value[key])
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


class Module:
    """A container of variables and sub-modules held as attributes (also inside dicts and
    lists). `trainable_variables` lists them in tf.Module's order (attributes sorted by
    name, a module's own variables before its sub-modules'), so weight files written
    before the move to Keras 3 load unchanged."""

    def __init__(self, name: str = None):
        self.name = name

    def _walk(self, seen: set):
        submodules = []
        for key in sorted(vars(self)):
            for leaf in _leaves(vars(self)[key]):
                if id(leaf) in seen:
                    continue
                seen.add(id(leaf))
                if is_variable(leaf) and leaf.trainable:
                    yield leaf
                elif isinstance(leaf, Module):
                    submodules.append(leaf)
        for module in submodules:
            yield from module._walk(seen)

    @property
    def trainable_variables(self) -> list:
        return list(self._walk(set()))


class StackedLSTM(Module):
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

    def project_input(self, x):
        """First layer's input projection x W_x + b for every frame: [..., D] -> [..., 4H]."""
        return ops.tensordot(x, self.kernels[0][:self.input_dim], 1) + self.biases[0]

    def _recur(self, projected: list, w_h) -> list:
        """projected: per step [n_t, 4H] with n_t non-increasing -> per step h [n_t, H]."""
        h = c = None
        outputs = []
        for t, z in enumerate(projected):
            n = z.shape[0]
            if t > 0:   # the state starts at zero: the first step has no recurrent product
                h, c = h[:n], c[:n]
                z = z + ops.matmul(h, w_h)
            i, j, f, o = ops.split(z, 4, axis=-1)
            c = ops.sigmoid(i) * ops.tanh(j) if t == 0 else (
                ops.sigmoid(f + 1.0) * c + ops.sigmoid(i) * ops.tanh(j))
            h = ops.sigmoid(o) * ops.tanh(c)
            outputs.append(h)
        return outputs

    def run_steps(self, projected: list) -> list:
        """All layers on a ragged time-major batch, given the first layer's projected
        inputs per step ([n_t, 4H], n_t non-increasing); returns the top layer's outputs
        per step ([n_t, H])."""
        sizes = [p.shape[0] for p in projected]
        out = self._recur(projected, self.kernels[0][self.input_dim:])
        for kernel, bias in zip(self.kernels[1:], self.biases[1:]):
            proj = ops.matmul(ops.concatenate(out, 0), kernel[:self.hidden]) + bias
            out = self._recur(split_sizes(proj, sizes), kernel[self.hidden:])
        return out

    def __call__(self, x):
        """x [B, T, D] (equal lengths) -> outputs [B, T, H]."""
        projected = self.project_input(x)
        steps = self.run_steps([projected[:, t] for t in range(x.shape[1])])
        return ops.stack(steps, axis=1)


def add_n(terms: list):
    """The sum of a list of same-shaped tensors, left to right."""
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def split_sizes(x, sizes: List[int], axis: int = 0) -> list:
    """Split x into consecutive pieces of the given sizes (keras.ops.split takes the
    cut indices, as NumPy)."""
    if len(sizes) == 1:
        return [x]
    return ops.split(x, [int(i) for i in np.cumsum(sizes)[:-1]], axis=axis)


class Adam(Module):
    """Adam exactly as TF1's AdamOptimizer (epsilon outside the bias correction): its
    state (m, v per variable, the step count) as non-trainable variables; the update is
    the pure function `adam_update`, which each engine's training step applies."""

    def __init__(self, learning_rate: float, variables, beta1=0.9, beta2=0.999, eps=1e-8,
                 name: str = "adam"):
        super().__init__(name=name)
        self.lr, self.beta1, self.beta2, self.eps = learning_rate, beta1, beta2, eps
        self.variables_ = list(variables)
        zeros = [np.zeros(tuple(v.shape), np.dtype(v.dtype)) for v in self.variables_]
        self.m = [variable(z, f"m{i}", trainable=False) for i, z in enumerate(zeros)]
        self.v = [variable(z, f"v{i}", trainable=False) for i, z in enumerate(zeros)]
        self.step = variable(np.float32(0.0), "step", trainable=False)

    def slot_variables(self) -> list:
        return self.m + self.v + [self.step]

    def assign_slots(self, step, m, v, updated=None) -> None:
        """Write an update's step count and moments (adam_update's) into the slots; the
        engines' one write-back (TensorFlow inside its compiled step, JAX at sync).
        updated: which variables the update reached (None: all)."""
        self.step.assign(step)
        for i, (m_var, v_var, m_i, v_i) in enumerate(zip(self.m, self.v, m, v)):
            if updated is None or updated[i]:
                m_var.assign(m_i)
                v_var.assign(v_i)


def adam_update(opt: Adam, step, values, grads, m, v):
    """One TF1 Adam update as values: (step + 1, new values, new m, new v). A variable
    whose gradient is None keeps its value and slots."""
    t = step + 1.0
    lr_t = opt.lr * ops.sqrt(1.0 - ops.power(opt.beta2, t)) / (1.0 - ops.power(opt.beta1, t))
    new_values, new_m, new_v = [], [], []
    for value, m_i, v_i, g in zip(values, m, v, grads):
        if g is None:
            new_values.append(value), new_m.append(m_i), new_v.append(v_i)
            continue
        m_i = opt.beta1 * m_i + (1.0 - opt.beta1) * g
        v_i = opt.beta2 * v_i + (1.0 - opt.beta2) * ops.square(g)
        new_values.append(value - ops.cast(lr_t, value.dtype) * m_i / (ops.sqrt(v_i) + opt.eps))
        new_m.append(m_i), new_v.append(v_i)
    return t, new_values, new_m, new_v
