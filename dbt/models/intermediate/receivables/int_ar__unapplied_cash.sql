-- Every payment received by the as-of date with the part of it that settles no invoice on
-- that day: never allocated, allocated to an invoice not issued yet (a prepayment: unapplied
-- until the invoice date), to an invoice since cancelled, or to an invoice we do not have.
-- Cash is never lost: what settles nothing is shown here, not netted away. What is unapplied
-- is measured in the payment's own currency; for a foreign-currency payment its company-
-- currency value is that share of what the payment was booked at.

with

payments as (

    select * from {{ ref('int_billing__payments') }}
    where payment_date <= {{ as_of_date() }}

),

allocations as (

    select * from {{ ref('int_billing__payment_allocations') }}

),

invoices as (

    select * from {{ ref('int_billing__invoices') }}

),

allocated as (

    select
        allocations.payment_id,
        sum(allocations.allocated_amount) as allocated_amount,
        sum(allocations.allocated_amount) filter (
            where invoices.invoice_status = 'posted' and invoices.invoice_date <= {{ as_of_date() }}
        ) as applied_amount,
        sum(allocations.allocated_document_amount) filter (
            where invoices.invoice_status = 'posted' and invoices.invoice_date <= {{ as_of_date() }}
        ) as applied_document_amount,
        sum(allocations.allocated_amount) filter (
            where invoices.invoice_status = 'posted' and invoices.invoice_date > {{ as_of_date() }}
        ) as on_later_invoices_amount,
        sum(allocations.allocated_amount) filter (
            where invoices.invoice_status = 'cancelled'
        ) as on_cancelled_invoices_amount,
        sum(allocations.allocated_amount) filter (where invoices.invoice_id is null) as on_unknown_invoices_amount
    from allocations
    left join invoices on allocations.invoice_id = invoices.invoice_id
    group by allocations.payment_id

),

parts as (

    select
        payments.payment_id,
        payments.customer_id,
        payments.company_id,
        payments.company_currency,
        payments.document_currency,
        payments.payment_date,
        payments.payment_amount,
        payments.payment_document_amount,
        coalesce(allocated.applied_amount, 0) as applied_amount,
        payments.payment_document_amount - coalesce(allocated.applied_document_amount, 0)
            as unapplied_document_amount,
        payments.payment_amount - coalesce(allocated.allocated_amount, 0) as unallocated_amount,
        coalesce(allocated.on_later_invoices_amount, 0) as on_later_invoices_amount,
        coalesce(allocated.on_cancelled_invoices_amount, 0) as on_cancelled_invoices_amount,
        coalesce(allocated.on_unknown_invoices_amount, 0) as on_unknown_invoices_amount
    from payments
    left join allocated on payments.payment_id = allocated.payment_id

),

final as (

    select
        payment_id,
        customer_id,
        company_id,
        company_currency,
        document_currency,
        payment_date,
        cast(payment_amount as numeric(18, 2)) as payment_amount,
        cast(applied_amount as numeric(18, 2)) as applied_amount,
        cast(
            case
                when document_currency = company_currency then payment_amount - applied_amount
                else payment_amount * unapplied_document_amount / nullif(payment_document_amount, 0)
            end as numeric(18, 2)
        ) as unapplied_amount,
        cast(unapplied_document_amount as numeric(18, 2)) as unapplied_document_amount,
        cast(unallocated_amount as numeric(18, 2)) as unallocated_amount,
        cast(on_later_invoices_amount as numeric(18, 2)) as on_later_invoices_amount,
        cast(on_cancelled_invoices_amount as numeric(18, 2)) as on_cancelled_invoices_amount,
        cast(on_unknown_invoices_amount as numeric(18, 2)) as on_unknown_invoices_amount,
        concat_ws('; ',
            case when unallocated_amount <> 0 then 'not allocated to any invoice' end,
            case when on_later_invoices_amount <> 0 then 'prepayment of an invoice issued after the as-of date' end,
            case when on_cancelled_invoices_amount <> 0 then 'allocated to a cancelled invoice' end,
            case when on_unknown_invoices_amount <> 0 then 'allocated to an invoice that is not loaded' end
        ) as unapplied_reason
    from parts

)

select * from final
