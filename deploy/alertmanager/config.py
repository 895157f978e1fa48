"""Alertmanager configuration: routing by severity and the inhibitions between millstream alerts.

``config()`` renders the template in deploy/alertmanager/alertmanager.yml (the
receivers' URLs are placeholders to replace) and, with a webhook URL and short
timings, the configuration of the end-to-end test: the same routes and rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PAGER_URL = "http://alert-router.monitoring.svc:9095/millstream/pager"
TICKETS_URL = "http://alert-router.monitoring.svc:9095/millstream/tickets"
# When a group has no live consumer, its stall and stuck entries are consequences.
CONSEQUENCES_OF_NO_CONSUMER = "MillstreamPipelineStalled|MillstreamPendingStuck|MillstreamLagGrowing"


@dataclass(frozen=True, slots=True)
class Timing:
    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"


def _receiver(name: str, url: str) -> dict[str, Any]:
    return {"name": name, "webhook_configs": [{"url": url, "send_resolved": True}]}


def config(pager_url: str = PAGER_URL, tickets_url: str = TICKETS_URL,
           timing: Timing = Timing()) -> dict[str, Any]:
    return {
        "route": {
            "receiver": "tickets",
            "group_by": ["alertname", "pipeline", "model"],
            "group_wait": timing.group_wait,
            "group_interval": timing.group_interval,
            "repeat_interval": timing.repeat_interval,
            "routes": [{"receiver": "pager", "matchers": ['severity="critical"']}],
        },
        "inhibit_rules": [
            {
                "source_matchers": ['alertname="MillstreamNoLiveConsumer"'],
                "target_matchers": [f'alertname=~"{CONSEQUENCES_OF_NO_CONSUMER}"'],
                "equal": ["pipeline", "stream", "group"],
            },
            {
                "source_matchers": ['alertname="MillstreamTritonUnreachable"'],
                "target_matchers": ['alertname="MillstreamTritonDegraded"'],
                "equal": ["model"],
            },
        ],
        "receivers": [_receiver("pager", pager_url), _receiver("tickets", tickets_url)],
    }
