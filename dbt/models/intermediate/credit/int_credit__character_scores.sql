-- The character factor of the five Cs (道德品质): payment discipline over the trailing
-- 12 months, less the points credit events take off (credit_event_penalties seed).

with

customers as (

    select * from {{ ref('stg_erp__customers') }}

),

behaviour as (

    select * from {{ ref('int_ar__payment_behaviour') }}

),

events as (

    select * from {{ ref('stg_erp__credit_events') }}

),

penalties as (

    select * from {{ ref('credit_event_penalties') }}

),

event_points as (

    select
        events.customer_id,
        penalties.credit_factor,
        sum(penalties.penalty_points) as penalty_points,
        string_agg(distinct events.event_type, ', ' order by events.event_type) as event_types,
        count(*) as event_count
    from events
    inner join penalties on events.event_type = penalties.event_type
    where
        events.event_date <= {{ as_of_date() }}
        and events.event_date > {{ as_of_date() }} - cast({{ policy('credit_event_lookback_days') }} as integer)
    group by events.customer_id, penalties.credit_factor

),

final as (

    select
        customers.customer_id,
        behaviour.on_time_ratio_12m,
        behaviour.weighted_avg_days_late_12m,
        coalesce(character_events.penalty_points, 0) as character_penalty_points,
        character_events.event_types as character_events,
        coalesce(capacity_events.penalty_points, 0) as capacity_penalty_points,
        capacity_events.event_types as capacity_events,
        behaviour.on_time_ratio_12m is null as is_character_default,
        cast(greatest(0, least(100,
            coalesce(
                100 * behaviour.on_time_ratio_12m
                - {{ policy('character_points_per_day_late') }}
                * greatest(coalesce(behaviour.weighted_avg_days_late_12m, 0) - {{ policy('on_time_grace_days') }}, 0),
                {{ policy('character_default_score') }}
            )
            - coalesce(character_events.penalty_points, 0)
        )) as numeric(5, 1)) as character_score
    from customers
    left join behaviour on customers.customer_id = behaviour.customer_id
    left join event_points as character_events
        on customers.customer_id = character_events.customer_id and character_events.credit_factor = 'character'
    left join event_points as capacity_events
        on customers.customer_id = capacity_events.customer_id and capacity_events.credit_factor = 'capacity'

)

select * from final
