"""No secret on disk or on screen: every credential form a SQLAlchemy URL takes is masked wherever a URL is
printed or saved (sweep.json, every run.json's command, the console, error lines)."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from experiments.config import ConfigError
from experiments.distributed.storage import StorageTarget, mask_argv, mask_text, mask_url
from tests_support import EXPERIMENTS, REPO, postgres_url

SECRET = "S3cr3t-pw"


@pytest.mark.parametrize("url, masked", [
    (f"postgresql+psycopg://alice:{SECRET}@db.lab:5432/sweeps", "postgresql+psycopg://alice:***@db.lab:5432/sweeps"),
    (f"postgresql+psycopg://alice@db.lab:5432/sweeps?password={SECRET}",
     "postgresql+psycopg://alice@db.lab:5432/sweeps?password=***"),
    (f"postgresql+psycopg://alice@db.lab/sweeps?sslmode=require&sslpassword={SECRET}&connect_timeout=5",
     "postgresql+psycopg://alice@db.lab/sweeps?sslmode=require&sslpassword=***&connect_timeout=5"),
    (f"postgresql+psycopg://alice@db.lab/sweeps?passfile=/home/alice/{SECRET}",
     "postgresql+psycopg://alice@db.lab/sweeps?passfile=***"),
    (f"mysql+pymysql://alice@db.lab/sweeps?passwd={SECRET}", "mysql+pymysql://alice@db.lab/sweeps?passwd=***"),
    (f"postgresql+psycopg://db.lab/sweeps?user=alice&PASSWORD={SECRET}",
     "postgresql+psycopg://db.lab/sweeps?user=alice&PASSWORD=***"),
    (f"postgresql+psycopg://alice:{quote(SECRET + '@/?')}@db.lab/sweeps", "postgresql+psycopg://alice:***@db.lab/sweeps"),
    (f"postgresql+psycopg://alice:{SECRET}@x@db.lab:5432/sweeps", "postgresql+psycopg://alice:***@db.lab:5432/sweeps"),
    (f"postgresql+psycopg://alice:{SECRET}/x@db.lab/sweeps", "postgresql+psycopg://alice:***@db.lab/sweeps"),
    ("sqlite:////tmp/study.db", "sqlite:////tmp/study.db"),
], ids=["userinfo", "password=", "sslpassword=", "passfile=", "passwd=", "uppercase", "escaped",
        "unescaped-@", "unescaped-/", "sqlite"])
def test_each_credential_form_is_masked(url, masked):
    assert mask_url(url) == masked
    for part in (SECRET, "S3cr3t", "x@db"):
        assert part not in mask_url(url)


def test_an_unescaped_at_leaves_no_part_of_the_password():
    # SQLAlchemy reads this as password "pa" on host "ss@db.lab": "ss" is part of the password all the same
    url = "postgresql+psycopg://alice:pa@ss@db.lab:5432/sweeps"
    assert mask_url(url) == "postgresql+psycopg://alice:***@db.lab:5432/sweeps"
    with pytest.raises(ConfigError) as error:
        StorageTarget.resolve(url, Path("unused"))
    assert "%40" in str(error.value) and "pa@ss" not in str(error.value) and "ss@" not in str(error.value)


def test_a_url_that_cannot_be_read_is_masked_whole():
    assert mask_url(f"postgresql://alice:{SECRET}/db") == "***"  # no '@': SQLAlchemy reads a port, and fails
    with pytest.raises(ConfigError) as error:
        StorageTarget.resolve(f"postgresql://alice:{SECRET}/db", Path("unused"))
    assert SECRET not in str(error.value) and str(error.value).startswith("--storage: '***' is not a database URL")


def test_command_lines_are_masked_in_every_form():
    url = f"postgresql+psycopg://alice@db.lab/sweeps?password={SECRET}"
    argv = ["sweep", "f.yaml", "--storage", url, f"--storage={url}", "dashboard", url, "--n-trials", "3"]
    masked = mask_argv(argv)
    assert SECRET not in " ".join(masked)
    assert masked == ["sweep", "f.yaml", "--storage", mask_url(url), f"--storage={mask_url(url)}", "dashboard",
                      mask_url(url), "--n-trials", "3"]


def test_a_driver_message_is_scrubbed_of_every_credential():
    url = f"postgresql+psycopg://alice:{SECRET}@db.lab/sweeps?sslpassword=other-{SECRET}"
    text = f"could not connect with password {SECRET} and key password other-{SECRET}"
    assert mask_text(text, url) == "could not connect with password *** and key password ***"


def test_an_unreachable_database_with_a_query_password_is_one_line_without_it():
    target = StorageTarget.resolve(f"postgresql+psycopg://alice@127.0.0.1:1/sweeps?password={SECRET}",
                                   Path("unused"))
    assert SECRET not in target.describe()
    with pytest.raises(ConfigError) as error:
        target.open()
    assert SECRET not in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).startswith("--storage: cannot open postgresql+psycopg://alice@127.0.0.1:1/sweeps?password=***")


def neurodrive(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments.cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_the_console_never_shows_a_query_password(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"experiment: {EXPERIMENTS / 'smoke.yaml'}\nroot: {tmp_path / 'runs'}\n"
                     "parameters:\n  agent.hyperparameters.learning_rate: {float: [1e-5, 1e-3], log: true}\n")
    result = neurodrive("sweep", str(sweep), "--storage",
                        f"postgresql+psycopg://alice@127.0.0.1:1/db?password={SECRET}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "password=***" in result.stderr


@pytest.mark.slow
def test_a_sweep_on_postgresql_with_a_query_password_saves_and_prints_none(tmp_path):
    """The full path on a real server: the password given as ``?password=`` connects, and is nowhere."""
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url())
    if not url.password:
        pytest.skip("the test server's URL holds no password to move into the query")
    query_form = url.set(password=None).update_query_dict({"password": url.password})
    secret_url = query_form.render_as_string(hide_password=False)
    name = f"pw_{uuid.uuid4().hex[:8]}"
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"experiment: {EXPERIMENTS / 'smoke.yaml'}\nroot: {tmp_path / 'runs'}\nstudy_name: {name}\n"
                     "budget: 200\neval_every: 100\nn_trials: 1\npruner: none\n"
                     "parameters:\n  agent.hyperparameters.learning_rate: {float: [1e-5, 1e-3], log: true}\n")
    result = neurodrive("sweep", str(sweep), "--storage", secret_url, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    saved = [path.read_text() for path in (tmp_path / "runs").rglob("*.json")]
    assert any(json.loads(text).get("command") for text in saved)  # run.json files with their command
    # CI's role is neurodrive:neurodrive on neurodrive_test: the bare word is also the user and the database, so
    # look for the password where a URL would carry it, and for the bare word only when nothing else holds it.
    password = url.password
    public = f"{url.username}@{url.host}:{url.port}/{url.database}"
    leaks = [f"password={password}", f":{password}@", *([password] if password not in public else [])]
    for text in [*saved, result.stdout, result.stderr]:
        assert not [leak for leak in leaks if leak in text]
    import optuna
    optuna.delete_study(study_name=name, storage=StorageTarget.resolve(secret_url, Path(".")).open())
