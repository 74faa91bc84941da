-- Credit grades as of the date (docs/design.md §2.3): the five Cs, the weighted score, the grade,
-- the limit, exposure against it, whether shipment stops, when the credit is reviewed, and
-- in words why the customer has its grade.
-- depends_on: {{ ref('stg_audit__publications') }}

with

customers as (

    select * from {{ ref('stg_erp__customers') }}

),

grading as (

    select * from {{ ref('int_credit__grading') }}

),

exposure as (

    select * from {{ ref('int_credit__exposure') }}

),

accounts as (

    select * from {{ ref('int_customers__accounts') }}

),

pareto as (

    select * from {{ ref('int_customers__pareto') }}

),

last_published as (

    -- each customer's latest published grade before the as-of date, and its review date
    select
        customers.customer_id,
        latest.credit_grade as previous_grade,
        latest.as_of_date as previous_as_of_date,
        latest.last_review_date as previous_review_date,
        latest.is_stop_shipment as was_stopped,
        latest.stop_since_date as previous_stop_since_date
    from customers
    inner join lateral (
        {{ published_row('credit_grades_history', {
            'credit_grade': 'text', 'as_of_date': 'date', 'last_review_date': 'date',
            'is_stop_shipment': 'boolean', 'stop_since_date': 'date'}, 'customers.customer_id') }}
    ) as latest on true

),

grade_began as (

    -- when the current grade began, where the latest published run predates the review date
    -- in history: the first published day after the latest one with another grade
    select
        last_published.customer_id,
        began.as_of_date as grade_since_date
    from last_published
    inner join lateral (
        {{ published_streak_start('credit_grades_history', 'last_published.customer_id',
            broken_by='history.credit_grade is distinct from last_published.previous_grade') }}
    ) as began on true
    where last_published.previous_review_date is null

),

stop_began as (

    -- when the stop in the latest published run began, where that run predates the stop date
    -- in history: the first published day after the latest one without a stop
    select
        last_published.customer_id,
        began.as_of_date as stop_since_date
    from last_published
    inner join lateral (
        {{ published_streak_start('credit_grades_history', 'last_published.customer_id',
            broken_by='not history.is_stop_shipment') }}
    ) as began on true
    where last_published.was_stopped and last_published.previous_stop_since_date is null

),

assessed as (

    select
        {{ as_of_date() }} as as_of_date,
        customers.customer_id,
        customers.customer_name,
        customers.account_manager,
        customers.account_manager_email,
        pareto.tier = 'A' as is_key_account,
        grading.character_score,
        grading.capacity_score,
        grading.capital_score,
        grading.collateral_score,
        grading.conditions_score,
        grading.credit_score,
        grading.score_grade,
        grading.credit_grade,
        grading.grade_order,
        grading.annual_sales,
        grading.limit_pct,
        grading.limit_factor,
        grading.is_company_gate_open,
        grading.credit_limit,
        exposure.open_ar_amount,
        exposure.open_order_amount,
        exposure.shipped_not_invoiced_amount,
        exposure.exposure,
        exposure.exposure > grading.credit_limit as is_stop_shipment,
        coalesce(last_published.was_stopped, false) as was_stopped,
        coalesce(last_published.previous_stop_since_date, stop_began.stop_since_date) as previous_stop_since_date,
        grading.is_recession,
        grading.economic_condition,
        grading.has_financials,
        grading.on_time_ratio_12m,
        grading.character_events,
        grading.capacity_events,
        grading.revenue_trend,
        grading.debt_ratio,
        grading.current_ratio,
        grading.collateral_value,
        last_published.previous_grade,
        -- a new grade is a review today; else the last published run's review date holds
        -- (before any history: the review the ERP recorded, else when the account was opened)
        case
            when last_published.previous_grade is distinct from grading.credit_grade and last_published.previous_grade is not null
                then {{ as_of_date() }}
            else coalesce(
                last_published.previous_review_date,
                grade_began.grade_since_date,
                case when customers.last_credit_review_date <= {{ as_of_date() }} then customers.last_credit_review_date end,
                customers.created_date,
                {{ as_of_date() }}
            )
        end as last_review_date,
        case when pareto.tier = 'A' then {{ policy('credit_review_months_key_account') }}
            else {{ policy('credit_review_months_other') }} end as review_interval_months
    from customers
    inner join grading on customers.customer_id = grading.customer_id
    inner join exposure on customers.customer_id = exposure.customer_id
    inner join accounts on customers.customer_id = accounts.customer_id
    inner join pareto on accounts.account_id = pareto.account_id
    left join last_published on customers.customer_id = last_published.customer_id
    left join grade_began on customers.customer_id = grade_began.customer_id
    left join stop_began on customers.customer_id = stop_began.customer_id

),

final as (

    select
        as_of_date,
        customer_id,
        customer_name,
        account_manager,
        account_manager_email,
        is_key_account,
        character_score,
        capacity_score,
        capital_score,
        collateral_score,
        conditions_score,
        credit_score,
        credit_grade,
        previous_grade,
        annual_sales,
        limit_pct,
        credit_limit,
        exposure,
        open_ar_amount,
        open_order_amount,
        shipped_not_invoiced_amount,
        cast(credit_limit - exposure as numeric(18, 2)) as available_credit,
        round(exposure / nullif(credit_limit, 0), 4) as utilization,
        exposure > credit_limit as is_over_limit,
        is_stop_shipment,
        -- a stop that goes on keeps the day it began; one that begins today begins today
        case
            when is_stop_shipment and was_stopped then previous_stop_since_date
            when is_stop_shipment then {{ as_of_date() }}
        end as stop_since_date,
        is_company_gate_open,
        is_recession,
        last_review_date,
        cast(last_review_date + make_interval(months => cast(review_interval_months as integer)) as date)
            as next_review_date,
        cast(last_review_date + make_interval(months => cast(review_interval_months as integer)) as date)
            < {{ as_of_date() }} as is_review_overdue,
        cast(last_review_date + make_interval(months => cast(review_interval_months as integer)) as date)
            <= {{ as_of_date() }} + cast({{ policy('review_due_notice_days') }} as integer) as is_review_due,
        concat_ws('; ',
            'score ' || credit_score || ' -> ' || score_grade,
            'character ' || character_score || coalesce(' (on time ' || round(100 * on_time_ratio_12m) || '%'
                || coalesce(', events: ' || character_events, '') || ')', ' (no payment history: default)'),
            'capacity ' || capacity_score || coalesce(' (revenue trend ' || round(100 * revenue_trend) || '%)', '')
                || coalesce(' (events: ' || capacity_events || ')', ''),
            'capital ' || capital_score || case when has_financials
                then coalesce(' (debt ratio ' || debt_ratio || ', current ratio ' || current_ratio || ')', '')
                else ' (no financial statements: the policy default score)' end,
            'collateral ' || collateral_score || case when collateral_value > 0
                then ' (' || collateral_value || ' valid)' else ' (none valid)' end,
            'conditions ' || conditions_score || ' (' || coalesce(economic_condition, 'unknown') || ')',
            case when is_recession and credit_grade <> score_grade
                then 'recession: graded ' || credit_grade || ' instead of ' || score_grade end,
            case when limit_pct = 0 then credit_grade || ': cash in advance (no credit)'
                else 'limit ' || to_char(100 * limit_pct, 'FM990') || '% of annual sales ' || annual_sales end,
            case when not is_company_gate_open
                then 'own-company health gate closed: limits x ' || limit_factor end,
            case when exposure > credit_limit
                then 'exposure ' || exposure || ' above the limit ' || credit_limit || ': stop shipment' end
        ) as grade_reasons
    from assessed

)

select * from final
