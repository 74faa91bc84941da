-- Per distributor and month: what was billed, what was due, what to recover, the count of
-- each finding, and the deductions taken from our payments that match no fee bill or
-- accepted claim (unauthorised, 剋扣货款).

with

lines as (

    select * from {{ ref('fee_reconciliation') }}

),

deductions as (

    select * from {{ ref('int_billing__payment_deductions') }}

),

payments as (

    select * from {{ ref('int_billing__payments') }}

),

reasons as (

    select * from {{ ref('deduction_reason_codes') }}

),

fee_bills as (

    select * from {{ ref('stg_billing__fee_bills') }}

),

customers as (

    select * from {{ ref('stg_erp__customers') }}

),

unauthorised as (

    select
        deductions.customer_id as distributor_id,
        cast(date_trunc('month', coalesce(payments.payment_date, {{ as_of_date() }})) as date) as fee_period,
        sum(deductions.deduction_amount) as unauthorised_deduction_amount,
        count(*) as unauthorised_deduction_count
    from deductions
    left join payments on deductions.payment_id = payments.payment_id
    left join reasons on lower(btrim(deductions.reason_code)) = reasons.reason_code
    where
        coalesce(payments.payment_date, {{ as_of_date() }}) <= {{ as_of_date() }}
        and not coalesce(reasons.is_accepted_against_invoice, false)
        and not exists (select 1 from fee_bills where fee_bills.fee_bill_reference = deductions.claim_reference)
    group by 1, 2

),

billed as (

    select
        distributor_id,
        fee_period,
        sum(billed_amount) as billed_amount,
        sum(expected_amount) as expected_amount,
        sum(overcharge_amount) as overcharge_amount,
        {%- for finding in ['ok', 'phantom', 'already_paid', 'markup', 'bundle_available', 'duplicate'] %}
        count(*) filter (where finding = '{{ finding }}') as {{ finding }}_count,
        {%- endfor %}
        count(*) as fee_line_count
    from lines
    group by distributor_id, fee_period

),

final as (

    select
        {{ as_of_date() }} as as_of_date,
        coalesce(billed.distributor_id, unauthorised.distributor_id) as distributor_id,
        customers.customer_name as distributor_name,
        coalesce(billed.fee_period, unauthorised.fee_period) as fee_period,
        cast(coalesce(billed.billed_amount, 0) as numeric(18, 2)) as billed_amount,
        cast(coalesce(billed.expected_amount, 0) as numeric(18, 2)) as expected_amount,
        cast(coalesce(billed.overcharge_amount, 0) as numeric(18, 2)) as overcharge_amount,
        cast(coalesce(unauthorised.unauthorised_deduction_amount, 0) as numeric(18, 2)) as unauthorised_deduction_amount,
        coalesce(unauthorised.unauthorised_deduction_count, 0) as unauthorised_deduction_count,
        cast(coalesce(billed.overcharge_amount, 0) + coalesce(unauthorised.unauthorised_deduction_amount, 0)
            as numeric(18, 2)) as recoverable_amount,
        round(billed.billed_amount / nullif(billed.expected_amount, 0) - 1, 4) as markup_pct,
        {%- for finding in ['ok', 'phantom', 'already_paid', 'markup', 'bundle_available', 'duplicate'] %}
        coalesce(billed.{{ finding }}_count, 0) as {{ finding }}_count,
        {%- endfor %}
        coalesce(billed.fee_line_count, 0) as fee_line_count
    from billed
    full outer join unauthorised
        on billed.distributor_id = unauthorised.distributor_id and billed.fee_period = unauthorised.fee_period
    left join customers on coalesce(billed.distributor_id, unauthorised.distributor_id) = customers.customer_id

)

select * from final
