{#- What dbt's contract does for the other marts, for the aging marts whose bucket columns
    follow the aging_buckets seed: each bucket column described from its seed row, and the
    keys BI tools join on (on a table; a view has none). A post-hook of ar_aging(_daily). -#}
{% macro ar_aging_contract(primary_key=none) %}
    {%- set buckets = seed_column_values('aging_buckets', "bucket_name || '|' || description", 'sort_order') %}
    {%- for bucket in buckets %}
        {%- set name, description = bucket.split('|', 1) %}
    comment on column {{ this }}.{{ adapter.quote('bucket_' ~ name) }} is
        '{{ ("Owed in the aging bucket " ~ name ~ " (" ~ description | lower ~ "), one column per aging_buckets row.") | replace("'", "''") }}';
    {%- endfor %}
    {%- if primary_key %}
    alter table {{ this }}
        add primary key ({{ primary_key | join(', ') }}),
        add foreign key (customer_id) references {{ ref('customer_tiers') }} (customer_id);
    {%- endif %}
{% endmacro %}
