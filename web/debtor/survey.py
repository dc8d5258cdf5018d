"""The one question after: how easy paying or agreeing a plan was (1–5, an optional comment),
stored once per case and occasion (kindly.feedback.survey). Nothing of the answer is logged."""

from __future__ import annotations

import datetime as dt

from flask import redirect, request

from kindly.cases.read import case_of
from kindly.feedback import survey
from web.context import context
from web.debtor import limits
from web.debtor.common import DebtorForm, bp
from web.debtor.hits import confirm_person

MESSAGES = {"invalid_score": "survey_invalid", "too_long": "survey_too_long",
            "already": "survey_already", "not_now": "survey_already"}  # fmt: skip


@bp.route("/s/<token>/survey", methods=["GET", "POST"])
@limits.limited("survey")
def answer(token: str):
    """The question with the score the page's link chose; a POST stores the answer once."""
    with context().db.session() as session:
        form = DebtorForm(session, token)
        case = case_of(session, form.debtor, dt.date.today())
        occasion = survey.pending(session, form.debtor, case.state)
        raw = (request.form if request.method == "POST" else request.args).get("score", "")
        chosen = raw if raw in ("1", "2", "3", "4", "5") else ""
        comment = request.form.get("comment", "") if request.method == "POST" else ""
        error, status = None, 200
        if not occasion:
            asked = survey.occasion_for(case.state)
            error = form.texts["survey_already"] if asked else None
            return form.render("web/survey.html", occasion="", chosen="", comment="",
                               error=error, max=survey.MAX_COMMENT, done=bool(asked))  # fmt: skip
        if request.method == "POST":
            try:
                score = survey.parse_score(raw)
                confirm_person(session, form.debtor)
                survey.answer(session, form.debtor, occasion, score, comment)
            except survey.SurveyError as exc:
                session.rollback()
                error = form.texts[MESSAGES[exc.reason]].format(max=survey.MAX_COMMENT)
                status = 409 if exc.reason == "already" else 422
            else:
                return redirect(f"/s/{token}?done=survey", code=303)
        else:
            form.looked("survey")
        return form.render("web/survey.html", occasion=occasion, chosen=chosen,
                           comment=comment[: survey.MAX_COMMENT + 100], error=error,
                           max=survey.MAX_COMMENT, done=False), status  # fmt: skip
