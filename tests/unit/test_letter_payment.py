"""Letters in de/en/it with payment codes: what a reader, a window envelope and a banking app see."""

from __future__ import annotations

import html as html_module
import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from pyzbar.pyzbar import decode

from kindly.payments.iban import format_iban, iban_error, validate_letter_settings
from renderer.girocode import epc_payload
from renderer.letter import LetterRenderer
from tests.support.views import english_view, make_view

MM = 72 / 25.4  # PDF points per millimetre
IBAN = "DE89370400440532013000"
URL = "http://127.0.0.1:5000/c/Qm9ndXNUb2tlbkZvclRlc3RzT25seTEyMzQ1Ng?c=letter"
LETTER = dict(
    payee_name="Stadtwerke Beispielstadt GmbH",
    iban=IBAN,
    bic="COBADEFFXXX",
    creditor_address=("Am Markt 1", "12345 Beispielstadt"),
    contact="030 1234567",
    letter_url=URL,
)

VIEWS = {
    "de": make_view(**LETTER),
    "en": english_view(),  # GBP: no GiroCode, no creditor address
    "it": make_view(
        **LETTER,
        locale="it-IT",
        lang="it",
        first_name="Giulia",
        last_name="D'Angelo",
        full_name="Giulia D'Angelo",
        greeting="Gentile Giulia D'Angelo,",
        amount="42,00\xa0€",
        amount_minor=4200,
        due_date="10 gennaio 2027",
        principal="40,00\xa0€",
        interest="0,50\xa0€",
        fees="1,50\xa0€",
        address_lines=("Giulia D'Angelo", "Via Roma 10", "00184 Roma"),
        tone="firm",
    ),
}
DIFFICULT = {
    "tr": ("Çağlar", "Yılmaz-Öztürk"),
    "pl": ("Åse", "Ødegård-Łukasiewicz"),
    "el": ("Γιώργος", "Παπαδόπουλος"),
    "ru": ("Мария", "Иванова"),
}


def difficult_view(first: str, last: str):
    return make_view(
        **LETTER,
        first_name=first,
        last_name=last,
        full_name=f"{first} {last}",
        greeting=f"Guten Tag {first} {last},",
        address_lines=(f"{first} {last}", "Hauptstraße 5", "10115 Berlin"),
    )


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory) -> dict[str, Path]:
    renderer = LetterRenderer()
    out = tmp_path_factory.mktemp("letters")
    views = VIEWS | {key: difficult_view(*name) for key, name in DIFFICULT.items()}
    paths = {}
    for key, view in views.items():
        paths[key] = out / f"{key}.pdf"
        paths[key].write_bytes(renderer.render(view))
    return paths


def text_of(path: Path) -> str:
    out = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True)
    return re.sub(r"[ \t\xa0]+", " ", out.stdout)


def words(path: Path) -> list[tuple[str, float, float, float, float]]:
    """Every word on page 1 with its box in millimetres from the sheet's top-left corner."""
    html = subprocess.run(
        ["pdftotext", "-bbox", "-f", "1", "-l", "1", str(path), "-"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    found = []
    for x0, y0, x1, y1, word in re.findall(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>',
        html,
    ):
        found.append(
            (
                html_module.unescape(word),
                float(x0) / MM,
                float(y0) / MM,
                float(x1) / MM,
                float(y1) / MM,
            )
        )
    return found


def qr_codes(path: Path, tmp_path: Path) -> list[str]:
    prefix = tmp_path / path.stem
    subprocess.run(["pdftoppm", "-r", "200", "-png", "-f", "1", "-l", "1", str(path), str(prefix)],
                   check=True)  # fmt: skip
    (png,) = tmp_path.glob(f"{path.stem}*.png")
    with Image.open(png) as image:
        return sorted(code.data.decode("utf-8") for code in decode(image.convert("L")))


@pytest.mark.parametrize("key", ["de", "en", "it"])
def test_letter_states_every_fact_a_reader_needs(pdfs, key):
    view = VIEWS[key]
    text = text_of(pdfs[key])
    facts = [view.full_name, view.amount, view.due_date, view.creditor, view.reference]
    facts += [*view.address_lines, *view.creditor_address]
    facts += [v for v in (view.principal, view.interest, view.fees) if v]
    for fact in facts:
        assert fact.replace("\xa0", " ") in text, fact
    info = subprocess.run(["pdfinfo", str(pdfs[key])], capture_output=True, text=True, check=True)
    assert re.search(r"^Pages:\s+1$", info.stdout, re.M), info.stdout  # one page for a normal case


def test_tone_changes_the_wording_not_the_facts(pdfs):
    firm = " ".join(text_of(pdfs["it"]).split())
    assert "evitare ulteriori costi" in firm  # the firm Italian variant
    assert "può capitare a chiunque" not in firm  # the friendly one's line
    assert "piano di rateizzazione" in firm  # a plan is offered in every tone
    assert "das kann jedem passieren" in " ".join(
        text_of(pdfs["de"]).split()
    )  # friendly by default


@pytest.mark.parametrize("key", ["de", "en", "it", "tr", "el"])
def test_address_sits_in_the_envelope_window(pdfs, key):
    view = VIEWS.get(key) or difficult_view(*DIFFICULT[key])
    wanted = {w for line in view.address_lines for w in line.split()}
    boxes = words(pdfs[key])
    # DIN 5008 B window: 20-105 mm from the left, 45-90 mm from the top; the recipient zone
    # starts 17.7 mm down it, below the return line
    inside = {
        w for w, x0, y0, x1, y1 in boxes if x0 >= 20 and x1 <= 105 and y0 >= 62.7 and y1 <= 90
    }
    assert wanted <= inside, wanted - inside
    cut = [b for b in boxes if b[1] < 105 and b[3] > 20 and b[2] < 90 and b[4] > 45
           and not (b[1] >= 20 and b[3] <= 105 and b[2] >= 45 and b[4] <= 90)]  # fmt: skip
    assert cut == []  # nothing straddles the window's edge


def test_codes_open_the_microsite_and_prefill_the_transfer(pdfs, tmp_path):
    site, giro = sorted(qr_codes(pdfs["de"], tmp_path), key=lambda data: data.startswith("BCD"))
    assert site == URL
    lines = giro.split("\n")
    assert lines[:4] == ["BCD", "002", "1", "SCT"]
    assert lines[4:8] == ["COBADEFFXXX", "Stadtwerke Beispielstadt GmbH", IBAN, "EUR1234.56"]
    assert lines[10] == "K-2026-000123"
    assert iban_error(lines[6]) is None
    assert format_iban(IBAN) in text_of(pdfs["de"])  # printed for those who type it


def test_italian_amount_in_the_giro_code(pdfs, tmp_path):
    codes = qr_codes(pdfs["it"], tmp_path)
    giro = next(code for code in codes if code.startswith("BCD"))
    assert giro.split("\n")[7] == "EUR42.00"


def test_no_giro_code_for_pounds(pdfs, tmp_path):
    assert qr_codes(pdfs["en"], tmp_path) == [english_view().site_url]
    assert "IBAN" not in text_of(pdfs["en"])


@pytest.mark.parametrize("key", ["de", "it", "tr", "pl", "el", "ru"])
def test_every_font_is_the_shipped_one_and_embedded(pdfs, key):
    listing = subprocess.run(["pdffonts", str(pdfs[key])], check=True, capture_output=True,
                             text=True).stdout  # fmt: skip
    rows = listing.splitlines()[2:]
    assert rows and all(row.split()[-5] == "yes" for row in rows), listing
    assert all("Kindly-Sans" in row for row in rows), listing  # no host fallback needed


@pytest.mark.parametrize("key", list(DIFFICULT))
def test_difficult_names_print_as_text(pdfs, key):
    first, last = DIFFICULT[key]
    text = text_of(pdfs[key])
    assert f"{first} {last}" in text
    assert f"Guten Tag {first} {last}," in text


def test_iban_checksum_and_settings_are_checked():
    assert iban_error("DE89 3704 0044 0532 0130 00") is None
    assert "checksum" in iban_error("DE89 3704 0044 0532 0130 01")
    assert "characters" in iban_error("DE89 3704 0044 0532 0130")
    assert iban_error("IT60X0542811101000000123456") is None
    assert validate_letter_settings({"iban": IBAN, "payee_name": "X", "bic": "COBADEFF"}) == []
    errors = validate_letter_settings(
        {"iban": "DE88370400440532013000", "bic": "CO", "pdf_variant": "pdf/x", "logo": "a.gif"}
    )
    assert len(errors) == 5, errors  # checksum, payee missing, BIC, variant, logo type


def test_giro_payload_limits():
    payload = epc_payload(name="N" * 90, iban=IBAN, amount_cents=1, remittance="R" * 200)
    name, _, amount, *_, remittance = payload.split("\n")[5:]
    assert (len(name), amount, len(remittance)) == (70, "EUR0.01", 140)
    with pytest.raises(ValueError):
        epc_payload(name="N", iban=IBAN, amount_cents=0, remittance="R")
