-- The invoices that count: posted (not cancelled) and issued by the as-of date.
-- A view: a filter on one table, which every reader can push into its own scan; as a table
-- it copied every invoice on every run.
{{ config(materialized='view') }}

with

invoices as (

    select * from {{ ref('int_billing__invoices') }}

),

final as (

    select * from invoices
    where invoice_status = 'posted' and invoice_date <= {{ as_of_date() }}

)

select * from final
