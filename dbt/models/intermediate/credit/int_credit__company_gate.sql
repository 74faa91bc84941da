-- The own-company health gate: when our own balance sheet is weak, every credit limit
-- tightens. One row: the latest statement by the as-of date and whether the gate is open.

with

statements as (

    select * from {{ ref('stg_erp__company_financials') }}
    where period_end_date <= {{ as_of_date() }}

),

latest as (

    select * from statements
    order by period_end_date desc
    limit 1

),

gate as (

    select
        latest.period_end_date as company_financials_date,
        cast(latest.total_assets / nullif(latest.total_liabilities, 0) as numeric(12, 3)) as assets_to_liabilities,
        cast((latest.cash + latest.accounts_receivable) / nullif(latest.total_liabilities, 0) as numeric(12, 3))
            as liquid_to_liabilities
    from latest

),

final as (

    -- without any statement the gate is open (nothing says we are weak)
    select
        gate.company_financials_date,
        gate.assets_to_liabilities,
        gate.liquid_to_liabilities,
        coalesce(
            gate.assets_to_liabilities >= {{ policy('company_min_assets_to_liabilities') }}
            and gate.liquid_to_liabilities >= {{ policy('company_min_liquid_to_liabilities') }},
            true
        ) as is_company_gate_open
    from (select 1) as one_row
    left join gate on true

)

select
    *,
    case when is_company_gate_open then 1 else {{ policy('company_gate_limit_factor') }} end as limit_factor
from final
