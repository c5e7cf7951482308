"""The two engines: choosing one, running without TensorFlow on JAX, a run continued on the
other engine, and the same numbers from both for the same weights and inputs."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from models.engine import ENGINES, name
from tests.helpers import ROOT, small_demo



def _jax_installed() -> bool:
    try:
        import jax  # noqa: F401
        return True
    except ImportError:
        return False


needs_jax = pytest.mark.skipif(not _jax_installed(), reason="JAX is not installed")


def run_script(args, cwd, env_extra=None, blocker=False):
    env = dict(os.environ, **(env_extra or {}))
    env.pop("KERAS_BACKEND", None) if not env_extra or "KERAS_BACKEND" not in env_extra else None
    cmd = [sys.executable] + ([os.path.join(ROOT, "tests", "without_tensorflow.py"), ROOT]
                              if blocker else []) + args
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
@needs_jax
def test_jax_engine_runs_the_pipeline_and_evaluation_without_tensorflow(tmp_path):
    """The demo pipeline and evaluate.py on JAX in a process where importing TensorFlow
    fails, as on the GPU machines (pre-training two steps per compiled call, a lax.fori_loop);
    the authors' checkpoints then need TensorFlow: one line."""
    small_demo(tmp_path)
    train = run_script([os.path.join(ROOT, "SM-SGE.py"), "--backend", "jax", "--length", "4",
                        "--pre_epochs", "1", "--max_reid_epochs", "1", "--no_progress",
                        "--gpu", "-1", "--steps_per_call", "2"], tmp_path, blocker=True)
    assert train.returncode == 0, train.stderr[-2000:]
    assert train.stdout.strip().splitlines()[-1] == "NO_TENSORFLOW exit 0"
    assert "Engine: JAX" in train.stdout
    (metrics,) = tmp_path.glob("RN/demo/4/*/metrics.json")
    assert json.loads(metrics.read_text())["backend"].startswith("JAX")
    saved = json.loads((metrics.parent / "config.json").read_text())
    assert saved["backend"] == "jax" and saved["steps_per_call"] == 2
    score = run_script([os.path.join(ROOT, "evaluate.py"), "--backend", "jax", "--length", "4",
                        "--no_progress", "--gpu", "-1"], tmp_path, blocker=True)
    assert score.returncode == 0, score.stderr[-2000:]
    assert score.stdout.strip().splitlines()[-1] == "NO_TENSORFLOW exit 0"
    import shutil   # a copy without an export beside it (benchmarks/gpu_prepare.sh adds one)
    shutil.copytree(os.path.join(ROOT, "tests", "fixtures", "parity", "ks20", "rn"),
                    tmp_path / "authors", ignore=shutil.ignore_patterns("*.npz"))
    authors = run_script([os.path.join(ROOT, "evaluate.py"), "--backend", "jax", "--dataset",
                          "KS20", "--model_dir", str(tmp_path / "authors" / "model.ckpt"),
                          "--gpu", "-1"], tmp_path, blocker=True)
    assert authors.returncode == 2
    (line,) = [l for l in authors.stderr.splitlines() if l.startswith("error:")]
    assert "needs TensorFlow installed" in line and "export_checkpoint.py" in line


@pytest.mark.slow
@needs_jax
def test_an_exported_authors_checkpoint_scores_the_same_without_tensorflow(tmp_path):
    """tools/export_checkpoint.py (with TensorFlow) writes <prefix>.npz; evaluate.py on JAX
    with TensorFlow unimportable then prints the reference's Rank-1, as tests/test_parity.py
    does with TensorFlow."""
    import shutil
    from tests.helpers import CASES
    fixtures = os.path.join(ROOT, "tests", "fixtures", "parity", "ks20")
    shutil.copytree(os.path.join(fixtures, "rn"), tmp_path / "rn",
                    ignore=shutil.ignore_patterns("*.ckpt.npz"))
    export = run_script([os.path.join(ROOT, "tools", "export_checkpoint.py"),
                         str(tmp_path / "rn" / "model.ckpt")], tmp_path)
    assert export.returncode == 0, export.stderr[-2000:]
    assert (tmp_path / "rn" / "model.ckpt.npz").is_file()
    batch = np.load(os.path.join(fixtures, "rn", "reference_outputs.npz"))["labels"].shape[0]
    score = run_script([os.path.join(ROOT, "evaluate.py"), "--backend", "jax", "--dataset", "KS20",
                        "--model_dir", str(tmp_path / "rn"), "--data_dir",
                        os.path.join(fixtures, "Datasets"), "--batch_size", str(batch),
                        "--no_progress", "--gpu", "-1"], tmp_path, blocker=True)
    assert score.returncode == 0, score.stderr[-2000:]
    assert score.stdout.strip().splitlines()[-1] == "NO_TENSORFLOW exit 0"
    rank1 = float(re.search(r"Rank-1 ([0-9.]+) ", score.stdout).group(1))
    assert rank1 == pytest.approx(CASES["ks20"]["rank1"], abs=1e-6)


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_module_provides_the_engine_contract(engine):
    """models/engine.py's Engine: every member, with the same parameters, in each engine
    module (models/engine_<name>.py); a third engine is checked the same way."""
    import importlib
    import inspect
    from models.engine import Engine
    pytest.importorskip(engine)
    module = importlib.import_module(f"models.engine_{engine}")
    wanted = [n for n, member in vars(Engine).items()
              if callable(member) and not n.startswith("_")]
    assert set(wanted) == {"function", "train_step", "default_steps_per_call", "resident",
                           "gradients", "to_numpy", "seed", "device_description", "version"}
    for member in wanted:
        assert callable(getattr(module, member, None)), f"{engine}: no {member}"
        expected = list(inspect.signature(getattr(Engine, member)).parameters)[1:]   # no self
        assert list(inspect.signature(getattr(module, member)).parameters) == expected, member
    for member in ("steps", "sync"):
        assert callable(getattr(getattr(module, "Step", None), member, None)), \
            f"{engine}: no Step.{member}"


JAX_OPTIONS_CHECK = r"""
import jax, jax.numpy as jnp, numpy as np
from models import engine_jax
f = lambda x: jnp.sum(jnp.tanh(x * 2.0 + 1.0), axis=2)   # element-wise and a reduction
x = jnp.ones((48, 39, 5, 8), jnp.float32)
def ynn(compiled):
    return compiled.lower(x).compile().as_text().count('"kind":"__ynn_fusion"')
print(jax.default_backend(), jax.__version__, engine_jax.compiler_options() ==
      engine_jax.CPU_COMPILER_OPTIONS, ynn(jax.jit(f)), ynn(engine_jax._jit(f)))
import re
from benchmarks.benchmark import make_model
from models.training import Pretrainer
trainer = Pretrainer(make_model(20, 16), 0.0005, 4, jit=True, rng=np.random.default_rng(0))
step, batch = trainer._step, np.zeros((2, 4, 20, 3), np.float32)
text = step.compiled.lower(*step.state(), batch, *trainer._frame_indices).compile().as_text()
calls = re.findall(r'calls=(%[\w.\-]+).*"kind":"__ynn_fusion"', text)
bodies = dict(re.findall(r"\n(%[\w.\-]+) [^\n]*\{\n(.*?)\n\}", text, re.S))
print(len(calls), sum(" dot(" not in bodies[c] for c in calls))   # YNNPACK's; without a product
engine_jax.CPU_COMPILER_OPTIONS, engine_jax._accepted_options = {"xla_cpu_no_such_option": "1"}, None
print(engine_jax.compiler_options(), float(engine_jax._jit(f)(x)[0, 0, 0]))
"""


@needs_jax
def test_the_jax_engine_compiles_with_its_cpu_option_and_without_one_it_rejects(tmp_path):
    """On a CPU every jit of the JAX engine gets CPU_COMPILER_OPTIONS (YNNPACK runs products
    only: an element-wise function XLA's defaults give to YNNPACK stays XLA's own, and
    every YNNPACK fusion of the pre-training step holds a product); an option the
    installed jaxlib rejects is dropped, and compiling still works."""
    out = run_script(["-c", JAX_OPTIONS_CHECK], cwd=ROOT, env_extra={"KERAS_BACKEND": "jax"})
    assert out.returncode == 0, out.stderr[-2000:]
    first, step, second = out.stdout.strip().splitlines()[-3:]
    backend, version, accepted, ynn_defaults, ynn_engine = first.split()
    step_fusions, without_product = (int(n) for n in step.split())
    assert second.startswith("{} ")   # the rejected option dropped, and the function ran:
    assert float(second.split()[1]) == pytest.approx(np.tanh(3.0) * 5, rel=1e-6)
    if backend != "cpu" or not version.startswith("0.10."):
        pytest.skip(f"measured with jaxlib 0.10 on a CPU; here {backend}, JAX {version}")
    assert accepted == "True"          # this jaxlib takes the option: it is in force
    if int(ynn_defaults) == 0:
        pytest.skip("this jaxlib's defaults give the element-wise function to XLA already")
    assert int(ynn_engine) == 0
    assert step_fusions > 0 and without_product == 0


JAX_LOOP_BODY_CHECK = r"""
import re, numpy as np, jax.numpy as jnp
from benchmarks.benchmark import make_model
from models.training import Pretrainer
rng = np.random.default_rng(0)
data = rng.normal(0, 0.3, size=(16, 4, 20, 3)).astype(np.float32)
order = [rng.choice(16, 2, replace=False) for _ in range(3)]
products = []
for k in (1, 3):
    trainer = Pretrainer(make_model(20, 16), 0.0005, 4, jit=True, steps_per_call=k,
                         rng=np.random.default_rng(0))
    trainer.epoch(data, order)
    step = trainer._step
    if k == 1:
        lowered = step.compiled.lower(*step.state(), data[order[0]], *trainer._frame_indices)
    else:
        lowered = step.compiled_block.lower(
            *step.state(), trainer._resident[1], jnp.asarray(np.stack(order), jnp.int32),
            jnp.int32(k), *[np.stack([f] * k) for f in trainer._frame_indices])
    products.append(len(re.findall(r" dot\(", lowered.compile().as_text())))
print(*products)
"""


@pytest.mark.slow
@needs_jax
def test_the_jax_loop_of_steps_runs_no_more_products_than_one_step(tmp_path):
    """The body of the JAX loop of steps is the step: no more products (dot instructions in
    the optimised HLO) than the step compiled alone. The losses once came from a forward
    pass of their own, which XLA merged with the gradients' in a single step but not in
    the loop, so every LSTM ran forward twice there."""
    out = run_script(["-c", JAX_LOOP_BODY_CHECK], cwd=ROOT, env_extra={"KERAS_BACKEND": "jax"})
    assert out.returncode == 0, out.stderr[-2000:]
    single, loop = (int(n) for n in out.stdout.split()[-2:])
    assert single > 0 and loop <= single


def test_a_bad_backend_flag_is_refused_in_one_line(tmp_path):
    out = run_script([os.path.join(ROOT, "SM-SGE.py"), "--backend", "torch"], tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    (line,) = [l for l in out.stderr.splitlines() if l.startswith("error:")]
    assert "--backend" in line and "tensorflow" in line and "jax" in line


def test_a_bad_keras_backend_variable_is_refused_in_one_line(tmp_path):
    out = run_script([os.path.join(ROOT, "SM-SGE.py"), "--pre_epochs", "1"], tmp_path,
                     env_extra={"KERAS_BACKEND": "torch"})
    assert out.returncode == 2 and "Traceback" not in out.stderr
    (line,) = [l for l in out.stderr.splitlines() if l.startswith("error:")]
    assert "KERAS_BACKEND='torch'" in line


def test_the_engine_cannot_change_once_keras_is_loaded():
    from models.engine import select
    from utils.foundation.errors import UserError
    other = [e for e in ENGINES if e != name()][0]
    assert select(None if os.environ.get("KERAS_BACKEND") else name()) == name()
    with pytest.raises(UserError, match="needs a new process"):
        select(other)


@pytest.mark.slow
@needs_jax
def test_a_run_stopped_on_one_engine_finishes_on_the_other(tmp_path):
    """The resume checkpoint is arrays: a run started on TensorFlow continues on JAX (and
    the other way round), and metrics.json records the engine of every part."""
    first = name()
    other = [e for e in ENGINES if e != first][0]
    common = [os.path.join(ROOT, "SM-SGE.py"), "--length", "4", "--pre_epochs", "2",
              "--max_reid_epochs", "2", "--no_progress", "--gpu", "-1", "--xla", "0"]
    small_demo(tmp_path)
    stop = run_script(common + ["--backend", first, "--time_budget", "0"], tmp_path)
    assert stop.returncode == 3, stop.stderr[-2000:]
    go = run_script(common + ["--backend", other, "--resume"], tmp_path)
    assert go.returncode == 0, go.stderr[-2000:]
    (metrics,) = tmp_path.glob("RN/demo/4/*/metrics.json")
    m = json.loads(metrics.read_text())
    # every part: the engine's name, version and device (the first part included)
    assert [p["backend"].split()[0].lower() for p in m["parts"]] == [first, other]
    assert all(" on " in p["backend"] for p in m["parts"])
    assert [(p["stage"], p["epochs_done"]) for p in m["parts"]] == [("pretrain", 0), ("pretrain", 1)]
    assert m["resumed"] == m["parts"][1:]
    assert len(m["pretext_history"]) == 2 and m["rank1"] > 0


@pytest.mark.slow
@needs_jax
def test_both_engines_give_the_same_losses_gradients_and_encodings(tmp_path):
    """One small model's weights and a batch, in a TensorFlow process and a JAX process:
    the same pretext losses, gradients and prefix encodings up to float32 rounding (both
    are the same maths; tests/test_parity.py bounds each against the authors' code)."""
    script = os.path.join(tmp_path, "probe.py")
    with open(script, "w") as fh:
        fh.write(PROBE)
    outs = {}
    for engine in ENGINES:
        out = run_script([script, ROOT, str(tmp_path / f"{engine}.npz")], tmp_path,
                         env_extra={"KERAS_BACKEND": engine})
        assert out.returncode == 0, out.stderr[-2000:]
        outs[engine] = np.load(tmp_path / f"{engine}.npz")
    tf_out, jax_out = outs["tensorflow"], outs["jax"]
    assert sorted(tf_out.files) == sorted(jax_out.files)
    for key in tf_out.files:
        a, b = tf_out[key], jax_out[key]
        # float32 rounding of sums of a few hundred terms of size ~1, relative to the
        # tensor's largest magnitude: 1e-4 is 800 eps (a wrong formula moves them by >1e-2)
        scale = max(float(np.abs(a).max()), 1e-6)
        assert float(np.abs(a - b).max()) / scale < 1e-4, key


PROBE = '''
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from models.draws import ragged_draws, reid_prefixes, sample_draws
from models.engine import active_engine
from models.sm_sge import SMSGE
from models.training import Encoder
from utils.foundation.graphs import build_graph
from utils.foundation.skeleton import KINECT_V1
model = SMSGE(build_graph(KINECT_V1), lstm_size=16, heads=2, seed=3)
rng = np.random.default_rng(0)
x = rng.normal(0, 0.3, size=(4, 5, 20, 3)).astype(np.float32)
x = x - x[..., :1, :]
draws = sample_draws(5, 1, np.random.default_rng(1))
packed = ragged_draws([len(d) for d in draws])
frame_indices = packed.frame_indices(draws)
variables = model.trainable_variables
losses, grads = active_engine().gradients(lambda x: model.pretext_losses(x, frame_indices, packed), variables, x)
out = {f"loss_{k}": v for k, v in losses.items()}
for k, gs in grads.items():
    for i, g in enumerate(gs):
        out[f"grad_{k}_{i}"] = np.zeros(tuple(variables[i].shape)) if g is None else g
out["encodings"] = np.asarray(Encoder(model, reid_prefixes(5))(x))
np.savez(sys.argv[2], **out)
'''
