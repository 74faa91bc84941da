-- Cash received by the as-of date that settles no invoice on that day, one row per payment,
-- with why: what ar_aging.unapplied_cash adds up (besides credit balances on overpaid invoices).

with

unapplied as (

    select * from {{ ref('int_ar__unapplied_cash') }}

),

customers as (

    select * from {{ ref('stg_erp__customers') }}

),

final as (

    select
        {{ as_of_date() }} as as_of_date,
        unapplied.payment_id,
        unapplied.customer_id,
        unapplied.company_id,
        customers.customer_name,
        customers.account_manager,
        unapplied.payment_date,
        unapplied.payment_amount,
        unapplied.applied_amount,
        unapplied.unapplied_amount,
        unapplied.company_currency,
        unapplied.document_currency,
        unapplied.unapplied_document_amount,
        unapplied.unallocated_amount,
        unapplied.on_later_invoices_amount,
        unapplied.on_cancelled_invoices_amount,
        unapplied.on_unknown_invoices_amount,
        unapplied.unapplied_reason
    from unapplied
    left join customers on unapplied.customer_id = customers.customer_id
    where unapplied.unapplied_document_amount >= {{ policy('amount_tolerance') }}

)

select * from final
