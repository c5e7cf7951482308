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

    def run_steps(self, projected: list) -> list:
        """All layers on a ragged time-major batch, given the first layer's projected
        inputs per step ([n_t, 4H], n_t non-increasing); returns the top layer's outputs
        per step ([n_t, H])."""
        return run_lstms(self, projected)

    def __call__(self, x):
        """x [B, T, D] (equal lengths) -> outputs [B, T, H]."""
        projected = self.project_input(x)
        steps = self.run_steps([projected[:, t] for t in range(x.shape[1])])
        return ops.stack(steps, axis=1)


def lstm_recurrence(projected: list, w_h) -> list:
    """One LSTM layer's recurrence (TF1 LSTMCell: gates i, j, f, o; forget bias 1.0) on a
    ragged time-major batch: projected per step [..., n_t, 4H] (inputs already projected,
    n_t non-increasing), w_h [..., H, 4H] -> h per step [..., n_t, H]. Leading axes hold
    independent LSTMs run side by side (one batched product per step for all of them)."""
    h = c = None
    outputs = []
    for t, z in enumerate(projected):
        n = z.shape[-2]
        if t > 0:   # the state starts at zero: the first step has no recurrent product
            h, c = h[..., :n, :], c[..., :n, :]
            z = z + ops.matmul(h, w_h)
        i, j, f, o = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(i) * ops.tanh(j) if t == 0 else (
            ops.sigmoid(f + 1.0) * c + ops.sigmoid(i) * ops.tanh(j))
        h = ops.sigmoid(o) * ops.tanh(c)
        outputs.append(h)
    return outputs


def run_lstms(lstms, projected: list) -> list:
    """Every layer of a StackedLSTM, or of several of one size and depth side by side, on
    a ragged time-major batch: projected per step holds the first layer's projected inputs,
    [n_t, 4H] for one LSTM, [S, n_t, 4H] for a list of S (row s: LSTM s); returns the top
    layer's outputs per step, [n_t, H] or [S, n_t, H]. Side by side, the S recurrences
    are one batched recurrence (the same maths as each alone, a fraction of the kernels);
    their weights are stacked here, at call time, from each LSTM's own variables."""
    def weight(pick):
        return pick(lstms) if isinstance(lstms, StackedLSTM) else ops.stack(
            [pick(lstm) for lstm in lstms])
    first = lstms if isinstance(lstms, StackedLSTM) else lstms[0]
    hidden, sizes = first.hidden, [p.shape[-2] for p in projected]
    out = lstm_recurrence(projected, weight(lambda lstm: lstm.kernels[0][lstm.input_dim:]))
    for layer in range(1, len(first.kernels)):
        w_x = weight(lambda lstm: lstm.kernels[layer][:hidden])
        bias = weight(lambda lstm: lstm.biases[layer][None])   # [1, 4H]: a tensor, not a variable
        proj = ops.matmul(ops.concatenate(out, -2), w_x) + bias
        out = lstm_recurrence(split_sizes(proj, sizes, -2),
                              weight(lambda lstm: lstm.kernels[layer][hidden:]))
    return out


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


def flatten(tensors: list):
    """Tensors as one flat vector, one after the other."""
    return ops.concatenate([ops.reshape(t, [-1]) for t in tensors], 0)


def unflatten(flat, shapes: list) -> list:
    """flatten's inverse: the pieces of a flat vector, in these shapes."""
    pieces = split_sizes(flat, [int(np.prod(shape)) for shape in shapes])
    return [ops.reshape(p, shape) for p, shape in zip(pieces, shapes)]


class Adam(Module):
    """Adam exactly as TF1's AdamOptimizer (epsilon outside the bias correction): its
    state (m, v per variable, the step count) as non-trainable variables, saved as such;
    the update is the pure function `adam_update`, which each engine's training step
    applies to all the optimiser's variables at once, as one flat vector."""

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

    def flat_slots(self) -> tuple:
        """(m, v) from the slots, each one flat vector over the variables in order: the
        form an engine's compiled step keeps them in from one sync to the next."""
        return flatten(self.m), flatten(self.v)

    def assign_slots(self, step, m, v) -> None:
        """Write an update's step count and flat moments (adam_update's) into the slots;
        the engines' one write-back (at sync)."""
        self.step.assign(step)
        shapes = [tuple(x.shape) for x in self.m]
        for slots, flat in ((self.m, m), (self.v, v)):
            for slot, value in zip(slots, unflatten(flat, shapes)):
                slot.assign(value)


def flat_gradient(grads: list, values: list) -> tuple:
    """Per-variable gradients (None: the variable is not reached) as adam_update takes
    them: one flat vector, zeros where None, and which variables were reached."""
    flat = flatten([ops.zeros(tuple(x.shape), x.dtype) if g is None else g
                    for g, x in zip(grads, values)])
    return flat, [g is not None for g in grads]


def adam_update(opt: Adam, step, values, grad, m, v, reached=None):
    """One TF1 Adam update of all of opt's variables as one flat vector (a few fused
    kernels, however many variables; each element's arithmetic is the same as alone):
    values per variable; grad, m and v flat (Adam.flat_slots's layout) -> (step + 1, new
    values per variable, new m, new v). reached: per variable, whether a gradient reached
    it (None: all); one that was not keeps its value and slots."""
    t = step + 1.0
    lr_t = opt.lr * ops.sqrt(1.0 - ops.power(opt.beta2, t)) / (1.0 - ops.power(opt.beta1, t))
    shapes = [tuple(x.shape) for x in values]
    value = flatten(values)
    new_m = opt.beta1 * m + (1.0 - opt.beta1) * grad
    new_v = opt.beta2 * v + (1.0 - opt.beta2) * ops.square(grad)
    new = value - ops.cast(lr_t, value.dtype) * new_m / (ops.sqrt(new_v) + opt.eps)
    if reached is not None and not all(reached):   # unreached variables' pieces as they were
        def keep(updated, old):
            return flatten([a if r else b for a, b, r in zip(
                unflatten(updated, shapes), unflatten(old, shapes), reached)])
        new, new_m, new_v = keep(new, value), keep(new_m, m), keep(new_v, v)
    return t, unflatten(new, shapes), new_m, new_v
