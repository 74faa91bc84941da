-- What the overdue emails send: every open invoice past its due date, with the escalation
-- level its days past due reach (escalation_levels seed).

with

open_items as (

    select * from {{ ref('ar_open_items') }}

),

levels as (

    select * from {{ ref('escalation_levels') }}

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
        as_of_date,
        invoice_id,
        invoice_number,
        customer_id,
        customer_name,
        account_manager,
        account_manager_email,
        invoice_date,
        installment_no,
        installment_count,
        due_date,
        invoice_amount,
        open_amount,
        company_currency,
        document_currency,
        open_document_amount,
        days_past_due,
        aging_bucket,
        escalation_level,
        escalation_label,
        copy_finance_manager
    from escalated

)

select * from final
