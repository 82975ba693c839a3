"""Run localstripe (a fake Stripe API) on loopback for the test suite.

    python tests/localstripe_server.py PORT

localstripe's own `start()` listens on every interface and reloads its store from
/tmp; this serves the same aiohttp app on 127.0.0.1 only, from an empty store
that is never written to disk (so parallel runs never share or clobber state).
It adds the one endpoint dj-stripe needs that localstripe lacks: GET /v1/account
(whose account the API key is), which dj-stripe asks before storing any object.
"""

import sys

from aiohttp import web
from localstripe import resources, server

ACCOUNT = {
    "id": "acct_localstripe",
    "object": "account",
    "type": "standard",
    "business_type": "company",
    "business_profile": {"name": "localstripe", "url": None},
    "settings": {"dashboard": {"display_name": "localstripe", "timezone": "Etc/UTC"}},
    "charges_enabled": True,
    "payouts_enabled": True,
    "details_submitted": True,
    "country": "US",
    "default_currency": "usd",
    "email": "stripe@localhost",
    "created": 1700000000,
    "livemode": False,
    "metadata": {},
}


async def account(request):
    return server.json_response(ACCOUNT)


def main() -> None:
    port = int(sys.argv[1])
    resources.store.dump_to_disk = lambda: None
    server.app.router.add_get("/v1/account", account)
    web.run_app(server.app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
