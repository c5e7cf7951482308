"""Write docs/flags.md, the reference of every command-line flag, from the parsers themselves.

    python tools/flags_reference.py            # (re)write docs/flags.md
    python tools/flags_reference.py --check    # exit 1 if docs/flags.md is not what the code says

The page is generated so that it cannot drift from the code: SM-SGE.py's and evaluate.py's
flags come from the declared configuration (utils/orchestration/config.py), with what each
setting affects; identify.py's and tools/prepare_kgbd.py's from their parsers; the
per-dataset defaults from the dataset registry (utils/data/datasets.py).
"""
import argparse
import dataclasses
import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from utils.data.datasets import REGISTRY  # noqa: E402
from utils.foundation.errors import guarded  # noqa: E402
from utils.foundation.io import atomic_path  # noqa: E402
from utils.orchestration.cli import evaluation_parser, training_parser  # noqa: E402
from utils.orchestration.config import AFFECTS, RunConfig, field_of_flag  # noqa: E402

PAGE = os.path.join(ROOT, "docs", "flags.md")


def _script_parser(relative_path: str) -> argparse.ArgumentParser:
    """parser() of an entry script that is not importable as a module (identify.py)."""
    spec = importlib.util.spec_from_file_location("_flags_" + os.path.basename(relative_path)[:-3],
                                                  os.path.join(ROOT, relative_path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.parser()


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _default(action: argparse.Action) -> str:
    if isinstance(action, argparse._StoreTrueAction):
        return "off"
    if action.default in (None, "", argparse.SUPPRESS):
        return ""
    return f"`{action.default}`"


def _actions(parser: argparse.ArgumentParser):
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


def _name(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.dest}` (positional)"
    value = "" if action.nargs == 0 else (" [VALUE]" if action.nargs == "?" else "")
    return ", ".join(f"`{o}{value}`" for o in action.option_strings)


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if action.choices and "one of" not in text:
        text += ("; " if text else "") + "one of " + ", ".join(map(str, action.choices))
    return _cell(text)


def config_table(parser: argparse.ArgumentParser) -> list:
    """Rows for a parser built from RunConfig: flag, default, what it affects, meaning."""
    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    rows = ["| flag | default | affects | meaning |", "|---|---|---|---|"]
    for action in _actions(parser):
        field = fields[field_of_flag(action.option_strings[0][2:])]
        rows.append(f"| {_name(action)} | {_default(action)} | {field.metadata['affects']} | "
                    f"{_help(action)} |")
    return rows


def plain_table(parser: argparse.ArgumentParser) -> list:
    rows = ["| flag | default | meaning |", "|---|---|---|"]
    rows += [f"| {_name(a)} | {_default(a)} | {_help(a)} |" for a in _actions(parser)]
    return rows


def dataset_table() -> list:
    rows = ["| dataset | layout | batch | LSTM | pre-training lr | pre-training epochs | Re-ID lr |",
            "|---|---|---|---|---|---|---|"]
    for d in REGISTRY.values():
        epochs = str(d.pretrain_epochs)
        if getattr(d, "pretrain_epochs_probe", None):
            epochs += f" ({d.pretrain_epochs_probe} with `--probe_type`)"
        rows.append(f"| {d.name} | {d.layout} | {d.batch_size} | {d.lstm_size} | {d.pretrain_lr:g} "
                    f"| {epochs} | {d.reid_lr:g} |")
    return rows


def page() -> str:
    """The whole of docs/flags.md."""
    lines = [
        "# Command-line flags",
        "",
        "Which flags do the scripts take, what are their defaults, and what does each change?",
        "",
        "Generated from the code by `python3 tools/flags_reference.py` (a test fails when this "
        "page is stale); do not edit it by hand. Every script also prints its flags with `--help`.",
        "",
        "## SM-SGE.py",
        "",
        "Training: pre-training, then the Re-ID stage (or retrieval). Values are checked when the "
        "run starts; a bad one ends in one line naming the flag. *affects* says what a setting "
        "changes, and so what a resumed run, a reloaded encoder and `evaluate.py` check:",
        "",
    ]
    lines += [f"- **{tag}**: {text}" for tag, text in AFFECTS.items()]
    lines += [""] + config_table(training_parser())
    lines += [
        "",
        "## evaluate.py",
        "",
        "Scores a saved run (`--model_dir best`, a run folder, an unfinished run's kept "
        "classifier) or an authors' checkpoint. A run folder carries its settings in "
        "`config.json`; the model flags below serve the authors' checkpoints, which carry none.",
        "",
    ] + config_table(evaluation_parser())
    lines += ["", "## identify.py", "", "Who is this walker? See [identify.md](identify.md).", ""]
    lines += plain_table(_script_parser("identify.py"))
    lines += ["", "## tools/prepare_kgbd.py", "",
              "KGBD or your own recordings, from raw files to the released format. See "
              "[datasets.md](datasets.md).", ""]
    from tools.prepare_kgbd import parser as prepare_parser
    lines += plain_table(prepare_parser())
    lines += ["", "## Per-dataset defaults", "",
              "What `(default: per dataset)` resolves to (the reference's settings; `demo` and "
              "`demo20` are ours). A dataset prepared under a name of its own runs with the IAS "
              "row and the layout its manifest records.", ""]
    lines += dataset_table()
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="flags_reference.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true",
                   help="do not write; exit 1 if docs/flags.md differs from the code")
    args = p.parse_args(argv)

    def work():
        text = page()
        if args.check:
            try:
                with open(PAGE, encoding="utf-8") as fh:
                    current = fh.read()
            except FileNotFoundError:
                current = None
            if current != text:
                print("docs/flags.md is stale: run python3 tools/flags_reference.py", file=sys.stderr)
                return 1
            print("docs/flags.md is up to date")
            return 0
        with atomic_path(PAGE) as tmp, open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(f"wrote {os.path.relpath(PAGE, ROOT)}")
        return 0
    return guarded(work)


if __name__ == "__main__":
    sys.exit(main())
