"""The declared run configuration: flags, validation, config.json and the pre-trained
folder name all derive from RunConfig's fields."""
import dataclasses

import pytest

from utils.data.datasets import REGISTRY, DataLocation, Variant
from utils.foundation.errors import UserError
from utils.orchestration.cli import (EVALUATION_GROUPS, TRAINING_GROUPS, evaluation_options,
                                     evaluation_parser, training_options, training_parser)
from utils.orchestration.config import ResolvedConfig, RunConfig, fields_affecting
from utils.orchestration.run import resolve


def resolved(opts):
    """The resolved configuration of a run (its data not generated)."""
    return resolve(opts, build=False).cfg
from utils.orchestration.storage import NAMED_IN_PATH, PRETRAIN_KEYS, pretrained_dir

FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}


def flag_of(name):
    return FIELDS[name].metadata["flag"] or name


def test_every_setting_is_a_flag_of_the_scripts_that_use_it():
    training = {a.dest for a in training_parser()._actions}
    evaluation = {a.dest for a in evaluation_parser()._actions}
    for name, f in FIELDS.items():
        group = f.metadata["group"]
        assert (flag_of(name) in training) == (group in TRAINING_GROUPS), name
        assert (flag_of(name) in evaluation) == (group in EVALUATION_GROUPS), name


def test_flags_left_out_give_the_declared_defaults():
    assert training_options(training_parser().parse_args([])) == RunConfig()
    assert evaluation_options(evaluation_parser().parse_args([])) == RunConfig()


def test_flags_are_parsed_and_checked():
    cfg = training_options(training_parser().parse_args(
        ["--P", "4", "--csi", "0", "--scales", "hyper,joint", "--pre_lr", "0.01", "--no_progress",
         "--resume", "--time_budget", "9.5"]))
    assert (cfg.P, cfg.cross_scale, cfg.scales, cfg.pre_lr) == (4, False, ["joint", "hyper"], 0.01)
    assert (cfg.progress, cfg.resume, cfg.time_budget) == (False, "latest", 9.5)
    for args, message in ((["--P", "x"], "--P must be an integer, got 'x'"),
                          (["--selection", "train"], "--selection must be test or val, got 'train'"),
                          (["--time_budget", "-1"], "--time_budget must be at least 0.0"),
                          (["--pred_margin", "2", "--length", "4"], "leaves no draw")):
        with pytest.raises(UserError, match=message):
            training_options(training_parser().parse_args(args))


def test_snapshot_epochs_are_whole_numbers_below_the_pre_training_epochs():
    cfg = training_options(training_parser().parse_args(["--snapshot_epochs", "80, 20,40,20"]))
    assert cfg.snapshot_epochs == [20, 40, 80]
    assert "snapshot_epochs" not in cfg.saved()        # what the run computes stays the same
    for args, message in ((["--snapshot_epochs", "2,x"], "takes comma-separated whole numbers, got '2,x'"),
                          (["--snapshot_epochs", "0,3"], "values must be at least 1, got 0")):
        with pytest.raises(UserError, match=message):
            training_options(training_parser().parse_args(args))
    assert resolved(RunConfig(dataset="KGBD", snapshot_epochs=[20, 159])).pre_epochs == 160
    for cfg in (RunConfig(dataset="KGBD", snapshot_epochs=[20, 160]),
                RunConfig(dataset="demo", pre_epochs=20, pre_train=False, snapshot_epochs=[10])):
        with pytest.raises(UserError, match=r"each value must be below --pre_epochs \((160|20)\)"):
            resolved(cfg)


def test_config_json_round_trip_and_unknown_settings():
    cfg = resolved(RunConfig(dataset="KGBD", seed=3, scales=["joint", "body"]))
    saved = cfg.saved()
    assert not set(saved) & {"progress", "resume", "time_budget", "model_dir"}
    assert ResolvedConfig.from_saved(saved, "x") == cfg.replace(progress=True, resume=None,
                                                          time_budget=None, model_dir="best")
    with pytest.raises(UserError, match="x has a setting this version does not know: colour"):
        RunConfig.from_saved(dict(saved, colour="red"), "x")


def test_resolve_fills_the_reference_per_dataset_values():
    cfg = resolved(RunConfig(dataset="KGBD"))
    assert (cfg.batch_size, cfg.lstm_size, cfg.pre_lr, cfg.pre_epochs, cfg.num_joints) == \
        (256, 128, 0.0025, 160, 20)
    assert resolved(RunConfig(dataset="KGBD", batch_size=32, pre_epochs=5)).batch_size == 32
    assert resolved(RunConfig(dataset="IAS", split="A")).min_save_epoch == 10
    assert resolved(RunConfig(task="none", pre_epochs=7)).pre_epochs == 0
    assert resolved(RunConfig(dataset="CASIA_B", probe_type="nm.nm")).pre_epochs == 200


def test_every_pretraining_setting_names_the_pretrained_folder_and_is_recorded():
    """Every setting tagged "pretraining" that the path does not fix gives another encoder
    folder when it changes; a new such setting must be added here (the first assert)."""
    loc = Variant(REGISTRY["demo"], DataLocation("demo", 6, "", "", "demo", "demo", "demo"),
                  None, "Datasets")
    base = resolved(RunConfig())
    names = {pretrained_dir(base, loc)}
    changed = dict(fusion_lambda=0.5, P=4, n_hood=2, batch_size=32, struct_only=True,
                   global_att=True, sample_num=2, pre_epochs=5, loss="MSE", task="none",
                   ord_sample=True, s_range="1", pred_margin=1, fresh_draws=True, seed=1,
                   pre_lr=0.001, optimizers="one", scales=["joint", "part"], cross_scale=False)
    named = [k for k in fields_affecting("pretraining") if k not in NAMED_IN_PATH]
    assert set(named) == set(changed)
    for key in named:
        assert key in PRETRAIN_KEYS
        names.add(pretrained_dir(base.replace(**{key: changed[key]}), loc))
    assert len(names) == 1 + len(changed)
    # the default names of earlier versions are kept, so their encoders are found
    assert pretrained_dir(base, loc).endswith("lambda1_P8_nhood1_r1_l1_four_e30_seed0")
    assert pretrained_dir(base.replace(task="none", pre_epochs=0), loc).endswith("_e0_seed0_task-none")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_non_finite_numbers_are_refused_for_every_float_flag(value):
    """nan passes every bound check (all comparisons are false) and inf passes an open
    upper bound; both would train with NaN losses and write non-JSON into config.json."""
    floats = [flag_of(n) for n, f in FIELDS.items() if f.metadata["group"] in TRAINING_GROUPS
              and (f.type is float or f.metadata["kind"] is float or f.type == "float")]
    assert {"fusion_lambda", "val_fraction", "pre_lr", "reid_lr", "time_budget"} <= set(floats)
    for flag in floats:
        args = training_parser().parse_args([f"--{flag}={value}"])
        with pytest.raises(UserError, match=f"--{flag} must be a finite number"):
            training_options(args)


def test_the_resolved_configuration_is_its_own_type():
    """Flags give a RunConfig (per-dataset values unset); resolve() a ResolvedConfig, in which
    they are set; a saved record that lacks one is refused in one line."""
    flags = RunConfig(dataset="KGBD")
    assert flags.batch_size is None and not isinstance(flags, ResolvedConfig)
    cfg = resolved(flags)
    assert isinstance(cfg, ResolvedConfig) and isinstance(cfg.replace(seed=1), ResolvedConfig)
    assert (cfg.batch_size, cfg.lstm_size, cfg.reid_lr) == (256, 128, 0.0025)
    with pytest.raises(ValueError, match="needs layout, batch_size, pre_epochs, pre_lr, reid_lr"):
        ResolvedConfig()
    saved = cfg.saved()
    del saved["lstm_size"]
    with pytest.raises(UserError, match="run/config.json is incomplete .*lstm_size.*damaged"):
        ResolvedConfig.from_saved(saved, "run/config.json")
