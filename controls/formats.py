"""Request bodies for each sink format: the JSON event as is, or a Slack message.

Slack incoming webhooks take ``{"text": ..., "blocks": [...]}``: ``text`` is the
notification fallback, ``blocks`` the Block Kit layout (header, section with mrkdwn
fields, context). Every other field of the event stays in the JSON format only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

Format = Literal["json", "slack"]
_ICON = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":white_check_mark:"}


def body(event: Mapping[str, Any], fmt: Format) -> bytes:
    """The request body of one delivery."""
    if fmt == "slack":
        return json.dumps(slack_message(event), separators=(",", ":")).encode()
    return json.dumps(event, separators=(",", ":")).encode()


def _measure(value: Mapping[str, str] | None) -> str:
    return f"{value['value']} {value['unit']}" if value else "—"


def slack_message(event: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message for an event."""
    icon = _ICON.get(str(event.get("severity")), "")
    title = f"{icon} {event['title']}".strip()
    fields = [
        {"type": "mrkdwn", "text": f"*Type*\n`{event['type']}`"},
        {"type": "mrkdwn", "text": f"*Severity*\n{event['severity']}"},
        {"type": "mrkdwn", "text": f"*Observed*\n{_measure(event.get('observed'))}"},
    ]
    if event.get("threshold"):
        fields.append({"type": "mrkdwn", "text": f"*Threshold*\n{_measure(event['threshold'])}"})
    if event.get("expected"):
        fields.append({"type": "mrkdwn", "text": f"*Expected*\n{_measure(event['expected'])}"})
    dims = ", ".join(f"{k}={v}" for k, v in dict(event.get("dimensions") or {}).items() if v)
    if dims:
        fields.append({"type": "mrkdwn", "text": f"*Where*\n{dims}"})
    links = dict(event.get("links") or {})
    context = f"<{links['dashboard']}|dashboard> · <{links['api']}|API> · id `{event['id']}`" if links else event["id"]
    return {
        "text": title,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": str(event["title"])[:150]}},
            {"type": "section", "fields": fields[:10]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }
