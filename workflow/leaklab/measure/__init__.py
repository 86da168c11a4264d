"""A measurement planned and run: the config's checks and its list of runs, the runner, sequential stopping."""
