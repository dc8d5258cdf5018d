"""Bank statements read into Entry rows: camt.053/.054, MT940, mapped CSV, and every bad input
refused with the element or line named; ISO 11649 references made, checked and found."""

from __future__ import annotations

import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
from stdnum import iso11649

from kindly.bank import camt, csvmap, entries, rf
from kindly.bank import mt940 as mt940_reader
from kindly.bank.detect import StatementError, detect, parse
from kindly.bank.entries import identities
from kindly.errors import KindlyError
from tests.support.bankfiles import ACCOUNT, Payment, camt053, camt054, mt940

ERIKA = Payment(
    "Erika Mustermann",
    "DE02120300000000202051",
    "57.30",
    remittance="Rechnung 4711 vielen Dank",
    reference="RF18539007547034",
    end_to_end="E2E-4711",
    bank_ref="BANK-0001",
)
JEAN = Payment("Jean Dupont", "FR7630006000011234567890189", "1250.00", remittance="Dossier 88")
FEE = Payment("Bank fee", "DE89370400440532013000", "4.90", credit=False, remittance="Entgelt")
PENDING = Payment("Maria Rossi", "IT60X0542811101000000123456", "20.00", status="PDNG")
RETURN = Payment(
    "Jean Dupont",
    "FR7630006000011234567890189",
    "1250.00",
    credit=False,
    end_to_end="E2E-RET-1",
    return_reason="AC04",
)


def only(statements):
    assert len(statements) == 1
    return statements[0]


# --------------------------------------------------------------------------- camt.053


@pytest.mark.parametrize("version", ["02", "08"])
def test_a_camt053_statement_reads_back_every_field(version):
    statement = only(parse(camt053([ERIKA, JEAN, FEE, PENDING, RETURN], version), "s.xml"))
    assert statement.format == f"camt.053.001.{version}"
    assert (statement.account, statement.id, statement.currency) == (
        ACCOUNT,
        "STMT-2026-12-01",
        "EUR",
    )
    erika, jean, fee, pending, returned = statement.entries
    assert erika.amount_minor == 5730 and erika.credit and erika.currency == "EUR"
    assert erika.booking_date == erika.value_date == date(2026, 12, 1)
    assert erika.reference == "BANK-0001"
    assert erika.counterparty_name == "Erika Mustermann"
    assert erika.counterparty_iban == "DE02120300000000202051"
    assert erika.counterparty_bic == "COBADEFFXXX"
    assert erika.remittance == "Rechnung 4711 vielen Dank"
    assert erika.creditor_reference == "RF18539007547034"
    assert erika.end_to_end_id == "E2E-4711"
    assert erika.bank_code == "PMNT/RCDT/ESCT"
    assert erika.status == "booked" and not erika.is_return
    assert erika.origin == "Stmt[1]/Ntry[1]"
    assert jean.amount_minor == 125000 and jean.reference is None
    assert jean.end_to_end_id is None  # NOTPROVIDED is no reference
    assert (fee.credit, fee.amount_minor, fee.signed_minor) == (False, 490, -490)
    assert fee.counterparty_name == "Bank fee"  # money out: the creditor is the other side
    assert pending.status == "pending" and pending.amount_minor == 2000
    assert returned.is_return and returned.return_reason == "AC04"
    assert returned.original_reference == "E2E-RET-1" and not returned.credit
    assert returned.bank_code == "PMNT/RCDT/RRTN"


def test_versions_02_and_08_give_the_same_entries_and_fingerprints():
    old = only(parse(camt053([ERIKA, JEAN, FEE], "02"))).entries
    new = only(parse(camt053([ERIKA, JEAN, FEE], "08"))).entries
    assert [e.fingerprint() for e in old] == [e.fingerprint() for e in new]
    assert [(e.amount_minor, e.remittance) for e in old] == [
        (e.amount_minor, e.remittance) for e in new
    ]


def test_several_statements_in_one_camt053_file_keep_their_own_account():
    other = "DE75512108001245126199"
    first = camt053([ERIKA, JEAN], "08")
    second = camt053([FEE], "08", account=other, statement_id="STMT-2")
    block = second[second.index(b"<Stmt>") : second.index(b"</BkToCstmrStmt>")]
    empty = (
        b"<Stmt><Id>EMPTY</Id>"
        + block[block.index(b"<Acct>") : block.index(b"<Ntry>")]
        + b"</Stmt>"
    )
    data = first.replace(b"</BkToCstmrStmt>", block + empty + b"</BkToCstmrStmt>")
    one, two, three = parse(data)
    assert [len(s.entries) for s in (one, two, three)] == [2, 1, 0]
    assert (one.account, two.account, three.account) == (ACCOUNT, other, other)
    assert two.entries[0].statement_id == "STMT-2" and two.entries[0].account == other
    assert two.entries[0].origin == "Stmt[2]/Ntry[1]" and three.id == "EMPTY"


def test_a_currency_without_minor_units_reads_whole():
    yen = Payment("Sato", "DE02120300000000202051", "1500", currency="JPY")
    (entry,) = only(parse(camt053([yen]))).entries
    assert (entry.amount_minor, entry.currency) == (1500, "JPY")


# --------------------------------------------------------------------------- camt.054


@pytest.mark.parametrize("version", ["02", "08"])
def test_a_batch_booked_entry_splits_into_its_transactions(version):
    anna = Payment("Anna Schmidt", "DE75512108001245126199", "10.00", remittance="RF47 K3X9")
    notification = only(parse(camt054([ERIKA, [JEAN, anna]], version)))
    assert notification.format == f"camt.054.001.{version}"
    first, batch_one, batch_two = notification.entries
    assert first.reference == "BANK-0001" and first.amount_minor == 5730
    assert (batch_one.counterparty_name, batch_one.amount_minor) == ("Jean Dupont", 125000)
    assert (batch_two.counterparty_name, batch_two.amount_minor) == ("Anna Schmidt", 1000)
    assert batch_two.remittance == "RF47 K3X9"
    # a transaction without its own bank reference gets the entry's with its position
    assert (batch_one.reference, batch_two.reference) == ("BATCH-000002/1", "BATCH-000002/2")
    assert batch_two.origin == "Ntfctn[1]/Ntry[2]/NtryDtls/TxDtls[2]"


def test_a_batch_whose_transactions_carry_no_amount_stays_one_entry():
    notification = only(parse(camt054([[ERIKA, JEAN]], "02", tx_amounts=False)))
    (entry,) = notification.entries
    assert entry.amount_minor == 5730 + 125000
    assert entry.counterparty_name is None
    assert "Rechnung 4711" in entry.remittance and "Dossier 88" in entry.remittance


def test_batch_amounts_that_do_not_add_up_are_refused():
    data = camt054([[ERIKA, JEAN]], "08").replace(b">1307.30<", b">1307.31<", 1)
    with pytest.raises(StatementError, match="do not add up") as caught:
        parse(data)
    assert caught.value.where == "Ntfctn[1]/Ntry[1]/Amt"


# --------------------------------------------------------------------------- MT940


def test_a_german_mt940_reads_its_86_subfields():
    long_text = "Rechnung 2026-4711 Kundennummer 99812 Mahnung vom 14.11. vielen Dank"
    mueller = Payment(
        "Jürgen Müller-Lüdenscheidt Bauunternehmung",
        "DE75512108001245126199",
        "99.99",
        remittance=long_text,
        end_to_end="E2E-77",
    )
    statement = only(parse(mt940([ERIKA, mueller, FEE, RETURN]), "STA.mt940"))
    assert statement.format == "mt940"
    assert (statement.account, statement.currency) == (ACCOUNT, "EUR")
    erika, juergen, fee, returned = statement.entries
    assert erika.amount_minor == 5730 and erika.credit
    assert erika.reference == "BANK-0001"  # the :61: bank reference after //
    assert erika.end_to_end_id == "E2E-4711"  # EREF+
    assert erika.remittance == "RF18539007547034 Rechnung 4711 vielen Dank"  # SVWZ+
    assert erika.creditor_reference == "RF18539007547034"
    assert (erika.counterparty_name, erika.counterparty_iban, erika.counterparty_bic) == (
        "Erika Mustermann",
        "DE02120300000000202051",
        "COBADEFFXXX",
    )
    assert erika.bank_code == "166" and erika.origin == "line 5"
    # ?20–?29 lines of 27 characters join back; ?32 and ?33 make one name; Latin-1 read
    assert juergen.remittance == long_text
    assert juergen.counterparty_name == "Jürgen Müller-Lüdenscheidt Bauunternehmung"
    assert juergen.amount_minor == 9999 and juergen.reference is None  # NONREF
    assert not fee.credit and fee.amount_minor == 490
    assert returned.is_return and returned.return_reason == "AC04"
    assert not returned.credit and returned.bank_code == "159"


def test_several_mt940_statements_and_the_swift_envelope_are_read():
    first = mt940([ERIKA]).decode("latin-1")
    second = mt940([JEAN], statement_id="STMT2").decode("latin-1")
    one, two = parse((first + second).encode("latin-1"))
    assert (one.id, two.id) == ("STARTUMS:00001/001", "STMT2:00001/001")
    assert two.entries[0].counterparty_name == "Jean Dupont"
    line = (first + second).split("\r\n").index(second.split("\r\n")[4]) + 1
    assert two.entries[0].origin == f"line {line}"  # lines count through the whole file
    assert line > 10
    envelope = "{1:F01COBADEFFAXXX0000000000}{2:O940COBADEFFAXXXN}{4:\r\n" + first[:-3] + "-}"
    (wrapped,) = parse(envelope.encode("latin-1"))
    assert wrapped.entries[0].amount_minor == 5730 and wrapped.entries[0].origin == "line 6"


def test_a_broken_61_line_is_refused_with_its_line_number():
    lines = mt940([ERIKA, JEAN]).decode("latin-1").split("\r\n")
    number = next(i for i, line in enumerate(lines, 1) if line.startswith(":61:") and i > 6)
    lines[number - 1] = ":61:26120X1201C1250,00NTRFNONREF"
    with pytest.raises(StatementError, match=":61:") as caught:
        parse("\r\n".join(lines).encode("latin-1"))
    assert caught.value.where == f"line {number}"


def test_an_impossible_value_date_in_61_is_refused_with_its_line():
    data = mt940([ERIKA]).replace(b":61:261201", b":61:261341")
    with pytest.raises(StatementError, match="value date") as caught:
        parse(data)
    assert caught.value.where == "line 5"


def test_three_decimals_in_an_mt940_amount_are_refused_with_its_line():
    data = mt940([ERIKA]).replace(b"C57,30", b"C57,305")
    with pytest.raises(StatementError, match="more than 2 decimals") as caught:
        parse(data)
    assert caught.value.where == "line 5"


# --------------------------------------------------------------------------- CSV

MAPPING = {
    "date": "Buchungstag",
    "amount": "Betrag",
    "name": "Name",
    "iban": "IBAN",
    "remittance": ["Verwendungszweck", "Verwendungszweck 2"],
    "decimal": ",",
    "date_format": "%d.%m.%Y",
    "account": ACCOUNT,
}
CSV = (
    "Buchungstag;Betrag;Name;IBAN;Verwendungszweck;Verwendungszweck 2\n"
    "01.12.2026;1.234,56;Jürgen Müller;DE75 5121 0800 1245 1261 99;rf18 5390 0754 7034;Danke\n"
    "01.12.2026;-4,90;Bank;;Entgelt;\n"
    '02.12.2026;10,00;=HYPERLINK("http://x");;@SUM(A1);\n'
)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "latin-1"])
def test_a_mapped_csv_reads_in_every_encoding(encoding):
    statement = only(parse(CSV.encode(encoding), "umsaetze.csv", MAPPING))
    assert statement.format == "csv" and statement.account == ACCOUNT
    first, fee, formula = statement.entries
    assert (first.amount_minor, first.credit, first.booking_date) == (
        123456,
        True,
        date(2026, 12, 1),
    )
    assert first.counterparty_name == "Jürgen Müller"
    assert first.counterparty_iban == "DE75512108001245126199"
    assert first.remittance == "rf18 5390 0754 7034 Danke"
    assert (fee.amount_minor, fee.credit) == (490, False)
    # a cell that looks like a formula is the text it is, never evaluated or altered
    assert formula.counterparty_name == '=HYPERLINK("http://x")'
    assert formula.remittance == "@SUM(A1)"
    assert first.origin == "row 2"


def test_a_csv_with_debit_and_credit_columns_and_a_sniffed_comma():
    text = (
        "date,debit,credit,name,currency\n2026-12-01,,57.30,Erika,EUR\n2026-12-02,4.90,,Bank,EUR\n"
    )
    mapping = {
        "date": "date",
        "debit": "debit",
        "credit": "credit",
        "name": "name",
        "currency": "currency",
    }
    incoming, outgoing = only(parse(text.encode(), None, mapping)).entries
    assert (incoming.amount_minor, incoming.credit) == (5730, True)
    assert (outgoing.amount_minor, outgoing.credit) == (490, False)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("32.12.2026;1,00;X;;;", "is not a date"),
        ("01.12.2026;1,001;X;;;", "more than 2 decimals"),
        ("01.12.2026;zehn;X;;;", "is not an amount"),
        ("01.12.2026;1.23,4;X;;;", "is not an amount"),
        ("01.12.2026;1,00;X", "has 3 cells"),
    ],
)
def test_a_bad_csv_row_is_refused_naming_its_row(row, reason):
    data = (CSV + row + "\n").encode()
    with pytest.raises(StatementError, match=reason) as caught:
        parse(data, "x.csv", MAPPING)
    assert caught.value.where.startswith("row 5")


@pytest.mark.parametrize(
    ("mapping", "reason"),
    [
        ({"amount": "Betrag"}, "needs 'date'"),
        ({"date": "Buchungstag"}, "either 'amount'"),
        ({**MAPPING, "debit": "Soll", "credit": "Haben"}, "either 'amount'"),
        ({**MAPPING, "colour": "x"}, "unknown keys: colour"),
        ({**MAPPING, "decimal": ";"}, "'decimal'"),
        ({**MAPPING, "encoding": "utf-16"}, "'encoding'"),
        ({**MAPPING, "currency_code": "EURO"}, "unknown currency"),
        ({**MAPPING, "name": "Empfänger"}, "not in the header"),
        ("date=Buchungstag", "must be an object"),
    ],
)
def test_a_bad_mapping_is_refused_with_what_is_wrong(mapping, reason):
    with pytest.raises(StatementError, match=reason):
        parse(CSV.encode(), "x.csv", mapping)


def test_a_decimal_comma_read_with_a_decimal_point_mapping_is_refused_not_multiplied():
    text = "date;amount\n2026-12-01;57,30\n"
    with pytest.raises(StatementError, match="'57,30' is not an amount") as caught:
        parse(text.encode(), None, {"date": "date", "amount": "amount"})
    assert caught.value.where == "row 2, amount"
    text = "date;amount\n2026-12-01;1,234.50\n"
    (entry,) = only(parse(text.encode(), None, {"date": "date", "amount": "amount"})).entries
    assert entry.amount_minor == 123450


def test_a_csv_without_a_mapping_is_refused():
    assert detect(CSV.encode()) == "csv"
    with pytest.raises(StatementError, match="needs a column mapping"):
        parse(CSV.encode(), "x.csv")


# --------------------------------------------------------------------------- bad XML


def test_a_truncated_camt_file_is_refused_with_its_line():
    data = camt053([ERIKA, JEAN])
    with pytest.raises(StatementError, match="malformed XML") as caught:
        parse(data[: len(data) // 2])
    assert caught.value.where.startswith("line ")


def test_malformed_xml_is_refused_with_line_and_column():
    data = b'<?xml version="1.0"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">\n<BkToCstmrStmt></Stmt>'
    with pytest.raises(StatementError, match="malformed XML") as caught:
        parse(data)
    assert caught.value.where.startswith("line 3")


@pytest.mark.parametrize(
    "namespace", ["camt.052.001.02", "camt.053.001.09", "pain.001.001.03", "example.org/x"]
)
def test_a_namespace_not_read_is_refused_and_named(namespace):
    data = camt053([ERIKA], "08").replace(b"camt.053.001.08", namespace.encode())
    with pytest.raises(StatementError, match="is not read") as caught:
        parse(data)
    assert namespace in str(caught.value)


def test_a_camt054_body_under_a_camt053_namespace_is_refused():
    data = camt054([ERIKA], "08").replace(b"camt.054.001.08", b"camt.053.001.08")
    with pytest.raises(StatementError, match="BkToCstmrDbtCdtNtfctn"):
        parse(data)


def test_a_foreign_root_element_is_refused():
    with pytest.raises(StatementError, match="root element"):
        parse(b"<invoice><total>1</total></invoice>")


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<Stmt><Id>&lol9;</Id></Stmt></BkToCstmrStmt></Document>
"""


def test_an_xml_bomb_is_refused_fast_and_clearly():
    started = time.perf_counter()
    with pytest.raises(StatementError, match="DTD"):
        parse(BOMB)
    assert time.perf_counter() - started < 1.0


class _Recorder(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self):
        _Recorder.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"SECRET-FROM-NETWORK")

    def log_message(self, *args):
        pass


@pytest.fixture
def listener():
    """A real HTTP server on the loopback: any fetch the parser made would land here."""
    _Recorder.hits = []
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "declaration",
    [
        '<!DOCTYPE d [<!ENTITY x SYSTEM "{url}/entity">]>',
        '<!DOCTYPE d [<!ENTITY % p SYSTEM "{url}/param"> %p;]>',
        '<!DOCTYPE d SYSTEM "{url}/dtd">',
        '<!DOCTYPE d [<!ENTITY x SYSTEM "file://{secret}">]>',
    ],
)
def test_an_external_entity_is_refused_and_nothing_is_fetched(declaration, listener, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-FROM-DISK")
    head = declaration.format(url=listener, secret=secret)
    data = (
        f'<?xml version="1.0"?>\n{head}\n'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>'
        "<Stmt><Id>&x;</Id></Stmt></BkToCstmrStmt></Document>"
    ).encode()
    with pytest.raises(StatementError) as caught:
        parse(data)
    assert "DTD" in str(caught.value) or "entity" in str(caught.value)
    assert "SECRET" not in str(caught.value)
    time.sleep(0.05)
    assert _Recorder.hits == []


def test_an_entity_reference_without_a_dtd_is_malformed():
    data = camt053([ERIKA], "02").replace(b"<Id>STMT-2026-12-01</Id>", b"<Id>&x;</Id>")
    with pytest.raises(StatementError, match="malformed XML"):
        parse(data)


def test_a_file_over_the_limit_is_refused_before_parsing(monkeypatch):
    monkeypatch.setattr(entries, "MAX_BYTES", 1000)
    junk = b"<" + b"\x00" * 1500  # not XML at all: only the size check can speak first
    for reader in (parse, camt.parse, mt940_reader.parse):
        with pytest.raises(StatementError, match="more than the 1,000"):
            reader(junk)
    with pytest.raises(StatementError, match="more than the 1,000"):
        csvmap.parse(junk, MAPPING)


def test_200_mb_is_over_the_default_limit():
    assert entries.MAX_BYTES == 100 * 1024 * 1024
    with pytest.raises(StatementError, match="209,715,200 bytes"):
        entries.check_size(200 * 1024 * 1024)


def test_an_unknown_currency_is_refused_naming_the_attribute():
    data = camt053([ERIKA], "08").replace(b'<Amt Ccy="EUR">57.30', b'<Amt Ccy="EUX">57.30', 1)
    with pytest.raises(StatementError, match="unknown currency 'EUX'") as caught:
        parse(data)
    assert caught.value.where == "Stmt[1]/Ntry[1]/Amt/@Ccy"


def test_three_decimals_for_eur_are_refused_naming_the_element():
    data = camt053([ERIKA], "08").replace(b">57.30<", b">57.305<")
    with pytest.raises(StatementError, match="more than 2 decimals for EUR") as caught:
        parse(data)
    assert caught.value.where.startswith("Stmt[1]/Ntry[1]/")


def test_a_statement_error_is_a_kindly_error():
    assert issubclass(StatementError, KindlyError)


# --------------------------------------------------------------------------- identity


def test_identities_use_the_bank_reference_else_a_counted_fingerprint():
    twice = [JEAN, JEAN, ERIKA]
    first = only(parse(camt053(twice, "02"))).entries
    again = only(parse(camt053(twice, "08"))).entries
    keys = identities(first)
    assert keys[2] == f"ref:{ACCOUNT}:BANK-0001"
    assert keys[0].startswith("fp:") and keys[0] != keys[1]  # two identical transfers stay two
    assert keys == identities(again)  # re-reading (even another version) gives the same keys


def test_the_fingerprint_ignores_case_and_spacing_but_not_the_amount():
    (entry,) = only(parse(camt053([JEAN]))).entries
    from dataclasses import replace

    assert replace(entry, remittance="  DOSSIER   88 ").fingerprint() == entry.fingerprint()
    assert replace(entry, amount_minor=125001).fingerprint() != entry.fingerprint()
    assert replace(entry, credit=False).fingerprint() != entry.fingerprint()


def test_two_transfers_differing_only_in_their_rf_or_end_to_end_id_stay_two():
    # without a bank reference, the fingerprint is the identity: had it ignored the structured
    # reference, a second debtor's transfer would count as "already imported" and be lost
    from dataclasses import replace

    (entry,) = only(parse(camt053([JEAN]))).entries
    entry = replace(entry, reference=None, creditor_reference="RF18539007547034")
    other = replace(entry, creditor_reference="RF71 1234 5678 9")
    assert other.fingerprint() != entry.fingerprint()
    assert identities([entry]) != identities([other])
    spaced = replace(entry, creditor_reference="rf18 5390 0754 7034")
    assert spaced.fingerprint() == entry.fingerprint()  # as the bank spells it, either way
    assert (
        replace(entry, end_to_end_id="E2E-1").fingerprint()
        != replace(entry, end_to_end_id="E2E-2").fingerprint()
    )
    assert (
        replace(entry, end_to_end_id="NOTPROVIDED").fingerprint()
        == replace(entry, end_to_end_id=None).fingerprint()
    )


# --------------------------------------------------------------------------- RF


def test_an_rf_reference_per_debtor_is_valid_stable_and_short():
    reference = rf.rf_for("winter-2026", "K-0042")
    assert reference == rf.rf_for("winter-2026", "K-0042")
    assert reference != rf.rf_for("winter-2026", "K-0043")
    assert reference != rf.rf_for("spring-2027", "K-0042")
    assert iso11649.is_valid(reference) and len(reference) <= 25
    assert not set(reference[4:]) & set("ILOU")
    assert rf.printed(reference).replace(" ", "") == reference


def test_check_digits_match_the_standard_example():
    assert rf.with_check_digits("539007547034") == "RF18539007547034"
    assert rf.is_valid("rf18 5390 0754 7034")
    assert not rf.is_valid("RF19539007547034")
    assert not rf.is_valid("RF18539007547035")
    with pytest.raises(ValueError, match="not a valid"):
        rf.normalise("RF19 5390 0754 7034")


@pytest.mark.parametrize(
    "text",
    [
        "Zahlung rf18 5390 0754 7034 Rechnung",
        "RF18539007547034",
        "Ref: RF18-5390-0754-7034, danke",
        "ich zahle: Rf18 53900754 7034",
        "SVWZ+RF18 5390 0754 7034 Rechnung 4711",
    ],
)
def test_an_rf_reference_is_found_in_free_text(text):
    assert rf.find(text)[0] == "RF18539007547034"


def test_a_reference_with_wrong_check_digits_is_not_found():
    assert rf.find("Zahlung RF19 5390 0754 7034 Rechnung") == []
    assert rf.find("Kundennummer 4711, keine Referenz") == []


def test_two_references_in_one_text_are_both_found_and_never_run_into_each_other():
    first, second = rf.with_check_digits("539007547034"), rf.with_check_digits("71123456789")
    for glue in (" und ", " ", ", ", "-"):
        text = f"Zahlung {rf.printed(first)}{glue}{rf.printed(second).lower()}"
        found = rf.find(text)
        assert first in found and second in found, (glue, found)
        assert all(len(value) <= 25 and value.count("RF") == 1 for value in found), found
