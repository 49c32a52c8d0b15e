#!/bin/sh
# Run once by the postgres image when it makes the cluster: let the optional hot standby
# (compose.yaml, profile `replica`) stream from this primary, with the same password.
set -eu
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
