import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# On the JAX engine, tests build the same small models many times, in this process and in
# the scripts they start: a compilation cache shared by all of them (inherited through the
# environment) compiles each distinct function once. A cache hit runs the same executable,
# so results are unchanged.
if os.environ.get("KERAS_BACKEND") == "jax" and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    import tempfile
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="smsge-jax-cache-")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")



import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_demo_run(tmp_path_factory):
    """One tiny classification run of the demo (tests.helpers.TINY_RUN: f = 4, one
    pre-training epoch, validation-selected), trained once per test process and shared by
    the identification tests; each copies it (tests.helpers.copy_of_run) before writing."""
    from tests.helpers import TINY_RUN, run
    root = tmp_path_factory.mktemp("tiny-run")
    proc = run("SM-SGE.py", TINY_RUN, root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run_dir,) = (root / "RN" / "demo" / "4").iterdir()
    return run_dir


def pytest_collection_modifyitems(config, items):
    """The slow tests first (stable: in file order among themselves). With pytest-xdist the
    suite ends when its last test does; started early, the long end-to-end tests run beside
    the short ones instead of after them."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("slow") else 1)
