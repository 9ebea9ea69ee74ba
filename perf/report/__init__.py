"""Reporting: the architecture comparison, formatting, charts, and the Jinja2 rendering of
the PR comment and the full report. Nothing below this package imports it.

- ``analysis`` runs the architecture comparison of a run folder, in steps: ``kpis`` (the
  comparisons and their correction), ``figures`` (error rates, memory, leaks, sweeps,
  scalability factors), ``ratings``, ``findings`` (the same, in words);
- ``view`` builds the report's data, ``charts_view`` its charts (drawn by ``charts``);
- ``render`` renders and writes the reports, ``github`` the step summary and annotations;
- ``format`` formats every figure, for all of them.
"""
