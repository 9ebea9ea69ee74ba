"""Deciding: every module whose output can change the gate's exit status (statistics,
policy, verdicts, the stored baseline, the leak gate, the run's outcome).

Nothing here renders a report."""
