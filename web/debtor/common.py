"""What the debtor's pages share: the `public` blueprint, the debtor's view and texts, and
the debtor-form helper every self-service form opens with (promise, contact, preferences,
FAQ here; pay and plan in web.debtor.pay)."""

from __future__ import annotations

from functools import cached_property

from flask import Blueprint, redirect, render_template
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.payments import ledger
from kindly.site.personalise import build_view, resolve_locale
from kindly.tracking import events
from renderer.texts import load_texts, one_stop
from renderer.view import DebtorView
from web.context import context
from web.debtor.hits import confirm_person, count, find_debtor

bp = Blueprint("public", __name__)


def debtor_view(session, debtor, *, paid: int | None = None) -> DebtorView:
    """The debtor's view with the live balance (`paid`: already read from the ledger)."""
    return build_view(
        debtor,
        debtor.campaign,
        base_url=context().settings.base_url,
        paid_minor=ledger.paid_minor(session, debtor) if paid is None else paid,
    )


def texts_for(view: DebtorView, debtor: Debtor) -> dict[str, str]:
    """The site's texts in the debtor's language and tone, with the campaign's overrides."""
    overrides = (debtor.campaign.settings or {}).get("texts")
    texts = load_texts("site").for_lang(view.lang, view.tone, overrides)
    return one_stop(texts, creditor=view.creditor)  # "S.A." ends the sentence: no "S.A.."


def lang_of(debtor: Debtor) -> str:
    """The language the debtor's pages are shown in."""
    return resolve_locale(debtor, debtor.campaign)[1]


class DebtorForm:
    """A debtor's form page: the debtor the token names (behind the identity check), the
    live view, and the three steps every form shares: a look is counted as a CTA, a valid
    POST is a person and one event, then back with 303; anything else renders the page."""

    def __init__(self, session: Session, token: str):
        self.session = session
        self.token = token
        self.debtor = find_debtor(session, token)
        self.view = debtor_view(session, self.debtor)

    @cached_property
    def texts(self) -> dict[str, str]:
        """The site's texts for this debtor (texts_for)."""
        return texts_for(self.view, self.debtor)

    def looked(self, cta: str) -> None:
        """Count a look at the form (a GET) as a tap on the page's call to action."""
        count(self.session, self.debtor, "cta", cta=cta)

    def done(self, type_: str, data: dict[str, str], to: str = ""):
        """Record what a valid POST did, as a person, and go back to the page (303)."""
        confirm_person(self.session, self.debtor)
        events.record(self.session, self.debtor, type_, channel="web", agent="human", data=data)
        return redirect(f"/s/{self.token}{to}", code=303)

    def render(self, template: str, **values) -> str:
        """The form's page with the debtor's view and texts filled in."""
        view = self.view
        return render_template(
            template,
            v=view,
            t=self.texts,
            lang=view.lang,
            path=f"/s/{view.site_url.rsplit('/', 1)[-1]}",
            **values,
        )
