"""Seed 000's legacy lists: their names, the task's id fields and the JSON each list carries.

The image-translation service that millstream replaced spoke Redis lists
(/work/shared/CONTRACTS.md): producers push tasks onto ``img:translate:tasks``;
consumers BLPOP outcomes from ``img:translate:success`` / ``img:translate:error``
(and, when enabled, ``hosting:tasks`` and ``ocr:results``). Everything here is
that service's, not millstream's:

* the list names (``TASKS`` ... ``OCR_RESULTS``, all of them in ``LISTS``) and
  which are mirrored (``LegacySettings``, ``MILLSTREAM_LEGACY_*``);
* the task's id fields, ``ID_FIELDS`` (request_id, image_id), which the
  pipeline declares so that error records and bridge refusals report both;
* the outcome JSON: ``success_contract``, ``error_contract``, and the two
  mirror processors that push them (``mirror_success``, ``mirror_errors``).

The mechanism is generic and lives in ``streams``: ``streams.bridge.ListIngress``
moves the task list into a stream (its Redis runner is streams.redis.bridge),
and a processor's ``Outgoing(list=...)`` pushes onto a list in the stage's
atomic commit, so each outcome is mirrored exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streams.message import Handler, Message, Outgoing

TASKS = "img:translate:tasks"
SUCCESS = "img:translate:success"
ERROR = "img:translate:error"
HOSTING = "hosting:tasks"
OCR_RESULTS = "ocr:results"
LISTS = (TASKS, SUCCESS, ERROR, HOSTING, OCR_RESULTS)
ID_FIELDS = ("request_id", "image_id")


@dataclass(frozen=True, slots=True)
class LegacySettings:
    """Which legacy lists are mirrored (``MILLSTREAM_LEGACY_*``)."""

    legacy_ingress: bool = True
    legacy_success: bool = True
    legacy_error: bool = True
    legacy_hosting: bool = False
    legacy_ocr_results: bool = False


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _id(value: Any) -> str | None:
    """An id for the error list: text as it is, a number's digits; nothing else is an id."""
    if value is None or isinstance(value, Mapping | list | bool):
        return None
    return value if isinstance(value, str) else str(value)


def success_contract(payload: Mapping[str, Any]) -> dict[str, Any]:
    """``img:translate:success`` JSON: exactly request_id, image_id, image_url."""
    return {"request_id": _text(payload.get("request_id")), "image_id": _text(payload.get("image_id")),
            "image_url": _text(payload.get("image_url"))}


def error_contract(record: Mapping[str, Any]) -> dict[str, Any]:
    """``img:translate:error`` JSON from an error record: the task's own ids, or null.

    The ids are the record's ``ids`` (ID_FIELDS, which the pipeline declares),
    read from the task's own text whatever its JSON held
    (streams.engine.error_records), so a number stays as written; a record
    without them (an older one) gives its payload's.
    """
    ids = record.get("ids")
    if not isinstance(ids, Mapping):
        ids = record.get("payload")
        ids = ids if isinstance(ids, Mapping) else {}
    timestamp = record.get("timestamp")
    return {"request_id": _id(ids.get("request_id")), "image_id": _id(ids.get("image_id")),
            "error_message": str(record.get("error_message", "")),
            "timestamp": timestamp if type(timestamp) is int else int(time.time())}


def mirror_success(lists: Sequence[str]) -> Handler:
    """A processor mirroring each success onto ``lists`` (e.g. success and hosting)."""

    async def mirror(message: Message) -> list[Outgoing]:
        contract = success_contract(message.payload)
        return [Outgoing(contract, list=key) for key in lists]

    return mirror


def mirror_errors(list_key: str, stages: Collection[str]) -> Handler:
    """A processor mirroring error records of the task ``stages`` onto ``list_key``.

    Errors of other stages (a webhook, a mirror) are not the task's outcome:
    the task already has one, and a second entry would break the contract.
    """

    async def mirror(message: Message) -> list[Outgoing]:
        if message.payload.get("stage") not in stages:
            return []
        return [Outgoing(error_contract(message.payload), list=list_key)]

    return mirror
