"""Data, skeleton graphs, metrics and the training pipeline of SM-SGE."""
