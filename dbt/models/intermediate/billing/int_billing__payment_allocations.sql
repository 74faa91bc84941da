-- Allocations in their invoice's currency (allocated_document_amount) and in the company's
-- (allocated_amount: as booked, else converted at the payment date). An allocation that
-- names no company or currency takes its invoice's (else its payment's).
{{ config(materialized='view') }}

with

allocations as (

    select * from {{ ref('stg_billing__payment_allocations') }}

),

invoices as (

    select * from {{ ref('int_billing__invoices') }}

),

payments as (

    select * from {{ ref('int_billing__payments') }}

),

located as (

    select
        allocations.payment_id,
        allocations.invoice_id,
        coalesce(allocations.company_id, invoices.company_id, payments.company_id) as company_id,
        coalesce(invoices.company_currency, payments.company_currency) as company_currency,
        coalesce(allocations.document_currency, invoices.document_currency, payments.document_currency)
            as document_currency,
        allocations.allocated_document_amount,
        allocations.booked_company_amount,
        payments.payment_date
    from allocations
    left join invoices on allocations.invoice_id = invoices.invoice_id
    left join payments on allocations.payment_id = payments.payment_id

),

final as (

    select
        payment_id,
        invoice_id,
        company_id,
        company_currency,
        document_currency,
        allocated_document_amount,
        {{ company_amount(
            'allocated_document_amount', 'booked_company_amount', 'document_currency',
            'company_currency', 'payment_date') }} as allocated_amount
    from located

)

select * from final
