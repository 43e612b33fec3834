#!/bin/sh
# One-shot bucket setup for MinIO: the product's buckets, private. The
# services also create missing buckets at start; this makes the policy explicit.
set -eu
mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
for bucket in training-data models training-outputs synthetic-data evaluation; do
  mc mb --ignore-existing "local/$bucket"
  mc anonymous set none "local/$bucket"
done
echo "buckets ready"
