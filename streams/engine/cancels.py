"""Cancels: ending the tasks an operator cancelled, wherever the runner holds their entries.

A cancel is data in the transport (streams.redis.control), not a message, so a
runner learns of it by asking: once per claim interval whether any cancel
counts at all (``follow``); only while one does, the request ids of each read
batch (``of``, one call per batch) and of every entry it holds. An entry held
by the runner is in one of four places, and a cancel ends it there:

=================  ===================================================================
where              what a cancel does
=================  ===================================================================
read batch         never queued: its cancelled transition goes to the outbox
inbox queue        taken out (``Inbox.withdraw``) and ended the same way
taken by a worker  marked in ``skip``: the worker ends it instead of starting it
running            its worker's task is cancelled; the worker absorbs that
                   cancellation (``absorb``) and commits the cancelled transition
=================  ===================================================================

Only one-at-a-time workers record what runs (``taken``, ``running``): a batched
stage's running batch is not cancelled, its queued entries are. Cancelling is
cooperative: a handler awaiting (I/O, a thread) ends at once, but work handed to
a thread runs on in it until it returns (its result dropped), and a handler
blocking the event loop is cancelled only at its next await or as it returns
(then the cancel wins over what it returned). Blocking work is stopped for
real only in a KillablePool (streams.killable), whose ``run`` kills its process
when the awaiting task is cancelled, as a cancel does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from streams.delivery import Delivery
from streams.engine.inbox import Inbox
from streams.engine.outbox import Outbox
from streams.engine.outcomes import Outcomes
from streams.engine.watchdog import Slot
from streams.transition import Transition
from streams.transport import Cancel, StageTransport

log = logging.getLogger("millstream.runner")


class Cancels:
    """The cancel bookkeeping of one runner; ``active`` while any cancel may count."""

    def __init__(self, transport: StageTransport, stage: str, inbox: Inbox, outbox: Outbox,
                 outcomes: Outcomes, cancellable: bool) -> None:
        self.transport, self.stage, self.inbox, self.outbox = transport, stage, inbox, outbox
        self.outcomes, self.cancellable = outcomes, cancellable
        self.active = False
        self.taken: dict[Slot, list[Delivery]] = {}  # what each one-at-a-time worker took from the inbox
        self.running: dict[Slot, Delivery] = {}  # the entry each such worker's handler runs now
        self.skip: dict[str, Cancel] = {}  # entry id -> cancel, for taken entries not yet started
        self.cancelling: dict[str, Cancel] = {}  # entry id -> cancel sent into its running handler

    async def of(self, deliveries: Sequence[Delivery]) -> Mapping[str, Cancel]:
        """The cancels of these entries' tasks; none when the lookup failed (``follow`` asks again)."""
        try:
            return await self.transport.cancelled([d.request_id for d in deliveries])
        except self.transport.transient as error:
            log.warning("stage %s: looking up cancels failed (%s); the entries run unless found "
                        "cancelled later", self.stage, error)
            return {}

    def transition(self, d: Delivery, cancel: Cancel) -> Transition:
        """``d``'s cancelled transition; never raises."""
        try:
            return self.outcomes.cancelled(d, cancel)
        except Exception as error:  # noqa: BLE001 - last resort: the entry ends, the runner goes on
            return self.outcomes.last_resort(d, error)

    def absorb(self, d: Delivery, slot: Slot) -> Cancel | None:
        """The cancel that cancelled ``d``'s handler (its cancellation absorbed), else None.

        None as well when something else cancelled the worker too (the end of the
        shutdown grace): the worker goes on cancelling and the entry is handed back.
        """
        cancel = self.cancelling.pop(d.id, None)
        if cancel is None or slot.task.uncancel() > 0:
            return None
        return cancel

    async def follow(self) -> None:
        """Learn whether any cancel counts; if one does, end the held entries of tasks it names."""
        if not self.cancellable:
            return
        self.active = await self.transport.cancels()
        if not self.active or not self.inbox.held:
            return
        unfinished = [*self.inbox.queued(), *(d for _, ds in self._unstarted() for d in ds),
                      *(d for d in self.running.values() if d.id not in self.cancelling)]
        if unfinished:
            cancels = await self.transport.cancelled(list({d.request_id: None for d in unfinished}))
            if cancels:
                self._end(cancels)

    def _unstarted(self) -> list[tuple[Slot, list[Delivery]]]:
        """Per worker, the entries it took and has not started yet."""
        found = []
        for slot, batch in self.taken.items():
            now = self.running.get(slot)
            start = next((k + 1 for k, d in enumerate(batch) if d is now), 0)
            found.append((slot, batch[start:]))
        return found

    def _end(self, cancels: Mapping[str, Cancel]) -> None:
        """End the entries of ``cancels`` where they are now (the lookup awaited: things moved)."""
        for d in self.inbox.withdraw(cancels):
            self.outbox.put(self.transition(d, cancels[d.request_id]))
        for _, unstarted in self._unstarted():
            self.skip.update({d.id: cancels[d.request_id] for d in unstarted if d.request_id in cancels})
        for slot, d in self.running.items():
            cancel = cancels.get(d.request_id)
            if cancel is not None and d.id not in self.cancelling:
                self.cancelling[d.id] = cancel
                slot.task.cancel()
                log.info("stage %s: task %s was cancelled by %s; cancelling its handler",
                         self.stage, d.request_id, cancel.by)
