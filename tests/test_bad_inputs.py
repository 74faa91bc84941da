"""The bad-input corpus (tests/data/bad_inputs/manifest.yml): every file either loads with
its bad rows quarantined (landed = loaded + quarantined) or is refused whole with a message
naming the file; none crashes, none half-loads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from kam.contract import get_table
from kam.ingest.files import Loader
from tests.conftest import rows, scalar
from tests.test_loading import INVOICE_HEADER, invoice, write_invoices

CORPUS = Path(__file__).parent / "data" / "bad_inputs"
CASES = yaml.safe_load((CORPUS / "manifest.yml").read_text(encoding="utf-8"))


def generate(name: str, folder: Path) -> Path:
    path = folder / name
    if name == "ten_megabyte_field.csv":
        write_invoices(path, [invoice(1, invoice_number="N" * (10 << 20))])
    elif name == "nul_bytes.csv":
        path.write_bytes(
            (",".join(INVOICE_HEADER) + "\n").encode()
            + b"I1,N1,C1,,2026-01-05,2026-02-04,CNY,10,posted\n"
            + b"I2,N\x002,C1,,2026-01-05,2026-02-04,CNY,10,posted\n"
        )
    elif name == "workbook.xlsx":
        import openpyxl

        book = openpyxl.Workbook()
        book.active.title = "read me"
        book.active["A1"] = "Invoices exported from the ERP; see the invoices sheet"
        sheet = book.create_sheet("invoices")
        sheet.append(list(INVOICE_HEADER))
        for n in (1, 2, 3):
            sheet.append(list(invoice(n).values()))
        sheet.merge_cells("C3:C4")  # a merged customer cell: only its first row keeps the value
        book.create_sheet("totals").append(["total", 30])
        book.save(path)
    elif name == "parquet_renamed.csv":
        import pyarrow as pa
        import pyarrow.parquet as pq

        records = [invoice(1), invoice(2)]
        pq.write_table(pa.table({k: [r[k] for r in records] for k in INVOICE_HEADER}), path)
    elif name == "pdf_renamed.csv":
        path.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n")
    return path


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_each_bad_input_loads_with_quarantine_or_is_refused_whole(case, warehouse, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    loader = Loader(warehouse, progress=lambda m: None)
    table = get_table(case["table"])
    if case.get("after"):
        (earlier,) = loader.load_paths(
            [shutil.copy(CORPUS / case["after"], folder / case["after"])], table=table
        )
        assert earlier.status == "loaded"
    source = (
        generate(case["file"], folder)
        if case.get("generated")
        else Path(shutil.copy(CORPUS / case["file"], folder))
    )
    before = scalar(warehouse, f"select count(*) from raw.{table.name}")  # noqa: S608
    (result,) = loader.load_paths([source], table=table)
    after = scalar(warehouse, f"select count(*) from raw.{table.name}")  # noqa: S608
    if case["outcome"] == "refused":
        assert result.status == "failed", result
        assert str(source) in result.message and case["message"] in result.message, result.message
        assert "Traceback" not in result.message
        assert after == before
        assert (
            scalar(warehouse, "select count(*) from audit.quarantine where batch_id = %s", (result.batch_id,))
            == 0
        )
    else:
        assert result.status == "loaded", result.message
        assert result.rows_landed == result.rows_loaded + result.rows_quarantined
        assert (result.rows_loaded, result.rows_quarantined) == (case["loaded"], case["quarantined"])
        assert case.get("message", "") in result.message
        quarantined = rows(
            warehouse, "select line_no, reason from audit.quarantine where batch_id = %s", (result.batch_id,)
        )
        assert len(quarantined) == case["quarantined"] and all(
            line > 1 and reason for line, reason in quarantined
        )


def test_the_corpus_covers_every_kind_the_issue_names():
    assert len(CASES) >= 20
    assert {c["outcome"] for c in CASES} == {"loaded", "refused"}
