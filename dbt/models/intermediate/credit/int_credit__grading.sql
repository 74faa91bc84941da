-- Weighted five-C score -> one of nine grades (one notch more conservative per
-- recession_grade_notches in a recession) -> limit = annual sales x the grade's share,
-- tightened while the own-company gate is closed.

with

factors as (

    select * from {{ ref('int_credit__factor_scores') }}

),

weights as (

    select * from {{ ref('credit_factor_weights') }}

),

scale as (

    select * from {{ ref('credit_grade_scale') }}

),

gate as (

    select * from {{ ref('int_credit__company_gate') }}

),

scored as (

    select
        factors.*,
        cast((
            {%- for factor in ['character', 'capacity', 'capital', 'collateral', 'conditions'] %}
            (select weight from weights where credit_factor = '{{ factor }}') * coalesce(factors.{{ factor }}_score, 0)
            {{ "+" if not loop.last }}
            {%- endfor %}
        ) / (select sum(weight) from weights) as numeric(5, 1)) as credit_score
    from factors

),

graded as (

    select
        scored.*,
        (
            select scale.grade_order from scale
            where scored.credit_score >= scale.min_score
            order by scale.min_score desc
            limit 1
        ) as score_grade_order
    from scored

),

notched as (

    select
        graded.*,
        least(
            graded.score_grade_order
            + case when graded.is_recession then cast({{ policy('recession_grade_notches') }} as integer) else 0 end,
            (select max(grade_order) from scale)
        ) as grade_order
    from graded

),

final as (

    select
        notched.*,
        score_scale.credit_grade as score_grade,
        scale.credit_grade,
        scale.limit_pct,
        gate.is_company_gate_open,
        gate.limit_factor,
        cast(greatest(notched.annual_sales, 0) * scale.limit_pct * gate.limit_factor as numeric(18, 2)) as credit_limit
    from notched
    inner join scale on notched.grade_order = scale.grade_order
    inner join scale as score_scale on notched.score_grade_order = score_scale.grade_order
    cross join gate

)

select * from final
