"""``openrouter_metadata``: how a request was routed, for clients that ask for it."""

from __future__ import annotations

from typing import Any

from switchyard.execute import Execution
from switchyard.routing.plan import Plan
from switchyard.wire.chat import ChatRequest


def routing_metadata(request: ChatRequest, plan: Plan, execution: Execution) -> dict[str, Any]:
    served = execution.served_by
    requested = request.model if isinstance(request.model, str) else plan.candidates[0].model.id
    available = [
        {
            "model": c.model.id,
            "provider": c.endpoint.tag or c.endpoint.provider,
            "selected": served is not None and c.endpoint.key == served.endpoint.key,
        }
        for c in plan.candidates
    ]
    fallback = isinstance(request.models, list) and len(request.models) > 0
    summary = (
        f"strategy={plan.strategy}; considered={len(plan.candidates)}; "
        f"excluded={len(plan.excluded)}; attempts={len(execution.attempts)}"
        + ("; sticky" if plan.sticky else "")
        + (f"; circuit_open={','.join(execution.skipped)}" if execution.skipped else "")
    )
    return {
        "strategy": "fallback" if fallback else "direct",
        "requested": requested,
        "region": None,
        "is_byok": False,
        "attempt": len(execution.attempts),
        "attempts": [
            {"model": a.model, "provider": a.endpoint.split("@", 1)[1], "status": a.status}
            for a in execution.attempts
        ],
        "endpoints": {"available": available, "total": len(plan.candidates) + len(plan.excluded)},
        "summary": summary,
        "routing": {"strategy": plan.strategy, "excluded": plan.excluded, "sticky": plan.sticky},
    }
