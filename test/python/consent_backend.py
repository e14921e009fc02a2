"""A backend in Python that uses avatar-consent the way docs/integrators.md says, with Temporal's
Python SDK and nothing from this repository but the published contract (contract/*.schema.json).

It starts the consent by name with JSON built from the schema's examples (nulls for absent fields,
ISO-8601 durations), waits in its own workflow for the completion signal and checks it against the
result schema; then sends bad input and gets the invalid_input signal. With AVATAR_CONSENT_CODEC_KEYS
set it talks to the worker through the documented payload encryption (encryption_codec.py).

Prints one JSON line with what it saw, for test/integration/python-backend.test.ts; exits non-zero
when anything differs from the contract.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import dataclasses
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import temporalio.converter
from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.worker import Worker

from caller_workflow import ConsentCaller
from encryption_codec import EncryptionCodec

CONTRACT = Path(__file__).resolve().parents[2] / "contract"
WORKFLOW_TYPE = "avatarConsentWorkflow"
GROUP_ID_ATTRIBUTE = SearchAttributeKey.for_keyword("AvatarGroupId")


def schema(name: str) -> dict[str, Any]:
    return json.loads((CONTRACT / f"{name}.schema.json").read_text())


def validator(name: str) -> jsonschema.Draft202012Validator:
    document = schema(name)
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator(document, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def input_from_examples(group_id: str, email: str, caller_id: str) -> dict[str, Any]:
    """The example with the most fields, made ours: every optional field present, null when not given."""
    examples = schema("workflow-input")["examples"]
    example = copy.deepcopy(max(examples, key=lambda e: json.dumps(e).count("null")))
    example["groupId"] = group_id
    example["recipient"] = {"email": email, "name": None}
    example["consentText"] = None
    example["notify"] = {"workflowId": caller_id, "runId": None, "signalName": None}
    # Fast polling for a test, in ISO-8601 as java.time.Duration or isodate would write it.
    example["policy"].update({"pollInitialInterval": "PT1S", "pollMaxInterval": "PT2S", "pollBackoffCoefficient": None})
    return example


def schema_error_paths(errors) -> list[str]:
    """Where the schema says the input is wrong: for "T or null" fields, the reason inside T."""
    paths: set[str] = set()
    for error in errors:
        inner = [e for e in error.context or [] if not (e.validator == "type" and e.validator_value == "null")]
        if inner:
            paths.update(schema_error_paths(inner))
        else:
            paths.add("/".join(str(p) for p in error.absolute_path) or "(root)")
    return sorted(paths)


async def start_consent(client: Client, task_queue: str, consent_input: dict[str, Any]):
    group_id = consent_input["groupId"]
    return await client.start_workflow(
        WORKFLOW_TYPE,
        consent_input,
        id=f"avatar-consent-{group_id}",
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes([SearchAttributePair(GROUP_ID_ATTRIBUTE, group_id)]),
    )


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--consent-task-queue", required=True)
    parser.add_argument("--group-id", required=True)
    parser.add_argument("--email", required=True)
    parser.add_argument("--bad-group-id", required=True)
    parser.add_argument("--timeout", type=float, default=90)
    args = parser.parse_args()

    converter = temporalio.converter.default()
    encrypted = bool(os.environ.get("AVATAR_CONSENT_CODEC_KEYS"))
    if encrypted:
        converter = dataclasses.replace(converter, payload_codec=EncryptionCodec.from_env())
    client = await Client.connect(args.address, namespace=args.namespace, data_converter=converter)

    input_schema = validator("workflow-input")
    result_schema = validator("workflow-result")
    own_queue = f"python-backend-{uuid.uuid4()}"
    report: dict[str, Any] = {"encrypted": encrypted}

    async with Worker(client, task_queue=own_queue, workflows=[ConsentCaller]):
        # 1. A good input, checked against the schema before it is sent, as an integrator would.
        caller = await client.start_workflow(ConsentCaller.run, id=f"py-caller-{uuid.uuid4()}", task_queue=own_queue)
        good = input_from_examples(args.group_id, args.email, caller.id)
        input_schema.validate(good)
        consent = await start_consent(client, args.consent_task_queue, good)
        signal = await asyncio.wait_for(caller.result(), args.timeout)
        result_schema.validate(signal)
        result = await asyncio.wait_for(consent.result(), args.timeout)
        report["sent"] = good
        report["approved"] = {"signal": signal, "result": result, "workflowId": consent.id}

        # 2. Bad input: the schema refuses it, and so does the worker, which tells the caller.
        bad_caller = await client.start_workflow(ConsentCaller.run, id=f"py-caller-{uuid.uuid4()}", task_queue=own_queue)
        bad = {
            "groupId": args.bad_group_id,
            "recipient": {"email": "not an address", "name": None},
            "notify": {"workflowId": bad_caller.id, "runId": None, "signalName": None},
            "policy": {"deadline": "P1M"},
            "priority": "high",
        }
        report["badInputSchemaErrors"] = schema_error_paths(input_schema.iter_errors(bad))
        await start_consent(client, args.consent_task_queue, bad)
        bad_signal = await asyncio.wait_for(bad_caller.result(), args.timeout)
        result_schema.validate(bad_signal)
        report["invalid"] = {"signal": bad_signal}

    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's teardown: on a loaded machine a thread of the SDK's runtime or of the
    # codec's cffi can still hold the GIL machinery there and abort the process ("PyGILState_Release
    # ... finalizing") after every check has passed and the report is written.
    os._exit(code)
