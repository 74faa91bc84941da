-- The reference tables mappings/odoo.yml reads (countries, currencies, companies, users,
-- operation types), hand-written with the columns it reads under Odoo
-- 17's names and types (Many2one -> integer, Char -> varchar, translated Char -> jsonb). The
-- documents' tables are built from Odoo's models (odoo/*.json, tests/erp_schemas.py).
create table res_country (id serial primary key, code varchar(2), name jsonb, write_date timestamp);
create table res_country_state (
    id serial primary key, country_id integer, code varchar, name varchar, write_date timestamp);
create table res_currency (id serial primary key, name varchar, write_date timestamp);
create table res_company (id serial primary key, name varchar, currency_id integer, write_date timestamp);
create table res_users (id serial primary key, login varchar, partner_id integer, write_date timestamp);
create table stock_picking_type (id serial primary key, code varchar, name jsonb, write_date timestamp);
