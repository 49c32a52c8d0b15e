"""An example client of the ledger's gRPC service: the awards due in a fiscal year, and their total.

python docs/grpc_client.py HOST:PORT FISCAL_YEAR [--ca CERT.pem]
The token is read from LEDGER_TOKEN (never from the command line, where `ps` would show it).
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
    metadata = [("authorization", f"Bearer {os.environ['LEDGER_TOKEN']}")]
    if args.ca:
        with open(args.ca, "rb") as f:
            channel = grpc.secure_channel(args.target, grpc.ssl_channel_credentials(f.read()))
    else:
        channel = grpc.insecure_channel(args.target)
    with channel:
        stub = pb_grpc.LedgerServiceStub(channel)
        request = pb.ListAwardsRequest(fiscal_year=args.fiscal_year, status="due")
        total = 0
        for award in stub.ListAwards(request, metadata=metadata, timeout=60):
            print(f"{award.entitlement_id}\t{award.name}\t{award.amount_fen}")
            total += award.amount_fen - award.paid_fen
        print(f"due in {args.fiscal_year}: {total} fen", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
