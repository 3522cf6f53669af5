"""Optuna sweeps over experiment fields: the sweep file (``spec``), trials (``study``), the report
(``report``) and the commands (``command``). Storage and worker liveness are ``experiments.distributed``'s."""
