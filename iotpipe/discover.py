"""Find the suffixes of a deployment's leftovers when the state file is gone.

Every name is ``<name>-<kind>-<suffix>``, so listing a few kinds of resource by prefix
recovers the suffix: ``down`` then works on a fresh checkout or after ``rm -r .iotpipe``.

Everything is looked up in the command's region and account. Regional services list only
what is there; IAM is global, so a role counts only when its name carries this region
(``<name>-fn-role-<region>-<suffix>``), or, for roles named before that, when its policy
grants this region's stream: a deployment in another region is never found from here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from botocore.exceptions import ClientError

from iotpipe.aws import Gateway
from iotpipe.config import Config
from iotpipe.resources.roles import grants


def _suffixes(names: Iterable[str], prefix: str) -> set[str]:
    pattern = re.compile(re.escape(prefix) + r"([a-z0-9]{4,8})$")
    return {m.group(1) for n in names if (m := pattern.match(n))}


def find_suffixes(config: Config, gateway: Gateway, ident: dict[str, str]) -> list[str]:
    """Suffixes for which any stream, function, role or queue of this deployment exists."""
    base = config.name
    found: set[str] = set()

    kinesis = gateway.client("kinesis")
    for page in kinesis.get_paginator("list_streams").paginate():
        found |= _suffixes(page.get("StreamNames", []), f"{base}-stream-")

    lam = gateway.client("lambda")
    for page in lam.get_paginator("list_functions").paginate():
        found |= _suffixes((f["FunctionName"] for f in page["Functions"]), f"{base}-processor-")

    found |= _role_suffixes(config, gateway, ident)

    sqs = gateway.client("sqs")
    urls = sqs.list_queues(QueueNamePrefix=f"{base}-failures-").get("QueueUrls", [])
    found |= _suffixes((u.rsplit("/", 1)[-1] for u in urls), f"{base}-failures-")

    iot = gateway.client("iot")
    for page in iot.get_paginator("list_topic_rules").paginate():
        rules = (r["ruleName"] for r in page.get("rules", []))
        found |= _suffixes(rules, f"{base.replace('-', '_')}_rule_")

    logs = gateway.client("logs")
    prefix = f"/aws/lambda/{base}-processor-"
    for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix):
        found |= _suffixes((g["logGroupName"] for g in page["logGroups"]), prefix)

    try:
        ts = gateway.client("timestream-write")
        token: dict[str, str] = {}
        while True:  # no boto3 paginator for this one
            page = ts.list_databases(**token)
            found |= _suffixes((d["DatabaseName"] for d in page["Databases"]), f"{base}-db-")
            if not page.get("NextToken"):
                break
            token = {"NextToken": page["NextToken"]}
    except ClientError:
        pass  # Timestream closed to this account: nothing of ours can be there
    return sorted(found)


def _role_suffixes(config: Config, gateway: Gateway, ident: dict[str, str]) -> set[str]:
    base, region = config.name, gateway.region
    iam = gateway.client("iam")
    marker = f":kinesis:{region}:{ident['account']}:stream/{base}-stream-"
    found: set[str] = set()
    for page in iam.get_paginator("list_roles").paginate():
        names = [r["RoleName"] for r in page["Roles"]]
        for kind in ("fn-role", "rule-role"):
            found |= _suffixes(names, f"{base}-{kind}-{region}-")
            for suffix in _suffixes(names, f"{base}-{kind}-"):
                if grants(iam, f"{base}-{kind}-{suffix}", f"{marker}{suffix}"):
                    found.add(suffix)
    return found
