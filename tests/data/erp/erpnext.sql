-- The ERPNext tables and columns mappings/erpnext.yml reads, with Frappe's names and types
-- (Data/Link -> varchar(140), Check -> int(1), Currency/Float -> decimal(21,9)).
create table `tabUser` (
    name varchar(140) primary key, modified datetime(6), full_name varchar(140), email varchar(140));
create table `tabTerritory` (
    name varchar(140) primary key, modified datetime(6), parent_territory varchar(140));
create table `tabPayment Terms Template Detail` (
    name varchar(140) primary key, modified datetime(6), parent varchar(140), idx int(8), credit_days int(11));
create table `tabCustomer` (
    name varchar(140) primary key, creation datetime(6), modified datetime(6), docstatus int(1) not null default 0,
    customer_name varchar(140), customer_type varchar(140), customer_group varchar(140),
    territory varchar(140), account_manager varchar(140), payment_terms varchar(140),
    disabled int(1) not null default 0);
create table `tabSales Order` (
    name varchar(140) primary key, creation datetime(6), modified datetime(6), docstatus int(1) not null default 0,
    customer varchar(140), transaction_date date, status varchar(140), currency varchar(140),
    per_billed decimal(21,9) default 0, per_delivered decimal(21,9) default 0, grand_total decimal(21,9));
create table `tabSales Order Item` (
    name varchar(140) primary key, modified datetime(6), docstatus int(1) not null default 0,
    parent varchar(140), parenttype varchar(140), idx int(8), item_code varchar(140),
    qty decimal(21,9), rate decimal(21,9), delivered_qty decimal(21,9));
create table `tabDelivery Note` (
    name varchar(140) primary key, modified datetime(6), docstatus int(1) not null default 0,
    customer varchar(140), posting_date date, territory varchar(140), grand_total decimal(21,9),
    is_return int(1) not null default 0);
create table `tabDelivery Note Item` (
    name varchar(140) primary key, parent varchar(140), parenttype varchar(140), idx int(8),
    against_sales_order varchar(140));
create table `tabSales Invoice` (
    name varchar(140) primary key, creation datetime(6), modified datetime(6), docstatus int(1) not null default 0,
    customer varchar(140), posting_date date, due_date date, currency varchar(140),
    grand_total decimal(21,9), outstanding_amount decimal(21,9), is_return int(1) not null default 0,
    return_against varchar(140), status varchar(140));
create table `tabSales Invoice Item` (
    name varchar(140) primary key, modified datetime(6), docstatus int(1) not null default 0,
    parent varchar(140), parenttype varchar(140), idx int(8), item_code varchar(140),
    qty decimal(21,9), stock_qty decimal(21,9), rate decimal(21,9), amount decimal(21,9),
    incoming_rate decimal(21,9), sales_order varchar(140));
create table `tabPayment Entry` (
    name varchar(140) primary key, modified datetime(6), docstatus int(1) not null default 0,
    payment_type varchar(140), party_type varchar(140), party varchar(140), posting_date date,
    paid_amount decimal(21,9), mode_of_payment varchar(140));
create table `tabPayment Entry Reference` (
    name varchar(140) primary key, parent varchar(140), parenttype varchar(140), idx int(8),
    reference_doctype varchar(140), reference_name varchar(140), allocated_amount decimal(21,9));
create table `tabPayment Entry Deduction` (
    name varchar(140) primary key, parent varchar(140), parenttype varchar(140), idx int(8),
    account varchar(140), cost_center varchar(140), amount decimal(21,9), description text);
