"""The epoch loop both training stages share, its hooks, and each stage's typed state.

A stage is its state (a dataclass: counters, histories, generator state, best model so
far) plus the arrays of its variables, and one function that trains one epoch. After
every epoch the hooks run in order: saving snapshots, early stopping, the resume
checkpoint with the time budget. A hook that returns True ends the loop at once (the
later hooks do not run: an early-stopped run writes no checkpoint, it finishes).
"""
import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np

from utils.foundation.errors import UserError


class Hook:
    def after_epoch(self, state) -> bool:
        """Called after every epoch; True ends the loop."""
        return False


class Call(Hook):
    """A plain function of the state, run after every epoch (never stops the loop)."""

    def __init__(self, fn: Callable):
        self.fn = fn

    def after_epoch(self, state) -> bool:
        self.fn(state)
        return False


class StopWhen(Hook):
    """Ends the loop when `condition(state)` holds, after calling `say(state)`."""

    def __init__(self, condition: Callable, say: Callable = lambda state: None):
        self.condition, self.say = condition, say

    def after_epoch(self, state) -> bool:
        if self.condition(state):
            self.say(state)
            return True
        return False


class Checkpoint(Hook):
    """The resume checkpoint after every epoch; the run folder raises TimeBudgetReached
    after writing it once --time_budget is spent."""

    def __init__(self, run, arrays: Callable[[], Dict[str, List[np.ndarray]]]):
        self.run, self.arrays = run, arrays

    def after_epoch(self, state) -> bool:
        self.run.checkpoint(state.info(), dict(self.arrays(), **state.arrays()))
        return False


def run_epochs(state, max_epochs: int, one_epoch: Callable, hooks: List[Hook]) -> bool:
    """Train epochs state.epoch+1 .. max_epochs; one_epoch(state) trains one and advances
    state.epoch. Returns True when a hook ended the loop early."""
    while state.epoch < max_epochs:
        one_epoch(state)
        for hook in hooks:
            if hook.after_epoch(state):
                return True
    return False


# ----------------------------------------------------------------------------------------
# The stages' states. `info()` is what the checkpoint's JSON record holds, `arrays()` the
# arrays the state owns; the variables of the models and optimisers are added by the stage.

class StageState:
    STAGE = ""
    ARRAY_FIELDS = ()

    def info(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name not in self.ARRAY_FIELDS}
        return dict(out, stage=self.STAGE)

    def arrays(self) -> Dict[str, List[np.ndarray]]:
        return {name: list(getattr(self, name) or []) for name in self.ARRAY_FIELDS}

    @classmethod
    def from_checkpoint(cls, info: dict, arrays: Dict[str, List[np.ndarray]]):
        if info.get("stage") != cls.STAGE:
            raise ValueError(f"a {info.get('stage')} checkpoint is not a {cls.STAGE} state")
        values = {f.name: info[f.name] for f in dataclasses.fields(cls)
                  if f.name not in cls.ARRAY_FIELDS and f.name in info}
        values.update({name: list(arrays.get(name, [])) for name in cls.ARRAY_FIELDS})
        return cls(**values)


@dataclass
class PretrainState(StageState):
    STAGE = "pretrain"
    ARRAY_FIELDS = ("draws",)
    epoch: int = 0
    history: List[dict] = field(default_factory=list)     # mean pretext loss per scale, per epoch
    seconds: float = 0.0
    rng: Optional[dict] = None                            # the draws generator's state
    draws: List[np.ndarray] = field(default_factory=list)


@dataclass
class ReIDState(StageState):
    STAGE = "reid"
    ARRAY_FIELDS = ("best_weights",)
    epoch: int = 0
    history: List[dict] = field(default_factory=list)
    seconds: float = 0.0
    waited: int = 0                                       # epochs without progress
    best_acc: float = 0.0
    best_loss: float = float("inf")
    best_epoch: Optional[int] = None                      # the kept classifier's epoch
    best_weights: List[np.ndarray] = field(default_factory=list)
    pretext_history: List[dict] = field(default_factory=list)   # of the finished pre-training
    pretrain_seconds: float = 0.0


def assign(variables, values: List[np.ndarray], where: str) -> None:
    """Put checkpointed arrays back into variables, checking that they fit."""
    variables = list(variables)
    if len(values) != len(variables) or any(
            tuple(v.shape) != tuple(np.shape(a)) for v, a in zip(variables, values)):
        raise UserError(f"the resume checkpoint in {where} does not fit the model built from "
                        f"the flags")
    for var, value in zip(variables, values):
        var.assign(value)
