"""Optuna sweeps over experiment fields: the sweep file (``spec``), storage (journal or
PostgreSQL, ``storage``), trials (``study``), the report (``report``) and the commands (``command``)."""

STORAGE_ENV = "NEURODRIVE_STORAGE"  # default storage URL of `neurodrive sweep` and `dashboard`
JOURNAL_NAME = "study.journal"  # the default storage: a journal file in the sweep folder
