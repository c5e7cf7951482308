"""What a long job shows while it works: progress bars, hidden with --no_progress or when
the output is not a terminal."""
from tqdm import tqdm


def progress_bar(iterable, cfg, **kw):
    return tqdm(iterable, disable=None if cfg.progress else True,
                leave=False, dynamic_ncols=True, **kw)
