{#- The rows of a history table that belong to published runs: the latest publication of
    each as-of date. A run that failed its gates never shows, and a rerun replaces a day. -#}
{% macro published_history(history) %}
with

publications as (

    select distinct on (as_of_date)
        as_of_date,
        dbt_invocation_id
    from {{ ref('stg_audit__publications') }}
    order by as_of_date, publication_id desc

),

final as (

    select history.*
    from {{ history }} as history
    inner join publications
        on history.as_of_date = publications.as_of_date
        and history.dbt_invocation_id = publications.dbt_invocation_id

)

select * from final
{% endmacro %}
