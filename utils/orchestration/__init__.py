"""The top floor: what drives the models. The run's configuration and command lines, where
runs live, resuming, the two training stages, the evaluation protocols, the pipeline behind
SM-SGE.py and evaluate.py, and identification behind identify.py."""
