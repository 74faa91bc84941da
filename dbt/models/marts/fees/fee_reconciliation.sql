-- One row per fee-bill line: what the retailer's schedule says is due, the overcharge, one
-- finding in words a finance clerk understands, and how the line was settled.

with

findings as (

    select * from {{ ref('int_fees__findings') }}

),

finding_texts as (

    select * from {{ ref('fee_findings') }}

),

deductions as (

    select * from {{ ref('int_billing__payment_deductions') }}

),

customers as (

    select * from {{ ref('stg_erp__customers') }}

),

settlements as (

    select distinct on (claim_reference)
        claim_reference,
        deduction_id,
        payment_id
    from deductions
    where claim_reference is not null
    order by claim_reference, deduction_id

),

final as (

    select
        {{ as_of_date() }} as as_of_date,
        findings.fee_bill_id,
        findings.distributor_id,
        customers.customer_name as distributor_name,
        findings.retailer,
        findings.store_id,
        findings.sku_count,
        findings.fee_type,
        findings.bill_date,
        findings.fee_period,
        findings.billed_amount,
        findings.fee_basis as schedule_basis,
        findings.unit_amount as schedule_unit_amount,
        findings.bundle_amount as schedule_bundle_amount,
        findings.expected_amount,
        cast(greatest(findings.billed_amount - findings.expected_amount, 0) as numeric(18, 2)) as overcharge_amount,
        round(findings.billed_amount / nullif(findings.expected_amount, 0) - 1, 4) as markup_pct,
        findings.finding,
        finding_texts.precedence as finding_precedence,
        case findings.finding
            when 'duplicate' then 'Billed twice: ' || findings.fee_type || ' at ' || findings.retailer
                || coalesce(' store ' || findings.store_id, '') || ' for ' || to_char(findings.fee_period, 'YYYY-MM')
                || ' was already billed. Recover ' || findings.billed_amount || '.'
            when 'phantom' then findings.retailer || ' charges no ' || findings.fee_type || ' fee on '
                || findings.bill_date || '. Recover ' || findings.billed_amount || '.'
            when 'already_paid' then 'One-time ' || findings.fee_type || ' fee: the distributor already had an account with '
                || findings.retailer || ' or was billed before. Recover ' || findings.billed_amount || '.'
            when 'bundle_available' then findings.retailer || ' offers a bundle of ' || findings.bundle_amount
                || ' for ' || findings.fee_type || ' in ' || to_char(findings.fee_period, 'YYYY-MM')
                || ', cheaper than billing per store; this line''s share is ' || findings.expected_amount
                || '. Recover ' || (findings.billed_amount - findings.expected_amount) || '.'
            when 'markup' then 'Billed ' || findings.billed_amount || ' where ' || findings.retailer || '''s schedule says '
                || findings.expected_amount || ' (' || to_char(100 * (findings.billed_amount / nullif(findings.expected_amount, 0) - 1), 'FM990.0')
                || '% more). Recover ' || (findings.billed_amount - findings.expected_amount) || '.'
            else 'Billed as ' || findings.retailer || ' charges.'
        end as finding_detail,
        case when settlements.deduction_id is not null then 'deducted' else 'open' end as settlement_status,
        settlements.deduction_id as settled_by_deduction_id,
        settlements.payment_id as settled_by_payment_id
    from findings
    inner join finding_texts on findings.finding = finding_texts.finding
    left join settlements on findings.fee_bill_reference = settlements.claim_reference
    left join customers on findings.distributor_id = customers.customer_id

)

select * from final
