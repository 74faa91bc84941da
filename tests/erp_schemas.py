"""The ERPs' own tables, built from the ERPs' own definitions (tests/data/erp/<erp>/).

ERPNext: each DocType's stored fields (read from its DocType JSON) become a MariaDB table the
way Frappe's schema builder makes one: `tab<DocType>`, Frappe's standard columns, its MariaDB
type map, and its column defaults (numbers and checks are NOT NULL with a default, other
fields default to the DocType's static default if it has one).

Odoo: each model's stored fields (read from its Python source) become a PostgreSQL table the
way Odoo's ORM makes one: the model's name with dots as underscores, the magic columns, each
field type's column type, NOT NULL for required fields, Many2many relation tables and the
model's SQL constraints.
"""

from __future__ import annotations

import json
from pathlib import Path

ERPNEXT_DOCTYPES = Path(__file__).parent / "data" / "erp" / "erpnext"
ODOO_MODELS = Path(__file__).parent / "data" / "erp" / "odoo"
VARCHAR = "varchar(140)"

# frappe/database/mariadb/database.py, MariaDBDatabase.setup_type_map
FRAPPE_MARIADB_TYPES = {
    "Currency": "decimal(21,9)",
    "Int": "int(11)",
    "Long Int": "bigint(20)",
    "Float": "decimal(21,9)",
    "Percent": "decimal(21,9)",
    "Check": "int(1)",
    "Small Text": "text",
    "Long Text": "longtext",
    "Code": "longtext",
    "Text Editor": "longtext",
    "Markdown Editor": "longtext",
    "HTML Editor": "longtext",
    "Date": "date",
    "Datetime": "datetime(6)",
    "Time": "time(6)",
    "Text": "text",
    "Data": VARCHAR,
    "Link": VARCHAR,
    "Dynamic Link": VARCHAR,
    "Password": "text",
    "Select": VARCHAR,
    "Rating": "decimal(3,2)",
    "Read Only": VARCHAR,
    "Attach": "text",
    "Attach Image": "text",
    "Signature": "longtext",
    "Color": VARCHAR,
    "Barcode": "longtext",
    "Geolocation": "longtext",
    "Duration": "decimal(21,9)",
    "Icon": VARCHAR,
    "Phone": VARCHAR,
    "Autocomplete": VARCHAR,
    "JSON": "json",
}
NUMERIC_DEFAULT_ZERO = {"Check", "Int", "Long Int", "Currency", "Float", "Percent", "Duration"}
# defaults Frappe resolves when a document is made, never in the column
DYNAMIC_DEFAULTS = {"Today", "__user", "Now", "now", "user", "__today"}
TEXT_COLUMNS = {"text", "longtext", "json"}


def _column(field: dict) -> str:
    fieldtype = field["fieldtype"]
    column_type = FRAPPE_MARIADB_TYPES[fieldtype]
    definition = f"`{field['fieldname']}` {column_type}"
    default = field.get("default")
    if fieldtype in NUMERIC_DEFAULT_ZERO:
        value = float(default) if default not in (None, "") else 0
        definition += f" not null default {value:g}"
    elif (
        default
        and default not in DYNAMIC_DEFAULTS
        and not default.startswith((":", "{"))
        and column_type not in TEXT_COLUMNS
    ):
        definition += " default '{}'".format(default.replace("'", "''"))
    return definition


def frappe_table(doctype: dict) -> str:
    """CREATE TABLE for one DocType, as Frappe creates it on MariaDB."""
    columns = [
        f"name {VARCHAR} not null primary key",
        "creation datetime(6)",
        "modified datetime(6)",
        f"modified_by {VARCHAR}",
        f"owner {VARCHAR}",
        "docstatus int(1) not null default 0",
        "idx int(8) not null default 0",
    ]
    columns += [_column(field) for field in doctype["fields"]]
    if doctype["istable"]:
        columns += [f"parent {VARCHAR}", f"parentfield {VARCHAR}", f"parenttype {VARCHAR}"]
    else:
        columns += ["_user_tags text", "_comments text", "_assign text", "_liked_by text"]
    keys = ["key modified (modified)"] + (["key parent (parent)"] if doctype["istable"] else [])
    body = ",\n    ".join(columns + keys)
    return f"create table `tab{doctype['doctype']}` (\n    {body}\n) engine=InnoDB character set utf8mb4"


def erpnext_doctypes() -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(ERPNEXT_DOCTYPES.glob("*.json"))]


def erpnext_tables() -> list[str]:
    return [frappe_table(doctype) for doctype in erpnext_doctypes()]


# odoo/fields.py (17.0): each field class's column_type
ODOO_COLUMN_TYPES = {
    "boolean": "bool",
    "integer": "int4",
    "float": "float8",  # numeric when the field has digits
    "monetary": "numeric",
    "char": "varchar",
    "text": "text",
    "html": "text",
    "date": "date",
    "datetime": "timestamp",
    "selection": "varchar",
    "many2one": "int4",
    "many2one_reference": "int4",
    "reference": "varchar",
    "json": "jsonb",
    "properties": "jsonb",
}


def _odoo_column(field: dict) -> str:
    column_type = ODOO_COLUMN_TYPES[field["type"]]
    if field.get("size"):
        column_type = f"varchar({field['size']})"
    if field.get("digits"):
        column_type = "numeric"
    if field.get("translate"):
        column_type = "jsonb"
    return f"{field['name']} {column_type}" + (" not null" if field.get("required") else "")


def odoo_table(model: dict) -> list[str]:
    """CREATE TABLE for one model (and its Many2many relation tables), as Odoo creates them."""
    columns = [
        "id serial primary key",
        "create_uid int4",
        "create_date timestamp",
        "write_uid int4",
        "write_date timestamp",
    ]
    columns += [_odoo_column(field) for field in model["fields"]]
    columns += [f"constraint {model['table']}_{constraint}" for constraint in model["constraints"]]
    statements = ["create table {} (\n    {}\n)".format(model["table"], ",\n    ".join(columns))]
    statements += [
        f"create table {rel['relation']} ({rel['column1']} int4 not null, {rel['column2']} int4 not null, "
        f"primary key ({rel['column1']}, {rel['column2']}))"
        for rel in model["many2many"]
    ]
    return statements


def odoo_tables() -> list[str]:
    return [
        statement
        for path in sorted(ODOO_MODELS.glob("*.json"))
        for statement in odoo_table(json.loads(path.read_text()))
    ]
