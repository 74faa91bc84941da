-- Customers to stop shipping to today (暂停发货): exposure above the credit limit. With the
-- oldest overdue invoice and the date the stop began (from the published history).
-- depends_on: {{ ref('stg_audit__publications') }}

with

grades as (

    select * from {{ ref('credit_grades') }}
    where is_stop_shipment

),

open_items as (

    select * from {{ ref('ar_open_items') }}

),

published_history as (

    {{ published_history_rows('credit_grades_history',
        {'as_of_date': 'date', 'customer_id': 'text', 'is_stop_shipment': 'boolean'}) }}

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

last_not_stopped as (

    select
        customer_id,
        max(as_of_date) filter (where not is_stop_shipment) as last_shipping_date,
        min(as_of_date) as first_published_date
    from published_history
    where as_of_date < {{ as_of_date() }}
    group by customer_id

),

first_stop_after as (

    select
        published_history.customer_id,
        min(published_history.as_of_date) as stop_since_date
    from published_history
    left join last_not_stopped on published_history.customer_id = last_not_stopped.customer_id
    where
        published_history.is_stop_shipment
        and published_history.as_of_date < {{ as_of_date() }}
        and published_history.as_of_date > coalesce(last_not_stopped.last_shipping_date, date '0001-01-01')
    group by published_history.customer_id

),

final as (

    select
        grades.as_of_date,
        grades.customer_id,
        grades.customer_name,
        grades.account_manager,
        grades.account_manager_email,
        grades.credit_grade,
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
        coalesce(first_stop_after.stop_since_date, grades.as_of_date) as stop_since_date,
        grades.grade_reasons
    from grades
    left join oldest_overdue on grades.customer_id = oldest_overdue.customer_id
    left join first_stop_after on grades.customer_id = first_stop_after.customer_id

)

select * from final
