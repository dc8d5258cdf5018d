"""The debtor's side of the web: the microsite and its forms (the `public` blueprint, one
module per concern), paying (`pay`), tracking (`track`), the sandbox checkout, and the fast
lane in front of Flask that answers the hottest of these hits."""

# the route modules register their views on the `public` blueprint when imported
from web.debtor import (  # noqa: F401
    beacon,
    dispute,
    expiry,
    files,
    findcase,
    forms,
    gate,
    offer,
    page,
    survey,
)
from web.debtor.common import bp

__all__ = ["bp"]
