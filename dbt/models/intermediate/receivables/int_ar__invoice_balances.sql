-- Every posted invoice issued by the as-of date, with what settled it by that date.
-- Open amount = amount - payments allocated (paid by the as-of date) - credit notes
-- (by the as-of date) - accepted deductions (on payments made by the as-of date), in the
-- company's currency (the *_amount columns) and in the invoice's own (*_document_amount).

with

invoices as (

    select * from {{ ref('int_billing__invoices') }}

),

customers as (

    select * from {{ ref('stg_erp__customers') }}

),

payments as not materialized (

    -- read twice (allocations, deductions): PostgreSQL would otherwise copy every payment
    -- into a temporary store first, about a tenth of this model's time
    select * from {{ ref('int_billing__payments') }}

),

allocations as (

    select * from {{ ref('int_billing__payment_allocations') }}

),

credit_notes as (

    select * from {{ ref('int_billing__credit_notes') }}

),

deductions as (

    select * from {{ ref('int_billing__payment_deductions') }}

),

deduction_reasons as (

    select * from {{ ref('deduction_reason_codes') }}

),

paid as (

    select
        allocations.invoice_id,
        sum(allocations.allocated_amount) as paid_amount,
        sum(allocations.allocated_document_amount) as paid_document_amount,
        max(payments.payment_date) as last_payment_date
    from allocations
    inner join payments on allocations.payment_id = payments.payment_id
    where payments.payment_date <= {{ as_of_date() }}
    group by allocations.invoice_id

),

credited as (

    select
        invoice_id,
        sum(credit_amount) as credited_amount,
        sum(credit_document_amount) as credited_document_amount,
        max(credit_date) as last_credit_date
    from credit_notes
    where credit_date <= {{ as_of_date() }} and invoice_id is not null
    group by invoice_id

),

deducted as (

    select
        deductions.invoice_id,
        sum(deductions.deduction_amount) as deducted_amount,
        sum(deductions.deduction_document_amount) as deducted_document_amount,
        max(payments.payment_date) as last_deduction_date
    from deductions
    inner join payments on deductions.payment_id = payments.payment_id
    inner join deduction_reasons
        on lower(btrim(deductions.reason_code)) = deduction_reasons.reason_code
    where
        deduction_reasons.is_accepted_against_invoice
        and payments.payment_date <= {{ as_of_date() }}
        and deductions.invoice_id is not null
    group by deductions.invoice_id

),

balances as (

    select
        invoices.invoice_id,
        invoices.invoice_number,
        invoices.customer_id,
        invoices.company_id,
        invoices.company_currency,
        invoices.document_currency,
        invoices.invoice_date,
        coalesce(
            invoices.due_date,
            invoices.invoice_date
            + cast(coalesce(customers.payment_terms_days, {{ policy('default_payment_terms_days') }}) as integer)
        ) as due_date,
        invoices.due_date is null as is_due_date_from_terms,
        invoices.invoice_amount,
        cast(coalesce(paid.paid_amount, 0) as numeric(18, 2)) as paid_amount,
        cast(coalesce(credited.credited_amount, 0) as numeric(18, 2)) as credited_amount,
        cast(coalesce(deducted.deducted_amount, 0) as numeric(18, 2)) as deducted_amount,
        invoices.document_amount as invoice_document_amount,
        coalesce(paid.paid_document_amount, 0)
            + coalesce(credited.credited_document_amount, 0)
            + coalesce(deducted.deducted_document_amount, 0) as settled_document_amount,
        greatest(paid.last_payment_date, credited.last_credit_date, deducted.last_deduction_date)
            as last_settlement_date
    from invoices
    left join customers on invoices.customer_id = customers.customer_id
    left join paid on invoices.invoice_id = paid.invoice_id
    left join credited on invoices.invoice_id = credited.invoice_id
    left join deducted on invoices.invoice_id = deducted.invoice_id
    where
        invoices.invoice_status = 'posted'
        and invoices.invoice_date <= {{ as_of_date() }}

),

final as (

    select
        *,
        cast(invoice_amount - paid_amount - credited_amount - deducted_amount as numeric(18, 2)) as open_amount,
        cast(invoice_document_amount - settled_document_amount as numeric(18, 2)) as open_document_amount,
        -- settled when nothing is owed in the invoice's own currency: a company-currency
        -- rest of a foreign-currency invoice is an exchange difference, not a debt
        case
            when invoice_document_amount - settled_document_amount < {{ policy('amount_tolerance') }}
                then last_settlement_date
        end as settled_date
    from balances

)

select * from final
