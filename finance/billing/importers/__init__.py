"""One importer per export format, and ``--format auto``.

``IMPORTERS`` maps each format name to its importer. ``choose(path, name, format)``
returns the named importer, or for ``auto`` the single importer whose ``identify`` accepts
the file's head (none or two is an error naming what was tried).
"""

from __future__ import annotations

from pathlib import Path

from otelspend.finance.billing.importers.anthropic_cost import AnthropicCost
from otelspend.finance.billing.importers.anthropic_usage import AnthropicUsage
from otelspend.finance.billing.importers.aws_cur import AwsCur
from otelspend.finance.billing.importers.base import Counters, Head, Importer, Source, sniff
from otelspend.finance.billing.importers.focus import Focus
from otelspend.finance.billing.importers.openai_costs import OpenAICosts
from otelspend.finance.billing.importers.openai_usage import OpenAIUsage
from otelspend.finance.billing.lines import BillingImportError

IMPORTERS: dict[str, Importer] = {
    importer.format: importer
    for importer in (OpenAICosts(), OpenAIUsage(), AnthropicCost(), AnthropicUsage(), Focus(), AwsCur())
}
FORMATS: tuple[str, ...] = ("auto", *IMPORTERS)


def choose(path: Path, name: str, format: str = "auto") -> Importer:
    """The importer for a file: by name, or recognised from its head."""
    if format != "auto":
        importer = IMPORTERS.get(format)
        if importer is None:
            raise BillingImportError(name, "", "format", format, "one of " + ", ".join(FORMATS))
        return importer
    head = sniff(path, name)
    found = [importer for importer in IMPORTERS.values() if importer.identify(head)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise BillingImportError(
            name,
            "",
            expected=f"a billing export otelspend reads ({head.kind} file not recognised as any of: "
            + ", ".join(IMPORTERS)
            + "); give --format",
        )
    raise BillingImportError(
        name, "", expected="one format, but it looks like " + " and ".join(i.format for i in found) + "; give --format"
    )


__all__ = ["FORMATS", "IMPORTERS", "Counters", "Head", "Importer", "Source", "choose", "sniff"]
