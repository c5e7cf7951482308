"""Random subsequence draws of the pretext task and their ragged packing, and which
prefix encodings the Re-ID classifier reads: pure NumPy (no TensorFlow), so that the
command line can use it before TensorFlow is imported.
"""
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

S_RANGES = ("all", "1", "f/2", "f-1", "f")


def draw_lengths(length: int, sample_num: int, margin: int = 0, s_range: str = "all") -> List[int]:
    """Lengths of the pretext draws whose losses count, in the reference's order.

    The reference draws k = 1..f-m frames (m = pred_margin) `sample_num` times, but its
    loss loops stop after the first (f-2m)*sample_num draws. Its s_range filter keeps only
    the first draw (k = 1) in every scale's loss, whatever value other than "all" is given;
    the other draws still run through the LSTMs but reach no loss, so they are left out.
    """
    usable = length - margin
    lengths = (list(range(1, usable + 1)) * sample_num)[:(usable - margin) * sample_num]
    return lengths[:1] if s_range != "all" else lengths


def sample_draws(length: int, sample_num: int, rng: np.random.Generator, margin: int = 0,
                 ordered: bool = False, s_range: str = "all") -> List[np.ndarray]:
    """One draw per entry of draw_lengths: k sorted distinct frames out of the first f-m
    (the reference's np.random.choice without replacement), or frames 0..k-1 with
    `ordered` (its --ord_sample). The reconstruction targets are these frames + m."""
    usable = length - margin
    return [np.arange(k) if ordered else np.sort(rng.choice(usable, size=k, replace=False))
            for k in draw_lengths(length, sample_num, margin, s_range)]


def reid_prefixes(length: int, margin: int = 0, zero_frame: bool = True,
                  last_only: bool = False) -> slice:
    """The prefix encodings (index k-1 holds the k-frame prefix) that the Re-ID classifier
    reads. The reference reads prefixes 1..f-m+1: with m = 0 the last one reads one frame
    past the end, a zero frame (zero_frame=False stops at f). last_only is its --last_pre:
    only the last of those prefixes."""
    count = length - margin + 1
    if not zero_frame:
        count = min(count, length)
    return slice(count - 1, count) if last_only else slice(0, count)


@dataclass(frozen=True)
class RaggedDraws:
    """Where every sampled frame of a step's draws sits in the ragged time-major batch.

    Draws are ordered longest first; slot order is step-major: step t lists the
    `rows_per_step[t]` draws longer than t. `source[q]` = (draw, position) read by slot q
    and `weight[q]` is the slot's share of the loss. All of this depends only on the draw
    lengths (fixed for a run), so it is built once; only the frame indices change per step.
    """
    rows_per_step: Tuple[int, ...]
    source: Tuple[Tuple[int, int], ...]
    weight: np.ndarray

    def frame_indices(self, draws: List[np.ndarray]) -> np.ndarray:
        """The index of the frame every slot reads, [slots] int32."""
        return np.array([draws[d][p] for d, p in self.source], np.int32)


def ragged_draws(draw_lengths: List[int], loss: str = "l1") -> RaggedDraws:
    """The ragged packing of draws of these lengths, with loss weights for `loss`."""
    order = sorted(range(len(draw_lengths)), key=lambda d: -draw_lengths[d])
    rows_per_step, source, weight = [], [], []
    for t in range(max(draw_lengths)):
        running = [d for d in order if draw_lengths[d] > t]
        rows_per_step.append(len(running))
        for d in running:
            source.append((d, t))
            # Per draw the reference takes a mean over its k frames (l1, MSE) or a sum
            # (l2); the scale's loss is then the mean over draws.
            weight.append((1.0 if loss == "l2" else 1.0 / draw_lengths[d]) / len(draw_lengths))
    return RaggedDraws(tuple(rows_per_step), tuple(source), np.array(weight, np.float32))
