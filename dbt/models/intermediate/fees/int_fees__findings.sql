-- Every fee-bill line against what the retailer really charges (docs/design.md §2.4): the schedule
-- valid on the bill date, the expected amount for its basis, and exactly one finding by the
-- precedence of the fee_findings seed: duplicate > phantom > already_paid >
-- bundle_available > markup > ok.

with

fee_bills as (

    select * from {{ ref('stg_billing__fee_bills') }}
    where bill_date <= {{ as_of_date() }}

),

schedules as (

    select * from {{ ref('stg_billing__retailer_fee_schedules') }}

),

accounts as (

    select * from {{ ref('stg_billing__retailer_accounts') }}

),

scheduled as (

    -- the schedule valid on the bill date (the latest one that started by then)
    select
        fee_bills.*,
        coalesce(fee_bills.period_month, cast(date_trunc('month', fee_bills.bill_date) as date)) as fee_period,
        schedule.fee_basis,
        schedule.unit_amount,
        schedule.bundle_amount
    from fee_bills
    left join lateral (
        select schedules.*
        from schedules
        where
            schedules.retailer = fee_bills.retailer
            and schedules.fee_type = fee_bills.fee_type
            and schedules.valid_from_date <= fee_bills.bill_date
            and (schedules.valid_to_date is null or schedules.valid_to_date >= fee_bills.bill_date)
        order by schedules.valid_from_date desc
        limit 1
    ) as schedule on true

),

facts as (

    select
        scheduled.*,
        row_number() over (
            partition by distributor_id, retailer, coalesce(store_id, ''), fee_type, fee_period
            order by bill_date, fee_bill_id
        ) > 1 as is_repeat,
        scheduled.fee_basis = 'one_time' and (
            exists (
                select 1 from accounts
                where accounts.distributor_id = scheduled.distributor_id
                    and accounts.retailer = scheduled.retailer
                    and accounts.account_opened_date < scheduled.bill_date
            )
            or count(*) over (
                partition by distributor_id, retailer, fee_type
                order by bill_date, fee_bill_id rows between unbounded preceding and 1 preceding
            ) > 0
        ) as is_one_time_already_due,
        case scheduled.fee_basis
            when 'per_sku_per_store' then scheduled.unit_amount * coalesce(scheduled.sku_count, 1)
            when 'bundle' then scheduled.bundle_amount
            else scheduled.unit_amount
        end as schedule_amount
    from scheduled

),

bundles as (

    -- per distributor, retailer, fee and period: is the bundle cheaper than the lines billed per store or SKU?
    select
        facts.*,
        sum(case when not is_repeat and fee_basis in ('per_store', 'per_sku_per_store') then schedule_amount end)
            over (partition by distributor_id, retailer, fee_type, fee_period) as unbundled_amount
    from facts

),

expected as (

    select
        bundles.*,
        bundles.fee_basis in ('per_store', 'per_sku_per_store')
            and bundles.bundle_amount is not null
            and bundles.bundle_amount < bundles.unbundled_amount as is_bundle_cheaper,
        case
            when bundles.is_repeat or bundles.fee_basis is null or bundles.is_one_time_already_due then 0
            when bundles.fee_basis in ('per_store', 'per_sku_per_store') and bundles.bundle_amount < bundles.unbundled_amount
                then bundles.bundle_amount * bundles.schedule_amount / bundles.unbundled_amount
            else bundles.schedule_amount
        end as expected_raw
    from bundles

),

final as (

    select
        fee_bill_id,
        distributor_id,
        retailer,
        store_id,
        sku_count,
        fee_type,
        bill_date,
        fee_period,
        billed_amount,
        fee_bill_reference,
        fee_basis,
        unit_amount,
        bundle_amount,
        cast(expected_raw as numeric(18, 2)) as expected_amount,
        case
            when is_repeat then 'duplicate'
            when fee_basis is null then 'phantom'
            when is_one_time_already_due then 'already_paid'
            when is_bundle_cheaper and billed_amount > expected_raw + {{ policy('fee_tolerance_amount') }} then 'bundle_available'
            when billed_amount > expected_raw * (1 + {{ policy('fee_tolerance_share') }}) + {{ policy('fee_tolerance_amount') }}
                then 'markup'
            else 'ok'
        end as finding
    from expected

)

select * from final
