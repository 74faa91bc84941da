{#- A run reads a few rows of history per customer (its latest published ones) and a few
    days (its own, to check and publish). Without these indexes each of those reads would
    scan every day kept, and the daily run would slow down day by day. Run at the start of
    each run, so that they exist before the marts read history, on tables made before them
    too; a no-op once they exist. -#}
{% macro index_history_tables() %}
do $$
declare
    history_table text;
begin
    for history_table in
        select table_name
        from information_schema.columns
        where table_schema = '{{ history_schema() }}' and column_name in ('as_of_date', 'dbt_invocation_id', 'customer_id')
        group by table_name
        having count(*) = 3
    loop
        execute format(
            'create index if not exists %I on {{ history_schema() }}.%I (as_of_date, dbt_invocation_id)',
            history_table || '_day', history_table
        );
        execute format(
            'create index if not exists %I on {{ history_schema() }}.%I (customer_id, as_of_date)',
            history_table || '_customer', history_table
        );
    end loop;
end
$$
{% endmacro %}
