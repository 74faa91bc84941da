-- Every open invoice split into the parts that fall due (its payment schedule, or the whole
-- invoice on its due date when it has none). What settled the invoice fills the earliest
-- instalments first, as the ERPs allocate; the last instalment takes any difference between
-- the schedule and the invoice. Company-currency amounts are each instalment's share of the
-- invoice's open company-currency amount (the last open instalment takes the rounding).

with

balances as (

    select * from {{ ref('int_ar__invoice_balances') }}
    where open_document_amount >= {{ policy('amount_tolerance') }}

),

schedules as (

    select * from {{ ref('stg_billing__invoice_installments') }}

),

installments as (

    select
        schedules.invoice_id,
        schedules.installment_no,
        schedules.installment_due_date as due_date,
        schedules.installment_document_amount as installment_amount
    from schedules
    inner join balances on schedules.invoice_id = balances.invoice_id
    union all
    select
        balances.invoice_id,
        1,
        balances.due_date,
        balances.invoice_document_amount
    from balances
    where not exists (select 1 from schedules where schedules.invoice_id = balances.invoice_id)

),

ordered as (

    select
        installments.*,
        coalesce(sum(installment_amount) over (
            partition by invoice_id order by due_date, installment_no
            rows between unbounded preceding and 1 preceding
        ), 0) as scheduled_before,
        row_number() over (partition by invoice_id order by due_date desc, installment_no desc) = 1 as is_last,
        count(*) over (partition by invoice_id) as installment_count,
        sum(installment_amount) over (partition by invoice_id) as scheduled_total
    from installments

),

filled as (

    select
        ordered.*,
        balances.invoice_document_amount,
        balances.settled_document_amount,
        balances.open_document_amount as invoice_open_document_amount,
        balances.open_amount as invoice_open_amount,
        ordered.installment_amount
            + case when ordered.is_last then balances.invoice_document_amount - ordered.scheduled_total else 0 end
            as due_document_amount
    from ordered
    inner join balances on ordered.invoice_id = balances.invoice_id

),

opened as (

    select
        *,
        due_document_amount
            - least(due_document_amount, greatest(settled_document_amount - scheduled_before, 0))
            as open_document_amount
    from filled

),

shared as (

    select
        *,
        row_number() over (
            partition by invoice_id
            order by (open_document_amount >= {{ policy('amount_tolerance') }}) desc, due_date desc, installment_no desc
        ) = 1 as takes_rounding
    from opened

),

final as (

    select
        invoice_id,
        installment_no,
        installment_count,
        due_date,
        cast(open_document_amount as numeric(18, 2)) as open_document_amount,
        cast(
            case
                when takes_rounding then invoice_open_amount - coalesce(sum(
                    case when not takes_rounding
                        then round(invoice_open_amount * open_document_amount / invoice_open_document_amount, 2)
                    end) over (partition by invoice_id), 0)
                else round(invoice_open_amount * open_document_amount / invoice_open_document_amount, 2)
            end as numeric(18, 2)
        ) as open_amount
    from shared

)

select * from final
