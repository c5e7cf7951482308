"""Saving and restoring model weights as .npz.

A checkpoint is {index:name -> array} in the module's own (deterministic) variable order;
loading checks the count and the shapes so that a model rebuilt from a different
configuration fails with a clear message instead of silently mis-assigning weights.
"""
import os

import numpy as np

from utils.foundation.errors import UserError
from utils.foundation.io import DAMAGED, atomic_save_npz, damage_detail


def save_module(path: str, module) -> None:
    atomic_save_npz(path, {f"{i:04d}:{v.name}": v.numpy()
                           for i, v in enumerate(module.trainable_variables)})


def load_module(path: str, module) -> None:
    if not os.path.isfile(path):
        raise UserError(f"weights file {path} not found")
    try:
        with np.load(path) as data:
            arrays = [data[k] for k in sorted(data.files)]
    except DAMAGED as exc:
        raise UserError(f"cannot read weights file {path}: it is damaged ({damage_detail(exc)}); "
                        f"train the model again, or use another run") from None
    variables = module.trainable_variables
    if len(arrays) != len(variables) or any(
            a.shape != tuple(v.shape) for a, v in zip(arrays, variables)):
        raise UserError(f"weights in {path} do not fit the model built from its "
                        f"configuration (different dataset, --length or architecture flags)")
    for a, v in zip(arrays, variables):
        v.assign(a)
