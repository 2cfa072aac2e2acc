"""FunctionGraph ``reconcile``: on the timer trigger, carry on every unfinished job and settle
the upload events FunctionGraph gave up on (its failure records in OBS)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from bucketscribe.clouds.huawei.functiongraph.context import functiongraph_handler
from bucketscribe.entrypoints.reconcile import reconcile_and_count


@functiongraph_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The timer's event ({"trigger_type": "TIMER", "trigger_name": ..., "user_event": ...}) only
    # says that it is time; everything to do is read from the job store.
    return reconcile_and_count(context)
