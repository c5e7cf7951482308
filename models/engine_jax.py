"""The JAX engine: the model's keras.ops code traced as a pure function of its variables'
values (keras.StatelessScope maps each variable to the value passed in) and compiled with
jax.jit. The training step returns new values and optimiser states, which are written back
to the variables, so the rest of the project sees the same state on both engines.

Gradients: one jax.grad per optimiser, of its own loss (the reference's four Adams each
follow their own scale's loss), compiled together (see train_step). Several steps can run
in one call, as a loop on the device (Step.steps).
"""
import jax
import jax.numpy as jnp
import numpy as np

from models.layers import adam_update, keras
from utils.foundation.runtime import cpu_description

# On a CPU, jaxlib 0.10's XLA hands element-wise and reduction fusions as well as products
# to its YNNPACK library; with this model's small tensors XLA's own element-wise code is
# faster (the KGBD step 10 % at batch 256, 2 % at batch 8; docs/training-step.md), so only
# products go there.
# An empty dict keeps the library's defaults (the benchmark's comparison does so).
CPU_COMPILER_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"}
_accepted_options = None    # CPU_COMPILER_OPTIONS where this jaxlib on a CPU takes them, else {}


def compiler_options() -> dict:
    """The options every jit of this engine compiles with: CPU_COMPILER_OPTIONS on a CPU,
    when this jaxlib accepts them (an option XLA renamed or dropped costs speed, not a
    failed run), else none."""
    global _accepted_options
    if _accepted_options is None:
        _accepted_options = {}
        if CPU_COMPILER_OPTIONS and jax.default_backend() == "cpu":
            try:
                jax.jit(lambda x: x + 1, compiler_options=CPU_COMPILER_OPTIONS)(np.float32(0))
                _accepted_options = dict(CPU_COMPILER_OPTIONS)
            except Exception:   # noqa: BLE001 - XLA reports an unknown option as a runtime error
                pass
    return _accepted_options


def _jit(fn, **kwargs):
    return jax.jit(fn, compiler_options=compiler_options() or None, **kwargs)


def _unique(variables) -> list:
    seen, out = set(), []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def _values(variables) -> list:
    return [v.value for v in variables]


def _bind(fn, variables):
    """fn(*inputs) as a pure function pure(values, *inputs) of the variables' values: inside
    it, each variable reads the value passed in (keras.StatelessScope)."""
    def pure(values, *inputs):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return fn(*inputs)
    return pure


def function(fn, variables=(), jit: bool = True):
    """fn(*inputs) compiled, reading `variables` (every variable fn reads: any other would
    be frozen into the compiled code) as arguments, so later assignments are seen. `jit`
    is TensorFlow's choice; JAX always compiles."""
    variables = _unique(variables)
    compiled = _jit(_bind(fn, variables))
    return lambda *inputs: compiled(_values(variables), *inputs)


def train_step(loss_fn, updates, constants=(), jit: bool = True, keep_on_device: bool = True):
    """updates: [(Adam, loss name or None for the sum of all losses)], applied in order,
    every gradient taken before any update; constants: variables read but not trained.
    loss_fn(*inputs) -> ({name: loss}, aux). Returns step(*inputs) -> ({name: loss}, aux).

    Each Adam's gradient is its own jax.grad of its own loss, all in one compiled function:
    XLA drops what a loss does not depend on (the other scales' LSTMs and heads) and merges
    the forward work they share (the MGRN), so each backward pass covers only its loss's
    path, as TensorFlow's tape does. (One vjp with one-hot cotangents would run every
    backward pass through every scale.) Returns a Step: call it per batch, sync() it
    before the variables are read."""
    trained = _unique([v for opt, _ in updates for v in opt.variables_])
    index = {id(v): i for i, v in enumerate(trained)}
    frozen = [v for v in _unique(constants) if id(v) not in index]
    bound = _bind(loss_fn, trained + frozen)

    def pure(values, frozen_values, states, *inputs):
        def forward(vals):
            return bound(list(vals) + list(frozen_values), *inputs)

        def objective(key):
            def f(vals):
                losses, aux = forward(vals)
                return (sum(losses.values()) if key is None else losses[key]), (losses, aux)
            return f
        grads, by_key = [], {}
        for _, key in updates:
            g, by_key[key] = jax.grad(objective(key), has_aux=True)(list(values))
            grads.append(g)
        # Each loss is read from the forward pass of its own gradient, else of the sum's,
        # else of the first: XLA merges a separate forward pass with these in a single
        # step, but not in the body of a loop of steps, where it ran every LSTM twice.
        first = updates[0][1]
        losses, aux = {}, by_key[first][1]
        for name in by_key[first][0]:
            key = name if name in by_key else (None if None in by_key else first)
            losses[name] = by_key[key][0][name]
        values, new_states = list(values), []
        for (opt, _), g, (step, m, v) in zip(updates, grads, states):
            idx = [index[id(w)] for w in opt.variables_]
            step, new, m, v = adam_update(opt, step, [values[i] for i in idx],
                                          [g[i] for i in idx], m, v)
            for i, value in zip(idx, new):
                values[i] = value
            new_states.append((step, m, v))
        return values, new_states, losses, aux

    traced = jax.jit(pure)   # inside `block`: inlined by XLA, its trace cached

    def block(values, frozen_values, states, data, batches, count, *inputs):
        """The first `count` of K stacked steps as one loop (count is an argument, not a
        shape, so a shorter block reuses the compiled call): the step's code compiled once
        as the loop's body, the losses of step k written to row k."""
        def one(k, values, states):
            return traced(values, frozen_values, states, data[batches[k]], *[x[k] for x in inputs])
        # the losses' names and shapes, from the step traced once: the loop's body below
        # reuses that trace (jax.jit caches it), so the step is not traced twice
        shapes = jax.eval_shape(one, 0, values, states)[2]
        rows = {n: jnp.zeros((batches.shape[0],), a.dtype) for n, a in shapes.items()}

        def body(k, carry):
            values, states, rows = carry
            values, states, losses, _ = one(k, values, states)
            return values, states, {n: rows[n].at[k].set(losses[n]) for n in rows}
        return jax.lax.fori_loop(0, count, body, (list(values), states, rows))

    # always compiled (--xla is TensorFlow's); the weights and optimiser states are donated:
    # each step's results take their buffers, so a step allocates no second copy of them
    donate = (0, 2) if keep_on_device else ()
    return Step(_jit(pure, donate_argnums=donate), trained, frozen, updates,
                keep_on_device, _jit(block, donate_argnums=donate))


class Step:
    """A compiled training step whose weights and optimiser states stay on the device from
    one call to the next (the variables are not read or written per step): sync() writes
    them back into the variables, once per epoch, before anything reads them. Until then
    the variables' buffers belong to the step (donated): reading one is an error, never a
    stale value. keep_on_device=False writes back after every call (the earlier way, kept
    for the benchmark's before/after)."""

    def __init__(self, compiled, trained, frozen, updates, keep_on_device: bool = True,
                 compiled_block=None):
        self.compiled, self.trained, self.frozen = compiled, trained, frozen
        self.updates, self.keep_on_device = updates, keep_on_device
        self.compiled_block = compiled_block
        self._state = None      # (values, frozen values, states) between sync()s

    def state(self):
        """(weights, constants, optimiser states): the step's own, else the variables'."""
        if self._state is None:
            states = [(opt.step.value, _values(opt.m), _values(opt.v)) for opt, _ in self.updates]
            self._state = (_values(self.trained), _values(self.frozen), states)
        return self._state

    def __call__(self, *inputs):
        values, frozen, states = self.state()
        values, states, losses, aux = self.compiled(values, frozen, states, *inputs)
        self._state = (values, frozen, states)
        if not self.keep_on_device:
            self.sync()
        return losses, aux

    def steps(self, data, batches, count, *inputs):
        """The first `count` of K stacked steps in one call (models/engine.py)."""
        values, frozen, states = self.state()
        values, states, losses = self.compiled_block(values, frozen, states, data,
                                                     jnp.asarray(batches, jnp.int32),
                                                     jnp.int32(count), *inputs)
        self._state = (values, frozen, states)
        if not self.keep_on_device:
            self.sync()
        return losses

    def sync(self) -> None:
        """Write the step's weights and optimiser states into the variables."""
        if self._state is None:
            return
        values, _, states = self._state
        self._state = None
        for var, value in zip(self.trained, values):
            var.assign(value)
        for (opt, _), (step, m, v) in zip(self.updates, states):
            opt.assign_slots(step, m, v)


def gradients(loss_fn, variables, *inputs):
    """(losses, {loss name: [gradient of that loss per variable; zeros where unconnected]})
    as NumPy, for tests and reports."""
    variables = list(variables)
    bound = _bind(loss_fn, variables)

    def pure(values, *inputs):
        losses, backward = jax.vjp(lambda vals: bound(vals, *inputs), list(values))
        return losses, {k: backward({j: jnp.ones_like(x) if j == k else jnp.zeros_like(x)
                                     for j, x in losses.items()})[0] for k in losses}
    losses, grads = _jit(pure)(_values(variables), *inputs)
    return ({k: np.asarray(v) for k, v in losses.items()},
            {k: [np.asarray(g) for g in gs] for k, gs in grads.items()})


def default_steps_per_call(jit: bool) -> int:
    """Twenty: a call costs the host 3 to 6 ms however many steps it runs, so twenty per call
    bring that under 0.3 ms per step, and on a 2-core CPU the steps ran as fast as at ten
    (which ran the KGBD step, batch 256, 1.25 times and the KS20 step 1.2 times faster
    than one per call, with the same weights bit for bit; docs/training-step.md)."""
    return 20


def resident(array):
    return jax.device_put(np.asarray(array))


def to_numpy(x) -> np.ndarray:
    return np.asarray(x)


def seed(value: int) -> None:
    """Nothing to seed: the model draws no random numbers inside JAX (weights and draws
    come from NumPy generators seeded by the run's --seed)."""


def device_description() -> str:
    devices = jax.devices()
    if devices[0].platform == "gpu":
        return "GPU: " + ", ".join(d.device_kind for d in devices)
    return cpu_description()


def version() -> str:
    return f"JAX {jax.__version__}"
