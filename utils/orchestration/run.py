"""A run resolved once, and carried down: what the entry scripts decide before any work.

    run = resolve(opts)      # SM-SGE.py, evaluate.py, identify.py and the tools, once
    run.cfg                  # the resolved configuration (per-dataset values filled)
    run.variant              # the dataset (its row, rules and selection), its files, its layout
    run.protocol             # the protocol object (utils/orchestration/protocols.py)
    run.runs_parent, run.pretrained_dir()   # its folders (utils/orchestration/storage.py)

Below the entry scripts nothing looks a dataset or a protocol up by name again: the dataset
is found here (by --dataset) and the protocol here (by --protocol), and both are objects
from then on.
"""
import dataclasses
from dataclasses import dataclass
from typing import Optional

from utils.data.datasets import Variant, get_dataset, resolve_variant
from utils.orchestration.config import ResolvedConfig, RunConfig, resolve_config, selectors
from utils.orchestration.protocols import Protocol, protocol_named
from utils.orchestration import storage


@dataclass(frozen=True)
class Run:
    """One run's settings, dataset variant and protocol, resolved together."""
    cfg: ResolvedConfig
    variant: Variant
    protocol: Protocol

    @property
    def dataset(self):
        return self.variant.dataset

    @property
    def layout(self):
        """The skeleton layout object (utils/foundation/skeleton.SkeletonLayout)."""
        return self.variant.layout

    @property
    def runs_parent(self) -> str:
        """RN/<variant>/<f>: where this run's folder is made, and runs like it are found."""
        return storage.runs_parent(self.variant, self.cfg.length)

    def pretrained_dir(self, cfg: Optional[ResolvedConfig] = None) -> str:
        """Where the encoder pre-trained with these settings (or cfg's: a snapshot's) is kept."""
        return storage.pretrained_dir(cfg or self.cfg, self.variant)

    def new_run_name(self) -> str:
        return storage.new_run_name(self.protocol.run_name(), self.cfg.seed)

    def with_config(self, cfg: ResolvedConfig) -> "Run":
        """The same run with settings changed after resolving (an authors' checkpoint's sizes)."""
        return dataclasses.replace(self, cfg=cfg)


def resolve(opts: RunConfig, build: bool = True) -> Run:
    """The run the settings describe: the dataset found by name and selected by its flags
    (IAS's --split, CASIA-B's --view), the per-dataset settings filled, the protocol found
    by name and made, the variant's files located (and a built-in dataset's generated,
    unless build is False). A saved run's configuration (a ResolvedConfig) keeps its values."""
    dataset = get_dataset(opts.dataset, opts.data_dir).select(**selectors(opts))
    cfg = resolve_config(opts, dataset)
    protocol = protocol_named(cfg.protocol)
    variant = resolve_variant(dataset, cfg.length, cfg.data_dir, cfg.layout,
                              protocol.prepared_as, build)
    return Run(cfg, variant, protocol.configured(cfg, variant))
