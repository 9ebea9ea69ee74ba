"""Profiling: memray and py-spy capture, parsing of their output, differential profiles,
and the profile target that runs one workload."""
