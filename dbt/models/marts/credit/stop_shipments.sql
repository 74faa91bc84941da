-- Customers to stop shipping to today (暂停发货): exposure above the credit limit, told apart
-- as a credit customer over its line or a customer without one (cash in advance). With the
-- oldest overdue invoice and the date the stop began (credit_grades carries it from run to run).

with

grades as (

    select * from {{ ref('credit_grades') }}
    where is_stop_shipment

),

open_items as (

    select * from {{ ref('ar_open_items') }}

),

oldest_overdue as (

    select distinct on (customer_id)
        customer_id,
        invoice_id as oldest_overdue_invoice_id,
        invoice_number as oldest_overdue_invoice_number,
        days_past_due as oldest_days_past_due,
        open_amount as oldest_overdue_open_amount
    from open_items
    where days_past_due > 0
    order by customer_id, days_past_due desc, invoice_id

),

final as (

    select
        grades.as_of_date,
        grades.customer_id,
        grades.customer_name,
        grades.account_manager,
        grades.account_manager_email,
        grades.credit_grade,
        -- a credit customer over its line, or one with no line that must prepay
        case when grades.limit_pct > 0 then 'over_credit_limit' else 'cash_in_advance' end as stop_reason,
        case
            when grades.limit_pct > 0
                then 'over the credit limit of ' || to_char(grades.credit_limit, 'FM999,999,999,990.00')
                || ' by ' || to_char(grades.exposure - grades.credit_limit, 'FM999,999,999,990.00')
            else 'cash in advance: grade ' || grades.credit_grade || ' has no credit line; ship only against prepayment'
        end as stop_reason_detail,
        grades.credit_limit,
        grades.exposure,
        cast(grades.exposure - grades.credit_limit as numeric(18, 2)) as amount_over_limit,
        grades.open_ar_amount,
        grades.open_order_amount,
        grades.shipped_not_invoiced_amount,
        oldest_overdue.oldest_overdue_invoice_id,
        oldest_overdue.oldest_overdue_invoice_number,
        oldest_overdue.oldest_days_past_due,
        oldest_overdue.oldest_overdue_open_amount,
        grades.stop_since_date,
        grades.grade_reasons
    from grades
    left join oldest_overdue on grades.customer_id = oldest_overdue.customer_id

)

select * from final
