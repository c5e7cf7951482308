"""The JAX engine: the model's keras.ops code traced as a pure function of its variables'
values (keras.StatelessScope maps each variable to the value passed in) and compiled with
jax.jit. The training step returns new values and optimiser states, which are written back
to the variables, so the rest of the project sees the same state on both engines.

Gradients: each optimiser follows the gradient of its own loss (the reference's four Adams
each follow their own scale's loss), all compiled together (see _per_loss_gradients).
"""
import jax
import jax.numpy as jnp
import numpy as np

from models.engine import Staged
from models.layers import adam_update, flatten, keras, unflatten
from utils.foundation.runtime import cpu_description


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
    compiled = jax.jit(_bind(fn, variables))
    return lambda *inputs: compiled(_values(variables), *inputs)


def _per_loss_gradients(loss_fn, variables, values, inputs, keys, own_only=True):
    """(losses, aux, gradient): gradient(n, indices) is the gradient of keys[n]'s loss on
    the values at these indices, as one flat vector (layers.flatten); key None: the sum
    of the losses; keys None (a Staged loss_fn only): every loss, in the losses' order.

    A plain loss_fn: one jax.grad per key, all in one compiled function: XLA drops what a
    loss does not depend on (the other scales' LSTMs and heads) and merges the forward work
    they share (the MGRN), so each backward pass covers only its loss's path, as
    TensorFlow's tape does. (One vjp with one-hot cotangents would run every backward pass
    through every scale.) A Staged loss_fn (models/engine.py): the shared first stage's
    backward pass once, vmapped over the keys' cotangents of the features; the second
    stage's, with own_only (a training step, where each key's gradient is applied to its
    own optimiser's variables only), once for the sum of the losses, which is each loss's
    own gradient on its own variables and features; without, once per key (every
    variable's gradient exact: for tests)."""
    if not isinstance(loss_fn, Staged):
        bound = _bind(loss_fn, variables)

        def objective(key):
            def f(vals):
                losses, _ = bound(vals, *inputs)
                return sum(losses.values()) if key is None else losses[key]
            return f
        losses, aux = bound(values, *inputs)
        grads = [jax.grad(objective(key))(values) for key in keys]
        return losses, aux, lambda n, indices: flatten([grads[n][i] for i in indices])
    first, second = _bind(loss_fn.features, variables), _bind(loss_fn.losses, variables)
    features, backward = jax.vjp(lambda vals: first(vals, *inputs), values)

    def second_stage(key):   # (to the features, to the values), (losses, aux)
        def f(features, vals):
            losses, aux = second(vals, features, *inputs)
            return (sum(losses.values()) if key is None else losses[key]), (losses, aux)
        return jax.grad(f, (0, 1), has_aux=True)(features, values)
    (to_features, own), (losses, aux) = second_stage(None)
    keys = list(losses) if keys is None else keys
    if own_only:   # key k's cotangent: its loss's gradient on its own features, zeros elsewhere
        cotangents = [{name: g if key in (None, name) else jnp.zeros_like(g)
                       for name, g in to_features.items()} for key in keys]
        owns = [own] * len(keys)
    else:
        cotangents, owns = zip(*[second_stage(key)[0] for key in keys])
    (shared,) = jax.vmap(backward)(jax.tree.map(lambda *c: jnp.stack(c), *cotangents))

    def gradient(n, indices):
        # A value reaches one stage only: the other stage's gradient is zero (XLA drops
        # the sum). The first stage's rows are flattened for all keys at once and then
        # sliced: one concatenation, not one slice per variable and key.
        rows = jnp.concatenate([s.reshape(len(keys), -1) for s in (shared[i] for i in indices)], 1)
        return rows[n] + flatten([owns[n][i] for i in indices])
    return losses, aux, gradient


def train_step(loss_fn, updates, constants=(), jit: bool = True, keep_on_device: bool = True):
    """updates: [(Adam, loss name or None for the sum of all losses)], applied in order,
    every gradient taken before any update; constants: variables read but not trained.
    loss_fn(*inputs) -> ({name: loss}, aux), or a Staged (models/engine.py). Returns
    step(*inputs) -> ({name: loss}, aux). Each Adam follows the gradient of its own loss
    (_per_loss_gradients), all in one compiled function. Returns a Step: call it per
    batch, sync() it before the variables are read."""
    trained = _unique([v for opt, _ in updates for v in opt.variables_])
    index = {id(v): i for i, v in enumerate(trained)}
    shapes = [tuple(v.shape) for v in trained]
    frozen = [v for v in _unique(constants) if id(v) not in index]
    keys = [key for _, key in updates]

    def pure(weights, frozen_values, states, *inputs):
        values = unflatten(weights, shapes)
        losses, aux, gradient = _per_loss_gradients(
            loss_fn, trained + frozen, values + list(frozen_values), inputs, keys)
        new_states = []
        for n, ((opt, _), (step, m, v)) in enumerate(zip(updates, states)):
            idx = [index[id(w)] for w in opt.variables_]
            step, new, m, v = adam_update(opt, step, [values[i] for i in idx],
                                          gradient(n, idx), m, v)
            for i, value in zip(idx, new):
                values[i] = value
            new_states.append((step, m, v))
        return flatten(values), new_states, losses, aux

    # always compiled (--xla is TensorFlow's); the weights and optimiser states are donated:
    # each step's results take their buffers, so a step allocates no second copy of them
    compiled = jax.jit(pure, donate_argnums=(0, 2) if keep_on_device else ())
    return Step(compiled, trained, frozen, updates, keep_on_device)


class Step:
    """A compiled training step whose weights and optimiser states stay on the device from
    one call to the next (the variables are not read or written per step), the weights as
    one flat vector and each Adam's moments as two (Adam.flat_slots): one result each for
    the compiled step to write, where an array per weight and moment would be one kernel
    each. sync() writes them back into the variables, once per epoch, before anything
    reads them. Until then the variables' arrays are deleted: reading one is an error,
    never a stale value. keep_on_device=False writes back after every call (the earlier
    way, kept for the benchmark's before/after)."""

    def __init__(self, compiled, trained, frozen, updates, keep_on_device: bool = True):
        self.compiled, self.trained, self.frozen = compiled, trained, frozen
        self.updates, self.keep_on_device = updates, keep_on_device
        self._state = None      # (flat weights, frozen values, states) between sync()s

    def state(self):
        """(weights, constants, optimiser states): the step's own, else the variables'."""
        if self._state is None:
            slots = [v for opt, _ in self.updates for v in opt.m + opt.v]
            states = [(opt.step.value, *opt.flat_slots()) for opt, _ in self.updates]
            self._state = (flatten(self.trained), _values(self.frozen), states)
            for var in self.trained + slots:   # held by the step until sync()
                var.value.delete()
        return self._state

    def __call__(self, *inputs):
        weights, frozen, states = self.state()
        weights, states, losses, aux = self.compiled(weights, frozen, states, *inputs)
        self._state = (weights, frozen, states)
        if not self.keep_on_device:
            self.sync()
        return losses, aux

    def sync(self) -> None:
        """Write the step's weights and optimiser states into the variables."""
        if self._state is None:
            return
        weights, _, states = self._state
        self._state = None
        for var, value in zip(self.trained, unflatten(weights, [v.shape for v in self.trained])):
            var.assign(value)
        for (opt, _), (step, m, v) in zip(self.updates, states):
            opt.assign_slots(step, m, v)


def gradients(loss_fn, variables, *inputs):
    """(losses, {loss name: [gradient of that loss per variable; zeros where unconnected]})
    as NumPy, for tests and reports. loss_fn: {name: loss}, or a Staged."""
    variables = list(variables)
    if isinstance(loss_fn, Staged):
        @jax.jit
        def staged(values, *inputs):
            losses, _, gradient = _per_loss_gradients(loss_fn, variables, values, inputs, None,
                                                      own_only=False)
            every, shapes = range(len(values)), [tuple(x.shape) for x in values]
            return losses, {k: unflatten(gradient(n, every), shapes) for n, k in enumerate(losses)}
        losses, grads = staged(_values(variables), *inputs)
        return ({k: np.asarray(v) for k, v in losses.items()},
                {k: [np.asarray(g) for g in gs] for k, gs in grads.items()})
    bound = _bind(loss_fn, variables)

    @jax.jit
    def pure(values, *inputs):
        losses, backward = jax.vjp(lambda vals: bound(vals, *inputs), list(values))
        return losses, {k: backward({j: jnp.ones_like(x) if j == k else jnp.zeros_like(x)
                                     for j, x in losses.items()})[0] for k in losses}
    losses, grads = pure(_values(variables), *inputs)
    return ({k: np.asarray(v) for k, v in losses.items()},
            {k: [np.asarray(g) for g in gs] for k, gs in grads.items()})


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
