"""Names that become folders (an experiment's, a run's, a group's, a comparison's and its variants', a
sweep's): `.` and `..` would put the folder outside its root, so they are refused in one line."""

from pathlib import Path

import pytest

from experiments.compare.spec import load_comparison
from experiments.config import ConfigError, load_config
from experiments.sweeps.spec import load_sweep
from tests_support import EXPERIMENTS, TINY_GRID

SMOKE = EXPERIMENTS / "smoke.yaml"
OUTSIDE = [".", "..", "..."]


@pytest.mark.parametrize("field", ["name", "logging.name", "logging.run_name"])
@pytest.mark.parametrize("name", OUTSIDE)
def test_dots_alone_are_no_name(field, name, tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(SMOKE, [f"logging.root={tmp_path}", f"{field}='{name}'"])  # quoted: YAML reads ... itself
    assert str(error.value).startswith(f"--set: {field}: String should match pattern")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("group", ["a/../b", "../b", "a/..", "/tmp/b", "a//b", "a/./b"])
def test_a_run_group_path_stays_under_the_root(group, tmp_path):
    with pytest.raises(ConfigError, match="logging.name"):
        load_config(SMOKE, [f"logging.root={tmp_path}", f"logging.name={group}"])


@pytest.mark.parametrize("field, name", [("name", "v1.2"), ("name", ".hidden"), ("logging.run_name", "seed0"),
                                         ("logging.name", "variant/highway-fast-v0"), ("logging.name", "a.b/c..d")])
def test_names_with_dots_among_other_characters_are_fine(field, name, tmp_path):
    config = load_config(SMOKE, [f"logging.root={tmp_path}", f"{field}={name}"])
    section, _, key = field.rpartition(".")
    assert (config.model_dump()[section] if section else config.model_dump())[key] == name


def write_grid(folder: Path, name: str, variant: str = "treated") -> Path:
    body = TINY_GRID.replace("asymmetric:", f"{variant}:")
    path = folder / "grid.yaml"
    path.write_text(f"experiment: {SMOKE}\nname: '{name}'\nroot: {folder / 'runs'}\n{body}")
    return path


@pytest.mark.parametrize("name", OUTSIDE)
def test_a_comparison_named_dots_is_refused(name, tmp_path):
    with pytest.raises(ConfigError, match="name"):
        load_comparison(write_grid(tmp_path, name))
    assert load_comparison(write_grid(tmp_path, "grid")).folder == tmp_path / "runs" / "grid"


@pytest.mark.parametrize("variant", OUTSIDE)
def test_a_variant_named_dots_is_refused(variant, tmp_path):
    with pytest.raises(ConfigError, match=f"variants.{variant}: a name must match"):
        load_comparison(write_grid(tmp_path, "grid", f"'{variant}'"))


@pytest.mark.parametrize("name", OUTSIDE)
def test_a_sweep_named_dots_is_refused(name, tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(f"experiment: {SMOKE}\nroot: {tmp_path / 'sweeps'}\n"
                    "parameters:\n  agent.hyperparameters.learning_rate: {float: [1e-5, 1e-3], log: true}\n")
    with pytest.raises(ConfigError, match="--study-name"):
        load_sweep(path, study_name=name)
    path.write_text(path.read_text() + f"study_name: '{name}'\n")
    with pytest.raises(ConfigError, match="study_name"):
        load_sweep(path)
