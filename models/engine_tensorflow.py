"""The TensorFlow engine: tf.function (optionally XLA) around the model's keras.ops code;
gradients from one persistent GradientTape; Adam's update assigned to the variables.
Several steps can run in one call, as a tf.while_loop (Step.steps)."""
import numpy as np
import tensorflow as tf

from models.layers import adam_update
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


def _apply_adam(opt, grads) -> None:
    step, values, m, v = adam_update(opt, opt.step.value, opt.variables_, grads, opt.m, opt.v)
    updated = [g is not None for g in grads]
    opt.assign_slots(step, m, v, updated)
    for var, value, changed in zip(opt.variables_, values, updated):
        if changed:
            var.assign(value)


class Step:
    """The compiled step (see train_step). TensorFlow assigns the variables inside it, so
    there is nothing to write back: sync() does nothing."""

    def __init__(self, call, block_call):
        self.call, self.block_call = call, block_call
        self.compiled = call.compiled

    def __call__(self, *inputs):
        return self.call(*inputs)

    def steps(self, data, batches, count, *inputs):
        """The first `count` of K stacked steps in one call (models/engine.py)."""
        return self.block_call(data, np.asarray(batches, np.int32), np.int32(count), *inputs)

    def sync(self) -> None:
        pass


def train_step(loss_fn, updates, constants=(), jit: bool = False, keep_on_device: bool = True):
    """updates: [(Adam, loss name or None for the sum of all losses)], applied in order,
    every gradient taken before any update. loss_fn(*inputs) -> ({name: loss}, aux).
    Returns a Step: step(*inputs) -> ({name: loss}, aux). keep_on_device: the variables
    live on the device already (TensorFlow's own variables); accepted for the contract."""
    def step(*inputs):
        with tf.GradientTape(persistent=True) as tape:
            losses, aux = loss_fn(*inputs)
            total = tf.add_n(list(losses.values()))   # inside the tape, or it has no gradient
        grads = [tape.gradient(losses[key] if key else total, opt.variables_)
                 for opt, key in updates]
        del tape
        for (opt, _), g in zip(updates, grads):
            _apply_adam(opt, g)
        return losses, aux

    names = []   # the losses' names, learnt when the loop's body is traced

    def block(data, batches, count, *inputs):
        """The first `count` of K stacked steps as one while loop (count is an argument,
        not a shape, so a shorter block reuses the compiled call): the step's code traced
        once as the loop's body, the losses of step k written to row k (in the order of
        `names`)."""
        def body(k, rows):
            losses, _ = step(tf.gather(data, batches[k]), *[x[k] for x in inputs])
            names[:] = list(losses)
            return k + 1, rows.write(k, tf.stack([losses[n] for n in names]))
        size = tf.shape(batches)[0]
        _, rows = tf.while_loop(lambda k, _: k < count, body,
                                (tf.constant(0), tf.TensorArray(tf.float32, size=size)))
        rows = rows.stack()
        return {n: rows[:, i] for i, n in enumerate(names)}
    return Step(function(step, jit=jit), function(block, jit=jit))


def gradients(loss_fn, variables, *inputs):
    """(losses, {loss name: [gradient of that loss per variable, None where unconnected]})
    as NumPy, for tests and reports."""
    with tf.GradientTape(persistent=True) as tape:
        losses = loss_fn(*_tensors(inputs))
    grads = {k: [None if g is None else to_numpy(tf.convert_to_tensor(g))
                 for g in tape.gradient(loss, list(variables))] for k, loss in losses.items()}
    del tape
    return {k: to_numpy(v) for k, v in losses.items()}, grads


def default_steps_per_call(jit: bool) -> int:
    """Ten with XLA: on a 2-core CPU a batch-8 step took 13 ms against 21 ms one per call,
    larger steps the same time, and the weights came out the same bit for bit
    (docs/training-step.md). One without XLA, whose graph optimiser treats a loop's body
    apart from a single step (the losses then differ in their last bits)."""
    return 10 if jit else 1


def resident(array):
    return tf.constant(np.asarray(array))


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
