"""The verdict model, from a run's samples to a verdict (hashed whole by the rules: editing any file here re-runs every analysis that decides verdicts)."""
