"""A job result's `analysis` as a few terminal lines (`docflow status`, `docflow upload --wait`,
`make demo`): each field that has values, the first few with where they were found, then the
count of unverified values by reason."""

from __future__ import annotations

from collections import Counter
from typing import Any

SHOWN = 3  # values shown per field; the rest are counted


def lines(analysis: Any, indent: str = "  ") -> list[str]:
    if not isinstance(analysis, dict):
        return []
    out = [f"{indent}analysis ({analysis.get('template')}):"]
    fields = analysis.get("fields") or {}
    for name, value in fields.items():
        values = value if isinstance(value, list) else ([] if value is None else [value])
        if not values:
            continue
        shown = "; ".join(_value(v) for v in values[:SHOWN])
        more = f" (+{len(values) - SHOWN} more)" if len(values) > SHOWN else ""
        out.append(f"{indent}  {name}: {shown}{more}")
    if len(out) == 1:
        out.append(f"{indent}  (nothing found)")
    unverified = analysis.get("unverified") or []
    if unverified:
        reasons = Counter(str(item.get("reason")) for item in unverified if isinstance(item, dict))
        listed = ", ".join(f"{reason} {count}" for reason, count in sorted(reasons.items()))
        out.append(f"{indent}  unverified: {len(unverified)} ({listed})")
    return out


def _value(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    if "currency" in item:  # an amount or a metric
        scale = f" {item['scale']}" if item.get("scale") else ""
        text = f"{item.get('currency') or ''} {item.get('value')}{scale}".strip()
        if item.get("period"):
            text += f" ({item['period']})"
    elif "value" in item:
        text = str(item["value"])
        if isinstance(item["value"], float):
            text += " %" if "context" in item else ""
    else:
        text = str(item.get("text", ""))
        text = text if len(text) <= 60 else text[:57].rstrip() + "..."
    return text + _where(item.get("evidence"))


def _where(evidence: Any) -> str:
    if not isinstance(evidence, dict):
        return ""
    parts = []
    if evidence.get("page"):
        parts.append(f"p. {evidence['page']}")
    if evidence.get("section"):
        section = str(evidence["section"])
        parts.append(section if len(section) <= 30 else section[:27].rstrip() + "...")
    return f" [{', '.join(parts)}]" if parts else ""
