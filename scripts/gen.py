"""Regenerates gen/ (Python stubs, Envoy's descriptor set, OpenAPI document) from the protos."""

import os
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


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT / "gen")
