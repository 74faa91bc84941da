-- What the overdue emails send: every open invoice past its due date, with the escalation
-- level its days past due reach (escalation_levels seed), whom to call at the customer, and
-- when it last paid.

with

open_items as (

    select * from {{ ref('ar_open_items') }}

),

levels as (

    select * from {{ ref('escalation_levels') }}

),

customers as (

    select * from {{ ref('stg_erp__customers') }}

),

payments as (

    select * from {{ ref('int_billing__payments') }}
    where payment_date <= {{ as_of_date() }}

),

last_payments as (

    select distinct on (customer_id, company_id)
        customer_id,
        company_id,
        payment_date as last_payment_date,
        payment_amount as last_payment_amount
    from payments
    order by customer_id, company_id, payment_date desc, payment_id desc

),

overdue as (

    select * from open_items
    where days_past_due > 0

),

escalated as (

    select distinct on (overdue.invoice_id, overdue.installment_no)
        overdue.*,
        levels.escalation_level,
        levels.escalation_label,
        levels.copy_finance_manager
    from overdue
    inner join levels on overdue.days_past_due >= levels.min_days_past_due
    order by overdue.invoice_id, overdue.installment_no, levels.min_days_past_due desc

),

final as (

    select
        escalated.as_of_date,
        escalated.invoice_id,
        escalated.invoice_number,
        escalated.customer_id,
        escalated.customer_name,
        escalated.account_manager,
        escalated.account_manager_email,
        customers.contact_name,
        customers.contact_phone,
        customers.contact_email,
        last_payments.last_payment_date,
        cast(last_payments.last_payment_amount as numeric(18, 2)) as last_payment_amount,
        escalated.invoice_date,
        escalated.installment_no,
        escalated.installment_count,
        escalated.due_date,
        escalated.invoice_amount,
        escalated.open_amount,
        escalated.company_currency,
        escalated.document_currency,
        escalated.open_document_amount,
        escalated.days_past_due,
        escalated.aging_bucket,
        escalated.escalation_level,
        escalated.escalation_label,
        escalated.copy_finance_manager
    from escalated
    left join customers on escalated.customer_id = customers.customer_id
    left join last_payments
        on escalated.customer_id = last_payments.customer_id and escalated.company_id = last_payments.company_id

)

select * from final
