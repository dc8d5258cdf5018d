"""Disputes with documents: every bad file refused with the debtor's own message and nothing
kept, the clamd scan (a stub that speaks INSTREAM), private storage and links that expire,
the hold that stops sending, and a manager's resolution both ways."""

from __future__ import annotations

import io
import re
import time

import pytest
from babel.dates import format_date
from sqlalchemy import func, select

from kindly.accounts.models import AuditLog
from kindly.campaigns.models import Debtor
from kindly.cases.models import CaseHold
from kindly.cases.read import case_of
from kindly.disputes import files, links, scan
from kindly.disputes.models import Dispute, DisputeFile
from kindly.errors import ConfigError
from kindly.inbox.models import InboxItem, InboxReply
from kindly.infra.config import load_settings
from tests.support import disputefiles as make
from tests.support.app import load_campaign
from tests.unit.test_admin import make_user, sign_in
from tests.unit.test_case_actions import go_live, planned
from tests.unit.test_web import csrf_from, token_of
from web.edge import DISPUTE_UPLOAD_LIMIT

MIB = 1024 * 1024


@pytest.fixture
def anna(client, ctx):
    """A-1 (de-DE, 1.234,56 €): her token."""
    load_campaign(ctx)
    return token_of(ctx, "A-1")


def dispute(client, token: str, uploads=(), *, reason="already_paid", text="Bezahlt am 3.11.",
            csrf: bool = True):  # fmt: skip
    """POST the dispute form as the debtor's browser does (multipart, with its CSRF token)."""
    form = client.get(f"/s/{token}/contact").get_data(as_text=True)  # the session's token
    data = {"reason": reason, "text": text,
            "files": [(io.BytesIO(body), name) for name, body in uploads]}  # fmt: skip
    if csrf:
        data["csrf_token"] = csrf_from(form)
    return client.post(f"/s/{token}/dispute", data=data, content_type="multipart/form-data")


def nothing_kept(ctx) -> None:
    """No dispute, file, hold or stored document: a refused dispute leaves nothing behind."""
    with ctx.db.session() as session:
        assert session.scalar(select(func.count(Dispute.id))) == 0
        assert session.scalar(select(func.count(DisputeFile.id))) == 0
        assert session.scalar(select(func.count(CaseHold.id))) == 0
        assert session.scalar(select(func.count(InboxItem.id))) == 0
    assert list(ctx.storage.list_keys("disputes/")) == []


def error_of(response) -> str:
    html = response.get_data(as_text=True)
    found = re.search(r"data-dispute-error>([^<]+)<", html)
    return found.group(1).replace("&#34;", '"') if found else html


# --- the files, by content ---------------------------------------------------------------


def test_good_files_are_known_by_their_content_not_their_name():
    assert files.check(files.Upload("scan.pdf", make.pdf())).kind == "pdf"
    assert files.check(files.Upload("photo.jpeg", make.image("JPEG"))).kind == "jpeg"
    renamed = files.check(files.Upload("beleg.pdf", make.image("PNG")))  # a PNG named .pdf
    assert (renamed.kind, renamed.content_type, renamed.ending) == ("png", "image/png", "png")


@pytest.mark.parametrize(
    ("name", "body", "code"),
    [
        ("rechnung.pdf", make.pe_program(), "type"),  # an .exe named .pdf
        ("foto.png", make.zip_bomb(), "type"),  # a zip bomb named .png
        ("foto.png", make.png_bomb(), "bomb"),  # 10 billion pixels in 24 KB
        ("gross.png", make.png_bomb(8_000, 8_000, 8_000), "bomb"),  # 64 MP: past our limit
        ("riesig.pdf", make.big_pdf(11), "too_large"),  # 11 MB
        ("halb.pdf", make.pdf()[:-40], "broken"),  # cut off: no trailer
        ("halb.png", make.image()[:-30], "broken"),
        ("leer.pdf", b"", "empty"),
        ("notiz.txt", b"%PDX not a pdf", "type"),
    ],
)
def test_each_bad_file_is_refused_for_its_own_reason(name, body, code):
    with pytest.raises(files.FileRefused) as refused:
        files.check(files.Upload(name, body))
    assert (refused.value.code, refused.value.name) == (code, name)


def test_a_sixth_file_is_refused_before_any_is_read():
    with pytest.raises(files.FileRefused) as refused:
        files.check_all([files.Upload(f"{n}.png", make.image()) for n in range(6)])
    assert refused.value.code == "too_many"


def test_a_file_name_is_cleaned_for_display():
    assert files.clean_name("C:\\Users\\x\\Beleg\x00.pdf") == "Beleg.pdf"
    assert files.clean_name("../../etc/passwd") == "passwd"
    assert files.clean_name("") == "document"


# --- clamd -------------------------------------------------------------------------------


def test_clamd_instream_says_clean_and_infected_as_the_stub_answers():
    with make.clamd_stub() as stub:
        assert scan.instream(stub.url, make.pdf()) == scan.Verdict(clean=True)
        infected = scan.instream(stub.url, make.pdf(make.EICAR) * 50)  # several 64 KB chunks?
        assert infected == scan.Verdict(clean=False, signature="Eicar-Signature")
        assert stub.streams[0] == make.pdf()  # the whole file arrived, chunk by chunk


def test_a_clamd_that_is_not_there_or_says_nonsense_is_unavailable():
    with make.clamd_stub() as stub:
        url = stub.url
    with pytest.raises(scan.ScanUnavailable):
        scan.instream(url, b"x", timeout=2)
    with pytest.raises(scan.ScanUnavailable):
        scan.parse_answer("INSTREAM size limit exceeded. ERROR")


def test_the_clamd_setting_is_checked_at_start(tmp_path):
    base = {"KINDLY_DATA_DIR": str(tmp_path), "KINDLY_SECRET_KEY": "x" * 32}
    assert load_settings(base).clamd_url is None
    assert load_settings({**base, "KINDLY_CLAMD_URL": "tcp://clamav:3310"}).clamd_url
    with pytest.raises(ConfigError, match="KINDLY_CLAMD_URL"):
        load_settings({**base, "KINDLY_CLAMD_URL": "http://clamav"})


# --- links -------------------------------------------------------------------------------


def test_a_file_link_works_for_five_minutes_and_not_a_second_longer():
    now = 1_800_000_000.0
    token = links.sign("secret-key-0123456789", 7, now=now)
    assert links.verify("secret-key-0123456789", token, now=now + 299) == 7
    assert links.verify("secret-key-0123456789", token, now=now + 300) is None
    assert links.verify("another-key-0123456789", token, now=now) is None
    file_id, expires, mac = token.split(".")
    assert links.verify("secret-key-0123456789", f"8.{expires}.{mac}", now=now) is None
    later = f"{file_id}.{int(expires) + 3600}.{mac}"  # stretched by hand: the MAC says no
    assert links.verify("secret-key-0123456789", later, now=now) is None


# --- the debtor's form -------------------------------------------------------------------


def test_a_dispute_with_a_pdf_holds_the_case_and_the_page_promises_an_answer(client, ctx, anna):
    response = dispute(client, anna, [("Kontoauszug Oktober.pdf", make.pdf())])
    assert response.status_code == 303, error_of(response)
    with ctx.db.session() as session:
        row = session.scalar(select(Dispute))
        stored = session.scalar(select(DisputeFile))
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        assert (row.state, row.reason, row.text) == ("open", "already_paid", "Bezahlt am 3.11.")
        assert (row.answer_by - row.opened_at.date()).days == 14
        assert (stored.filename, stored.content_type, stored.scan) == (
            "Kontoauszug Oktober.pdf", "application/pdf", "unscanned")  # fmt: skip
        # the key names neither the debtor's file nor the reference, and is not guessable
        assert re.fullmatch(rf"disputes/{debtor.id}/[A-Za-z0-9_-]{{24}}\.pdf", stored.key)
        assert ctx.storage.get(stored.key) == make.pdf()
        case = case_of(session, debtor)
        assert (case.state, case.hold) == ("disputed", "dispute_open")
        item = session.scalar(select(InboxItem))
        assert item.topic == "dispute" and "already paid" in item.message
        assert session.scalar(select(AuditLog.action).where(AuditLog.actor == "debtor")) == (
            "dispute.open"
        )
        promised = row.answer_by
    page = client.get(f"/s/{anna}").get_data(as_text=True)
    assert "Wir prüfen Ihren Widerspruch" in page
    assert "Ihr Grund: Ich habe schon bezahlt." in page
    day = format_date(promised, format="long", locale="de_DE")  # e.g. 16. Dezember 2026
    assert f"Unsere Antwort erhalten Sie bis zum {day} per E-Mail." in page
    assert 'data-cta="pay-anyway"' in page  # still free to pay; nothing pushes
    # a second dispute while this one is open: said, and nothing more kept
    again = dispute(client, anna, [("noch.pdf", make.pdf())])
    assert "Wir prüfen Ihren Widerspruch bereits" in error_of(again)
    with ctx.db.session() as session:
        assert session.scalar(select(func.count(DisputeFile.id))) == 1


@pytest.mark.parametrize(
    ("uploads", "message"),
    [
        ([("rechnung.pdf", make.pe_program())], "„rechnung.pdf“ ist keine PDF-, JPEG- oder PNG-Datei"),
        ([("foto.png", make.zip_bomb())], "„foto.png“ ist keine PDF-, JPEG- oder PNG-Datei"),
        ([("foto.png", make.png_bomb())], "„foto.png“ ist ein Bild mit zu vielen Pixeln"),
        ([("riesig.pdf", make.big_pdf(11))], "„riesig.pdf“ ist größer als 10 MB"),
        ([(f"s{n}.png", make.image()) for n in range(6)], "Bitte wählen Sie höchstens 5 Dateien"),
        # a good file beside a bad one: neither is kept
        ([("gut.pdf", make.pdf()), ("böse.pdf", make.pe_program())], "„böse.pdf“ ist keine"),
    ],
)  # fmt: skip
def test_each_bad_upload_gets_its_message_in_german_and_nothing_is_kept(
    client, ctx, anna, uploads, message
):
    response = dispute(client, anna, uploads)
    assert response.status_code == 400
    assert message in error_of(response)
    assert "Es wurde nichts gesendet." in error_of(response)
    nothing_kept(ctx)
    assert case_of_ref(ctx, "A-1") == "open"


def case_of_ref(ctx, reference: str) -> str:
    with ctx.db.session() as session:
        return case_of(
            session, session.scalar(select(Debtor).where(Debtor.reference == reference))
        ).state


def test_the_english_debtor_reads_the_same_refusal_in_english(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-2")  # en-GB
    response = dispute(client, token, [("invoice.pdf", make.pe_program())], text="")
    assert error_of(response).startswith("“invoice.pdf” is not a PDF, JPEG or PNG file.")
    nothing_kept(ctx)


def test_a_reason_is_needed_and_other_needs_words(client, ctx, anna):
    assert "Bitte wählen Sie, warum" in error_of(dispute(client, anna, reason="nonsense"))
    assert "in wenigen Worten" in error_of(dispute(client, anna, reason="other", text=" "))
    nothing_kept(ctx)


def test_the_form_refuses_a_post_without_its_csrf_token(client, ctx, anna):
    response = dispute(client, anna, [("a.pdf", make.pdf())], csrf=False)
    assert response.status_code == 400
    nothing_kept(ctx)


def test_the_dispute_form_takes_five_files_of_10_mb_but_not_a_body_past_its_limit(
    client, ctx, anna
):
    assert DISPUTE_UPLOAD_LIMIT >= files.MAX_FILES * files.MAX_FILE_BYTES + MIB
    assert DISPUTE_UPLOAD_LIMIT < 64 * MIB
    too_much = dispute(client, anna, [("a.pdf", b"%PDF-1.7\n" + b"x" * (DISPUTE_UPLOAD_LIMIT))])
    assert too_much.status_code == 413
    body = too_much.get_data(as_text=True)
    assert "Die Dateien sind zusammen zu groß" in body and "Traceback" not in body
    nothing_kept(ctx)
    five = [(f"{n}.pdf", make.big_pdf(10)) for n in range(5)]  # 5 × 10 MB: all taken
    assert dispute(client, anna, five).status_code == 303
    assert len(list(ctx.storage.list_keys("disputes/"))) == 5


def test_with_clamd_a_clean_file_is_marked_and_an_infected_one_refused(tmp_path, anna, ctx, app):
    with make.clamd_stub() as stub:
        object.__setattr__(ctx.settings, "clamd_url", stub.url)
        client = app.test_client()
        infected = dispute(client, anna, [("beleg.pdf", make.pdf(make.EICAR))])
        assert infected.status_code == 400
        assert "Unsere Virenprüfung hat in „beleg.pdf“ eine Bedrohung gefunden" in error_of(
            infected
        )
        nothing_kept(ctx)
        clean = dispute(client, anna, [("beleg.pdf", make.pdf())])
        assert clean.status_code == 303
        assert len(stub.streams) == 2
    with ctx.db.session() as session:
        assert session.scalar(select(DisputeFile.scan)) == "clean"


def test_a_clamd_that_does_not_answer_keeps_nothing(anna, ctx, app):
    with make.clamd_stub() as stub:
        url = stub.url  # stopped: nobody listens there any more
    object.__setattr__(ctx.settings, "clamd_url", url)
    response = dispute(app.test_client(), anna, [("beleg.pdf", make.pdf())])
    assert "nicht auf Viren prüfen" in error_of(response)
    nothing_kept(ctx)


# --- the hold, and the manager's decision -----------------------------------------------


@pytest.fixture
def manager(client, ctx, anna):
    make_user(ctx)
    assert sign_in(client).status_code == 303
    return client


def resolve(client, dispute_id: int, **data):
    page = client.get("/admin/campaigns/winter/debtors/A-1").get_data(as_text=True)
    return client.post(
        f"/admin/campaigns/winter/debtors/A-1/disputes/{dispute_id}/resolve",
        data={"csrf_token": csrf_from(page), **data},
    )


def opened(client, ctx, token: str) -> int:
    assert dispute(client, token, [("beleg.pdf", make.pdf())]).status_code == 303
    with ctx.db.session() as session:
        return session.scalar(select(Dispute.id))


def test_the_hold_stops_sending_until_a_manager_rejects_with_a_reason(manager, ctx, anna):
    go_live(ctx)  # only a live campaign's plan asks each case
    assert planned(ctx).status == "send"
    dispute_id = opened(manager, ctx, anna)
    assert (planned(ctx).status, planned(ctx).reason) == ("held", "dispute_open")
    cockpit = manager.get("/admin/campaigns/winter/debtors/A-1").get_data(as_text=True)
    assert 'data-dispute="1" data-state="open"' in cockpit and "beleg.pdf" in cockpit
    # a rejection needs its reason: refused, nothing changes
    assert resolve(manager, dispute_id, outcome="rejected", answer=" ").status_code == 400
    assert planned(ctx).reason == "dispute_open"
    why = "Ihre Zahlung vom 3.11. betraf die Rechnung 4710, nicht diese."
    assert resolve(manager, dispute_id, outcome="rejected", answer=why).status_code == 303
    assert planned(ctx).status == "send"  # collection resumes
    with ctx.db.session() as session:
        row = session.get(Dispute, dispute_id)
        assert (row.state, row.outcome, row.answer_channel) == ("rejected", "rejected", "email")
        reply = session.scalar(select(InboxReply))
        assert (reply.channel, reply.status, reply.body) == ("email", "outbox", why)
        assert session.scalar(select(CaseHold.released_by)) == "manager@example.org"
        audit = session.scalar(select(AuditLog).where(AuditLog.action == "dispute.resolve"))
        assert audit.detail["outcome"] == "rejected" and audit.actor == "manager@example.org"
    page = manager.get(f"/s/{anna}").get_data(as_text=True)
    assert "Ihr Widerspruch wurde abgelehnt" in page and why in page
    assert 'data-cta="pay"' in page  # the claim stands: the page asks again
    # resolved once: a second decision is refused
    assert resolve(manager, dispute_id, outcome="closed").status_code == 409


def test_upheld_with_a_corrected_amount_changes_the_claim_with_an_audit(manager, ctx, anna):
    dispute_id = opened(manager, ctx, anna)
    assert resolve(manager, dispute_id, outcome="corrected", amount="2000.00").status_code == 400
    assert resolve(manager, dispute_id, outcome="corrected", amount="12,5").status_code == 400
    assert resolve(manager, dispute_id, outcome="corrected", amount="1000.00").status_code == 303
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        assert (debtor.amount_due_minor, debtor.principal_minor) == (100000, 86544)
        audit = session.scalar(select(AuditLog).where(AuditLog.action == "dispute.resolve"))
        assert (audit.detail["amount_before_minor"], audit.detail["amount_after_minor"]) == (
            123456, 100000)  # fmt: skip
    page = manager.get(f"/s/{anna}").get_data(as_text=True)
    assert "Ihrem Widerspruch wurde stattgegeben" in page
    assert "Der Betrag ist jetzt 1.000,00\xa0€." in page
    assert 'data-amount="100000"' in page


def test_upheld_and_closed_leaves_nothing_owed_and_nothing_sent(manager, ctx, anna):
    go_live(ctx)
    dispute_id = opened(manager, ctx, anna)
    assert resolve(manager, dispute_id, outcome="closed").status_code == 303
    assert case_of_ref(ctx, "A-1") == "paid"
    assert (planned(ctx).status, planned(ctx).reason) == ("held", "paid")
    page = manager.get(f"/s/{anna}").get_data(as_text=True)
    assert "Wir haben die Forderung geschlossen. Sie schulden nichts mehr." in page


def test_a_file_link_in_the_cockpit_opens_for_a_manager_and_expires(manager, ctx, anna, client):
    opened(manager, ctx, anna)
    cockpit = manager.get("/admin/campaigns/winter/debtors/A-1").get_data(as_text=True)
    link = re.search(r'href="(/admin/dispute-files/[^"]+)"', cockpit).group(1)
    got = manager.get(link)
    assert got.status_code == 200 and got.data == make.pdf()
    assert got.headers["Content-Type"] == "application/pdf"
    assert got.headers["Content-Security-Policy"] == "sandbox"
    with ctx.db.session() as session:
        file_id = session.scalar(select(DisputeFile.id))
    old = links.sign(ctx.settings.secret_key, file_id, now=time.time() - 301)
    assert manager.get(f"/admin/dispute-files/{old}").status_code == 404
    assert manager.get(link.rsplit(".", 1)[0] + ".0000").status_code == 404
    # the file itself is not served under the debtor's link or any guessable path
    assert manager.get(f"/s/{anna}/beleg.pdf").status_code == 404


def test_a_viewer_sees_the_dispute_but_neither_its_files_nor_words(manager, ctx, anna, app):
    opened(manager, ctx, anna)
    make_user(ctx, "viewer@example.org", "viewer")
    viewer = app.test_client()
    assert sign_in(viewer, "viewer@example.org").status_code == 303
    page = viewer.get("/admin/campaigns/winter/debtors/A-1").get_data(as_text=True)
    assert 'data-dispute="1"' in page
    assert "beleg.pdf" not in page and "Bezahlt am 3.11." not in page
    assert "dispute-resolve" not in page


def test_erasing_the_debtor_deletes_the_documents_and_words_but_keeps_the_facts(manager, ctx, anna):
    from kindly.privacy import erase_debtor

    dispute_id = opened(manager, ctx, anna)
    assert len(list(ctx.storage.list_keys("disputes/"))) == 1
    with ctx.db.session() as session:
        erase_debtor(session, session.scalar(select(Debtor).where(Debtor.reference == "A-1")),
                     ctx.storage)  # fmt: skip
    assert list(ctx.storage.list_keys("disputes/")) == []
    with ctx.db.session() as session:
        kept = session.get(Dispute, dispute_id)
        assert (kept.reason, kept.state, kept.text) == ("already_paid", "open", "")
        assert session.scalar(select(func.count(DisputeFile.id))) == 0


def test_a_debtor_reached_only_by_letter_is_promised_and_given_the_answer_on_the_page(manager, ctx):
    giulia = token_of(ctx, "A-3")  # it-IT: no email, no phone, a postal address
    response = dispute(manager, giulia, [("ricevuta.jpg", make.image("JPEG"))],
                       reason="amount_wrong", text="Ho già pagato 20 euro.")  # fmt: skip
    assert response.status_code == 303
    page = manager.get(f"/s/{giulia}").get_data(as_text=True)
    assert "Avrà la nostra risposta entro il" in page and "su questa pagina." in page
    with ctx.db.session() as session:
        dispute_id = session.scalar(select(Dispute.id))
    cockpit = manager.get("/admin/campaigns/winter/debtors/A-3").get_data(as_text=True)
    done = manager.post(
        f"/admin/campaigns/winter/debtors/A-3/disputes/{dispute_id}/resolve",
        data={"csrf_token": csrf_from(cockpit), "outcome": "rejected",
              "answer": "Il pagamento di 20 euro riguarda un'altra fattura."},
    )  # fmt: skip
    assert done.status_code == 303
    with ctx.db.session() as session:
        reply = session.scalar(select(InboxReply))
        assert (reply.channel, reply.status) == ("page", "shown")
    page = manager.get(f"/s/{giulia}").get_data(as_text=True)
    assert "La sua contestazione non è stata accolta" in page
    assert "riguarda un&#39;altra fattura." in page
