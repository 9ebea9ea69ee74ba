"""Reporting: the architecture comparison, formatting, charts, and the Jinja2 rendering of
the PR comment and the full report. Nothing below this package imports it."""
