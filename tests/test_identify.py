"""identify.py on the built-in demo: known people's held-out walks, people the run never saw,
enrolment without training, the Python API, bad inputs, and the video route.

One tiny classification run (f=4, one pre-training epoch) serves the whole module."""
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import TINY_RUN, copy_of_run
from utils.data.demo import generate_recordings, unseen_recordings, write_recordings
from utils.foundation.identity_scores import (calibrate, choose_threshold, decide,
                                              gallery_leave_one_out, unit)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNSEEN, UNSEEN_WALKS = 12, 4          # new people: 1-6 calibrate, 7-12 are tested
CLIP = os.path.join(os.path.dirname(ROOT), "shared", "video", "walk_side.mp4")
VIDEO_PYTHON = os.environ.get("SMSGE_VIDEO_PYTHON", os.path.join(ROOT, ".venv-video", "bin", "python"))


def run(script, args, cwd):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, os.path.join(ROOT, script)] + args, cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def demo(tmp_path_factory, tiny_demo_run):
    """A trained run (a copy of the shared tiny one), the demo's recordings as files, and its
    classifier calibrated on held-out walks: each trained person's 5th walk, and new people 1-6."""
    root = tmp_path_factory.mktemp("identify")
    run_dir = copy_of_run(tiny_demo_run, root)
    trained, unseen = generate_recordings(), unseen_recordings(UNSEEN, UNSEEN_WALKS)
    write_recordings(str(root / "calibrate"), trained, which=[4])
    write_recordings(str(root / "calibrate"), {p: unseen[p] for p in range(1, 7)}, prefix="new")
    write_recordings(str(root / "known"), trained, which=[5])
    write_recordings(str(root / "unseen"), {p: unseen[p] for p in range(7, UNSEEN + 1)}, prefix="new")
    cal = run("identify.py", ["--model_dir", str(run_dir), "--calibrate", "calibrate"], root)
    assert cal.returncode == 0, cal.stderr[-2000:]
    saved = json.loads((run_dir / "identify_calibration.json").read_text())
    # the default operating point: an FPIR target, new people being in the calibration data
    assert (saved["calibration"]["operating_point"], saved["calibration"]["rate"]) == (
        "max_false_accept", 0.05)
    return dict(root=root, run=run_dir, trained=trained, unseen=unseen,
                calibration=saved["calibration"],
                rank1=json.loads((run_dir / "metrics.json").read_text())["rank1"])


def identify(demo, args, name="out.json"):
    out = demo["root"] / name
    proc = run("identify.py", ["--model_dir", str(demo["run"]), "--json", str(out)] + args,
               demo["root"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc, json.loads(out.read_text())


@pytest.mark.slow
def test_known_people_are_identified_and_new_people_come_out_unknown(demo):
    proc, out = identify(demo, ["known", "unseen"])
    assert out["by"] == "classifier"
    results = {r["file"]: r for r in out["results"]}
    known = [r for f, r in results.items() if f.startswith("known")]
    new = [r for f, r in results.items() if f.startswith("unseen")]
    assert len(known) == 20 and len(new) == 6 * UNSEEN_WALKS
    assert all(r["windows"] == 10 and len(r["top"]) == 5 for r in out["results"])   # (60-20)/4
    # one line per recording, the same decisions as the JSON
    for r in out["results"]:
        (line,) = [l for l in proc.stdout.splitlines() if l.startswith(r["file"] + ":")]
        assert line.split(": ")[1].split(" ")[0].rstrip(";") == r["decision"]
    # Known people's held-out walks: a walk's probabilities average those of its 10 windows,
    # so it is named at least about as often as one window is (the run's Rank-1, r), less
    # the share rejected at calibration, less three binomial deviations over 20 walks.
    r, reject = demo["rank1"], demo["calibration"]["false_reject"]
    rate = np.mean([res["decision"] == os.path.basename(os.path.dirname(res["file"])) for res in known])
    bound = r - reject - 3 * math.sqrt(r * (1 - r) / 20)
    print(f"known walks identified: {rate:.2f} (window Rank-1 {r:.2f}, bound {bound:.2f})")
    assert rate >= bound
    # People the run never saw: named at about the false-accept rate measured at calibration
    # on other new people (24 walks each side: three deviations of the difference).
    far = demo["calibration"]["false_accept"]
    accepted = np.mean([res["decision"] != "unknown" for res in new])
    n = 6 * UNSEEN_WALKS
    spread = 3 * math.sqrt(2 * max(far * (1 - far), 0.1 * 0.9) / n)
    print(f"new people named: {accepted:.2f} (calibrated false-accept rate {far:.2f})")
    assert abs(accepted - far) <= spread
    # a wrong name never carries a score above every known walk's best
    assert all(res["top"][0]["score"] <= 1.0 for res in out["results"])


@pytest.mark.slow
def test_enrolment_makes_a_new_person_identifiable_without_training(demo):
    root, unseen = demo["root"], demo["unseen"]
    gallery, encoder = root / "gallery", demo["run"] / "encoder.npz"
    before = os.path.getmtime(encoder)
    # five of the trained people (walks 1-4) and new person 7 (walks 1-3)
    write_recordings(str(gallery), {p: w for p, w in demo["trained"].items() if p <= 5}, which=[0, 1, 2, 3])
    write_recordings(str(gallery), {7: unseen[7]}, prefix="new", which=[0, 1, 2])
    write_recordings(str(root / "next"), {7: unseen[7]}, prefix="new", which=[3])
    g = str(root / "g.npz")
    proc, out = identify(demo, ["--enrol", "gallery", "--gallery", g, "next"], "enrol.json")
    assert "Gallery of 6 people written" in proc.stdout
    assert out["by"] == "gallery" and out["results"][0]["decision"] == "new7", proc.stdout
    assert os.path.getmtime(encoder) == before                       # no training
    # removed by enrolling again without them: their walk is no longer named new7
    shutil.rmtree(gallery / "new7")
    proc, out = identify(demo, ["--enrol", "gallery", "--gallery", g, "next"], "enrol2.json")
    assert "Gallery of 5 people written" in proc.stdout
    assert all(t["identity"] != "new7" for t in out["results"][0]["top"])


@pytest.mark.slow
def test_the_api_gives_what_the_command_gives(demo, monkeypatch):
    from utils.orchestration.identify import load_identifier
    monkeypatch.chdir(demo["root"])
    walker = load_identifier(str(demo["run"]), by="classifier")
    result = walker.identify_file("known/person3/6.npy", top_k=3)
    _, out = identify(demo, ["--top_k", "3", "known/person3/6.npy"], "api.json")
    cli = out["results"][0]
    assert result.decision == cli["decision"] and result.windows == cli["windows"]
    assert [n for n, _ in result.top] == [t["identity"] for t in cli["top"]]
    np.testing.assert_allclose([s for _, s in result.top], [t["score"] for t in cli["top"]], rtol=1e-5)


@pytest.mark.slow
def test_walks_the_run_was_trained_on_are_refused_unless_allowed_then_marked(demo, tmp_path):
    """A run keeps fingerprints of its training windows; identification and calibration on
    recordings it was trained on (here a training walk of person 3) would flatter it."""
    from utils.orchestration.identify import load_identifier
    root, trained = demo["root"], demo["trained"]
    write_recordings(str(root / "seen"), {3: trained[3]}, which=[0])
    args = ["--model_dir", str(demo["run"]), "seen/person3/1.npy", "known/person3/6.npy"]
    refused = run("identify.py", args, root)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: 1 of 2 recordings to identify have windows this run was trained on "
        "(seen/person3/1.npy: 10 of 10); use walks it was not trained on, or pass "
        "--allow_seen_walks 1 to score them anyway, marked so in the output")
    calibration = (demo["run"] / "identify_calibration.json").read_bytes()
    cal = run("identify.py", ["--model_dir", str(demo["run"]), "--calibrate", "seen"], root)
    assert cal.returncode == 2 and "1 of 1 calibration recordings have windows" in cal.stderr
    assert (demo["run"] / "identify_calibration.json").read_bytes() == calibration
    proc, out = identify(demo, ["--allow_seen_walks", "1"] + args[2:], "seen.json")
    assert [r["seen_windows"] for r in out["results"]] == [10, 0]
    assert "WARNING: 1 of 2 recordings to identify" in proc.stdout
    (line,) = [l for l in proc.stdout.splitlines() if l.startswith("seen/person3/1.npy: ")]
    assert line.endswith("10 windows (10 seen in training: not a clean result)")
    # enrolling walks it was trained on is allowed (a gallery of one's own people), noted
    write_recordings(str(root / "seen_people"), {3: trained[3], 4: trained[4]}, which=[0, 1])
    enrol = run("identify.py", ["--model_dir", str(demo["run"]), "--enrol", "seen_people",
                                "--gallery", str(tmp_path / "gallery.npz")], root)
    assert enrol.returncode == 0, enrol.stderr[-2000:]
    assert "NOTE: 4 of 4 enrolled recordings have windows this run was trained on" in enrol.stdout
    # a run saved before the fingerprints were kept: not checked, and said so
    older = copy_of_run(demo["run"], tmp_path)
    (older / "training_windows.npy").unlink()
    walker = load_identifier(str(older), by="classifier")
    notes = []
    windows = walker.windows(walker.read(str(root / "seen/person3/1.npy")))
    assert walker.seen_in_training([("x.npy", windows)], "recordings to identify",
                                   notes.append) == {}
    assert notes == [f"NOTE: {older} keeps no fingerprints of its training windows (saved by "
                     f"an earlier version): recordings to identify are not checked against them"]


@pytest.mark.slow
def test_watch_identifies_recordings_as_they_arrive_and_a_bad_one_does_not_end_it(demo):
    """identify.py --watch FOLDER: the model loaded once; a recording copied in is
    identified within seconds; a broken file gets its line and the watch goes on; a hidden
    file (a writer's temporary) is left alone; Ctrl-C ends it with exit code 0."""
    import queue
    import signal
    import threading
    import time
    root = demo["root"]
    inbox = root / "inbox"
    inbox.mkdir()
    shutil.copy(root / "known" / "person3" / "6.npy", inbox / "first.npy")   # there at the start
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "identify.py"), "--model_dir",
                             str(demo["run"]), "--watch", str(inbox), "--json", "watch.json"],
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l.rstrip("\n")) for l in proc.stdout],
                     daemon=True).start()

    def next_line(prefix, seconds=300):
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line starting {prefix!r}; stderr: {proc.stderr.read()[-2000:]}")
    try:
        next_line(f"Watching {inbox}")
        assert next_line(str(inbox / "first.npy")).endswith("; 10 windows")   # identified
        (inbox / ".partial.npy").write_bytes(b"half a file")
        (inbox / "broken.npy").write_bytes(b"\x93NUMPY garbage")
        assert "cannot read it" in next_line("error: ")
        shutil.copy(root / "known" / "person5" / "6.npy", inbox / "later.npy")
        start = time.time()
        assert next_line(str(inbox / "later.npy")).endswith("; 10 windows")
        assert time.time() - start < 30          # polled every second, the model loaded once
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr.read()[-2000:]
    assert next_line(f"Stopped watching {inbox}: 2 recording(s) identified, 1 refused")
    saved = json.loads((root / "watch.json").read_text())
    assert [os.path.basename(r["file"]) for r in saved["results"]] == ["first.npy", "later.npy"]


def bad_inputs(root):
    walk = generate_recordings()[1][5]   # a walk the run was not trained on
    folder = root / "bad"
    folder.mkdir(exist_ok=True)
    np.save(folder / "v1_layout.npy", walk[:, :20])                       # 20 joints, run has 25
    np.save(folder / "short.npy", walk[:23])                              # 3 frames after trimming
    glitch = walk.copy()
    glitch[30, 4] = np.nan
    np.save(folder / "glitch.npy", glitch)
    (folder / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    return {"v1_layout.npy": "trained on kinect_v2 skeletons of 25 joints",
            "short.npy": "no window of f=4 frames; record a longer walk",
            "glitch.npy": "frame 30 (row 30), joint 'left shoulder'",
            "broken.npy": "cannot read it"}


@pytest.mark.slow
def test_every_bad_input_gives_its_line_and_writes_nothing(demo, capsys, monkeypatch):
    import identify as script
    root = demo["root"]
    monkeypatch.chdir(root)
    expected = bad_inputs(root)
    out = root / "never.json"
    for name, message in expected.items():
        code = script.main(["--model_dir", str(demo["run"]), "--json", str(out),
                            "known", str(root / "bad" / name)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and err and "Traceback" not in "\n".join(err)
        assert name in err[-1] and message in err[-1], err[-1]
        assert not out.exists()
    # a video without the video environment, and with it but for a run in another layout
    (root / "bad" / "walk.mp4").write_bytes(b"not read")
    for python, message in ((str(root / "no-such-python"), "a video needs the video environment"),
                            (sys.executable, "this run takes the kinect_v2 layout")):
        monkeypatch.setenv("SMSGE_VIDEO_PYTHON", python)
        code = script.main(["--model_dir", str(demo["run"]), str(root / "bad" / "walk.mp4")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and "walk.mp4" in err[-1] and message in err[-1], err[-1]
    # --bad_frames drop, as the preparation tool: the glitch frame is dropped, the walk is used
    assert script.main(["--model_dir", str(demo["run"]), "--bad_frames", "drop",
                        str(root / "bad" / "glitch.npy")]) == 0
    assert "windows" in capsys.readouterr().out
    # a run folder without a classifier or gallery, and one not calibrated
    bare = root / "bare"
    shutil.copytree(demo["run"], bare, ignore=shutil.ignore_patterns("classifier.npz", "identify_*", "gallery.npz"))
    code = script.main(["--model_dir", str(bare), "known"])
    assert code == 2 and "holds no classifier (a retrieval run) and no gallery" in capsys.readouterr().err
    shutil.copy(demo["run"] / "classifier.npz", bare)
    code = script.main(["--model_dir", str(bare), "known"])
    assert code == 2 and "--calibrate HELDOUT_DIR" in capsys.readouterr().err


def test_the_default_operating_point_is_an_fpir_target_where_strangers_were_scored():
    known, correct = np.linspace(0.5, 1.0, 40), [True] * 40
    strangers = np.linspace(0.0, 0.9, 40)
    cal = calibrate(known, correct, strangers, "walks")
    assert (cal.operating_point, cal.rate, cal.note) == ("max_false_accept", 0.05, "")
    assert cal.false_accept <= 0.05 and cal.false_accept > 0.02
    assert "FPIR target 5%" in cal.describe()
    alone = calibrate(known, correct, [], "walks")        # no strangers: FNIR side instead
    assert (alone.operating_point, alone.rate) == ("max_reject", 0.05)
    assert alone.false_reject <= 0.05 and alone.false_accept is None
    assert ("at most 5% of known people's held-out recordings rejected, the default FPIR "
            "target needs walks of people the run does not know") in alone.describe()


@pytest.mark.parametrize("args,message", [
    (["--dataset", "CASIA_B", "--length", "20", "--view", "3"],
     "no saved classification model for CASIA_B-view3 f=20 under RN/CASIA_B-view3/20"),
    (["--dataset", "CASIA_B", "--length", "20", "--probe_type", "cl.nm"],
     "no saved classification model for CASIA_B_match-cl.nm f=20"),
    (["--dataset", "CASIA_B", "--length", "20", "--view", "13"], "unknown CASIA-B view 13"),
    (["--view", "3"], "--view applies to CASIA_B only, not to demo; drop it"),
])
def test_best_run_of_a_casia_b_variant_is_looked_up_by_its_view(tmp_path, monkeypatch, capsys,
                                                                 args, message):
    import identify as script
    monkeypatch.chdir(tmp_path)
    assert script.main(args + ["--model_dir", "best", "walk.npy"]) == 2
    assert message in capsys.readouterr().err


def test_recordings_of_any_length_are_encoded_in_a_few_batch_sizes():
    """The last batch is padded to a power of two (a compiled encoder traces once per batch
    size); the padding's encodings never reach the result."""
    from types import SimpleNamespace
    from utils.orchestration.identify import Identifier

    class Encoder:
        sizes = []

        def encode_all(self, x, batch_size):
            self.sizes += [len(x[s:s + batch_size]) for s in range(0, len(x), batch_size)]
            return x[:, :2, 0, :] * 2.0          # any per-window function
    encoder = Encoder()
    walker = Identifier("run", SimpleNamespace(batch_size=256), None, encoder, "digest")
    rng = np.random.default_rng(0)
    for count in (87, 93, 120, 45, 3, 256, 300):
        windows = rng.normal(size=(count, 6, 20, 3)).astype(np.float32)
        np.testing.assert_array_equal(walker.encode(windows), windows[:, :2, 0, :] * 2.0)
    assert encoder.sizes == [128, 128, 128, 64, 16, 256, 256, 64]


def test_threshold_operating_points():
    known, unknown = np.linspace(0.5, 1.0, 100), np.linspace(0.0, 0.6, 50)
    t = choose_threshold(known, unknown, max_reject=0.05)
    assert np.mean(known < t) <= 0.05 and np.mean(known < t) > 0.03
    t = choose_threshold(known, unknown, max_reject=None, max_false_accept=0.1)
    assert np.mean(unknown >= t) <= 0.1 and np.mean(unknown >= t) > 0.07
    cal = calibrate(known, [True] * 100, unknown, "x", max_reject=0.05)
    assert cal.false_reject <= 0.05 and 0 < cal.false_accept < 0.5
    result = decide(np.array([0.2, 0.7, 0.1]), ["a", "b", "c"], 0.8, 2, "w.npy", 10, "classifier")
    assert result.decision == "unknown" and [n for n, _ in result.top] == ["b", "a"]
    assert "unknown (best b 0.700 < threshold 0.800)" in result.line()


def test_leave_one_out_never_matches_a_recording_with_itself():
    rng = np.random.default_rng(0)
    centres = unit(rng.normal(size=(3, 8)))
    vectors = {n: [unit(c + 0.1 * rng.normal(size=8)) for _ in range(3)]
               for n, c in zip("abc", centres)}
    known, correct, unknown = gallery_leave_one_out(vectors)
    assert len(known) == 9 and all(correct) and len(unknown) == 9
    assert max(unknown) < min(known)
    solo = {"a": vectors["a"][:1], "b": vectors["b"]}      # one recording: unknown side only
    known, _, unknown = gallery_leave_one_out(solo)
    assert len(known) == 3 and len(unknown) == 4


@pytest.mark.skipif(not os.path.isfile(CLIP), reason=f"the shared test clip {CLIP} is absent")
@pytest.mark.skipif(not os.path.isfile(VIDEO_PYTHON),
                    reason=f"no video environment at {VIDEO_PYTHON}: python3 -m venv .venv-video "
                           f"&& .venv-video/bin/pip install -r requirements-video.txt")
@pytest.mark.slow
def test_a_video_of_an_enrolled_walker_gives_their_name(tmp_path):
    """The video route end to end: a Kinect v1 (demo20) encoder, a gallery holding five demo
    people and the clip's walker (their walk converted by the same tool, in three parts),
    then identify.py on the video itself."""
    proc = run("SM-SGE.py", TINY_RUN + ["--dataset", "demo20", "--protocol", "retrieval"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run_dir,) = (tmp_path / "RN" / "demo20" / "4").iterdir()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", GLOG_minloglevel="3")
    conv = subprocess.run([VIDEO_PYTHON, os.path.join(ROOT, "tools", "video_to_skeleton.py"), CLIP,
                           "--out", str(tmp_path / "v"), "--person", "walker", "--layout",
                           "kinect_v1", "--no_progress"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert conv.returncode == 0, conv.stderr[-2000:]
    walk = np.load(tmp_path / "v" / "walker" / "walk_side.npy")
    gallery = tmp_path / "gallery"
    write_recordings(str(gallery), {p: w for p, w in generate_recordings().items() if p <= 5},
                     name="demo20", which=[0, 1, 2])
    (gallery / "walker").mkdir()
    third = len(walk) // 3
    for k in range(3):
        np.save(gallery / "walker" / f"{k}.npy", walk[k * third:(k + 1) * third + 10])
    proc = run("identify.py", ["--model_dir", str(run_dir), "--enrol", "gallery", CLIP], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (line,) = [l for l in proc.stdout.splitlines() if l.startswith(CLIP + ":")]
    assert line.split(": ")[1].startswith("walker;"), line


@pytest.mark.slow
def test_enrolment_is_one_writer_cleans_up_and_a_damaged_calibration_blocks_only_its_route(
        tmp_path, tiny_demo_run):
    from utils.foundation.lock import FolderLock
    run_dir = copy_of_run(tiny_demo_run, tmp_path)
    write_recordings(str(tmp_path / "people"), generate_recordings(), which=[0, 1, 2, 3])
    write_recordings(str(tmp_path / "walks"), generate_recordings(), which=[5])
    base = ["--model_dir", str(run_dir)]
    with FolderLock(str(run_dir), "another enrolment"):             # one writer at a time
        busy = run("identify.py", base + ["--enrol", "people"], tmp_path)
    assert busy.returncode == 4 and "Traceback" not in busy.stderr
    assert "is in use by process" in busy.stderr and "another enrolment" in busy.stderr
    (run_dir / ".tmp-killed.npz").write_bytes(b"x" * 100)          # an enrolment killed mid-write
    (run_dir / "identify_calibration.json").write_bytes(b"\xff\xfe{ not json")
    enrol = run("identify.py", base + ["--enrol", "people"], tmp_path)
    assert enrol.returncode == 0, enrol.stderr[-2000:]
    assert not list(run_dir.glob(".tmp-*")) and (run_dir / "gallery.npz").exists()
    by_gallery = run("identify.py", base + ["walks/person3"], tmp_path)
    assert by_gallery.returncode == 0, by_gallery.stderr[-2000:]  # the damaged file is the classifier's
    by_classifier = run("identify.py", base + ["--by", "classifier", "walks/person3"], tmp_path)
    assert by_classifier.returncode == 2 and "Traceback" not in by_classifier.stderr
    assert "identify_calibration.json: not UTF-8 text" in by_classifier.stderr
    (tmp_path / "afile").write_text("x")
    late = run("identify.py", base + ["walks/person3", "--json", "afile/out.json"], tmp_path)
    assert late.returncode == 2 and "recording(s)" not in late.stdout   # refused before scoring
    assert late.stderr.strip().splitlines()[-1] == (
        f"error: cannot write afile/out.json: the file {tmp_path / 'afile'} is in the way; "
        f"choose another folder")
