"""`tuiwiz serve`: the wizard, or one run's dashboard, in a browser.

access.py  the token every request must carry (new, or kept in an owner-only file)
server.py  the aiohttp server: token check, one app process per browser session, limits
session.py the app in one browser session (`python -m tuiwiz.serve.session`)
static/    the page that hosts textual-serve's terminal client

Only `tuiwiz serve` imports this package: aiohttp and textual-serve stay off the wizard's
start-up path.
"""
