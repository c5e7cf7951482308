"""Run an entry script with TensorFlow made unimportable, as on a machine without it:

    python tests/without_tensorflow.py REPO_ROOT SCRIPT [ARGS ...]

Prints NO_TENSORFLOW (or TENSORFLOW_LOADED) and the script's exit code on the last line.
"""
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow.") or name.startswith("tf_keras"):
            raise ImportError(f"blocked: {name}")
sys.meta_path.insert(0, Block())
sys.path.insert(0, sys.argv[1])
import runpy
script, args = sys.argv[2], sys.argv[3:]
sys.argv = [script] + args
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as e:
    code = e.code
else:
    code = 0
print("TENSORFLOW_LOADED" if any(m == "tensorflow" or m.startswith("tensorflow.") for m in sys.modules) else "NO_TENSORFLOW", "exit", code)
sys.exit(code)
