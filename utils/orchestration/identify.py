"""Who is this walker? Identify new recordings (and videos) with a trained run.

    from utils.orchestration.identify import load_identifier
    identifier = load_identifier("RN/demo/6/<run>")      # the run, its classifier or gallery
    result = identifier.identify_file("walk.npy")        # -> Identification
    print(result.decision, result.top[:3], result.windows)

This module is the loaded run (Identifier) and the commands' loops; the work has rooms of
its own: reading and cutting recordings (utils/data/recordings.py), videos
(utils/data/video_route.py), the scores, thresholds and calibration
(utils/foundation/identity_scores.py), galleries and stored calibrations
(utils/orchestration/galleries.py).

Scores (higher is more alike), one per identity, by the score chosen at calibration
(classifier_scores, Gallery.scores; DEFAULT_SCORE says which is used when none is chosen).
The best score below the calibrated threshold gives `unknown`. A threshold is set on one
score and stored with it; identification then uses that score. Thresholds are calibrated on
recordings the scores were not built from, at a stated operating point (choose_threshold):
the classifier's on held-out recordings (Identifier.calibrate_classifier, stored with the
run), a gallery's by leave-one-out on its enrolment (Identifier.enrol, in the gallery file).
"""
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from utils.data.raw_skeletons import MAX_COORDINATE, TRIM_FRAMES, discover
from utils.data.recordings import (RECORDING_EXTENSIONS, expand_inputs, is_video, read_checked,
                                   recording_windows)
from utils.data.reid_data import window_fingerprints
from utils.data.video_route import video_to_recording
from utils.foundation.errors import UserError
from utils.foundation.identity_scores import (BY, DEFAULT_SCORE, LEGACY_SCORE, Calibration,
                                              Identification, calibrate, check_score,
                                              classifier_scores, decide,
                                              gallery_leave_one_out, person_vector,
                                              standardise, standardiser, tied_precision)
from utils.foundation.io import DAMAGED, damage_detail
from utils.foundation.skeleton import SkeletonLayout
from utils.orchestration.galleries import (Gallery, file_digest, load_classifier_calibration,
                                           save_classifier_calibration)

DEFAULT_TOP_K = 5


@dataclass
class Identifier:
    """A trained run ready to identify recordings. Build it with load_identifier."""
    run_dir: str
    cfg: object                               # the run's RunConfig
    layout: SkeletonLayout
    encoder: object                           # models.training.Encoder
    encoder_digest: str
    classifier: object = None                 # the Re-ID classifier, classification runs
    calibration: Optional[Calibration] = None   # the classifier's
    identities: Optional[List[str]] = None      # the classifier's
    gallery: Optional[Gallery] = None
    by: str = "classifier"
    bad_frames: str = "stop"
    max_coordinate: float = MAX_COORDINATE
    trim: int = TRIM_FRAMES
    video_options: List[str] = field(default_factory=list)
    gallery_path: str = ""
    calibration_error: Optional[UserError] = None   # a damaged calibration file, if any
    trained_on: Optional[np.ndarray] = None   # fingerprints of the run's training windows
    allow_seen: bool = False                  # --allow_seen_walks 1: score them, marked
    seen_scored: Dict[str, int] = field(default_factory=dict)   # those scored so, by path

    def check_ready(self) -> None:
        """One line saying what is missing when this run cannot score yet."""
        run, gallery = self.run_dir, self.gallery_path
        if self.by == "gallery" and self.gallery is None:
            raise UserError(f"no gallery at {gallery}; enrol one with identify.py --model_dir "
                            f"{run} --enrol GALLERY_DIR (<person>/<recording> folders)")
        if self.by == "classifier":
            if self.classifier is None:
                raise UserError(f"{run} holds no classifier (a retrieval run) and no gallery at "
                                f"{gallery}; enrol one with identify.py --model_dir {run} "
                                f"--enrol GALLERY_DIR (<person>/<recording> folders)")
            if self.calibration is None and self.calibration_error is not None:
                raise self.calibration_error
            if self.calibration is None:
                raise UserError(f"{run}: its classifier has no unknown threshold yet; calibrate "
                                f"it with identify.py --model_dir {run} --calibrate HELDOUT_DIR "
                                f"(held-out recordings of its people, <person>/<recording>)")

    # -- one recording ----------------------------------------------------------------
    def read(self, path: str) -> np.ndarray:
        """A recording file (or, with the video environment, a video) -> checked frames."""
        if is_video(path):
            return self.read_video(path)
        return read_checked(path, self.layout, self.bad_frames, self.max_coordinate)

    def read_video(self, path: str) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="identify-video-") as tmp:
            return read_checked(video_to_recording(path, self.cfg.layout, tmp, self.video_options),
                                self.layout, self.bad_frames, self.max_coordinate)

    def windows(self, frames: np.ndarray, source: str = "<recording>") -> np.ndarray:
        return recording_windows(frames, self.cfg.length, self.layout.centre, source, self.trim)

    def encode(self, windows: np.ndarray) -> np.ndarray:
        """Windows [W, f, J, 3] -> the encoder's prefix encodings [W, K, E]. Every recording
        gives its own number of windows, and a compiled encoder is traced again for every
        new batch size (a second or more each): the last batch is padded with copies of
        its first window to a power of two (16 at least), so a few sizes serve every
        recording; the copies' encodings are dropped."""
        size = self.cfg.batch_size
        tail = len(windows) % size
        if tail:
            padded = min(size, max(16, 1 << (tail - 1).bit_length()))
            filler = np.repeat(windows[len(windows) - tail:][:1], padded - tail, axis=0)
            return self.encoder.encode_all(np.concatenate([windows, filler]), size)[:len(windows)]
        return self.encoder.encode_all(windows, size)

    def scores(self, encodings: np.ndarray, by: Optional[str] = None, score: Optional[str] = None):
        """(scores per identity, names, threshold) of one recording's encodings, by `score`
        (default: the score the route's threshold was set on). The threshold is NaN when it
        was set on another score (no recording is then named), -inf when the classifier
        has none yet."""
        by = by or self.by
        if by == "gallery":
            if self.gallery is None:
                raise UserError(f"{self.run_dir}: no gallery loaded; enrol one with --enrol")
            g = self.gallery
            score = check_score(by, score or g.score)
            threshold = g.calibration.threshold if score == g.score else np.nan
            return (g.scores(standardise(recording_vector(encodings), g.mean, g.scale), score),
                    g.names, threshold)
        from models.engine import active_engine
        calibrated = (self.calibration.score or LEGACY_SCORE[by]) if self.calibration else None
        score = check_score(by, score or calibrated)
        logits = active_engine().to_numpy(self.classifier(encodings))
        threshold = (-np.inf if calibrated is None else
                     self.calibration.threshold if score == calibrated else np.nan)
        return classifier_scores(logits, score), self.identities, threshold

    def score_in_use(self) -> str:
        """The score identification uses: the one the route's threshold was set on."""
        if self.by == "gallery":
            return self.gallery.score if self.gallery is not None else DEFAULT_SCORE["gallery"]
        if self.calibration is None:
            return DEFAULT_SCORE["classifier"]
        return self.calibration.score or LEGACY_SCORE["classifier"]

    def encoded(self, folder: str, log=print, scored: Optional[str] = None,
                warn=print) -> List[Tuple[str, str, np.ndarray]]:
        """(person folder, path, encodings) of every <folder>/<person>/<recording>, all read
        and checked before any is encoded. scored names what the recordings are for when
        rates are measured on them ("calibration recordings"): those the run was trained
        on are then refused (seen_in_training); otherwise (enrolment) they are counted in
        a note to warn."""
        found = discover(folder, "folders")
        checked = [(rec, self.windows(self.read(rec.path), rec.path)) for rec in found]
        pairs = [(rec.path, windows) for rec, windows in checked]
        if scored is not None:
            self.seen_in_training(pairs, scored, warn)
        else:
            seen = self.windows_trained_on(pairs)
            if seen:
                warn(f"NOTE: {len(seen)} of {len(pairs)} enrolled recordings have windows this "
                     f"run was trained on: a threshold set on them expects more of new walks "
                     f"than they will give")
        out = [(rec.person, rec.path, self.encode(windows)) for rec, windows in checked]
        log(f"{len(found)} recordings of {len({p for p, _, _ in out})} people read from {folder}")
        return out

    def windows_trained_on(self, recordings: Sequence[Tuple[str, np.ndarray]]) -> Dict[str, int]:
        """{path: windows the run was trained on} of (path, windows), those with any; empty
        for a run that keeps no fingerprints."""
        if self.trained_on is None:
            return {}
        counts = {path: int(np.isin(window_fingerprints(windows), self.trained_on).sum())
                  for path, windows in recordings}
        return {path: count for path, count in counts.items() if count}

    def seen_in_training(self, recordings: Sequence[Tuple[str, np.ndarray]], what: str,
                         warn=print) -> Dict[str, int]:
        """windows_trained_on of (path, windows) about to be scored. Rates measured on them
        would be optimistic: refused in one line with the counts, unless allow_seen (then
        warned, and each result marked). A run saved before the fingerprints were kept
        cannot be checked: a note says so."""
        if not recordings:
            return {}
        if self.trained_on is None:
            warn(f"NOTE: {self.run_dir} keeps no fingerprints of its training windows "
                 f"(saved by an earlier version): {what} are not checked against them")
            return {}
        seen = self.windows_trained_on(recordings)
        if seen:
            first = next(iter(seen))
            total = dict(recordings)[first].shape[0]
            note = (f"{len(seen)} of {len(recordings)} {what} have windows this run was "
                    f"trained on ({first}: {seen[first]} of {total})")
            if not self.allow_seen:
                raise UserError(f"{note}; use walks it was not trained on, or pass "
                                f"--allow_seen_walks 1 to score them anyway, marked so in the "
                                f"output")
            warn(f"WARNING: {note}; scored anyway (--allow_seen_walks 1): not a clean result")
            self.seen_scored.update(seen)
        return seen

    def searches(self, encoded: Sequence[Tuple[str, str, np.ndarray]], by: Optional[str] = None,
                 score: Optional[str] = None):
        """Open-set searches of encoded recordings (encoded()), as utils/foundation/openset.py
        takes them: (best scores of recordings by people the route knows, whether each
        named its own person, best scores of the others)."""
        known, correct, unknown = [], [], []
        for person, _, encodings in encoded:
            scores, names, _ = self.scores(encodings, by, score)
            best = float(scores.max())
            if person in names:
                known.append(best)
                correct.append(names[int(scores.argmax())] == person)
            else:
                unknown.append(best)
        return known, correct, unknown

    def identify(self, frames: np.ndarray, source: str = "<recording>",
                 top_k: int = DEFAULT_TOP_K) -> Identification:
        """Checked frames [F, J, 3] (read) -> the decision and the top-k identities."""
        start = time.perf_counter()
        return self.identify_windows(self.windows(frames, source), source, top_k, start)

    def identify_windows(self, windows: np.ndarray, source: str, top_k: int = DEFAULT_TOP_K,
                         start: Optional[float] = None) -> Identification:
        start = time.perf_counter() if start is None else start
        scores, names, threshold = self.scores(self.encode(windows))
        result = decide(scores, names, threshold, top_k, source, len(windows), self.by)
        result.score = self.score_in_use()
        result.seconds = time.perf_counter() - start
        return result

    def identify_file(self, path: str, top_k: int = DEFAULT_TOP_K) -> Identification:
        return self.identify(self.read(path), path, top_k)

    # -- enrolment and calibration ------------------------------------------------------
    def recording_vectors(self, folder: str, log=print) -> Dict[str, List[np.ndarray]]:
        """{person folder: [one vector per recording]} of <folder>/<person>/<recording>."""
        out: Dict[str, List[np.ndarray]] = {}
        for person, _, encodings in self.encoded(folder, log, warn=log):
            out.setdefault(person, []).append(recording_vector(encodings))
        return out

    def enrol(self, folder: str, path: str, max_reject: Optional[float] = None,
              max_false_accept: Optional[float] = None, log=print,
              score: Optional[str] = None) -> Gallery:
        """Build a gallery (mean encoding per person) from <folder>/<person>/<recording>,
        calibrate its threshold for `score` by leave-one-out on the same recordings, save it
        to `path`."""
        gallery = self.gallery_from(self.recording_vectors(folder, log), folder, max_reject,
                                    max_false_accept, score)
        gallery.save(path)
        self.gallery, self.gallery_path, self.by = gallery, path, "gallery"
        log(f"Gallery of {len(gallery.names)} people written to {path}; "
            f"{gallery.calibration.describe()}")
        return gallery

    def gallery_from(self, raw: Dict[str, List[np.ndarray]], folder: str,
                     max_reject: Optional[float] = None,
                     max_false_accept: Optional[float] = None,
                     score: Optional[str] = None) -> Gallery:
        """A gallery of recording vectors {person: [vector, ...]} (recording_vectors),
        its threshold for `score` set by leave-one-out on them; not saved."""
        score = check_score("gallery", score)
        mean, scale = standardiser(np.stack([v for n in sorted(raw) for v in raw[n]]))
        vectors = {n: [standardise(v, mean, scale) for v in vs] for n, vs in raw.items()}
        known, correct, unknown = gallery_leave_one_out(vectors, score)
        if not known:
            raise UserError(f"{folder}: calibrating the unknown threshold needs two or more "
                            f"recordings of at least one person; add recordings")
        calibration = calibrate(known, correct, unknown,
                                f"{folder}, leave one recording (known) or person (unknown) out",
                                max_reject, max_false_accept, score)
        names = sorted(vectors)
        precision, _ = tied_precision(vectors)
        return Gallery(names, np.stack([person_vector(vectors[n]) for n in names]), mean, scale,
                       [len(vectors[n]) for n in names], calibration, self.encoder_digest,
                       os.path.abspath(folder),
                       np.stack([np.mean(vectors[n], axis=0) for n in names]), precision,
                       (known, correct, unknown))

    def calibrate_classifier(self, folder: str, max_reject: Optional[float] = None,
                             max_false_accept: Optional[float] = None, log=print,
                             score: Optional[str] = None, encoded=None) -> Calibration:
        """Calibrate the classifier's threshold for `score` on <folder>/<person>/<recording>:
        held-out recordings (never trained on) of the run's people, folders named as its
        identities (person<id>, or the prepared dataset's folders); other folders are people
        the run does not know, on whom the false-accept rate (FPIR) is measured. Saved with
        the run. `encoded`: the folder's recordings already encoded (encoded())."""
        if self.classifier is None:
            raise UserError(f"{self.run_dir} holds no classifier (a retrieval run); enrol a "
                            f"gallery with --enrol instead")
        score = check_score("classifier", score)
        if encoded is None:
            encoded = self.encoded(folder, log=lambda *_: None, scored="calibration recordings",
                                   warn=log)
        known, correct, unknown = self.searches(encoded, "classifier", score)
        if not known:
            raise UserError(f"{folder}: no folder is named as one of the run's identities "
                            f"({', '.join(self.identities[:3])}, ...); put held-out recordings "
                            f"of its people in folders with those names")
        calibration = calibrate(known, correct, unknown, os.path.abspath(folder),
                                max_reject, max_false_accept, score)
        save_classifier_calibration(self.run_dir, calibration, self.identities)
        self.calibration = calibration
        people = len({person for person, _, _ in encoded})
        log(f"Classifier calibrated on {len(encoded)} recordings of {people} people: "
            f"{calibration.describe()}")
        return calibration


def load_identifier(run_dir: str, gallery_path: Optional[str] = None, by: Optional[str] = None,
                    bad_frames: str = "stop", max_coordinate: float = MAX_COORDINATE,
                    need_scores: bool = True, video_options: Sequence[str] = (),
                    load_gallery: bool = True) -> Identifier:
    """A finished run folder (encoder.npz, config.json) -> an Identifier. It identifies by
    its gallery (gallery_path, default <run>/gallery.npz) where there is one, else by its
    classifier; `by` forces one. need_scores=False: for enrolment or calibration, which
    need only the encoder (and the classifier to calibrate); load_gallery=False: before
    enrolling anew, the old gallery is not read."""
    from models.factory import build_classifier, build_encoder, build_model
    from utils.foundation.checkpoints import load_module
    from utils.orchestration.storage import (CLASSIFIER_FILE, ENCODER_FILE, GALLERY_FILE,
                                             RESUME_FILE, TRAINING_WINDOWS_FILE, load_run_config)
    if by is not None and by not in BY:
        raise UserError(f"--by must be {' or '.join(BY)}, got {by!r}")
    if not os.path.isdir(run_dir):
        raise UserError(f"run folder {run_dir} not found; give a folder under RN/ written by "
                        f"SM-SGE.py, or 'best' with --dataset")
    from utils.orchestration.run import resolve
    cfg = load_run_config(run_dir)
    layout = resolve(cfg, build=False).layout
    encoder_path = os.path.join(run_dir, ENCODER_FILE)
    if not os.path.isfile(encoder_path):
        if not os.path.isfile(os.path.join(run_dir, RESUME_FILE)):
            raise UserError(f"{run_dir} holds neither {ENCODER_FILE} nor a resume checkpoint: a "
                            f"run that ended before its first epoch, with nothing to resume or "
                            f"identify with; delete it, or give another run")
        raise UserError(f"{run_dir} holds no {ENCODER_FILE}: not a finished run; finish it "
                        f"(SM-SGE.py --resume {run_dir}) or give another")
    model = build_model(cfg, layout)
    load_module(encoder_path, model)
    identifier = Identifier(run_dir, cfg, layout, build_encoder(cfg, model),
                        file_digest(encoder_path), bad_frames=bad_frames,
                        max_coordinate=max_coordinate, video_options=list(video_options))
    classifier_path = os.path.join(run_dir, CLASSIFIER_FILE)
    if os.path.isfile(classifier_path):
        identifier.classifier = build_classifier(cfg, model, _classes_in(classifier_path))
        load_module(classifier_path, identifier.classifier)
        try:
            identifier.calibration, identifier.identities = load_classifier_calibration(run_dir)
        except UserError as exc:       # matters to the classifier route only (check_ready)
            identifier.calibration_error = exc
        if identifier.identities is None:
            identifier.identities = _run_identities(cfg)
    gallery_path = gallery_path or os.path.join(run_dir, GALLERY_FILE)
    if load_gallery and os.path.isfile(gallery_path) and by != "classifier":
        identifier.gallery = Gallery.load(gallery_path)
        if identifier.gallery.encoder != identifier.encoder_digest:
            raise UserError(f"gallery {gallery_path} was enrolled with another encoder than "
                            f"{encoder_path}; enrol again with identify.py --model_dir {run_dir} "
                            f"--enrol {identifier.gallery.source}")
    identifier.by = by or ("gallery" if identifier.gallery is not None else "classifier")
    identifier.gallery_path = gallery_path
    fingerprints = os.path.join(run_dir, TRAINING_WINDOWS_FILE)
    if os.path.isfile(fingerprints):
        try:
            identifier.trained_on = np.load(fingerprints, allow_pickle=False)
        except DAMAGED as exc:
            raise UserError(f"cannot read {fingerprints}: it is damaged ({damage_detail(exc)}); "
                            f"delete it to identify without the check of recordings the run "
                            f"was trained on") from None
    if need_scores:
        identifier.check_ready()
    return identifier


def _classes_in(classifier_path: str) -> int:
    """Identities of a saved classifier: the length of its output bias b2 (ReIDClassifier)."""
    try:
        with np.load(classifier_path) as data:
            (key,) = [k for k in data.files if k.endswith(":b2")]
            return int(data[key].shape[0])
    except DAMAGED as exc:   # ValueError too: no ":b2" member
        raise UserError(f"cannot read weights file {classifier_path}: it is damaged "
                        f"({damage_detail(exc)}); train the model again, or use another run") from None


def _run_identities(cfg) -> List[str]:
    from utils.data.reid_data import load_variant
    from utils.orchestration.run import resolve
    run = resolve(cfg)
    data = load_variant(run.variant)
    return identity_names(run, data.id_list.tolist())


def identity_names(run, id_list: Sequence[int]) -> List[str]:
    """Names of a classification run's identities: the person folders a prepared
    dataset's manifest records, else person<id>. run: utils/orchestration/run.Run."""
    manifest = run.variant.manifest()
    persons, prepared_as = {}, run.protocol.prepared_as
    if manifest is not None:
        try:
            persons = manifest["protocols"][prepared_as]["persons"]
        except (KeyError, TypeError):
            raise UserError(f"the manifest of {run.variant.run_tag} lacks the {prepared_as} "
                            f"protocol's persons; prepare the dataset again") from None
    return [persons.get(str(p), {}).get("folder") or f"person{p}" for p in id_list]


def recording_vector(window_encodings: np.ndarray) -> np.ndarray:
    """[W, K, E] prefix encodings -> [E]: each window's sequence encoding (as retrieval
    matches them), averaged over the windows."""
    from models.training import sequence_encoding
    return sequence_encoding(window_encodings).mean(axis=0)


def identify_all(identifier: Identifier, paths: Sequence[str], top_k: int = DEFAULT_TOP_K,
                 log=print) -> List[Identification]:
    """Every input read and checked first (one bad input stops all, nothing is written),
    then identified one by one."""
    frames = [(path, identifier.read(path)) for path in expand_inputs(paths)]
    windows = [(path, identifier.windows(f, path)) for path, f in frames]
    seen = identifier.seen_in_training(windows, "recordings to identify", log)
    results = []
    for path, w in windows:
        results.append(identifier.identify_windows(w, path, top_k))
        results[-1].seen_windows = seen.get(path, 0)
        log(results[-1].line())
    return results


def watch(identifier: Identifier, folder: str, top_k: int = DEFAULT_TOP_K, log=print,
          poll: float = 1.0, stop=None) -> Tuple[List[Identification], int]:
    """identify.py --watch: the recordings (and videos) in `folder`, those there at the
    start and each that appears later, identified as they come with the model loaded once.
    A file is taken once its size and time stamp have held for one poll (a copy still
    being written is not read half-way); hidden files (.name, a writer's temporary) are
    not. A bad recording, or one the run was trained on, gives its line and the watch
    goes on. Ends on Ctrl-C or SIGTERM (or when stop() is true). Returns (results, files
    refused)."""
    if not os.path.isdir(folder):
        raise UserError(f"--watch {folder}: no such folder")
    results, refused, done, pending = [], 0, set(), {}
    try:
        while stop is None or not stop():
            for name in sorted(os.listdir(folder)):
                path = os.path.join(folder, name)
                if (name.startswith(".") or path in done or not os.path.isfile(path)
                        or not (name.endswith(RECORDING_EXTENSIONS) or is_video(name))):
                    continue
                info = os.stat(path)
                if pending.get(path) != (info.st_size, info.st_mtime_ns):
                    pending[path] = (info.st_size, info.st_mtime_ns)
                    continue
                done.add(path)
                try:
                    windows = identifier.windows(identifier.read(path), path)
                    seen = identifier.seen_in_training([(path, windows)], "recordings to identify",
                                                   lambda line: log(line, flush=True))
                    result = identifier.identify_windows(windows, path, top_k)
                except UserError as exc:
                    refused += 1
                    log(f"error: {exc}", flush=True)
                    continue
                result.seen_windows = seen.get(path, 0)
                results.append(result)
                log(result.line(), flush=True)
            time.sleep(poll)
    except KeyboardInterrupt:   # the way a watch ends
        pass
    return results, refused


def results_record(identifier: Identifier, results: Sequence[Identification]) -> dict:
    calibration = (identifier.gallery.calibration if identifier.by == "gallery" else identifier.calibration)
    return dict(run=identifier.run_dir, by=identifier.by,
                calibration=asdict(calibration) if calibration else None,
                results=[r.record() for r in results])


def parse_rate(text: Optional[str], flag: str) -> Optional[float]:
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise UserError(f"{flag} must be a share between 0 and 1 (0.05: 5 %), got {text!r}")
    return value
