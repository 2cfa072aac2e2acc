"""The ``lost_response`` fault: the provider created the job, then its answer never reached the caller.

Each emulator rolls the dice when it accepts a submission (so the job remembers it was answered
badly), then its wire layer renders the loss its own way: a 5xx in the service's error format, or an
answer held for ``lost_response_hold_s`` on the clock — long past any client's read timeout — and
then a gateway timeout. A held answer is an ``await``: it never blocks the server's other requests.
"""

from __future__ import annotations

from enum import StrEnum

from bucketscribe_local.faults import FaultDice


class LostAnswer(StrEnum):
    ERROR = "error"
    HOLD = "hold"


def roll_lost_answer(dice: FaultDice) -> LostAnswer | None:
    """None: answer normally. Otherwise how this created job's answer gets lost."""
    plan = dice.plan
    if not dice.roll(plan.lost_response_rate):
        return None
    if plan.lost_response_mode == "mixed":
        return dice.choose((LostAnswer.ERROR, LostAnswer.HOLD))
    return LostAnswer(plan.lost_response_mode)
