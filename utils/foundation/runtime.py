"""The CPU a run uses, and the one rule for its random generators. (Seeding the engine and
naming its device belong to the engine: models/engine.py.)"""
import os

import numpy as np

# Every random generator of the pipeline, by purpose, seeded from the run's --seed. The
# model and the classifier seed their own initialisers (SMSGE: seed; ReIDClassifier:
# seed + 7919). Changing an entry changes every seeded result.
_SEED_RULE = {
    "training order": lambda seed: [seed, 1],   # the reference's epoch order, both stages
    "draws": lambda seed: [seed, 2],            # the pretext task's random subsequences
    "holdout": lambda seed: seed + 2,           # the validation split of --selection val
    # the preparation's seed (tools/prepare_kgbd.py --seed): people set aside, --holdout_people
    "held-out people": lambda seed: [seed, 3],
}


def generator(seed: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng(_SEED_RULE[purpose](seed))


def cpu_description() -> str:
    import platform
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"CPU: {cpu}, {os.cpu_count()} cores"
