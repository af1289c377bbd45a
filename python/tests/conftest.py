"""Shared fixtures: one small generated catalog and its bundle, built by the
CLI once per session, so every test compares Python against the CLI on the
same files. The CLI path comes from $VITRINE_CLI (set by ctest)."""

import os
import subprocess

import pytest

import vitrine


def cli() -> str:
    path = os.environ.get("VITRINE_CLI", "build/cli/vitrine")
    if not os.path.exists(path):
        pytest.fail(f"the vitrine CLI is not at {path} (set VITRINE_CLI)")
    return path


def run_cli(*args: str) -> str:
    r = subprocess.run([cli(), *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"vitrine {' '.join(args)} failed ({r.returncode}): {r.stderr}")
    return r.stdout


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    run_cli("generate", "--items", "1200", "--users", "1500", "--seed", "11", "--out", str(d))
    run_cli("split", "--interactions", str(d / "interactions.csv"), "--train",
            str(d / "train.csv"), "--test", str(d / "test.csv"))
    return d


@pytest.fixture(scope="session")
def bundle_dir(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "b"
    run_cli("build", "--items", str(data_dir / "items.csv"), "--interactions",
            str(data_dir / "train.csv"), "--images", str(data_dir / "images.idx.gz"), "--out",
            str(out), "--quiet")
    return out


@pytest.fixture()
def bundle(bundle_dir):
    with vitrine.open(bundle_dir) as b:
        yield b
