"""Loading landing files into raw: COPY, batches, quarantine, idempotency, mappings."""

from __future__ import annotations

import csv
import io
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from kam.contract import get_table
from kam.ingest.files import Loader
from kam.ingest.mappings import MappingError, load_mapping
from kam.settings import PROJECT_DIR
from tests.conftest import rows, run_kam, scalar

IBM_CSV = PROJECT_DIR.parent / "shared" / "data" / "real" / "ibm_late_payment_histories.csv"
IBM_MAPPING = PROJECT_DIR / "mappings" / "ibm_late_payment_histories.yml"
# a file in the contract layout as a file-only site writes it: no company or company-currency columns
INVOICE_HEADER = [c.name for c in get_table("invoices").columns if not c.optional]


def write_invoices(path: Path, records: list[dict], encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding=encoding) as handle:
        writer = csv.DictWriter(handle, fieldnames=INVOICE_HEADER)
        writer.writeheader()
        writer.writerows(records)
    return path


def invoice(n: int, **overrides) -> dict:
    row = {
        "invoice_id": f"I{n:04d}",
        "invoice_number": f"N{n}",
        "customer_id": "C1",
        "order_id": "",
        "invoice_date": "2026-01-05",
        "due_date": "2026-02-04",
        "currency": "CNY",
        "amount": "100.50",
        "status": "posted",
    }
    return row | overrides


def counts(url: str) -> dict[str, int]:
    return {
        t: scalar(url, f"select count(*) from raw.{t}")
        for t in (
            "customers",
            "invoices",
            "payments",  # noqa: S608
            "payment_allocations",
        )
    }


@pytest.mark.skipif(not IBM_CSV.exists(), reason="shared/data/real is not beside the repository")
def test_ibm_ledger_loads_through_its_mapping_and_a_reload_changes_nothing(tmp_path, kam_env, warehouse):
    first = run_kam("load", "--mapping", str(IBM_MAPPING), str(IBM_CSV), env=kam_env, check=True)
    assert "0 quarantined" in first.stdout
    expected = {"customers": 100, "invoices": 2466, "payments": 2466, "payment_allocations": 2466}
    assert counts(warehouse) == expected
    assert scalar(warehouse, "select count(*) from audit.quarantine") == 0
    # dd/mm/yyyy became real dates: the first row of the file is invoice 280670965 of 03/01/2012
    assert rows(
        warehouse, "select invoice_date, due_date from raw.invoices where invoice_id = '280670965'"
    ) == [(__import__("datetime").date(2012, 1, 3), __import__("datetime").date(2012, 2, 2))]
    second = run_kam("load", "--mapping", str(IBM_MAPPING), str(IBM_CSV), env=kam_env, check=True)
    assert "skipped" in second.stdout
    assert counts(warehouse) == expected
    assert scalar(warehouse, "select count(*) from audit.batches where status = 'loaded'") == 1


def test_bad_rows_are_quarantined_with_line_column_and_reason(tmp_path, warehouse):
    records = [invoice(n) for n in range(1, 101)]
    records[9]["amount"] = "12,3x"  # line 11: not a number
    records[49]["customer_id"] = ""  # line 51: missing key
    records[89]["invoice_date"] = "2024-02-31"  # line 91: impossible date
    path = write_invoices(tmp_path / "invoices.csv", records)
    (result,) = Loader(warehouse, progress=lambda m: None).load_paths([path])
    assert (result.status, result.rows_landed, result.rows_loaded, result.rows_quarantined) == (
        "loaded",
        100,
        97,
        3,
    )
    assert scalar(warehouse, "select count(*) from raw.invoices") == 97
    quarantined = rows(
        warehouse, "select line_no, column_name, value, reason from audit.quarantine order by line_no"
    )
    assert [(q[0], q[1]) for q in quarantined] == [(11, "amount"), (51, "customer_id"), (91, "invoice_date")]
    assert quarantined[0][2] == "12,3x" and "numeric" in quarantined[0][3]
    assert "missing" in quarantined[1][3] and "not a valid date" in quarantined[2][3]
    batch = rows(warehouse, "select rows_landed, rows_loaded, rows_quarantined from audit.batches")[0]
    assert batch == (100, 97, 3)


def test_duplicates_enums_ranges_and_implausible_dates_are_quarantined(tmp_path, warehouse):
    records = [
        invoice(1),
        invoice(2, status="paid"),
        invoice(1, amount="7"),
        invoice(3, amount="-5"),
        invoice(4, invoice_date="1900-01-01"),
        invoice(5, due_date="9999-12-31"),
        invoice(6, amount="1e15"),
    ]
    path = write_invoices(tmp_path / "invoices.csv", records)
    (result,) = Loader(warehouse, progress=lambda m: None).load_paths([path])
    assert (result.rows_loaded, result.rows_quarantined) == (1, 6)
    reasons = dict(rows(warehouse, "select line_no, reason from audit.quarantine"))
    assert "not one of" in reasons[3] and "duplicate key" in reasons[4] and "line 2" in reasons[4]
    assert (
        "plausible range" in reasons[5]
        and "impossible date" in reasons[6]
        and "impossible date" in reasons[7]
    )
    assert "numeric" in reasons[8] or "plausible range" in reasons[8]
    assert rows(warehouse, "select amount from raw.invoices") == [(__import__("decimal").Decimal("100.50"),)]


RAW_INVOICE_INDEXES = (
    "select indexdef from pg_indexes where schemaname = 'raw' and tablename = 'invoices' order by 1"
)


RAW_INVOICE_BATCH_DEFAULT = (
    "select pg_get_expr(adbin, adrelid) from pg_attrdef join pg_attribute on attrelid = adrelid and attnum = adnum"
    " where adrelid = 'raw.invoices'::regclass and attname = '_batch_id'"
)


def test_a_first_load_builds_the_keys_after_and_analyzes_the_table(tmp_path, warehouse):
    before = rows(warehouse, RAW_INVOICE_INDEXES)
    batch_default = scalar(warehouse, RAW_INVOICE_BATCH_DEFAULT)
    path = write_invoices(tmp_path / "invoices.csv", [invoice(n) for n in range(1, 6)])
    loader = Loader(warehouse, progress=lambda m: None)
    (result,) = loader.load_paths([path])
    assert (result.status, result.rows_loaded) == ("loaded", 5)
    assert rows(warehouse, RAW_INVOICE_INDEXES) == before and len(before) == 2  # the key, BRIN on _batch_id
    assert "current_setting" in batch_default
    assert scalar(warehouse, RAW_INVOICE_BATCH_DEFAULT) == batch_default
    assert scalar(warehouse, "select reltuples from pg_class where oid = 'raw.invoices'::regclass") == 5
    more = write_invoices(tmp_path / "more" / "invoices.csv", [invoice(6), invoice(7)])
    (later,) = loader.load_paths([more])
    assert rows(warehouse, "select _batch_id, count(*) from raw.invoices group by 1 order by 1") == [
        (result.batch_id, 5),
        (later.batch_id, 2),
    ]


def test_a_first_load_waits_for_a_writer_of_the_same_table_and_keeps_its_rows(tmp_path, warehouse):
    path = write_invoices(tmp_path / "invoices.csv", [invoice(n) for n in range(1, 4)])
    with psycopg.connect(warehouse) as writer:  # another load, not committed yet
        writer.execute(
            "insert into raw.invoices (invoice_id, customer_id, invoice_date, amount, status, _batch_id)"
            " values ('OTHER-1', 'C1', '2026-01-05', 1, 'posted', 0)"
        )
        with ThreadPoolExecutor(max_workers=1) as pool:
            loading = pool.submit(Loader(warehouse, progress=lambda m: None).load_paths, [path])
            time.sleep(1)
            assert not loading.done()  # it waits for the writer
            writer.commit()
            (result,) = loading.result()
    assert result.status == "loaded", result.message
    assert scalar(warehouse, "select count(*) from raw.invoices") == 4  # the writer's row is still there


def test_a_key_repeated_in_a_first_load_is_quarantined_and_the_keys_stay(tmp_path, warehouse):
    before = rows(warehouse, RAW_INVOICE_INDEXES)
    path = write_invoices(tmp_path / "invoices.csv", [invoice(1), invoice(2), invoice(1, amount="7")])
    (result,) = Loader(warehouse, progress=lambda m: None).load_paths([path])
    assert (result.rows_loaded, result.rows_quarantined) == (2, 1)
    assert "duplicate key" in scalar(warehouse, "select reason from audit.quarantine")
    assert rows(warehouse, RAW_INVOICE_INDEXES) == before


def test_a_file_that_is_not_csv_fails_clearly_and_loads_nothing(tmp_path, kam_env, warehouse):
    fake = tmp_path / "invoices.csv"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10)
    result = run_kam("load", str(fake), env=kam_env)
    assert result.returncode == 1
    assert str(fake) in result.stdout and "PNG image" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert scalar(warehouse, "select count(*) from raw.invoices") == 0
    assert rows(warehouse, "select status from audit.batches") == [("failed",)]


def test_a_structurally_broken_csv_is_refused_whole_with_its_line(tmp_path, warehouse):
    path = write_invoices(tmp_path / "invoices.csv", [invoice(n) for n in range(1, 6)])
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("I9999,N9999,C1\n")  # truncated last line
    (result,) = Loader(warehouse, progress=lambda m: None).load_paths([path])
    assert result.status == "failed"
    assert "line 7" in result.message and str(path) in result.message
    assert scalar(warehouse, "select count(*) from raw.invoices") == 0


def test_a_changed_file_replaces_its_earlier_batch(tmp_path, warehouse):
    path = write_invoices(
        tmp_path / "landing" / "billing" / "invoices" / "export.csv", [invoice(n) for n in range(1, 11)]
    )
    loader = Loader(warehouse, progress=lambda m: None)
    loader.load_paths([path])
    write_invoices(path, [invoice(n, amount="5") for n in range(1, 6)])
    (result,) = loader.load_paths([path])
    assert result.status == "loaded" and "replaces batch" in result.message
    assert rows(warehouse, "select count(*), sum(amount) from raw.invoices") == [(5, 25)]
    assert rows(warehouse, "select status from audit.batches order by batch_id") == [
        ("superseded",),
        ("loaded",),
    ]


def test_keys_seen_in_an_earlier_file_are_updated_not_duplicated(tmp_path, warehouse):
    loader = Loader(warehouse, progress=lambda m: None)
    loader.load_paths([write_invoices(tmp_path / "day1" / "invoices.csv", [invoice(1), invoice(2)])])
    loader.load_paths([write_invoices(tmp_path / "day2" / "invoices.csv", [invoice(2, status="cancelled")])])
    assert rows(warehouse, "select invoice_id, status from raw.invoices order by 1") == [
        ("I0001", "posted"),
        ("I0002", "cancelled"),
    ]


def test_a_changed_file_replaces_only_rows_no_other_current_file_holds(tmp_path, warehouse):
    """a.csv and b.csv both hold I0002; b.csv re-exported without it keeps the row (a.csv,
    unchanged, still holds it), and b.csv's own rows it dropped go."""
    loader = Loader(warehouse, progress=lambda m: None)
    folder = tmp_path / "landing" / "billing" / "invoices"
    a = write_invoices(folder / "a.csv", [invoice(1), invoice(2)])
    b = write_invoices(folder / "b.csv", [invoice(2), invoice(3), invoice(4)])
    loader.load_paths([a, b])
    write_invoices(b, [invoice(3)])
    (result,) = loader.load_paths([b])
    assert result.status == "loaded" and "replaces batch" in result.message
    assert rows(warehouse, "select invoice_id from raw.invoices order by 1") == [
        ("I0001",),
        ("I0002",),
        ("I0003",),
    ]
    # I0002 belongs to a.csv's batch again: a later a.csv without it removes it
    write_invoices(a, [invoice(1)])
    loader.load_paths([a])
    assert rows(warehouse, "select invoice_id from raw.invoices order by 1") == [("I0001",), ("I0003",)]
    assert rows(warehouse, "select count(*) from audit.shared_rows") == [(0,)]


def test_one_call_loads_tables_side_by_side_and_each_tables_files_in_order(tmp_path, warehouse):
    write_invoices(tmp_path / "1" / "invoices.csv", [invoice(1), invoice(2)])
    write_invoices(tmp_path / "2" / "invoices.csv", [invoice(2, status="cancelled")])
    write_invoices(tmp_path / "3" / "invoices.csv", [invoice(2, amount="9.99")])
    payments = tmp_path / "1" / "payments.csv"
    payments.write_text(
        "payment_id,customer_id,payment_date,amount,method\nP1,C1,2026-01-20,100.50,transfer\n"
    )
    results = Loader(warehouse, progress=lambda m: None).load_paths([tmp_path])
    assert [Path(r.file).relative_to(tmp_path).as_posix() for r in results] == [
        "1/invoices.csv",
        "1/payments.csv",
        "2/invoices.csv",
        "3/invoices.csv",
    ]
    assert {r.status for r in results} == {"loaded"}, [r.message for r in results]
    assert rows(warehouse, "select invoice_id, status, amount::text from raw.invoices order by 1") == [
        ("I0001", "posted", "100.50"),
        ("I0002", "posted", "9.99"),  # the last file wins
    ]
    assert scalar(warehouse, "select count(*) from raw.payments") == 1


def test_gb18030_and_bom_files_load_chinese_names(tmp_path, warehouse):
    header = ",".join(c.name for c in get_table("customers").columns if not c.optional)
    line = "C1,上海华联商贸有限公司,distributor,,East,East,KA,王经理,wang@example.com,30,3,2020-01-01,true"
    gb = tmp_path / "gb" / "customers.csv"
    gb.parent.mkdir()
    gb.write_bytes(f"{header}\n{line}\n".encode("gb18030"))
    bom = tmp_path / "bom" / "customers.csv"
    bom.parent.mkdir()
    bom.write_bytes(b"\xef\xbb\xbf" + f"{header}\n{line.replace('C1', 'C2')}\n".encode())
    results = Loader(warehouse, progress=lambda m: None).load_paths([gb, bom])
    assert [r.status for r in results] == ["loaded", "loaded"]
    assert rows(warehouse, "select distinct customer_name from raw.customers") == [("上海华联商贸有限公司",)]


def test_xlsx_and_parquet_files_load(tmp_path, warehouse):
    import openpyxl
    import pyarrow as pa
    import pyarrow.parquet as pq

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "notes"
    sheet["A1"] = "exported by the ERP"
    data = workbook.create_sheet("invoices")
    data.append(list(INVOICE_HEADER))
    for n in (1, 2):
        data.append(list(invoice(n).values()))
    workbook.save(tmp_path / "export.xlsx")
    table = pa.table({k: [v] for k, v in invoice(3).items()})
    pq.write_table(table, tmp_path / "invoices.parquet")
    loader = Loader(warehouse, progress=lambda m: None)
    results = loader.load_paths([tmp_path / "export.xlsx"], table=get_table("invoices"))
    results += loader.load_paths([tmp_path / "invoices.parquet"])
    assert [r.status for r in results] == ["loaded", "loaded"], [r.message for r in results]
    assert scalar(warehouse, "select count(*) from raw.invoices") == 3


def test_mappings_cannot_name_tables_or_columns_outside_the_contract(tmp_path):
    evil = tmp_path / "evil.yml"
    evil.write_text("targets:\n  'raw.invoices; drop table raw.invoices':\n    columns: {invoice_id: a}\n")
    with pytest.raises(MappingError, match="not a raw table"):
        load_mapping(evil)
    evil.write_text("targets:\n  billing.invoices:\n    columns: {'invoice_id\"; drop': a}\n")
    with pytest.raises(MappingError, match="not a column"):
        load_mapping(evil)


def test_hostile_header_names_are_data_not_sql(tmp_path, warehouse):
    mapping = tmp_path / "m.yml"
    mapping.write_text(
        'targets:\n  billing.payments:\n    columns:\n      payment_id: "id\\"); drop table raw.invoices; --"\n'
        "      customer_id: {value: C1}\n      payment_date: {value: '2026-01-01'}\n      amount: {value: '1'}\n"
    )
    path = tmp_path / "p.csv"
    path.write_text(io.StringIO('"id""); drop table raw.invoices; --"\nP1\n').getvalue())
    (result,) = Loader(warehouse, progress=lambda m: None).load_paths([path], mapping=load_mapping(mapping))
    assert result.status == "loaded" and result.rows_loaded == 1
    assert scalar(warehouse, "select count(*) from raw.invoices") == 0  # still exists


def test_a_mapping_may_declare_a_decimal_comma_and_thousands_separator(tmp_path, warehouse):
    """1.234,56 in a file that declares it is 1234.56; a number the declaration does not fit
    is quarantined with the notation it should have had, never guessed."""
    mapping = tmp_path / "european.yml"
    mapping.write_text(
        'decimal_separator: ","\nthousands_separator: "."\ntargets:\n  billing.payments:\n    columns:\n'
        "      payment_id: id\n      customer_id: {value: C1}\n      payment_date: {value: '2026-01-01'}\n"
        "      amount: betrag\n"
    )
    path = tmp_path / "zahlungen.csv"
    path.write_text('id;betrag\nP1;"1.234,56"\nP2;"12,5"\nP3;"1,234.56"\nP4;"12.34"\n'.replace(";", ","))
    (result,) = Loader(warehouse, progress=lambda m: None).load_paths([path], mapping=load_mapping(mapping))
    assert result.rows_loaded == 2 and result.rows_quarantined == 2
    assert rows(warehouse, "select payment_id, amount from raw.payments order by 1") == [
        ("P1", Decimal("1234.56")),
        ("P2", Decimal("12.50")),
    ]
    reasons = rows(warehouse, "select value, reason from audit.quarantine order by line_no")
    assert [value for value, _ in reasons] == ["1,234.56", "12.34"]
    assert all("',' before decimals and '.' between thousands" in reason for _, reason in reasons)

    mapping.write_text(mapping.read_text().replace('thousands_separator: "."', 'thousands_separator: ","'))
    with pytest.raises(
        MappingError, match="thousands_separator ',' must be one of .* and differ from the decimal"
    ):
        load_mapping(mapping)
