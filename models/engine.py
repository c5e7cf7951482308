"""Which engine runs the model: TensorFlow (the default) or JAX, through Keras 3.

The model (models/layers.py, mgrn.py, sm_sge.py) is written once on keras.ops; each engine
adds only its compiled training step and compiled inference (models/engine_tensorflow.py,
models/engine_jax.py). Keras reads its backend once, when it is first imported, so the
engine is chosen before that: `select` (from --backend), else KERAS_BACKEND, else
TensorFlow.
"""
import importlib
import os
import sys
from typing import Any, Callable, Dict, Protocol, Tuple

from utils.foundation.errors import UserError

ENGINES = ("tensorflow", "jax")
DEFAULT = "tensorflow"
INSTALL = {"tensorflow": "pip install -r requirements.txt",
           "jax": "pip install -r requirements-jax.txt"}


class TrainingStep(Protocol):
    """A compiled training step (Engine.train_step)."""

    def __call__(self, *inputs) -> Tuple[Dict[str, Any], Any]:
        """One step on one batch: ({loss name: loss}, aux) as the engine's arrays."""

    def steps(self, data, batches, count, *inputs) -> Dict[str, Any]:
        """The first `count` of K stacked steps in one compiled call: step k reads
        data[batches[k]] (data from Engine.resident; batches [K, B] integers) and the k-th
        entry of each input (stacked along a first axis of length K). Rows past `count` are
        padding, so that a shorter block reuses the compiled call. The same mathematics as
        `count` calls; returns {loss name: [K] losses} as the engine's arrays, rows past
        `count` meaningless (the steps' aux is not kept)."""

    def sync(self) -> None:
        """Write the weights and optimiser states the step holds into the variables. An
        engine may keep them on its device from one call to the next; nothing may read the
        variables between a call and sync()."""


class Engine(Protocol):
    """What an engine module, models/engine_<name>.py, provides: everything the project
    asks of an engine, so a third engine is one new file (and its name in ENGINES). The
    model itself is keras.ops code shared by all; Adam's update (models.layers.adam_update)
    and its write-back (Adam.assign_slots) are shared too. tests/test_engines.py checks
    each engine module against this."""

    def function(self, fn: Callable, variables=(), jit: bool = False) -> Callable:
        """fn(*inputs) compiled, reading the current values of `variables` at every call."""

    def train_step(self, loss_fn: Callable, updates, constants=(), jit: bool = False,
                   keep_on_device: bool = True) -> TrainingStep:
        """updates: [(Adam, loss name or None for the sum)], every gradient taken before
        any update; constants: variables read but not trained."""

    def default_steps_per_call(self, jit: bool) -> int:
        """Pre-training steps per compiled call when --steps_per_call is not given: what the
        benchmark's `step` section found fastest for this engine (docs/training-step.md)."""

    def resident(self, array):
        """A NumPy array copied to the device once, for TrainingStep.steps to index."""

    def gradients(self, loss_fn: Callable, variables, *inputs):
        """(losses, {loss name: [gradient per variable]}) as NumPy, for tests and reports."""

    def to_numpy(self, x):
        """An engine array as a NumPy array."""

    def seed(self, value: int) -> None:
        """Seed the engine's own generators."""

    def device_description(self) -> str:
        """The device the engine computes on, in words."""

    def version(self) -> str:
        """The engine and its version, in words."""


def requested() -> str:
    """The engine asked for: --backend if select() was called, else KERAS_BACKEND, else
    the default."""
    name = os.environ.get("KERAS_BACKEND") or DEFAULT
    if name not in ENGINES:
        raise UserError(f"KERAS_BACKEND={name!r}: this project runs on "
                        f"{' or '.join(ENGINES)}; set --backend or KERAS_BACKEND to one of them")
    return name


def select(name=None) -> str:
    """Fix the engine for this process (before Keras is imported; a later call with
    another engine is an error, as Keras cannot switch). None: requested()."""
    name = name or requested()
    if name not in ENGINES:
        raise UserError(f"--backend must be {' or '.join(ENGINES)}, got {name!r}")
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != name:
            raise UserError(f"Keras was already loaded with the {current} engine in this "
                            f"process; {name} needs a new process")
        return name
    os.environ["KERAS_BACKEND"] = name
    return name


def name() -> str:
    return keras().backend.backend()


def keras():
    """Keras 3 on the selected engine, with a one-line error when that engine is missing."""
    if "keras" not in sys.modules:
        engine = select()
        try:
            importlib.import_module("jax" if engine == "jax" else "tensorflow")
        except ImportError:
            raise UserError(f"the {engine} engine is not installed: {INSTALL[engine]} "
                            f"(or choose the other with --backend)") from None
    import keras as k
    return k


def active_engine() -> Engine:
    """The selected engine's module: compiled steps, inference, seeding, device."""
    keras()
    return importlib.import_module(f"models.engine_{name()}")


def seed_everything(seed: int) -> None:
    """Seed the engine's generators and NumPy's global one."""
    import numpy as np
    active_engine().seed(seed)
    np.random.seed(seed)


def device_description() -> str:
    """The engine, its version and the device it runs on (a GPU, or the CPU model)."""
    engine = active_engine()
    return f"{engine.version()} on {engine.device_description()}"
