"""What is measured: the benchmark cases, the figures taken from a workload, and the
calibration kernel."""
