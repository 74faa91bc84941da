-- Deductions in their payment's company book; one that names no payment is the default
-- company's.
{{ config(materialized='view') }}

with

deductions as (

    select * from {{ ref('stg_billing__payment_deductions') }}

),

payments as (

    select * from {{ ref('int_billing__payments') }}

),

companies as (

    select * from {{ ref('stg_erp__companies') }}

),

located as (

    select
        deductions.*,
        coalesce(deductions.company_id, payments.company_id, default_company.company_id) as book_company_id,
        payments.payment_date
    from deductions
    left join payments on deductions.payment_id = payments.payment_id
    cross join (select company_id from companies where is_default_company) as default_company

),

final as (

    select
        located.deduction_id,
        located.payment_id,
        located.invoice_id,
        located.customer_id,
        located.book_company_id as company_id,
        companies.company_currency,
        coalesce(located.document_currency, companies.company_currency) as document_currency,
        located.deduction_document_amount,
        {{ company_amount(
            'located.deduction_document_amount', 'located.booked_company_amount',
            'coalesce(located.document_currency, companies.company_currency)',
            'companies.company_currency', 'coalesce(located.payment_date, ' ~ as_of_date() ~ ')') }}
            as deduction_amount,
        located.reason_code,
        located.claim_reference
    from located
    left join companies on located.book_company_id = companies.company_id

)

select * from final
