-- The invoices that count: posted (not cancelled) and issued by the as-of date.

with

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

final as (

    select * from invoices
    where invoice_status = 'posted' and invoice_date <= {{ as_of_date() }}

)

select * from final
