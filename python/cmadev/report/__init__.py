"""The report floor: comparisons of policies (:mod:`~cmadev.report.comparison`), their tables
(:mod:`~cmadev.report.format`), plots (:mod:`~cmadev.report.plots`) and the report folder
(:mod:`~cmadev.report.folder`). It reads results (:mod:`cmadev.results`), never the engine."""
