"""The launch check: a campaign does not go live while a collection demand it would send
lacks a fact Germany's RDG §13a asks for, or a message lacks its opt-out.

Templates are rendered in every language and tone with marker values in place of the facts,
and each marker must come out the other side; the campaign's own data must have the facts.
`change_status` is the one way a campaign is launched, paused, resumed or ended.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from markupsafe import escape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kindly.accounts import audit
from kindly.accounts.models import User
from kindly.campaigns.models import Campaign, CampaignStatus, Debtor
from kindly.claims import disclosure
from kindly.creditors.profile import profile_named
from kindly.errors import KindlyError
from kindly.rules.costrules import COST_TYPES, charges_costs
from kindly.rules.document import BUILTIN_DEFAULTS, Rules
from kindly.rules.interest import BASES
from kindly.rules.store import current_rules
from renderer.texts import LANGUAGES, load_texts
from renderer.view import DebtorView, InterestLine

TONES = ("friendly", "neutral", "firm")
MARKERS = {
    "creditor": "Kreditor-Marke-7Q",
    "creditor address": "Anschrift-Marke-3W",
    "claim basis": "Vertrag-Marke-9K",
    "principal": "Haupt-Marke-1P",
    "interest": "Zins-Marke-2I",
    "fees": "Kosten-Marke-5F",
    "whom to contact": "Kontakt-Marke-8C",
}
INTEREST_MARKERS = {
    "interest-bearing principal": "Basis-Marke-0B",
    "interest rate": "Satz-Marke-4R",
    "interest period": "Zeitraum-Marke-6Z",
    "interest amount": "Zinsbetrag-Marke-3A",
}
"""RDG § 13a asks a demand that charges interest for its calculation: the claim it is charged
on, the rate and the period (checked on the microsite and the letter, which show it)."""


@dataclass(frozen=True, order=True)
class Gap:
    """One missing fact: where (template, language, tone) and what."""

    template: str
    language: str
    tone: str
    missing: str

    def __str__(self) -> str:
        return f"{self.template} [{self.language}, {self.tone}]: no {self.missing}"


def _sample(lang: str, tone: str) -> DebtorView:
    """A debtor whose facts are markers, so a template that drops one is caught."""
    url = "https://kindly.invalid/s/" + "T" * 32
    return DebtorView(
        locale=lang, lang=lang, reference="REF-1", first_name="Vera", last_name="Beispiel",
        full_name="Vera Beispiel", greeting="Hallo,", amount="123,45 €", amount_minor=12345,
        currency="EUR", due_date="1. Januar 2030", due_date_iso="2030-01-01",
        creditor=MARKERS["creditor"], contract=MARKERS["claim basis"], campaign_name="check",
        site_url=url, short_url=url.removeprefix("https://"), pay_url=url + "/pay",
        plan_url=url + "/plan", principal=MARKERS["principal"], interest=MARKERS["interest"],
        fees=MARKERS["fees"], address_lines=("Vera Beispiel", "Weg 1", "10115 Berlin"),
        letter_date="1. Dezember 2029", tone=tone,
        creditor_address=(MARKERS["creditor address"],), contact=MARKERS["whom to contact"],
    )  # fmt: skip


def _missing(text: str) -> list[str]:
    return [fact for fact, marker in MARKERS.items() if marker not in text]


def _interest_sample(lang: str, tone: str) -> DebtorView:
    """The sample debtor with one period of interest whose facts are markers."""
    line = InterestLine(
        period=INTEREST_MARKERS["interest period"], days=30,
        principal=INTEREST_MARKERS["interest-bearing principal"],
        rate=INTEREST_MARKERS["interest rate"], interest=INTEREST_MARKERS["interest amount"],
    )  # fmt: skip
    return dataclasses.replace(
        _sample(lang, tone), interest_lines=(line,), interest_accrued="1,00 €",
        interest_basis="contractual", interest_rate="5 %", amount_as_of="1. Dezember 2029",
    )  # fmt: skip


def charges_interest(rules: Rules) -> bool:
    """Whether the rules charge interest (their `interest` key, docs/rules.md)."""
    spec = rules.document.get("interest")
    return isinstance(spec, dict) and spec.get("basis", "none") in BASES[1:]


def check_interest_templates(overrides: dict | None = None) -> list[Gap]:
    """Every fact of the interest calculation the microsite or the letter drops."""
    from renderer.letter import default_renderer
    from renderer.site import render_site

    gaps: list[Gap] = []
    letter = default_renderer()
    for lang in LANGUAGES:
        for tone in TONES:
            view = _interest_sample(lang, tone)
            for template, text in (
                ("microsite", render_site(view, overrides=overrides).decode("utf-8")),
                ("letter", letter.html(view)),
            ):
                gaps += [
                    Gap(template, lang, tone, fact)
                    for fact, marker in INTEREST_MARKERS.items()
                    if marker not in text
                ]
    return gaps


def check_templates(overrides: dict | None = None) -> list[Gap]:
    """Every fact a template drops, in every language and tone."""
    from kindly.messaging.email import compose_email, links
    from renderer.letter import default_renderer
    from renderer.site import render_site

    gaps: list[Gap] = []
    letter = default_renderer()
    for lang in LANGUAGES:
        for tone in TONES:
            view = _sample(lang, tone)
            site = render_site(view, overrides=overrides).decode("utf-8")
            gaps += [Gap("microsite", lang, tone, fact) for fact in _missing(site)]
            gaps += [Gap("letter", lang, tone, fact) for fact in _missing(letter.html(view))]
            link = links("https://kindly.invalid", "T" * 32, "email", unsubscribe="1~" + "U" * 22)
            email = compose_email(
                view,
                "vera@example.org",
                sender="check@kindly.invalid",
                reply_to=None,
                link=link,
                message_id="<check@kindly.invalid>",
            )
            body = email.get_body(("plain",)).get_content()
            if (
                email["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click"
                or link.unsubscribe not in body
            ):
                gaps.append(Gap("email", lang, tone, "opt-out (one-click header and link)"))
            sms = load_texts("sms").for_lang(lang)
            if not sms.get("stop", "").strip():
                gaps.append(Gap("sms", lang, tone, "opt-out hint"))
    return gaps


def check_campaign(session: Session, campaign: Campaign) -> list[Gap]:
    """The facts the campaign's own data lacks, then every template gap."""
    settings = campaign.settings or {}
    gaps: list[Gap] = []
    without_creditor = session.scalar(
        select(func.count(Debtor.id)).where(
            Debtor.campaign_id == campaign.id, func.coalesce(Debtor.creditor, "") == ""
        )
    )
    if not campaign.creditor and without_creditor:
        gaps.append(Gap("campaign", "*", "*", f"creditor ({without_creditor} debtors have none)"))
    gaps += creditor_gaps(session, campaign)
    without_basis = session.scalar(
        select(func.count(Debtor.id)).where(
            Debtor.campaign_id == campaign.id, func.coalesce(Debtor.contract, "") == ""
        )
    )
    if not campaign.contract and without_basis:
        gaps.append(
            Gap("campaign", "*", "*", f"claim basis ({without_basis} debtors have no contract)")
        )
    if charges_interest(current_rules(session, campaign)):
        gaps += check_interest_templates(settings.get("texts"))
    gaps += claim_gaps(session, campaign)
    return gaps + check_templates(settings.get("texts"))


def claim_gaps(session: Session, campaign: Campaign) -> list[Gap]:
    """When the rules charge interest or costs: the § 13a facts their data lacks
    (kindly.claims.disclosure), and for costs every template that drops a cost's type, amount
    or basis."""
    document = current_rules(session, campaign).document
    gaps = [Gap(where, "*", "*", missing)
            for where, missing in disclosure.gaps(session, campaign, document)]  # fmt: skip
    if charges_costs(document):
        gaps += check_cost_templates((campaign.settings or {}).get("texts"))
    return gaps


def check_cost_templates(overrides: dict | None = None) -> list[Gap]:
    """Every cost fact the microsite or the letter drops, in every language and tone: each
    type's name in the debtor's language, its amount and its legal basis."""
    from renderer.letter import default_renderer
    from renderer.site import render_site

    gaps: list[Gap] = []
    letter = default_renderer()
    costs = tuple((kind, f"Betrag-{i}-Marke-4K", f"Grundlage-{i}-Marke-6G")
                  for i, kind in enumerate(COST_TYPES))  # fmt: skip
    for lang in LANGUAGES:
        site_texts = load_texts("site").for_lang(lang, None, overrides)
        letter_texts = load_texts("letter").for_lang(lang)
        for tone in TONES:
            view = dataclasses.replace(_sample(lang, tone), costs=costs)
            pages = {
                "microsite": (render_site(view, overrides=overrides).decode("utf-8"), site_texts),
                "letter": (letter.html(view), letter_texts),
            }
            for template, (text, texts) in pages.items():
                for kind, amount, basis in costs:
                    name = texts.get(f"cost_{kind}", "")
                    if not name.strip() or escape(name) not in text:
                        gaps.append(Gap(template, lang, tone, f"cost type {kind}"))
                    if amount not in text:
                        gaps.append(Gap(template, lang, tone, f"cost amount ({kind})"))
                    if basis not in text:
                        gaps.append(Gap(template, lang, tone, f"cost legal basis ({kind})"))
    return gaps


def uses_bank_details(rules: Rules) -> bool:
    """Whether any treatment sends letters or offers a bank transfer (both print the IBAN)."""
    base = {**BUILTIN_DEFAULTS, **rules.document.get("defaults", {})}
    treatments = [base, *({**base, **segment} for segment in rules.segments)]
    treatments += [{**base, **variant.get("set", {})} for experiment in rules.experiments
                   for variant in experiment.get("variants", [])]  # fmt: skip
    return any(
        "letter" in treatment.get("channels", ())
        or "bank_transfer" in treatment.get("payment_methods", ())
        for treatment in treatments
    )


def creditor_gaps(session: Session, campaign: Campaign) -> list[Gap]:
    """Each creditor the campaign's debtors name, with every fact its profile lacks.

    Name, postal address and a phone or email are RDG §13a facts; an IBAN (with its holder)
    only where letters or bank transfers are used. A supervisory authority is not asked for:
    it is the collecting agency's, not each creditor's, and a creditor collecting its own
    claims has none (shown when a profile names one).
    """
    names = set(
        session.scalars(
            select(func.coalesce(func.nullif(Debtor.creditor, ""), campaign.creditor))
            .where(Debtor.campaign_id == campaign.id)
            .distinct()
        )
    )
    names.add(campaign.creditor)
    bank = uses_bank_details(current_rules(session, campaign))
    gaps = []
    for name in sorted(n for n in names if n):
        profile = profile_named(session, campaign, name)
        hint = f"(kindly creditor set {name!r} …)"
        where = f"creditor {name}"
        if not profile.address:
            gaps.append(Gap(where, "*", "*", f"creditor address {hint}"))
        if not profile.contact:
            gaps.append(Gap(where, "*", "*", f"whom to contact: phone or email {hint}"))
        if bank and not (profile.iban and profile.payee_name):
            gaps.append(Gap(where, "*", "*", f"IBAN for letters and bank transfers {hint}"))
    return gaps


def as_dicts(gaps: list[Gap]) -> list[dict[str, str]]:
    """Gaps for JSON answers."""
    return [dataclasses.asdict(gap) for gap in gaps]


STATUS_ACTIONS = {"live": "campaign.launch", "paused": "campaign.pause", "ended": "campaign.end"}
"""The audit action of each status change."""
REFUSED_ACTION = "campaign.launch_refused"
"""The audit action of a launch the check refused."""
MOVES = {
    "draft": ("live", "ended"),
    "live": ("paused", "ended"),
    "paused": ("live", "ended"),
    "ended": (),
}
"""Where each status may go. A launch and a resume are the same move (to live) and both run
the launch check; an ended campaign stays ended, so its retention clock runs from one day."""


class StatusRefused(KindlyError):
    """A status change that is not allowed from where the campaign is (e.g. pausing a draft)."""


def set_status(session: Session, campaign: Campaign, wanted: str) -> tuple[str, list[Gap]]:
    """Make the campaign live, paused or ended; return (status before, gaps).

    A launch (or resume) is refused while the launch check finds gaps: then nothing changes.
    A move MOVES does not allow raises StatusRefused; asking for the status it has is a no-op.
    """
    if wanted not in STATUS_ACTIONS:
        raise ValueError(f"status {wanted!r}: live, paused or ended")
    row = session.get(CampaignStatus, campaign.id)
    before = row.status if row else "draft"
    if wanted == before:
        return before, []
    refused = move_refused(campaign.slug, before, wanted)
    if refused:
        raise StatusRefused(refused)
    if wanted == "live":
        gaps = check_campaign(session, campaign)
        if gaps:
            return before, gaps
    if row is None:
        row = CampaignStatus(campaign_id=campaign.id)
        session.add(row)
    row.status, row.changed_at = wanted, dt.datetime.now(dt.UTC)
    return before, []


def move_refused(slug: str, before: str, wanted: str) -> str | None:
    """Why the campaign may not go from `before` to `wanted` (None: it may, or it is there)."""
    if wanted == before or wanted in MOVES.get(before, ()):
        return None
    if before == "ended":
        return f"{slug} has ended; an ended campaign is not launched or paused again"
    return f"{slug} is a draft: there is nothing to pause (launch it first)"


@dataclass(frozen=True)
class StatusChange:
    """What a status change did: the status before and after, and the gaps that refused it."""

    before: str
    after: str
    gaps: list[Gap]

    @property
    def changed(self) -> bool:
        """True when the campaign's status is now another one."""
        return self.before != self.after


def change_status(
    session: Session, campaign: Campaign, wanted: str, *, user: User | None, via: str
) -> StatusChange:
    """The one status change of the CLI (user None: the operator), dashboard and API, audited.

    A launch refused for gaps is audited as such; a move to the status the campaign already
    has changes and records nothing. StatusRefused passes up to the caller.
    """
    before, gaps = set_status(session, campaign, wanted)
    if gaps:
        audit.record(session, user, REFUSED_ACTION, via=via, campaign_id=campaign.id,
                     before=before, gaps=len(gaps))  # fmt: skip
        return StatusChange(before, before, gaps)
    if before != wanted:
        audit.record(session, user, STATUS_ACTIONS[wanted], via=via, campaign_id=campaign.id,
                     before=before)  # fmt: skip
    return StatusChange(before, wanted, [])
