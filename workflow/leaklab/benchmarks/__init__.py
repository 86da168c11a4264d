"""Leaklab measuring itself: how often the verdict is right, what the sampler costs."""
