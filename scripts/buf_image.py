"""Writes a descriptor set of protos/ with comments, the input buf lints and compares."""

# buf cannot resolve `google/api/annotations.proto` without a network registry,
# so it reads the same descriptor set protoc builds from the pip-installed copy.
import argparse
import os
import sys
from pathlib import Path

from gen import ROOT, SITE, WKT, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, help="where to write the descriptor set (.binpb)")
    parser.add_argument("--root", type=Path, default=ROOT, help="a tree holding protos/")
    args = parser.parse_args()
    out, root = args.out.resolve(), args.root.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    os.chdir(root)
    protos = sorted(str(p.relative_to(root)) for p in (root / "protos").rglob("*.proto"))
    if not protos:
        sys.exit(f"no .proto files under {root / 'protos'}")
    run(
        "-Iprotos",
        f"-I{SITE}",
        f"-I{WKT}",
        "--include_imports",
        "--include_source_info",
        f"--descriptor_set_out={out}",
        *protos,
    )


if __name__ == "__main__":
    main()
