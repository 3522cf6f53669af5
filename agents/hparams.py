"""TensorBoard HParams records: a run's session-start record and an experiment summary over many runs.

TensorBoard's HParams tab takes its columns from ONE experiment summary (any run's, when several
runs hold one) and each run's values from that run's session-start record. A run that is one of a
group (a comparison's cell, a sweep's trial) therefore writes its session-start record only, and the
group's folder holds one summary whose columns are the union of every member's keys; a lone run
writes both. Light: tensorboard's protos only, no SB3 or torch.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

HParamValue = bool | str | float | int
EVAL_METRICS = ("eval/mean_return", "eval/crash_rate", "eval/mean_speed", "eval/mean_length")
MAX_DISCRETE_NUMBERS = 12  # more distinct numbers than this (a sweep's continuous draws): an interval


def session_start_summary(values: Mapping[str, HParamValue | None], start_time_s: float | None = None) -> Any:
    """A run's session-start record (a ``Summary`` proto); ``None`` values are left out (no column value).

    Its group name stays empty, so TensorBoard makes each run a group of its own, named by the run."""
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time() if start_time_s is None else start_time_s)
    for name, value in sorted(values.items()):
        if value is None:
            continue
        if isinstance(value, bool):  # before int: a bool is an int
            start.hparams[name].bool_value = value
        elif isinstance(value, (int, float)):
            start.hparams[name].number_value = float(value)
        else:
            start.hparams[name].string_value = str(value)
    return _summary(metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start))


def experiment_summary(sessions: Iterable[Mapping[str, HParamValue | None]],
                       metrics: Sequence[str] = EVAL_METRICS, first: Sequence[str] = ()) -> Any:
    """The experiment summary over runs' records: one column per key any of them has (the union), typed as
    TensorBoard types them (one type for all values, else string) with the values seen as its domain
    (numbers: an interval when there are more than ``MAX_DISCRETE_NUMBERS``); ``metrics`` as its metrics.

    :param first: keys to put first (a grid's ``variant``); the others follow sorted.
    """
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    seen: dict[str, list[HParamValue]] = {}
    for record in sessions:
        for name, value in record.items():
            values = seen.setdefault(name, [])
            if value is not None and value not in values:
                values.append(value)
    infos = []
    for name in [key for key in first if key in seen] + sorted(set(seen) - set(first)):
        infos.append(_column(name, seen[name], api_pb2))
    experiment = api_pb2.Experiment(hparam_infos=infos, time_created_secs=time.time(),
                                    metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag))
                                                  for tag in metrics])
    return _summary(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment))


def _column(name: str, values: list[HParamValue], api_pb2: Any) -> Any:
    kinds = {bool if isinstance(value, bool) else float if isinstance(value, (int, float)) else str
             for value in values}
    kind = kinds.pop() if len(kinds) == 1 else str  # mixed types: strings, as TensorBoard does
    info = api_pb2.HParamInfo(name=name, differs=len(values) > 1)
    if kind is bool:
        info.type = api_pb2.DATA_TYPE_BOOL
        info.domain_discrete.extend(sorted(values))
    elif kind is float:
        info.type = api_pb2.DATA_TYPE_FLOAT64
        numbers = sorted(float(value) for value in values)
        if len(numbers) > MAX_DISCRETE_NUMBERS:
            info.domain_interval.min_value, info.domain_interval.max_value = numbers[0], numbers[-1]
        elif numbers:
            info.domain_discrete.extend(numbers)
    else:
        info.type = api_pb2.DATA_TYPE_STRING
        info.domain_discrete.extend(sorted({str(value) for value in values}))
    return info


def _summary(tag: str, plugin_data: Any) -> Any:
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import metadata

    summary = Summary()
    summary.value.add(tag=tag, metadata=metadata.create_summary_metadata(plugin_data), tensor=metadata.NULL_TENSOR)
    return summary
