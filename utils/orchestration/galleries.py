"""Galleries and the classifier's calibration, on disk: what identify.py --enrol and
--calibrate store with a run (utils/orchestration/storage.py names the files), and read back.
"""
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from typing import List, Optional

import numpy as np

from utils.foundation.errors import UserError
from utils.foundation.identity_scores import (LEGACY_SCORE, Calibration, check_score,
                                              gallery_scores, mahalanobis_scores)
from utils.foundation.io import (DAMAGED, atomic_path, atomic_save_json, damage_detail,
                                 read_json)
from utils.orchestration.storage import CALIBRATION_FILE


GALLERY_VERSION = 2      # 2: also the mahalanobis score's centres and shared precision


@dataclass
class Gallery:
    names: List[str]
    vectors: np.ndarray                 # [P, E], L2-normalised (cosine)
    mean: np.ndarray                    # [E] the enrolment's statistics (standardise)
    scale: np.ndarray                   # [E]
    recordings: List[int]               # recordings enrolled per person
    calibration: Calibration
    encoder: str                        # sha256 of the encoder.npz it was built with
    source: str                         # the enrolment folder
    centres: Optional[np.ndarray] = None     # [P, E] mean vectors, not normalised (mahalanobis)
    precision: Optional[np.ndarray] = None   # [E, E] the shared (tied) precision (mahalanobis)
    # the leave-one-out searches its threshold was set on (known best, correct, unknown
    # best); kept in memory to set others (calibrate), not saved
    searches: Optional[tuple] = field(default=None, repr=False, compare=False)

    @property
    def score(self) -> str:
        return self.calibration.score or LEGACY_SCORE["gallery"]

    def scores(self, vector: np.ndarray, score: Optional[str] = None) -> np.ndarray:
        """One standardised recording vector -> a score per person, by `score` (default:
        the one the gallery's threshold was set on)."""
        score = check_score("gallery", score or self.score)
        if score == "cosine":
            return gallery_scores(vector, self.vectors)
        if self.precision is None:
            raise UserError(f"this gallery was enrolled before the mahalanobis score existed; "
                            f"enrol again with identify.py --enrol {self.source}")
        return mahalanobis_scores(vector, self.centres, self.precision)

    def save(self, path: str) -> None:
        meta = dict(version=GALLERY_VERSION, names=self.names, recordings=self.recordings,
                    calibration=asdict(self.calibration), encoder=self.encoder,
                    source=self.source)
        extra = {} if self.precision is None else dict(centres=self.centres, precision=self.precision)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, vectors=self.vectors.astype(np.float32), mean=self.mean,
                         scale=self.scale, meta=np.array(json.dumps(meta)), **extra)

    @classmethod
    def load(cls, path: str) -> "Gallery":
        if not os.path.isfile(path):
            raise UserError(f"gallery {path} not found; enrol one with identify.py --model_dir "
                            f"RUN --enrol GALLERY_DIR")
        try:
            with np.load(path) as data:
                vectors, meta = data["vectors"], json.loads(str(data["meta"]))
                mean, scale = data["mean"], data["scale"]
                centres, precision = ((data["centres"], data["precision"])
                                      if "precision" in data.files else (None, None))
            return cls(meta["names"], vectors, mean, scale, meta["recordings"],
                       Calibration(**meta["calibration"]), meta["encoder"], meta["source"],
                       centres, precision)
        except DAMAGED + (TypeError, json.JSONDecodeError) as exc:
            raise UserError(f"cannot read gallery {path} ({damage_detail(exc)}); enrol again "
                            f"with identify.py --model_dir RUN --enrol GALLERY_DIR") from None


def file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_classifier_calibration(run_dir: str, calibration: Calibration, identities) -> None:
    atomic_save_json(os.path.join(run_dir, CALIBRATION_FILE),
                     dict(calibration=asdict(calibration), identities=list(identities)))


def load_classifier_calibration(run_dir: str):
    """(Calibration, identities) stored with the run, or (None, None)."""
    path = os.path.join(run_dir, CALIBRATION_FILE)
    if not os.path.isfile(path):
        return None, None
    try:
        saved = read_json(path, "calibration file")
        return Calibration(**saved["calibration"]), list(saved["identities"])
    except UserError as exc:
        raise UserError(f"{exc}; calibrate again with identify.py --model_dir {run_dir} "
                        f"--calibrate HELDOUT_DIR") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is damaged ({damage_detail(exc)}); calibrate again with "
                        f"identify.py --model_dir {run_dir} --calibrate HELDOUT_DIR") from None
