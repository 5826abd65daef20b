"""moto, fixed where it hurts this pipeline: every service's changes, installed in one call.

Each change is declared next to its replacement, against the moto class it changes (see
`patching`); this module only lists the services' modules, so that importing it registers
them all, and `apply()` self-tests every change and then installs it. A new service adds
its module to `MODULES`. moto is pinned to a minor version; a new one needs the
self-test green and `motointernals` reviewed.

What is changed and why:
- Server (`serverpatch`): the backend lookup per request is cached (moto scans its
  package directory), and model instances are no longer all remembered by their class
  (moto's dashboard list: every Kinesis record read, message and S3 key, forever).
- Kinesis (`kinesispatch`): O(1) sequence numbers (moto lists every key on every put), a
  thread-safe put, 56-digit sequence numbers like AWS's (string order = numeric order),
  O(limit) GetRecords, a PutRecords response built without moto's slow generic
  serializer, shard iterators a shell does not split (no newline), and PutRecord refusing
  a record over 1 MiB.
- SQS (`sqspatch`, `sqsread`): a queue's attributes compute the message counts only when
  read, so SendMessage (which reads one attribute) no longer scans every queued message;
  a message's visible/delayed checks (every receive and count scans the queue with them)
  read ``time.time()`` instead of building two datetimes per message; with persistence
  on, every message change is committed to `sqsstore` (`sqsdurable`).
- Logs (`logstore`): with persistence on, a log stream keeps its newest events only, and
  they are saved to disk periodically and at stop.
- S3 (`s3durable`): with persistence on, every object version is written to `s3store`
  (blob file + index row) before moto holds it; deletes remove it.
- IoT certificates (`iotcerts`): CreateKeysAndCertificate and CreateCertificateFromCsr
  return certificates the emulator's CA issued (so its MQTT broker can verify them), with
  IoT's certificateId (SHA-256 of the DER); DescribeEndpoint's data endpoints are the
  broker's host.
- Lambda (`lambdapatch`): invoke runs the deployed zip in a worker process (not Docker);
  no per-record invocation on put (pollers run mappings, see `esm`); mapping create,
  update and delete take effect at once; LastProcessingResult is reported; listing
  functions makes shallow copies (moto's deep copies race with the workers: HTTP 500).
- Timestream (`tspatch`): writes merge CommonAttributes and land in DuckDB (duplicates
  and conflicts behave as on AWS); queries run on DuckDB; DescribeEndpoints answers with
  the emulator's own address; creating an existing database/table is a
  ConflictException, not a wipe; CancelQuery is added.
- IoT (`iotpatch`): publish runs matching topic rules; rules outside the supported subset
  are refused.
- Firehose (`firehosepatch`): a KinesisStreamAsSource delivery stream delivers (`firehose`:
  reads its stream, runs the processor, writes Parquet and error objects); PutRecord(Batch)
  to one is refused as on AWS.
- Athena (`athenapatch`): queries run on DuckDB over the Parquet objects in S3, planned
  from Glue (partition pruning, bytes scanned), read-only and time-limited; results are
  paged with a header row and written to the output location as CSV.
"""

from __future__ import annotations

from types import ModuleType

from iotpipe.local import (
    athenapatch,
    firehosepatch,
    iotcerts,
    iotpatch,
    kinesispatch,
    lambdapatch,
    logstore,
    motointernals_state,
    s3durable,
    serverpatch,
    sqsdurable,
    sqspatch,
    sqsread,
    tspatch,
)
from iotpipe.local.patching import SERVICES, Patch, PatchError, Service, install, self_test

__all__ = ["MODULES", "Patch", "PatchError", "all_patches", "apply", "self_test", "services"]

# Importing a module registers its service's changes (its `@service(...).patch` lines).
MODULES: tuple[ModuleType, ...] = (
    serverpatch,
    kinesispatch,
    sqspatch,
    sqsread,
    sqsdurable,
    logstore,
    s3durable,
    lambdapatch,
    tspatch,
    iotpatch,
    iotcerts,
    firehosepatch,
    athenapatch,
)


def services() -> list[Service]:
    return list(SERVICES.values())


def all_patches() -> list[Patch]:
    return [p for s in services() for p in s.patches]


def apply() -> None:
    """Self-test every service's changes, then install them all (idempotent)."""
    install(services())
    motointernals_state.forget_tracked_instances()  # those made before the patch (imports, tests)
