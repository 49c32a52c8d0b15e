"""An example client of the ledger's gRPC service: the awards due in a fiscal year, and their total.

python docs/grpc_client.py HOST:PORT FISCAL_YEAR [--ca CERT.pem]
The token is read from LEDGER_TOKEN (never from the command line, where `ps` would show it).
Exit 0 answered; 2 refused (no token, a bad argument, a token without the right); 3 the server
did not answer.
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc

from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2 as pb
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2_grpc as pb_grpc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("target", help="HOST:PORT of subsidy-ledger serve")
    parser.add_argument("fiscal_year", type=int)
    parser.add_argument("--ca", help="the server's certificate (or its CA) for TLS")
    args = parser.parse_args(argv)
    token = os.environ.get("LEDGER_TOKEN", "").strip()
    if not token:
        print(
            "grpc_client.py: set LEDGER_TOKEN to your bearer token "
            "(`subsidy-ledger token add` prints one)",
            file=sys.stderr,
        )
        return 2
    metadata = [("authorization", f"Bearer {token}")]
    if args.ca:
        with open(args.ca, "rb") as f:
            channel = grpc.secure_channel(args.target, grpc.ssl_channel_credentials(f.read()))
    else:
        channel = grpc.insecure_channel(args.target)
    with channel:
        stub = pb_grpc.LedgerServiceStub(channel)
        request = pb.ListAwardsRequest(fiscal_year=args.fiscal_year, status="due")
        total = 0
        try:
            # wait_for_ready: a server just started is waited for (up to the timeout)
            awards = stub.ListAwards(request, metadata=metadata, timeout=30, wait_for_ready=True)
            for award in awards:
                print(f"{award.entitlement_id}\t{award.name}\t{award.amount_fen}")
                total += award.amount_fen - award.paid_fen
        except grpc.RpcError as e:
            print(f"grpc_client.py: {e.code().name}: {e.details()}", file=sys.stderr)
            away = e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            return 3 if away else 2
        except BrokenPipeError:  # the reader stopped early (`| head`): not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        print(f"due in {args.fiscal_year}: {total} fen", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
