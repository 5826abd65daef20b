"""A small IoT Analytics service model, so the legacy path can be tested with a Stubber.

boto3 >= 1.42.51 no longer ships the iotanalytics model. This is the subset iotpipe calls
(channel, datastore, pipeline: create/describe/delete, pipeline update), written from the
2017-11-27 API: same operation names, HTTP bindings and member names, loose constraints.
Stubber validates our requests and the scripted responses against it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import botocore.session

API_VERSION = "2017-11-27"

_S = {"shape": "String"}


def _struct(members: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    shape: dict[str, Any] = {"type": "structure", "members": members}
    if required:
        shape["required"] = required
    return shape


def _uri(name: str) -> dict[str, Any]:
    return _struct({name: {"shape": "String", "location": "uri", "locationName": name}}, [name])


def _op(name: str, method: str, uri: str, code: int = 200, out: bool = True) -> dict[str, Any]:
    op: dict[str, Any] = {
        "name": name,
        "http": {"method": method, "requestUri": uri, "responseCode": code},
        "input": {"shape": f"{name}Request"},
        "errors": [
            {"shape": "ResourceNotFoundException"},
            {"shape": "ResourceAlreadyExistsException"},
        ],
    }
    if out:
        op["output"] = {"shape": f"{name}Response"}
    return op


def _error(code: int) -> dict[str, Any]:
    return {
        "type": "structure",
        "members": {"message": _S},
        "exception": True,
        "error": {"httpStatusCode": code},
    }


_ACTIVITY_FIELDS = {
    "ChannelActivity": {"name": _S, "channelName": _S, "next": _S},
    "FilterActivity": {"name": _S, "filter": _S, "next": _S},
    "AddAttributesActivity": {"name": _S, "attributes": {"shape": "Attributes"}, "next": _S},
    "DatastoreActivity": {"name": _S, "datastoreName": _S},
}

MODEL: dict[str, Any] = {
    "version": "2.0",
    "metadata": {
        "apiVersion": API_VERSION,
        "endpointPrefix": "iotanalytics",
        "protocol": "rest-json",
        "serviceFullName": "AWS IoT Analytics",
        "serviceId": "IoTAnalytics",
        "signatureVersion": "v4",
        "signingName": "iotanalytics",
        "uid": f"iotanalytics-{API_VERSION}",
    },
    "operations": {
        "CreateChannel": _op("CreateChannel", "POST", "/channels", 201),
        "DescribeChannel": _op("DescribeChannel", "GET", "/channels/{channelName}"),
        "DeleteChannel": _op("DeleteChannel", "DELETE", "/channels/{channelName}", 204, False),
        "CreateDatastore": _op("CreateDatastore", "POST", "/datastores", 201),
        "DescribeDatastore": _op("DescribeDatastore", "GET", "/datastores/{datastoreName}"),
        "DeleteDatastore": _op(
            "DeleteDatastore", "DELETE", "/datastores/{datastoreName}", 204, False
        ),
        "CreatePipeline": _op("CreatePipeline", "POST", "/pipelines", 201),
        "DescribePipeline": _op("DescribePipeline", "GET", "/pipelines/{pipelineName}"),
        "UpdatePipeline": _op("UpdatePipeline", "PUT", "/pipelines/{pipelineName}", 200, False),
        "DeletePipeline": _op("DeletePipeline", "DELETE", "/pipelines/{pipelineName}", 204, False),
    },
    "shapes": {
        "String": {"type": "string"},
        "Boolean": {"type": "boolean"},
        "Integer": {"type": "integer"},
        "Attributes": {"type": "map", "key": _S, "value": _S},
        "RetentionPeriod": _struct(
            {"unlimited": {"shape": "Boolean"}, "numberOfDays": {"shape": "Integer"}}
        ),
        "Tag": _struct({"key": _S, "value": _S}, ["key", "value"]),
        "TagList": {"type": "list", "member": {"shape": "Tag"}},
        **{name: _struct(fields) for name, fields in _ACTIVITY_FIELDS.items()},
        "PipelineActivity": _struct(
            {
                "channel": {"shape": "ChannelActivity"},
                "filter": {"shape": "FilterActivity"},
                "addAttributes": {"shape": "AddAttributesActivity"},
                "datastore": {"shape": "DatastoreActivity"},
            }
        ),
        "PipelineActivities": {"type": "list", "member": {"shape": "PipelineActivity"}},
        "CreateChannelRequest": _struct(
            {
                "channelName": _S,
                "retentionPeriod": {"shape": "RetentionPeriod"},
                "tags": {"shape": "TagList"},
            },
            ["channelName"],
        ),
        "CreateChannelResponse": _struct({"channelName": _S, "channelArn": _S}),
        "DescribeChannelRequest": _uri("channelName"),
        "DescribeChannelResponse": _struct({"channel": {"shape": "Named"}}),
        "DeleteChannelRequest": _uri("channelName"),
        "CreateDatastoreRequest": _struct(
            {
                "datastoreName": _S,
                "retentionPeriod": {"shape": "RetentionPeriod"},
                "tags": {"shape": "TagList"},
            },
            ["datastoreName"],
        ),
        "CreateDatastoreResponse": _struct({"datastoreName": _S, "datastoreArn": _S}),
        "DescribeDatastoreRequest": _uri("datastoreName"),
        "DescribeDatastoreResponse": _struct({"datastore": {"shape": "Named"}}),
        "DeleteDatastoreRequest": _uri("datastoreName"),
        "Named": _struct({"name": _S, "arn": _S, "status": _S}),
        "CreatePipelineRequest": _struct(
            {
                "pipelineName": _S,
                "pipelineActivities": {"shape": "PipelineActivities"},
                "tags": {"shape": "TagList"},
            },
            ["pipelineName", "pipelineActivities"],
        ),
        "CreatePipelineResponse": _struct({"pipelineName": _S, "pipelineArn": _S}),
        "DescribePipelineRequest": _uri("pipelineName"),
        "DescribePipelineResponse": _struct({"pipeline": {"shape": "Pipeline"}}),
        "Pipeline": _struct({"name": _S, "arn": _S, "activities": {"shape": "PipelineActivities"}}),
        "UpdatePipelineRequest": _struct(
            {
                "pipelineName": {
                    "shape": "String",
                    "location": "uri",
                    "locationName": "pipelineName",
                },
                "pipelineActivities": {"shape": "PipelineActivities"},
            },
            ["pipelineName", "pipelineActivities"],
        ),
        "DeletePipelineRequest": _uri("pipelineName"),
        "ResourceNotFoundException": _error(404),
        "ResourceAlreadyExistsException": _error(409),
    },
}

# One rule: every request goes to a fixed (never contacted) endpoint.
RULESET: dict[str, Any] = {
    "version": "1.0",
    "parameters": {"Region": {"builtIn": "AWS::Region", "required": False, "type": "String"}},
    "rules": [
        {
            "conditions": [],
            "endpoint": {"url": "https://iotanalytics.invalid", "properties": {}, "headers": {}},
            "type": "endpoint",
        }
    ],
}


def fake_iotanalytics_client(data_dir: Path) -> Any:
    """A real botocore client for the fake model (credentials are never used: Stubber)."""
    folder = data_dir / "iotanalytics" / API_VERSION
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(MODEL))
    (folder / "endpoint-rule-set-1.json").write_text(json.dumps(RULESET))
    session = botocore.session.Session()
    session.get_component("data_loader").search_paths.insert(0, str(data_dir))
    return session.create_client(
        "iotanalytics",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
