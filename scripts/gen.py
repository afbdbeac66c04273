"""Regenerates gen/ (Python stubs, Envoy descriptor set, OpenAPI) and the clients' stubs."""

import os
import re
import shutil
import sys
from pathlib import Path

import grpc_tools
import openapi  # scripts/openapi.py
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
SITE = Path(grpc_tools.__file__).resolve().parent.parent  # googleapis-common-protos lives here
WKT = Path(grpc_tools.__file__).resolve().parent / "_proto"  # google/protobuf/*.proto
PUBLIC = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "protos").rglob("*.proto"))
ENVOY_ONLY = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "envoy/protos").rglob("*.proto"))
# The clients carry their own copy of the google/api protos they import, so they
# need neither the server nor googleapis-common-protos.
CLIENT_IMPORTS = ["google/api/annotations.proto", "google/api/http.proto"]
PY_CLIENT_PB = Path("python/src/weldpulse_client/_pb")  # under clients/
TS_CLIENT_GEN = Path("typescript/src/gen")
PROTOC_GEN_ES = ROOT / "clients/typescript/node_modules/.bin/protoc-gen-es"


def run(*args: str) -> None:
    if protoc.main(["protoc", *args]) != 0:
        sys.exit(f"protoc failed: {' '.join(args)}")


def main(out: Path) -> None:
    """Writes gen/'s contents under `out` (default: the repository's gen/)."""
    os.chdir(ROOT)
    py_out = out / "python"
    shutil.rmtree(py_out, ignore_errors=True)
    py_out.mkdir(parents=True)
    envoy_out = out / "envoy"
    envoy_out.mkdir(parents=True, exist_ok=True)
    includes = ["-Iprotos", f"-I{SITE}", f"-I{WKT}"]
    run(
        *includes,
        f"--python_out={py_out}",
        f"--pyi_out={py_out}",
        f"--grpc_python_out={py_out}",
        *PUBLIC,
    )
    # The Envoy-only google.rpc.Status must shadow the real one, so its
    # folder comes first and the real one is never imported.
    run(
        "-Iprotos",
        "-Ienvoy/protos",
        f"-I{SITE}",
        f"-I{WKT}",
        "--include_imports",
        f"--descriptor_set_out={envoy_out / 'weldpulse.pb'}",
        *PUBLIC,
        *ENVOY_ONLY,
    )
    openapi.main(out / "openapi")


def clients(out: Path) -> None:
    """Writes the clients' generated code under `out` (default: the repository's clients/)."""
    os.chdir(ROOT)
    includes = ["-Iprotos", f"-I{SITE}", f"-I{WKT}"]
    py_out = out / PY_CLIENT_PB
    shutil.rmtree(py_out, ignore_errors=True)
    py_out.mkdir(parents=True)
    run(*includes, f"--python_out={py_out}", f"--pyi_out={py_out}", *CLIENT_IMPORTS)
    run(*includes, f"--python_out={py_out}", f"--pyi_out={py_out}",
        f"--grpc_python_out={py_out}", *PUBLIC)  # fmt: skip
    _make_self_contained(py_out)
    if not PROTOC_GEN_ES.exists() or shutil.which("node") is None:
        print("gen: TypeScript client skipped: needs Node >= 20 and `make node-deps`")
        return
    ts_out = out / TS_CLIENT_GEN
    shutil.rmtree(ts_out, ignore_errors=True)
    ts_out.mkdir(parents=True)
    run(
        *includes,
        f"--plugin=protoc-gen-es={PROTOC_GEN_ES}",
        f"--es_out={ts_out}",
        "--es_opt=target=ts,import_extension=js",
        *CLIENT_IMPORTS,
        *PUBLIC,
    )


def _make_self_contained(py_out: Path) -> None:
    """Imports the generated modules from the client's `_pb` package instead of top level."""
    packages = {str(p.parent.relative_to(py_out)).replace("/", ".") for p in py_out.rglob("*.py")}
    pattern = re.compile(rf"^from ({'|'.join(map(re.escape, sorted(packages)))}) import ", re.M)
    for path in [*py_out.rglob("*.py"), *py_out.rglob("*.pyi")]:
        path.write_text(pattern.sub(r"from weldpulse_client._pb.\1 import ", path.read_text()))
    for folder in [py_out, *(p for p in py_out.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT / "gen")
    clients(Path(sys.argv[2]).resolve() if len(sys.argv) > 2 else ROOT / "clients")
