#!/bin/sh
# Run once by the postgres image when it creates the primary's data directory: the
# replica's pg_basebackup and its WAL stream connect as a replication client, which the
# image's default pg_hba.conf only allows from the container itself.
set -e
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
