"""SM-SGE models: the multi-scale encoder, its pretext heads and the Re-ID classifier."""
