"""The ledger container's health check: asks the server's standard gRPC health service, over TLS
when the server has a certificate, and exits 0 only when the answer is SERVING.

Runs inside the image with what it already has (grpcio, no generated stubs): the request and the
answer are small enough to encode by hand. Settings are the server's own (LEDGER_LISTEN,
LEDGER_TLS_CERT) plus, for a certificate that is not self-signed or does not name localhost,
LEDGER_HEALTHCHECK_CA (the CA bundle to trust) and LEDGER_HEALTHCHECK_NAME (a name in the
certificate)."""

from __future__ import annotations

import os
import sys

import grpc

CHECK = "/grpc.health.v1.Health/Check"
# HealthCheckRequest{service: ""} (the server as a whole) is the empty message; the answer
# HealthCheckResponse{status: SERVING} is field 1, varint 1.
REQUEST = b""
SERVING = b"\x08\x01"


def main() -> int:
    listen = os.environ.get("LEDGER_LISTEN", "127.0.0.1:50051")
    target = f"127.0.0.1:{listen.rpartition(':')[2]}"
    cert = os.environ.get("LEDGER_TLS_CERT")
    if cert:
        with open(os.environ.get("LEDGER_HEALTHCHECK_CA") or cert, "rb") as roots:
            credentials = grpc.ssl_channel_credentials(roots.read())
        name = os.environ.get("LEDGER_HEALTHCHECK_NAME") or "localhost"
        channel = grpc.secure_channel(
            target, credentials, options=[("grpc.ssl_target_name_override", name)]
        )
    else:
        channel = grpc.insecure_channel(target)
    with channel:
        try:
            answer = channel.unary_unary(CHECK)(REQUEST, timeout=5)
        except grpc.RpcError as error:
            print(f"{target}: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    if answer != SERVING:
        print(f"{target}: not serving (answer {answer.hex() or 'empty'})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
