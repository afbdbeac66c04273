"""gen/ and the clients' generated code are exactly what `make gen` produces from the protos."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PY_CLIENT_PB = Path("python/src/weldpulse_client/_pb")
TS_CLIENT_GEN = Path("typescript/src/gen")


def files(folder: Path) -> dict[Path, bytes]:
    return {
        p.relative_to(folder): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def assert_same(fresh: Path, committed: Path) -> None:
    new, old = files(fresh), files(committed)
    assert sorted(new) == sorted(old), f"run `make gen`: the files of {committed} differ"
    stale = [str(name) for name in new if new[name] != old[name]]
    assert not stale, f"run `make gen`: {stale} in {committed} differ from the protos"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    script = str(ROOT / "scripts/gen.py")
    subprocess.run([sys.executable, script, str(out / "gen"), str(out / "clients")], check=True)
    return out


def test_generated_code_is_up_to_date(fresh: Path) -> None:
    assert_same(fresh / "gen", ROOT / "gen")


def test_python_client_stubs_are_up_to_date(fresh: Path) -> None:
    assert_same(fresh / "clients" / PY_CLIENT_PB, ROOT / "clients" / PY_CLIENT_PB)


def test_typescript_client_stubs_are_up_to_date(fresh: Path) -> None:
    if not (fresh / "clients" / TS_CLIENT_GEN).exists():
        reason = "TypeScript stubs not generated: needs Node >= 20 and `make node-deps`"
        if os.environ.get("CI"):
            pytest.fail(f"CI must check the TypeScript client: {reason}")
        pytest.skip(reason)
    assert_same(fresh / "clients" / TS_CLIENT_GEN, ROOT / "clients" / TS_CLIENT_GEN)
