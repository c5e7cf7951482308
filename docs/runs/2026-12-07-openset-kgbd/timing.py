"""Time identify.py: one recording per call, 50 recordings in one call, and --watch (time
from a recording's arrival to its line), on the held-out-people KGBD run."""
import glob, os, shutil, signal, subprocess, sys, time
P = "/work/main"
RUN = sorted(glob.glob("RN/KGBD/6/*classification_sel-val_seed0"))[-1]
walks = sorted(glob.glob("Datasets/KGBD/6/known/test/*/*.npy"))
env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
base = [sys.executable, f"{P}/identify.py", "--model_dir", RUN, "--gallery", "timing_gallery.npz"]
def timed(args):
    t0 = time.perf_counter()
    p = subprocess.run(base + args, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr[-1500:]
    return time.perf_counter() - t0, p.stdout
if not os.path.exists("timing_gallery.npz"):
    s, out = timed(["--enrol", "Datasets/KGBD/6/known/train"])
    print(f"enrolment of known/train: {s:.1f} s; " + [l for l in out.splitlines() if "Gallery of" in l][0][:160])
s1, _ = timed([walks[0]])
print(f"one recording, one call: {s1:.1f} s")
s50, out = timed(walks[:50])
print(f"50 recordings, one call: {s50:.1f} s ({s50 / 50:.2f} s each); " + out.strip().splitlines()[-1])
os.makedirs("inbox", exist_ok=True)
for f in glob.glob("inbox/*"):
    os.remove(f)
w = subprocess.Popen(base + ["--watch", "inbox"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
t0 = time.perf_counter()
for line in w.stdout:
    if line.startswith("Watching"):
        break
print(f"--watch ready after {time.perf_counter() - t0:.1f} s")
lat = []
for k, walk in enumerate(walks[50:60]):
    target = f"inbox/{k}.npy"
    shutil.copy(walk, f"inbox/.{k}.npy")
    t0 = time.perf_counter()
    os.rename(f"inbox/.{k}.npy", target)
    for line in w.stdout:
        if line.startswith(target) or line.startswith("error"):
            break
    lat.append(time.perf_counter() - t0)
w.send_signal(signal.SIGINT)
w.wait(timeout=60)
print(f"--watch: a recording's line {min(lat):.2f}-{max(lat):.2f} s after it arrived (median {sorted(lat)[len(lat)//2]:.2f} s, 10 recordings; polled every second); exit {w.returncode}")
