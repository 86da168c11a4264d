"""leaklab: prove, measure and explain memory leaks in processes that use native libraries."""

__version__ = "0.1.0"
