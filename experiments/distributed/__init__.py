"""Work shared between processes and machines through an Optuna storage: what sweeps and shared
comparison grids both stand on, and neither owns.

- ``storage``: where a study lives (a journal file, or a database URL shared by many machines), the
  set-up lock under which workers create tables and studies, and URL masking;
- ``heartbeat``: the ``heartbeat:`` block of sweep and comparison files (how a dead worker is found);
- ``trials``: the worker loop over a study, dead workers' trials failed and re-queued, an
  interrupted trial re-queued;
- ``queue``: a queue of jobs (fixed parameters) in a study, pulled by workers on many machines.

This package is light to import; optuna and SQLAlchemy load with ``storage``, ``trials`` and ``queue``.
"""

STORAGE_ENV = "NEURODRIVE_STORAGE"  # default storage URL of `neurodrive sweep`, `compare` and `dashboard`
JOURNAL_NAME = "study.journal"  # the default storage: a journal file in the sweep folder
