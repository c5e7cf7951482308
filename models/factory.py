"""Building the model a run configuration describes: the one place that does it."""
import numpy as np

from models.draws import reid_prefixes
from models.sm_sge import SMSGE, ReIDClassifier
from models.training import Encoder
from utils.foundation.graphs import build_graph


def build_model(cfg, layout) -> SMSGE:
    """layout: the run's skeleton layout object (utils/foundation/skeleton.SkeletonLayout)."""
    graph = build_graph(layout, cfg.n_hood, cfg.global_att)
    return SMSGE(graph, cfg.lstm_size, cfg.P, cfg.fusion_lambda, seed=cfg.seed,
                 scales=cfg.scales, cross_scale=cfg.cross_scale, struct_only=cfg.struct_only)


def build_encoder(cfg, model: SMSGE) -> Encoder:
    return Encoder(model, reid_prefixes(cfg.length, cfg.pred_margin, cfg.zero_frame, cfg.last_pre))


def build_classifier(cfg, model: SMSGE, num_classes: int) -> ReIDClassifier:
    return ReIDClassifier(model.embedding_size, num_classes, seed=cfg.seed)


def count_parameters(*modules) -> int:
    return int(sum(np.prod(v.shape) for m in modules for v in m.trainable_variables))
