-- The Odoo 17 tables mappings/odoo.yml reads beside the ledger (account_move,
-- account_move_line, account_partial_reconcile, built from Odoo's models: odoo/*.json), with
-- the columns it reads under the ORM's names and types (Many2one -> integer, Char -> varchar,
-- translated Char -> jsonb, Monetary -> numeric).
create table res_country (id serial primary key, code varchar(2), name jsonb, write_date timestamp);
create table res_country_state (
    id serial primary key, country_id integer, code varchar, name varchar, write_date timestamp);
create table res_currency (id serial primary key, name varchar, write_date timestamp);
create table res_company (id serial primary key, name varchar, currency_id integer, write_date timestamp);
create table res_users (id serial primary key, login varchar, partner_id integer, write_date timestamp);
create table sale_order (
    id serial primary key, name varchar, partner_id integer, company_id integer, date_order timestamp,
    state varchar, invoice_status varchar, currency_id integer, amount_total numeric, write_date timestamp);
create table sale_order_line (
    id serial primary key, order_id integer, sequence integer, product_id integer, product_uom_qty numeric,
    price_unit numeric, qty_delivered numeric, display_type varchar, write_date timestamp);
create table stock_picking_type (id serial primary key, code varchar, name jsonb, write_date timestamp);
create table stock_picking (
    id serial primary key, name varchar, partner_id integer, company_id integer, sale_id integer,
    picking_type_id integer, state varchar, scheduled_date timestamp, date_done timestamp, write_date timestamp);
create table stock_move (
    id serial primary key, picking_id integer, sale_line_id integer, product_id integer,
    product_uom_qty numeric, state varchar, write_date timestamp);
create table account_account (
    id serial primary key, code varchar, name jsonb, account_type varchar, company_id integer,
    write_date timestamp);
create table account_journal (
    id serial primary key, code varchar, name jsonb, type varchar, company_id integer, write_date timestamp);
