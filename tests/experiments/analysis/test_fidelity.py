"""`neurodrive fidelity`: its statistics against scipy and published figures, the flagging and
layout rules, a tiny real run on both backends, bad input, and docs/fidelity.md vs ENVPOOL_VERIFIED."""

import argparse
import json
import re
import shutil

import numpy as np
import pytest
from scipy import stats

from envs.evaluation import DrivingMetrics
from envs.factory import make_vec_env
from envs.scenarios import ENVPOOL_VERIFIED, SCENARIOS
from experiments.analysis import fidelity, fidelity_command
from experiments.analysis.fidelity import (
    BackendSample,
    EpisodeCap,
    FirstObservations,
    PolicyComparison,
    ScenarioReport,
    is_flagged,
    tolerance,
)
from experiments.statistics import Estimate, mean_ci, newcombe_diff_ci, welch_diff_ci, wilson_ci
from tests_support import EXPERIMENTS, REPO


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="neurodrive")
    fidelity_command.add_fidelity_command(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["fidelity", *argv])


# --- statistics against independent truth -------------------------------------------------------


def test_mean_ci_is_scipys_one_sample_t_interval():
    sample = [11.2, 9.8, 14.1, 7.5, 12.0, 10.4, 8.9, 13.3]
    truth = stats.ttest_1samp(sample, 0.0).confidence_interval(0.95)
    estimate = mean_ci(sample)
    assert estimate.value == pytest.approx(np.mean(sample))
    assert (estimate.low, estimate.high) == pytest.approx((truth.low, truth.high))


def test_a_sample_without_spread_has_a_zero_width_interval():
    assert mean_ci([10.08] * 5) == Estimate(10.08, 10.08, 10.08)


def test_wilson_ci_is_the_score_formula():
    k, n, z = 38, 40, stats.norm.ppf(0.975)
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    estimate = wilson_ci(k, n)
    assert estimate.value == p
    assert (estimate.low, estimate.high) == pytest.approx((centre - half, centre + half))
    assert wilson_ci(0, 40).low == 0.0 and wilson_ci(40, 40).high == pytest.approx(1.0)


def test_welch_diff_ci_is_scipys_welch_interval():
    rng = np.random.default_rng(1)
    a, b = rng.normal(11.0, 6.0, 200), rng.normal(12.0, 3.0, 40)
    truth = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    estimate = welch_diff_ci(a, b)
    assert estimate.value == pytest.approx(a.mean() - b.mean())
    assert (estimate.low, estimate.high) == pytest.approx((truth.low, truth.high))


@pytest.mark.parametrize("counts, published", [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
])
def test_newcombe_diff_ci_matches_newcombe_1998_method_10(counts, published):
    # Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10.
    estimate = newcombe_diff_ci(*counts)
    assert estimate.value == pytest.approx(counts[0] / counts[1] - counts[2] / counts[3])
    assert (estimate.low, estimate.high) == pytest.approx(published, abs=5e-5)


def test_difference_cis_separate_different_samples_and_not_one_distribution():
    rng = np.random.default_rng(0)
    same_a, same_b = rng.normal(10.0, 5.0, 200), rng.normal(10.0, 5.0, 40)
    far_a, far_b = rng.normal(10.0, 5.0, 200), rng.normal(15.0, 5.0, 40)
    assert not welch_diff_ci(same_a, same_b).excludes_zero()
    assert welch_diff_ci(far_a, far_b).excludes_zero() and welch_diff_ci(far_a, far_b).high < 0
    assert not newcombe_diff_ci(188, 200, 38, 40).excludes_zero()  # 0.94 vs 0.95
    assert newcombe_diff_ci(188, 200, 13, 40).excludes_zero()  # 0.94 vs 0.33


# --- the flagging and layout rules --------------------------------------------------------------


def test_tolerance_is_a_share_of_the_reference_mean_with_a_floor():
    assert tolerance("return", 11.86, 0.1) == pytest.approx(1.186)
    assert tolerance("return", -0.2, 0.1) == fidelity.ABSOLUTE_FLOORS["return"]
    assert tolerance("crash_rate", 0.95, 0.2) == pytest.approx(0.19)
    assert tolerance("crash_rate", 0.0, 0.1) == fidelity.ABSOLUTE_FLOORS["crash_rate"]
    with pytest.raises(ValueError, match="metric: unknown 'reward'; allowed: return, length, crash_rate, speed"):
        tolerance("reward", 1.0, 0.1)


@pytest.mark.parametrize("difference, flagged", [
    (Estimate(2.0, 1.0, 3.0), True),      # excludes zero and larger than tolerated
    (Estimate(-2.0, -3.0, -1.0), True),
    (Estimate(0.5, 0.2, 0.8), False),     # real but within tolerance
    (Estimate(2.0, -0.1, 4.1), False),    # large but not distinguishable from zero
    (Estimate(1.0, 1.0, 1.0), False),     # exactly at the tolerance
])
def test_a_difference_is_flagged_only_when_real_and_large(difference, flagged):
    assert is_flagged(difference, tolerated=1.0) is flagged


def sample(backend: str, returns, first_observations, crashed=None, lengths=None, speeds=None) -> BackendSample:
    n = len(returns)
    metrics = DrivingMetrics(list(map(float, returns)), list(lengths or [10] * n), list(crashed or [True] * n),
                             list(speeds or [25.0] * n))
    return BackendSample(backend, metrics, list(first_observations), capped=0, seconds=1.0, env_steps=10 * n)


def comparison(policy, envpool, highway_env, constant=False) -> PolicyComparison:
    return PolicyComparison(policy, {"envpool": envpool, "highway-env": highway_env}, 0.1, constant=constant)


def test_a_port_replaying_one_layout_differs_even_when_means_match():
    rng = np.random.default_rng(0)
    reference = sample("highway-env", rng.normal(10, 2, 40), [str(i) for i in range(40)])
    replaying = sample("envpool", [10.0] * 200, ["same"] * 200)
    report = ScenarioReport("roundabout-v0", [comparison("idle", replaying, reference, constant=True)])
    assert report.layout() == {
        "envpool": {"first_observation": "envpool: one first observation in all 200 episode starts (idle)",
                    "return_spread": "envpool: every always-idle return is 10"},
        "highway-env": {"first_observation": None, "return_spread": None}}
    assert report.verdict == "differs"
    assert not report.comparisons[0].flags()  # the means alone would pass


def test_each_layout_signal_is_compared_on_its_own():
    # As exit-v0: an always-IDLE return that never varies on either backend does not excuse a
    # native port whose every episode starts the same while highway-env's starts differ.
    reference = sample("highway-env", [0.72] * 40, [str(i) for i in range(40)])
    replaying = sample("envpool", [0.72] * 200, ["same"] * 200)
    report = ScenarioReport("exit-v0", [comparison("idle", replaying, reference, constant=True)])
    assert report.flags() == [
        "repeats one traffic layout (envpool: one first observation in all 200 episode starts (idle))"]
    same_everywhere = sample("envpool", [0.72] * 200, ["same"] * 200)
    both_replay = ScenarioReport("exit-v0", [comparison("idle", same_everywhere,
                                                        sample("highway-env", [0.72] * 40, ["x"] * 40), True)])
    assert both_replay.verdict == "verified"


def test_zero_return_spread_under_a_constant_policy_is_a_layout_signal():
    rng = np.random.default_rng(0)
    reference = sample("highway-env", rng.normal(10, 2, 40), [str(i) for i in range(40)])
    frozen = sample("envpool", [10.0] * 200, [str(i) for i in range(200)])
    assert fidelity.layout_signals([comparison("idle", frozen, reference, constant=True)], "envpool") == {
        "first_observation": None, "return_spread": "envpool: every always-idle return is 10"}
    assert fidelity.layout_signals([comparison("random", frozen, reference)], "envpool") == {
        "first_observation": None, "return_spread": None}


def test_matching_backends_are_verified_and_a_shifted_metric_differs():
    rng = np.random.default_rng(0)
    layouts = [str(i) for i in range(200)]
    reference = sample("highway-env", rng.normal(10, 3, 40), layouts[:40])
    matching = sample("envpool", rng.normal(10, 3, 200), layouts)
    shifted = sample("envpool", rng.normal(14, 3, 200), layouts)
    assert ScenarioReport("merge-v0", [comparison("idle", matching, reference, True)]).verdict == "verified"
    report = ScenarioReport("merge-v0", [comparison("idle", shifted, reference, True)])
    assert report.verdict == "differs"
    (flag,) = report.flags()  # lengths, crashes and speeds are the same on both
    assert flag.startswith("idle return: +")
    # The agent is reported but never decides the verdict.
    agent = PolicyComparison("agent", {"envpool": shifted, "highway-env": reference}, 0.1, in_verdict=False)
    assert ScenarioReport("merge-v0", [comparison("idle", matching, reference, True), agent]).verdict == "verified"


# Hand-made episodes: highway-env 80, envpool 70. Per metric, envpool - highway-env and the rule's outcome:
# return   [10.1, 12.1] vs [9, 10, 11, 10]: +1.1, Welch CI [0.814, 1.39] (scipy); tolerance 0.1 x 10 = 1
#          -> flagged (1.1 > 1; against envpool's own mean, 1.11, it would not be)
# length   [14, 54] vs [10, 50]: +4, CI [-2.51, 10.5] includes zero; tolerance 3 -> not flagged
# crashes  56/70 vs 48/80: +0.2, Newcombe (1998) Table II: [0.0524, 0.3339]; tolerance 0.06 -> flagged
# speed    [21, 22] vs [20, 21]: +1, CI [0.837, 1.16] excludes zero; tolerance 0.1 x 20.5 = 2.05 -> not flagged
HAND_REFERENCE = {"returns": [9.0, 10.0, 11.0, 10.0] * 20, "lengths": [10, 50] * 40,
                  "crashed": [True] * 48 + [False] * 32, "speeds": [20.0, 21.0] * 40}
HAND_CANDIDATE = {"returns": [10.1, 12.1] * 35, "lengths": [14, 54] * 35,
                  "crashed": [True] * 56 + [False] * 14, "speeds": [21.0, 22.0] * 35}


def hand_sample(backend: str, episodes: dict[str, list]) -> BackendSample:
    n = len(episodes["returns"])
    return sample(backend, episodes["returns"], [f"{backend} {i}" for i in range(n)], crashed=episodes["crashed"],
                  lengths=episodes["lengths"], speeds=episodes["speeds"])


def test_hand_made_episodes_give_the_hand_computed_flags_and_verdict():
    reference = hand_sample("highway-env", HAND_REFERENCE)
    candidate = hand_sample("envpool", HAND_CANDIDATE)
    idle = comparison("idle", candidate, reference, constant=True)
    differences = idle.differences()
    for metric, key in (("return", "returns"), ("length", "lengths"), ("speed", "speeds")):
        a, b = HAND_CANDIDATE[key], HAND_REFERENCE[key]
        truth = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
        assert differences[metric]["value"] == pytest.approx(np.mean(a) - np.mean(b))
        assert (differences[metric]["low"], differences[metric]["high"]) == pytest.approx((truth.low, truth.high))
    assert differences["crash_rate"]["value"] == pytest.approx(0.2)
    assert (differences["crash_rate"]["low"], differences["crash_rate"]["high"]) == pytest.approx(
        (0.0524, 0.3339), abs=5e-5)
    assert {m: d["tolerance"] for m, d in differences.items()} == pytest.approx(
        {"return": 1.0, "length": 3.0, "crash_rate": 0.06, "speed": 2.05})
    assert {m: d["flagged"] for m, d in differences.items()} == {
        "return": True, "length": False, "crash_rate": True, "speed": False}
    report = ScenarioReport("merge-v0", [idle])
    assert report.flags() == ["idle return: +1.1 [+0.814, +1.39] beyond tolerance 1",
                              "idle crash_rate: +0.2 [+0.0524, +0.334] beyond tolerance 0.06"]
    assert report.verdict == "differs"


def test_identical_hand_made_episodes_are_verified_without_flags():
    reference = hand_sample("highway-env", HAND_REFERENCE)
    same = hand_sample("envpool", HAND_REFERENCE)
    report = ScenarioReport("merge-v0", [comparison("idle", same, reference, constant=True)])
    assert {m: d["value"] for m, d in report.comparisons[0].differences().items()} == {
        "return": 0.0, "length": 0.0, "crash_rate": 0.0, "speed": 0.0}
    assert report.flags() == [] and report.verdict == "verified"


# --- policies and wrappers on the real envs -----------------------------------------------------


@pytest.mark.parametrize("env_id", ["highway-fast-v0", "intersection-v0"])
def test_meta_action_indices_are_highway_envs_own(env_id):
    import gymnasium as gym
    import highway_env

    gym.register_envs(highway_env)
    env = gym.make(env_id)
    indexes = env.unwrapped.action_type.actions_indexes
    env.close()
    for meta_action in ("IDLE", "FASTER", "LANE_LEFT"):
        assert fidelity.meta_action_index(env_id, meta_action) == indexes.get(meta_action)


def test_fixed_policies_per_action_space():
    from gymnasium import spaces

    assert [p.name for p in fidelity.fixed_policies("highway-fast-v0", spaces.Discrete(5))] == [
        "idle", "faster", "random"]
    box = spaces.Box(-1.0, 1.0, (2,), np.float32)
    zero, random = fidelity.fixed_policies("parking-v0", box)
    assert (zero.name, zero.constant, random.name) == ("zero", True, "random")
    actions, _ = random.build(box, 64, 0).predict(None)
    assert actions.shape == (64, 2) and actions.dtype == np.float32 and np.abs(actions).max() <= 1.0
    assert np.array_equal(zero.build(box, 3, 0).predict(None)[0], np.zeros((3, 2), np.float32))


def test_first_observations_are_distinct_across_native_highway_episodes():
    env = FirstObservations(make_vec_env("highway-fast-v0", 4, 0, "envpool", stream=3))
    env.reset()
    for _ in range(60):
        env.step(np.full(4, 3))  # FASTER ends episodes quickly
    env.close()
    assert len(env.digests) > 8 and len(set(env.digests)) == len(env.digests)


def test_episode_cap_ends_episodes_that_never_end():
    with pytest.warns(UserWarning, match="not verified"):
        native = make_vec_env("lane-keeping-v0", 2, 0, "envpool")
    env = EpisodeCap(native, max_steps=30)
    env.reset()
    ends = []
    for step in range(1, 91):
        _, _, dones, infos = env.step(np.zeros((2, 1), np.float32))
        ends += [(step, info["TimeLimit.truncated"]) for info in np.array(infos)[dones]]
    env.close()
    assert ends == [(30, True), (30, True), (60, True), (60, True), (90, True), (90, True)]
    assert env.capped == 6


# --- bad input fails before any work ------------------------------------------------------------


@pytest.fixture
def no_envs(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("an env was built before the input was validated")

    monkeypatch.setattr(fidelity, "make_vec_env", refuse)


@pytest.mark.parametrize("argv, message", [
    (["--scenarios", "highway-fast-v0,nowhere-v0"],
     "--scenarios: unknown scenario 'nowhere-v0'; allowed: " + ", ".join(
         s.env_id for s in SCENARIOS.values() if s.envpool_id)),
    (["--episodes", "1"], "--envpool-episodes: must be an int in [2, 1000000] (a CI needs two episodes), got 1"),
    (["--highway-env-episodes", "0"], "--highway-env-episodes: must be an int in [2, 1000000]"),
    (["--tolerance", "0"], "--tolerance: must be > 0, got 0.0"),
    (["--seed", "-1"], "--seed: must be >= 0, got -1"),
    (["--run", "/nonexistent/run"], "/nonexistent/run: no such run folder"),
])
def test_bad_input_errors_name_the_flag_before_any_work(no_envs, tmp_path, argv, message):
    args = parse(*argv, "--out", str(tmp_path / "f.json"))
    with pytest.raises(ValueError) as error:
        args.handler(args)
    assert message in str(error.value)
    assert not (tmp_path / "f.json").exists()


def test_episodes_default_per_backend_and_can_be_set_each():
    assert fidelity_command.episodes_from_args(parse()) == {"envpool": 200, "highway-env": 40}
    assert fidelity_command.episodes_from_args(parse("--episodes", "10")) == {"envpool": 10, "highway-env": 10}
    assert fidelity_command.episodes_from_args(parse("--episodes", "10", "--envpool-episodes", "50")) == {
        "envpool": 50, "highway-env": 10}


# --- a tiny real run, with an (untrained) agent ------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from stable_baselines3 import DQN

    run_dir = tmp_path_factory.mktemp("run")
    shutil.copy(EXPERIMENTS / "smoke.yaml", run_dir / "config.yaml")
    env = make_vec_env("highway-fast-v0", 1, 0, "envpool")
    DQN("MlpPolicy", env, buffer_size=100, policy_kwargs={"net_arch": [16]}, seed=0).save(run_dir / "model.zip")
    env.close()
    out, markdown = run_dir / "out" / "fidelity.json", run_dir / "fidelity.md"
    args = parse("--run", str(run_dir), "--episodes", "3", "--out", str(out), "--markdown", str(markdown))
    assert args.handler(args) == 0
    return json.loads(out.read_text()), markdown.read_text()


# Independent truth for the tiny run: numpy and scipy on its per-episode data, and the rule as
# docs/fidelity.md states it (floors included), not the report's own code.
PER_EPISODE = {"return": "returns", "length": "lengths", "crash_rate": "crashed", "speed": "speeds"}
FLOORS = {"return": 0.5, "length": 0.5, "crash_rate": 0.05, "speed": 0.5}


def scipy_mean_ci(metric: str, values: list) -> tuple[float, float, float]:
    if metric == "crash_rate":
        interval = stats.binomtest(int(sum(values)), len(values)).proportion_ci(0.95, method="wilson")
        return float(np.mean(values)), interval.low, interval.high
    if np.ptp(values) == 0:  # scipy has no interval without spread; the report's is zero-width
        return float(values[0]), float(values[0]), float(values[0])
    interval = stats.ttest_1samp(values, 0.0).confidence_interval(0.95)
    return float(np.mean(values)), interval.low, interval.high


def scipy_difference(metric: str, a: list, b: list) -> tuple[float, float, float]:
    """``mean(a) - mean(b)``: Welch's interval from scipy; for proportions Newcombe's hybrid score
    interval (1998, method 10) from scipy's Wilson intervals."""
    value = float(np.mean(a) - np.mean(b))
    if metric == "crash_rate":
        (pa, la, ha), (pb, lb, hb) = scipy_mean_ci(metric, a), scipy_mean_ci(metric, b)
        return value, value - float(np.hypot(pa - la, hb - pb)), value + float(np.hypot(ha - pa, pb - lb))
    if np.ptp(a) == np.ptp(b) == 0:
        return value, value, value
    interval = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    return value, interval.low, interval.high


def layout_signals_from_counts(policy: dict, backend: str) -> set[str]:
    data = policy["backends"][backend]
    signals = set()
    if data["first_observations"] >= 2 and data["distinct_first_observations"] == 1:
        signals.add("first_observation")
    if policy["policy"] == "idle" and np.ptp(data["per_episode"]["returns"]) == 0:  # the constant policy
        signals.add("return_spread")
    return signals


@pytest.mark.filterwarnings("ignore:Precision loss occurred in moment calculation")  # scipy, near-equal speeds
def test_tiny_run_writes_every_field(tiny_run):
    report, _ = tiny_run
    assert report["command"].startswith("neurodrive fidelity --scenarios highway-fast-v0 --envpool-episodes 3 "
                                        "--highway-env-episodes 3 --tolerance 0.1 --seed 0 --run ")
    assert report["versions"]["envpool"] and report["versions"]["highway-env"] and report["date"]
    assert report["settings"]["episodes"] == {"envpool": 3, "highway-env": 3}
    (scenario,) = report["scenarios"]
    assert scenario["scenario"] == "highway-fast-v0"
    assert {backend: set(signals) for backend, signals in scenario["repeats_layout"].items()} == {
        "envpool": {"first_observation", "return_spread"}, "highway-env": {"first_observation", "return_spread"}}
    assert [(p["policy"], p["in_verdict"]) for p in scenario["policies"]] == [
        ("idle", True), ("faster", True), ("random", True), ("agent", False)]
    flagged, layout = [], {"envpool": set(), "highway-env": set()}
    for policy in scenario["policies"]:
        for backend in ("envpool", "highway-env"):
            data = policy["backends"][backend]
            assert data["episodes"] == 3 and data["first_observations"] >= 3
            per_episode = data["per_episode"]
            assert len(per_episode["returns"]) == len(per_episode["lengths"]) == 3
            for metric, key in PER_EPISODE.items():
                estimate = data["metrics"][metric]
                truth = scipy_mean_ci(metric, per_episode[key])
                assert (estimate["value"], estimate["low"], estimate["high"]) == pytest.approx(truth)
                assert estimate["low"] <= estimate["value"] <= estimate["high"]
            if policy["in_verdict"]:
                layout[backend] |= layout_signals_from_counts(policy, backend)
        for metric, key in PER_EPISODE.items():
            envpool, highway_env = (policy["backends"][b]["per_episode"][key] for b in ("envpool", "highway-env"))
            value, low, high = scipy_difference(metric, envpool, highway_env)
            tolerated = max(0.1 * abs(float(np.mean(highway_env))), FLOORS[metric])
            diff = policy["differences"][metric]
            assert set(diff) == {"value", "low", "high", "tolerance", "flagged"}
            assert (diff["value"], diff["low"], diff["high"], diff["tolerance"]) == pytest.approx(
                (value, low, high, tolerated))
            assert diff["flagged"] is bool((low > 0 or high < 0) and abs(value) > tolerated)
            if diff["flagged"] and policy["in_verdict"]:
                flagged.append(f"{policy['policy']} {metric}")
    for backend, signals in layout.items():
        assert {s for s, evidence in scenario["repeats_layout"][backend].items() if evidence} == signals
    repeats = sorted(layout["envpool"] - layout["highway-env"])
    assert [flag.split(":")[0] for flag in scenario["flags"] if not flag.startswith("repeats")] == flagged
    assert sum(flag.startswith("repeats one traffic layout") for flag in scenario["flags"]) == len(repeats)
    assert scenario["verdict"] == ("differs" if flagged or repeats else "verified")
    assert report["verdicts"] == {"highway-fast-v0": scenario["verdict"]}


def test_tiny_run_markdown_states_the_command_and_its_verdicts(tiny_run):
    report, markdown = tiny_run
    assert report["command"] in markdown
    assert fidelity.read_verdicts(markdown) == report["verdicts"]
    assert "| highway-fast-v0 | agent (not in verdict) | envpool | 3 |" in markdown


# --- the measured table and the code agree ------------------------------------------------------


def test_docs_verdicts_agree_with_envpool_verified():
    text = (REPO / "docs" / "fidelity.md").read_text()
    section = text.split("\n## Verdicts\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([\w.-]+) \| (verified|differs) \|", section, flags=re.MULTILINE)
    verdicts = dict(rows)
    assert len(verdicts) == len(rows)
    unmeasured = re.search(r"^Not measured in this run .*: (.*)\.$", section, flags=re.MULTILINE)
    listed = set(unmeasured.group(1).split(", ")) if unmeasured else set()
    assert not listed & set(verdicts)
    assert set(verdicts) | listed == {s.env_id for s in SCENARIOS.values() if s.envpool_id}, \
        "every port is measured or listed as not measured"
    verified = {name for name, verdict in verdicts.items() if verdict == "verified"}
    assert verified == ENVPOOL_VERIFIED, (
        f"docs/fidelity.md verifies {sorted(verified)}, ENVPOOL_VERIFIED lists {sorted(ENVPOOL_VERIFIED)}")
    assert re.search(r"^neurodrive fidelity .*--markdown docs/fidelity\.md$", text, flags=re.MULTILINE)
