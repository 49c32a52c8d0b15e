"""Build hook: generate the gRPC stubs from protos/ when the project is built or installed.

The stubs are never committed (adapters/grpc/generated/ is ignored): every `pip install` (editable
or not, and the Docker build stage) writes them from the proto with grpcio-tools' own protoc, so
they always match the proto and the protobuf runtime installed with them.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PROTO = "subsidy_ledger/v1/ledger.proto"
PACKAGE = "adapters/grpc/generated"


def generate(root: Path) -> None:
    """Write the stubs of protos/PROTO as the module adapters.grpc.generated.subsidy_ledger.v1."""
    from grpc_tools import protoc

    include = importlib.resources.files("grpc_tools") / "_proto"
    args = [
        "protoc",
        f"-I{include}",
        # Map the proto's path under the package, so the generated imports are absolute
        # (`from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2`).
        f"-I{PACKAGE}={root / 'protos'}",
        f"--python_out={root}",
        f"--grpc_python_out={root}",
        f"--pyi_out={root}",
        f"{PACKAGE}/{PROTO}",
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on protos/{PROTO}")
    for folder in ("", "subsidy_ledger", "subsidy_ledger/v1"):
        (root / PACKAGE / folder / "__init__.py").touch()


class ProtoStubsHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        generate(Path(self.root))
        build_data["artifacts"].append(f"/{PACKAGE}")


if __name__ == "__main__":
    generate(Path(__file__).parent)
