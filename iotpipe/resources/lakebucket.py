"""The lake's S3 bucket: Parquet under ``data/``, Firehose's errors, Athena's results.

Every protection is stated explicitly even where S3's defaults (2023 on) already give it
(all four Block Public Access settings, ACLs off, SSE-S3): an older bucket, or one someone
loosened, then shows up in ``plan`` and ``verify`` as a field that differs, instead of
being trusted because "new buckets are private". Each field is read back with its own GET,
so an unchanged re-run of ``up`` is reads only, and ``update`` re-puts only what changed.

``down`` must empty the bucket first (DeleteBucket refuses one with objects, versions or
delete markers), and Firehose may still be flushing a buffer while it does: a
BucketNotEmpty after emptying means exactly that race, so the bucket is emptied once more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import chain, islice
from typing import Any

from botocore.exceptions import ClientError

from iotpipe import lakeschema
from iotpipe.aws import Gateway, error_code
from iotpipe.resources.base import UP, Changes, Context, Discovery, Props, Resource
from iotpipe.resources.common import get_or_none, wait
from iotpipe.resources.errors import ResourceStateError
from iotpipe.resources.lakeroles import lake_enabled
from iotpipe.sizes import human_bytes
from iotpipe.verdict import Check

NO_BUCKET = ("NoSuchBucket", "404", "NotFound")
BLOCK_ALL = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
OWNERSHIP = "BucketOwnerEnforced"
ENCRYPTION = "AES256"
ABORT_UPLOAD_DAYS = 7  # Firehose uploads in parts; a failed flush leaves parts that cost
RESULTS_DAYS = 7  # Athena's result files are re-creatable: a week is for re-reading them
DELETE_BATCH = 1000  # DeleteObjects' limit per call

# What S3 answers for "never configured": the field is then None (differs from desired).
ABSENT = {
    "public_access_block": "NoSuchPublicAccessBlockConfiguration",
    "ownership": "OwnershipControlsNotFoundError",
    "encryption": "ServerSideEncryptionConfigurationNotFoundError",
    "lifecycle": "NoSuchLifecycleConfiguration",
    "tags": "NoSuchTagSet",
}
# Lifecycle rules by ID -> (prefix, field whose value is the rule's days).
RULES = {
    "expire-data": (lakeschema.DATA_PREFIX, "retention_days"),
    "expire-errors": (lakeschema.ERROR_PREFIX, "errors_retention_days"),
    "expire-athena-results": (lakeschema.RESULTS_PREFIX, "results_retention_days"),
}
ABORT_RULE = "abort-incomplete-uploads"
LIFECYCLE_FIELDS = (*(f for _, f in RULES.values()), "abort_upload_days")


def list_buckets(gateway: Gateway, prefix: str) -> Iterator[str]:
    """Bucket names starting with ``prefix`` (the listing is global; the discovery
    pattern's account-region tail keeps only this region's)."""
    pages = gateway.client("s3").get_paginator("list_buckets").paginate(Prefix=prefix)
    for page in pages:
        yield from (b["Name"] for b in page.get("Buckets", []) if b["Name"].startswith(prefix))


def bucket_health(ctx: Context) -> Check:
    found = LakeBucket(ctx).describe() or {}
    blocked = found.get("public_access_block") == BLOCK_ALL
    encrypted = found.get("encryption") in ("AES256", "aws:kms", "aws:kms:dsse")
    detail = (
        f"public access {'blocked' if blocked else 'NOT fully blocked'}, "
        f"default encryption {found.get('encryption') or 'NONE'}"
    )
    ok = blocked and encrypted
    return Check("Lake bucket is private and encrypted", ok, detail, "" if ok else UP)


def _days(rule: dict[str, Any], action: str, field: str) -> int | None:
    """The rule's days for ``action``; None when the rule is off or has no such action."""
    if rule.get("Status") != "Enabled":
        return None
    days = rule.get(action, {}).get(field)
    return None if days is None else int(days)


def _prefix(rule: dict[str, Any]) -> str | None:
    """The one prefix a rule covers; None when it filters on more (tags, sizes) than that.
    An empty filter is the whole bucket, which S3 may return as ``{}``."""
    where = rule.get("Filter")
    if where is None:
        return rule.get("Prefix")
    if set(where) - {"Prefix"}:
        return None
    return str(where.get("Prefix", ""))


class LakeBucket(Resource):
    """S3 bucket ``<name>-<suffix>-<account>-<region>`` (names are global across accounts)."""

    key = "lake_bucket"
    label = "S3 lake bucket"
    shown_on_create = ("retention_days", "encryption", "ownership")
    discovery = (Discovery(lambda n: n.bucket, list_buckets),)
    health = (bucket_health,)
    fixes = {
        "public_access_block": (
            "Public access to the lake bucket is not fully blocked: run 'iotpipe up' to turn "
            "all four Block Public Access settings back on."
        ),
        "ownership": "ACLs are enabled on the lake bucket: run 'iotpipe up' to disable them.",
        "encryption": "The lake bucket's default encryption is not SSE-S3: run 'iotpipe up'.",
    }

    @property
    def name(self) -> str:
        return self.ctx.names.bucket

    def enabled(self) -> bool:
        return lake_enabled(self.ctx)

    @property
    def _s3(self) -> Any:
        return self.ctx.client("s3")

    def desired(self) -> Props:
        days = self.ctx.config.lake.retention_days
        return {
            "public_access_block": dict(BLOCK_ALL),
            "ownership": OWNERSHIP,
            "encryption": ENCRYPTION,
            "retention_days": days,
            "errors_retention_days": days,
            "results_retention_days": min(RESULTS_DAYS, days),
            "abort_upload_days": ABORT_UPLOAD_DAYS,
            "tags": dict(self.ctx.tags),
        }

    # --- reading ---------------------------------------------------------------------------
    def _get(self, part: str, call: Callable[..., Any]) -> Any:
        """One GET; None when that part was never configured."""
        return get_or_none(lambda: call(Bucket=self.name), ABSENT[part])

    def describe(self) -> Props | None:
        # GetBucketLocation, not HeadBucket: a Get* is a read to every call log (and IAM).
        if get_or_none(lambda: self._s3.get_bucket_location(Bucket=self.name), *NO_BUCKET) is None:
            return None
        s3 = self._s3
        block = self._get("public_access_block", s3.get_public_access_block)
        owner = self._get("ownership", s3.get_bucket_ownership_controls)
        sse = self._get("encryption", s3.get_bucket_encryption)
        rules = self._get("lifecycle", s3.get_bucket_lifecycle_configuration)
        tags = self._get("tags", s3.get_bucket_tagging)
        owner_rules = (owner or {}).get("OwnershipControls", {}).get("Rules", [])
        sse_rules = (sse or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
        default = sse_rules[0].get("ApplyServerSideEncryptionByDefault", {}) if sse_rules else {}
        return {
            "public_access_block": (block or {}).get("PublicAccessBlockConfiguration"),
            "ownership": owner_rules[0].get("ObjectOwnership") if owner_rules else None,
            "encryption": default.get("SSEAlgorithm"),
            **self._lifecycle_fields((rules or {}).get("Rules", [])),
            "tags": {t["Key"]: t["Value"] for t in (tags or {}).get("TagSet", [])},
        }

    @staticmethod
    def _lifecycle_fields(rules: list[dict[str, Any]]) -> Props:
        """Days per rule ID, counted only when the rule still covers its prefix."""
        found: Props = dict.fromkeys(LIFECYCLE_FIELDS)
        for rule in rules:
            rid = rule.get("ID")
            if rid in RULES and _prefix(rule) == RULES[rid][0]:
                found[RULES[rid][1]] = _days(rule, "Expiration", "Days")
            elif rid == ABORT_RULE and _prefix(rule) == "":
                abort = "AbortIncompleteMultipartUpload"
                found["abort_upload_days"] = _days(rule, abort, "DaysAfterInitiation")
        return found

    # --- writing ---------------------------------------------------------------------------
    def _lifecycle(self, want: Props) -> dict[str, Any]:
        rules: list[dict[str, Any]] = [
            {
                "ID": rid,
                "Filter": {"Prefix": prefix},
                "Status": "Enabled",
                "Expiration": {"Days": want[field]},
            }
            for rid, (prefix, field) in RULES.items()
        ]
        rules.append(
            {
                "ID": ABORT_RULE,
                "Filter": {"Prefix": ""},
                "Status": "Enabled",
                "AbortIncompleteMultipartUpload": {
                    "DaysAfterInitiation": want["abort_upload_days"]
                },
            }
        )
        return {"Rules": rules}

    def _put(self, part: str, want: Props) -> None:
        s3, b = self._s3, self.name
        if part == "public_access_block":
            s3.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration=want[part])
        elif part == "ownership":
            rules = [{"ObjectOwnership": want[part]}]
            s3.put_bucket_ownership_controls(Bucket=b, OwnershipControls={"Rules": rules})
        elif part == "encryption":
            rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": want[part]}}
            config = {"Rules": [rule]}
            s3.put_bucket_encryption(Bucket=b, ServerSideEncryptionConfiguration=config)
        elif part == "lifecycle":
            s3.put_bucket_lifecycle_configuration(
                Bucket=b, LifecycleConfiguration=self._lifecycle(want)
            )
        elif part == "tags":
            tag_set = [{"Key": k, "Value": v} for k, v in sorted(want["tags"].items())]
            s3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": tag_set})

    @staticmethod
    def _parts(fields: Any) -> list[str]:
        """Fields -> the PUTs that set them (all lifecycle fields are one PUT), in order."""
        wanted = {"lifecycle" if f in LIFECYCLE_FIELDS else f for f in fields}
        return [p for p in ABSENT if p in wanted]

    def _create_bucket(self) -> None:
        params: dict[str, Any] = {"Bucket": self.name}
        if self.ctx.names.region != "us-east-1":  # S3 refuses us-east-1 as a constraint
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.ctx.names.region}
        try:
            self._s3.create_bucket(**params)
        except ClientError as exc:
            if error_code(exc) == "BucketAlreadyExists":
                raise ResourceStateError(
                    f"the S3 bucket name {self.name} belongs to another account; "
                    "choose another `name` or `suffix` in the config"
                ) from exc
            if error_code(exc) != "BucketAlreadyOwnedByYou":  # a repeated `up`
                raise

    def create(self) -> dict[str, Any]:
        self._create_bucket()
        wait(self.ctx, "s3", "bucket_exists", Bucket=self.name)
        want = self.desired()
        for part in self._parts(want):
            self._put(part, want)
        return self.outputs()

    def update(self, current: Props, changes: Changes) -> dict[str, Any]:
        want = self.desired()
        for part in self._parts(changes):
            self._put(part, want)
        return self.outputs()

    # --- emptying and deleting -------------------------------------------------------------
    def _versions(self) -> Iterator[dict[str, Any]] | None:
        """Every object version and delete marker, page by page; None: no bucket (known
        from the first page, before anything is deleted)."""
        paginator = self._s3.get_paginator("list_object_versions")
        pages: Iterator[dict[str, Any]] = iter(paginator.paginate(Bucket=self.name))
        first: dict[str, Any] | None = get_or_none(lambda: next(pages, {}), *NO_BUCKET)
        if first is None:
            return None
        return (
            entry
            for page in chain([first], pages)
            for part in ("Versions", "DeleteMarkers")
            for entry in page.get(part, [])
        )

    def contents(self) -> tuple[int, int] | None:
        """(objects, bytes) that ``delete`` would remove, counting every version; None
        when there is no bucket. Read-only: for ``down``'s prompt."""
        found = self._versions()
        if found is None:
            return None
        count = size = 0
        for entry in found:
            if "Size" in entry:  # delete markers have none and hold no data
                count += 1
                size += int(entry["Size"])
        return count, size

    def holdings(self) -> str | None:
        count, size = self.contents() or (0, 0)
        if not count:
            return None
        return f"{count:,} objects ({human_bytes(size)}) in bucket {self.name}"

    def empty(self) -> int | None:
        """Delete every version and delete marker; the number deleted, or None when there
        is no bucket. Raises if S3 refuses any key (e.g. AccessDenied).

        Each round lists from the start again rather than paging on: a page marker names a
        key just deleted (moto then ends the listing early), and anything Firehose wrote
        meanwhile is found too."""
        done = 0
        while True:
            page = get_or_none(
                lambda: self._s3.list_object_versions(Bucket=self.name, MaxKeys=DELETE_BATCH),
                *NO_BUCKET,
            )
            if page is None:
                return done or None
            found = [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            if not found:
                return done
            keys = iter({"Key": e["Key"], "VersionId": e["VersionId"]} for e in found)
            while batch := list(islice(keys, DELETE_BATCH)):
                self._delete_batch(batch)
                done += len(batch)

    def _delete_batch(self, batch: list[dict[str, str]]) -> None:
        answer = self._s3.delete_objects(Bucket=self.name, Delete={"Objects": batch, "Quiet": True})
        if errors := answer.get("Errors"):
            first = errors[0]
            raise ResourceStateError(
                f"could not empty bucket {self.name}: {len(errors)} object(s) refused, "
                f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message', '')}"
            )

    def delete(self) -> bool:
        if self.empty() is None:
            return False
        try:
            self._s3.delete_bucket(Bucket=self.name)
        except ClientError as exc:
            if error_code(exc) in NO_BUCKET:
                return False
            if error_code(exc) != "BucketNotEmpty":
                raise
            # Firehose flushed a buffer while we emptied: once more, then it must go.
            self.empty()
            self._s3.delete_bucket(Bucket=self.name)
        wait(self.ctx, "s3", "bucket_not_exists", Bucket=self.name)
        return True

    def outputs(self, current: Props | None = None) -> dict[str, Any]:
        names = self.ctx.names
        return {
            "name": self.name,
            "arn": names.bucket_arn,
            "data": lakeschema.data_location(self.name),
            "results": lakeschema.results_location(self.name),
        }
