"""The TensorFlow engine: tf.function (optionally XLA) around the model's keras.ops code;
gradients from one persistent GradientTape (models/engine.py's Staged: the shared
stage's backward pass from each loss's own features); Adam's update on the step's own flat
state (weights and moments), written back into the variables at sync."""
import numpy as np
import tensorflow as tf

from models.engine import Staged
from models.layers import adam_update, flat_gradient, flatten, keras, unflatten
from utils.foundation.errors import UserError
from utils.foundation.runtime import cpu_description


def _tensors(inputs):
    return [tf.convert_to_tensor(x) for x in inputs]


def function(fn, variables=(), jit: bool = False):
    """fn(*inputs) compiled; it reads the current values of its variables at every call."""
    compiled = tf.function(fn, jit_compile=jit, autograph=False)
    call = lambda *inputs: compiled(*_tensors(inputs))   # noqa: E731
    call.compiled = compiled        # the tf.function itself (the benchmark reads its HLO)
    return call


class Step:
    """The compiled step (see train_step). Its state, the trained weights as one flat
    variable and each Adam's moments as two (Adam.flat_slots), is loaded from the model's
    variables and the optimisers' slots at the first call after a sync(), and written back
    into them by sync(): in between, nothing may read those (models/engine.py). One flat
    variable is one update for the compiled step to write, where a variable per weight
    and moment would be one kernel each."""

    def __init__(self, call, trained, updates, weights, moments):
        self.call, self.trained, self.updates = call, trained, updates
        self.weights, self.moments = weights, moments
        self.compiled = call.compiled
        self._loaded = False

    def __call__(self, *inputs):
        if not self._loaded:
            self.weights.assign(flatten(self.trained))
            for (opt, _), (m, v) in zip(self.updates, self.moments):
                flat_m, flat_v = opt.flat_slots()
                m.assign(flat_m)
                v.assign(flat_v)
            self._loaded = True
        return self.call(*inputs)

    def sync(self) -> None:
        if self._loaded:
            shapes = [tuple(w.shape) for w in self.trained]
            for var, value in zip(self.trained, unflatten(self.weights, shapes)):
                var.assign(value)
            for (opt, _), (m, v) in zip(self.updates, self.moments):
                opt.assign_slots(opt.step.value, m, v)
            self._loaded = False


def _per_loss_gradients(loss_fn, inputs, variable_lists, keys, own_only=True):
    """(losses, aux, [gradients of each key's loss with respect to its variable list,
    None where unconnected]); a list holds variables, or tensors (a training step's
    weights, read through keras.StatelessScope); key None: the sum of the losses; keys
    None (a Staged loss_fn only): every loss, with the one variable list. A Staged loss_fn
    (models/engine.py): the second stage's backward pass, with own_only (a training step:
    each key's gradient is applied to its own optimiser's variables only), once for the
    sum of the losses, which is each loss's own gradient on its own variables and
    features (without: once per key); then the first stage's once per key, from that
    loss's features only. (Batching the first stage over the keys with tape.jacobian and
    pfor, as JAX's vmap does, compiles to more kernels than the four passes: 1,077
    against 1,037 per KGBD step at batch 256.)"""
    staged = isinstance(loss_fn, Staged)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x for xs in variable_lists for x in xs if isinstance(x, tf.Tensor)])  # weights
        if staged:   # the second stage reads the features as its own inputs, cut off
            features = loss_fn.features(*inputs)   # from the first stage's variables
            held = {n: tf.stop_gradient(f) for n, f in features.items()}
            tape.watch(list(held.values()))
            losses, aux = loss_fn.losses(held, *inputs)
        else:
            losses, aux = loss_fn(*inputs)
        total = tf.add_n(list(losses.values()))   # inside the tape, or it has no gradient
    if not staged:
        grads = [tape.gradient(losses[key] if key else total, variables)
                 for variables, key in zip(variable_lists, keys)]
        return losses, aux, grads
    names = list(features)
    if keys is None:   # every loss, by name (features are keyed as the losses)
        keys, variable_lists = names, variable_lists * len(names)
    every = list({id(v): v for vs in variable_lists for v in vs}.values())

    def second_stage(key):   # ({name: gradient to the features}, {id: gradient to a variable})
        found = tape.gradient(total if key is None else losses[key],
                              [held[n] for n in names] + every)
        return dict(zip(names, found)), {id(v): g for v, g in zip(every, found[len(names):])}
    if own_only:
        to_features, own = second_stage(None)
    grads = []
    for variables, key in zip(variable_lists, keys):
        if not own_only:
            to_features, own = second_stage(key)
        reads = [n for n in names if (key in (None, n) or not own_only)
                 and to_features[n] is not None]
        shared = tape.gradient([features[n] for n in reads], variables,
                               output_gradients=[to_features[n] for n in reads])
        # a variable reaches one stage only: the other stage's gradient is None
        grads.append([a if b is None else b if a is None else a + b
                      for a, b in zip(shared, (own[id(v)] for v in variables))])
    return losses, aux, grads


def train_step(loss_fn, updates, constants=(), jit: bool = False, keep_on_device: bool = True):
    """updates: [(Adam, loss name or None for the sum of all losses)], applied in order,
    every gradient taken before any update; constants: variables read but not trained.
    loss_fn(*inputs) -> ({name: loss}, aux), or a Staged (models/engine.py). Returns a
    Step: step(*inputs) -> ({name: loss}, aux); sync() it before the variables are read.
    The model reads the trained weights from the step's flat state (keras.StatelessScope
    maps each variable to its piece). keep_on_device: the state lives on the device
    already (TensorFlow's variables); accepted for the contract."""
    trained = list({id(v): v for opt, _ in updates for v in opt.variables_}.values())
    index = {id(v): i for i, v in enumerate(trained)}
    shapes = [tuple(v.shape) for v in trained]
    weights = tf.Variable(tf.zeros_like(flatten(trained)), trainable=False)

    def flat_moment(opt):   # a variable in the layout of Adam.flat_slots
        return tf.Variable(tf.zeros_like(opt.flat_slots()[0]), trainable=False)
    moments = [(flat_moment(opt), flat_moment(opt)) for opt, _ in updates]

    def step(*inputs):
        values = unflatten(weights, shapes)
        with keras.StatelessScope(state_mapping=list(zip(trained, values))):
            losses, aux, grads = _per_loss_gradients(
                loss_fn, inputs, [[values[index[id(w)]] for w in opt.variables_]
                                  for opt, _ in updates], [key for _, key in updates])
        for (opt, _), g, (m, v) in zip(updates, grads, moments):
            idx = [index[id(w)] for w in opt.variables_]
            own = [values[i] for i in idx]
            grad, reached = flat_gradient(g, own)
            count, new, new_m, new_v = adam_update(opt, opt.step.value, own, grad, m, v, reached)
            opt.step.assign(count)
            m.assign(new_m)
            v.assign(new_v)
            for i, value in zip(idx, new):
                values[i] = value
        weights.assign(flatten(values))
        return losses, aux
    return Step(function(step, jit=jit), trained, updates, weights, moments)


def gradients(loss_fn, variables, *inputs):
    """(losses, {loss name: [gradient of that loss per variable, None where unconnected]})
    as NumPy, for tests and reports. loss_fn: {name: loss}, or a Staged."""
    inputs, variables = _tensors(inputs), list(variables)
    if isinstance(loss_fn, Staged):
        losses, _, grads = _per_loss_gradients(loss_fn, inputs, [variables], None,
                                               own_only=False)
        grads = dict(zip(losses, grads))
    else:
        with tf.GradientTape(persistent=True) as tape:
            losses = loss_fn(*inputs)
        grads = {k: tape.gradient(loss, variables) for k, loss in losses.items()}
        del tape
    return ({k: to_numpy(v) for k, v in losses.items()},
            {k: [None if g is None else to_numpy(tf.convert_to_tensor(g)) for g in gs]
             for k, gs in grads.items()})


def read_tf1_checkpoint(prefix: str) -> dict:
    """{variable name: array} of a TF1 checkpoint (the authors' model files)."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}
    except Exception as exc:   # TF raises several types for damaged files
        raise UserError(f"cannot read checkpoint {prefix}: {exc.__class__.__name__}; "
                        f"its .index/.data files are damaged or incomplete") from None


def to_numpy(x) -> np.ndarray:
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


def seed(value: int) -> None:
    tf.random.set_seed(value)


def device_description() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return "GPU: " + ", ".join(tf.config.experimental.get_device_details(g).get(
            "device_name", g.name) for g in gpus)
    return cpu_description()


def version() -> str:
    return f"TensorFlow {tf.__version__}"
