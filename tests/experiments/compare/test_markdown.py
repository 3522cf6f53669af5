"""experiments.compare.report.markdown on hand-written statistics: each table line written out by hand."""

from experiments.compare.report.markdown import condition_matrix, verdict_table


def entry(iqm, mean, crash, crashes, episodes, speed, improvement=None, baseline=False, energy=None):
    return {"n_seeds": 5, "iqm": {"value": iqm, "low": iqm - 1, "high": iqm + 1},
            "mean": {"value": mean, "low": None, "high": None},
            "crash_rate": {"value": crash, "low": 0.0, "high": 0.5},
            "crash_episodes": {"crashes": crashes, "episodes": episodes},
            "mean_speed": {"value": speed}, "probability_of_improvement": improvement,
            "is_baseline": baseline, "energy": energy}


STATISTICS = {
    "baseline": "ann", "variants": ["ann", "spiking", "other"], "scenarios": ["s"], "conditions": ["clean", "noise"],
    "summary": {"s": {
        "clean": {"ann": entry(19.0, 18.5, 0.5, 25, 50, 25.55, baseline=True),
                  "spiking": entry(18.0, 18.25, 0.25, 12, 50, 27.0, {"value": 0.4, "low": 0.1, "high": 0.7},
                                   energy={"snn_pj": 23_764_000.0, "ann_pj": 45_570_800.0, "ratio": 0.5215}),
                  "other": entry(20.0, 20.0, 0.1, 5, 50, 24.0, {"value": 0.9, "low": 0.6, "high": 1.0})},
        "noise": {"ann": entry(14.0, 14.0, 0.8, 40, 50, 24.0, baseline=True),
                  "spiking": entry(11.5, 11.6, 0.92, 46, 50, 25.0)}}},
    "verdicts": [
        {"variant": "spiking", "scenario": "s", "condition": "clean", "outcome": "not_separated",
         "look": 2, "looks": 2, "mean_difference": {"value": -0.05, "low": -2.1, "high": 2.01}},
        {"variant": "other", "scenario": "s", "condition": "clean", "outcome": "better", "p_adjusted": 0.0123},
        {"variant": "spiking", "scenario": "s", "condition": "noise", "outcome": "worse",
         "look": 2, "looks": 2, "mean_difference": {"value": -2.13, "low": -4.19, "high": -0.06}},
    ],
}


def test_a_verdict_table_writes_each_figure_where_its_column_says():
    lines = verdict_table(STATISTICS, "s", "clean").splitlines()
    assert lines[0] == ("| variant | seeds | IQM return | mean return | P(improvement) | verdict | "
                        "crash rate (crashes/episodes) | speed m/s | energy SNN / dense ANN (ratio) |")
    assert lines[2] == ("| ann | 5 | 19.00 [18.00, 20.00] | 18.50 | - | baseline | "
                        "0.50 [0.00, 0.50] (25/50) | 25.6 | - |")
    assert lines[3] == ("| spiking | 5 | 18.00 [17.00, 19.00] | 18.25 | 0.40 [0.10, 0.70] | "
                        "not separated, look 2 of 2: mean diff -0.05 [-2.10, +2.01] | "
                        "0.25 [0.00, 0.50] (12/50) | 27.0 | 23.8 / 45.6 µJ (0.52) |")
    assert lines[4] == ("| other | 5 | 20.00 [19.00, 21.00] | 20.00 | 0.90 [0.60, 1.00] | **better**, p 0.012 (Holm) | "
                        "0.10 [0.00, 0.50] (5/50) | 24.0 | - |")


def test_the_condition_matrix_marks_separated_verdicts_and_leaves_missing_cells_blank():
    assert condition_matrix(STATISTICS, "s").splitlines() == [
        "| variant | clean | noise |", "|---|---|---|",
        "| ann | 19.00, 50% | 14.00, 80% |",
        "| spiking | 18.00, 25% | 11.50 (-), 92% |",
        "| other | 20.00 (+), 10% | - |"]
