"""Tidy tables from run directories: what a run directory holds, what the profilers say, where the growth lives, the sweep's and the cross-language tables."""
