"""Dead letters view: filter, edit a payload (a merge patch), replay one or a filtered set, purge."""

from __future__ import annotations

from typing import Any

import orjson

from tests.browser.stack import Stack
from tests.browser.support import expect, letters_of, reached


def test_filtering_by_stage_and_reason_lists_only_the_matching_letters(page: Any, base_url: str):
    page.goto(base_url + "/#/dlq")
    expect(page.locator('[data-table="dlq"] tbody tr[data-stage="work"]').first).to_be_visible()
    page.get_by_label("stage").select_option("ingest")
    page.get_by_label("reason").fill("bad-a")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator('[data-table="dlq"] tbody tr')
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("p-a1")
    expect(rows.nth(1)).to_contain_text("p-a2")
    expect(page.locator('[data-field="total"]')).to_have_text("2 matching")
    assert "stage=ingest" in page.url and "reason=bad-a" in page.url


def test_an_edited_payload_is_saved_as_a_merge_patch_and_replayed_to_its_stream(page: Any, base_url: str,
                                                                                stack: Stack):
    letter_id = letters_of(stack, "ingest")["fixme"][b"id"].decode()
    page.goto(base_url + "/#/dlq?stage=ingest")
    page.locator(f'tr[data-id="{letter_id}"] a').click()
    editor = page.get_by_label("payload")
    payload = orjson.loads(editor.input_value())
    assert payload == {"poison": True, "note": "fix me", "keep": {"a": 1, "b": 2}}
    del payload["poison"]
    payload["keep"]["b"] = 3
    editor.fill(orjson.dumps(payload).decode())
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator(".banner-info")).to_contain_text('"poison":null')
    stored = orjson.loads(letters_of(stack, "ingest")["fixme"][b"d"])
    assert stored == {"note": "fix me", "keep": {"a": 1, "b": 3}}

    page.get_by_role("button", name="Replay…").click()
    expect(page.locator("#confirm-text")).to_contain_text("Move 1 dead letter")
    page.locator("#confirm-ok").click()
    expect(page).to_have_url(base_url + "/#/dlq?stage=ingest")
    assert "fixme" not in letters_of(stack, "ingest")
    # Back in its stream without the poison, it now goes through both stages.
    assert stack.wait(reached(stack, "fixme", "work", "forwarded"))


def test_replaying_one_letter_moves_only_that_letter_back_to_its_stream(page: Any, base_url: str, stack: Stack):
    before = letters_of(stack, "ingest")
    letter_id = before["solo"][b"id"]
    page.goto(base_url + f"/#/dlq/ingest/{letter_id.decode()}")
    page.get_by_role("button", name="Replay…").click()
    expect(page.locator("#confirm-text")).to_contain_text(f"Move 1 dead letter (stage ingest, letter {letter_id.decode()})")
    page.locator("#confirm-ok").click()
    expect(page.locator(".banner-info")).to_contain_text("replay: 1 moved")
    # Still poisoned, it is dead-lettered again: a new letter, the old one gone, the others untouched.
    again = stack.wait(lambda: _relettered(stack, letter_id))
    assert again[b"id"] != letter_id
    assert {rid: f[b"id"] for rid, f in letters_of(stack, "ingest").items() if rid != "solo"} == \
        {rid: f[b"id"] for rid, f in before.items() if rid != "solo"}


async def _relettered(stack: Stack, old_id: bytes) -> dict[bytes, bytes] | None:
    for entry, fields in await stack.redis.xrange(stack.keys.dlq("ingest")):
        if fields[b"rid"] == b"solo" and entry != old_id:
            return {b"id": entry, **fields}
    return None


def test_replaying_the_filtered_set_asks_with_the_dry_run_count_then_moves_them(page: Any, base_url: str,
                                                                              stack: Stack):
    stack.soon(lambda: setattr(stack.faults, "fragile", False))  # the bug is fixed: replay what it broke
    page.goto(base_url + "/#/dlq?stage=work")
    expect(page.locator('[data-table="dlq"] tbody tr')).to_have_count(2)
    page.get_by_role("button", name="Replay matching…").click()
    expect(page.locator("#confirm-text")).to_contain_text("Move 2 dead letters (stage work)")
    page.locator("#confirm-ok").click()
    expect(page.locator(".banner-info")).to_contain_text("replay: 2 moved")
    expect(page.locator(".table-box .empty")).to_have_text("no dead letters")
    assert letters_of(stack, "work") == {}
    for rid in ("f-1", "f-2"):
        assert stack.wait(reached(stack, rid, "work", "forwarded"))


def test_purge_deletes_the_matching_letters_only_once_confirmed(page: Any, base_url: str, stack: Stack):
    page.goto(base_url + "/#/dlq?stage=ingest&reason=bad-b")
    expect(page.locator('[data-table="dlq"] tbody tr')).to_have_count(1)
    page.get_by_role("button", name="Purge matching…").click()
    expect(page.locator("#confirm-text")).to_contain_text("Delete 1 dead letter")
    page.locator("#confirm-cancel").click()
    expect(page.locator("#confirm-dialog")).not_to_be_visible()
    assert "p-b1" in letters_of(stack, "ingest")
    page.get_by_role("button", name="Purge matching…").click()
    page.locator("#confirm-ok").click()
    expect(page.locator(".banner-info")).to_contain_text("purge: 1 removed")
    assert "p-b1" not in letters_of(stack, "ingest")
    assert {"p-a1", "p-a2", "hostile"} <= set(letters_of(stack, "ingest"))
