"""How many invocations of a function the local stack runs at once behind its HTTP endpoint.

aiohttp hands blocking work to asyncio's default executor, whose size follows the CPU count (six
threads on two cores); the cloud runs a function's invocations side by side far beyond that. A
callback invocation can wait (a push waiting for its task's record), and six such waits would
queue every other callback behind them: a SIS callback's delivery would time out, and the job
would be left to the reconciler, for a limit of the local stack's only.
"""

from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor

from aiohttp import web

# The local stack's stand-in for the callback function's concurrency (Lambda's and FunctionGraph's
# account quotas allow hundreds).
CALLBACK_INVOCATIONS_AT_ONCE = 32


def invocations_for(app: web.Application, name: str) -> Executor:
    """A pool of ``CALLBACK_INVOCATIONS_AT_ONCE`` threads for ``app``'s invocations, let go when
    the app is cleaned up (without waiting for invocations still running: the stack is stopping)."""
    pool = ThreadPoolExecutor(max_workers=CALLBACK_INVOCATIONS_AT_ONCE, thread_name_prefix=name)

    async def let_go(_: web.Application) -> None:
        pool.shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(let_go)
    return pool
