"""Score, once, the classifier an unfinished --selection val run has kept so far (its best
validation epoch, stored in resume.npz), on the test set: the validation-selected figure of
issue #21's experiment 1 without waiting for an early stop that does not come.

    python3 score_val_selected.py RUN_FOLDER DATA_DIR      (run from the repository root)
"""
import os
import sys

sys.path.insert(0, os.getcwd())

from models.factory import build_classifier, build_encoder, build_model  # noqa: E402
from utils.data.reid_data import load_reid_data  # noqa: E402
from utils.foundation.train_loop import ReIDState, assign  # noqa: E402
from utils.orchestration.protocols import classifier_protocol, print_summary  # noqa: E402
from utils.orchestration.resume import load_state  # noqa: E402
from utils.orchestration.storage import load_run_config, variant_of  # noqa: E402

folder, data_dir = sys.argv[1], sys.argv[2]
cfg = load_run_config(folder).replace(data_dir=data_dir, progress=False)
assert cfg.selection == "val", "only a validation-selected run may be scored this way"
state = load_state(folder)
reid = ReIDState.from_checkpoint(state.info, state.arrays)
print(f"{folder}: {reid.epoch} Re-ID epochs done; kept: epoch {reid.best_epoch} "
      f"(validation Rank-1 {100 * reid.best_acc:.2f})")
variant = variant_of(cfg)
data = load_reid_data(variant.files, variant.layout)
model = build_model(cfg)
assign(model.trainable_variables, state.arrays["encoder"], folder)
classifier = build_classifier(cfg, model, data.num_classes)
assign(classifier.trainable_variables, reid.best_weights, folder)
encoder = build_encoder(cfg, model)
result = classifier_protocol(cfg, classifier).run(
    lambda x: encoder.encode_all(x, cfg.batch_size), data)
print_summary(result)
