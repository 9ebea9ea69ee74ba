"""Developer tools run by name: speed comparisons of the coordinators and the daemon, and
the workflow check of ``nox -s lint``."""
