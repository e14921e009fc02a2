"""The Python backend's own workflow: it waits for avatar-consent's completion signal.

Kept apart from the script: the workflow sandbox re-imports this module, so it imports only temporalio.
"""

from __future__ import annotations

from typing import Any, Optional

from temporalio import workflow

COMPLETION_SIGNAL = "avatarConsentCompleted"


@workflow.defn(name="PythonConsentCaller")
class ConsentCaller:
    def __init__(self) -> None:
        self._result: Optional[dict[str, Any]] = None

    @workflow.run
    async def run(self) -> dict[str, Any]:
        await workflow.wait_condition(lambda: self._result is not None)
        assert self._result is not None
        return self._result

    @workflow.signal(name=COMPLETION_SIGNAL)
    def completed(self, result: dict[str, Any]) -> None:
        # The first signal counts; a consent sends exactly one.
        if self._result is None:
            self._result = result
