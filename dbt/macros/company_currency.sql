{#- One company, one currency unless erp.companies says otherwise: the site's defaults come
    from the environment (KAM_COMPANY_ID, KAM_COMPANY_CURRENCY), like the as-of date. -#}
{% macro default_company_id() -%}
    '{{ env_var("KAM_COMPANY_ID", "main") | replace("'", "''") }}'
{%- endmacro %}

{% macro default_company_currency() -%}
    '{{ env_var("KAM_COMPANY_CURRENCY", "CNY") | replace("'", "''") }}'
{%- endmacro %}

{#- An amount in the company's currency: as booked when the source gives it, else the amount
    itself when the currencies agree, else converted at the latest rate on or before `day`
    (null when there is none: the staging test on the column then fails the build, naming it). -#}
{% macro company_amount(amount, booked, currency, company_currency, day) -%}
    coalesce(
        {{ booked }},
        case
            when {{ currency }} = {{ company_currency }} then {{ amount }}
            else cast({{ amount }} * (
                select rates.rate
                from {{ ref('stg_erp__exchange_rates') }} as rates
                where rates.currency = {{ currency }}
                    and rates.rate_date <= {{ day }}
                order by rates.rate_date desc
                limit 1
            ) as numeric(18, 2))
        end
    )
{%- endmacro %}

{#- A staging model's rows in their company's book: the company (the row's, else the default
    one), its currency, the row's own currency (else the company's), and `document_amount`
    in the company's currency as `company_amount_as`. -#}
{% macro in_company_books(relation, columns, document_amount, company_amount_as, day) -%}
with

booked as (

    select * from {{ relation }}

),

companies as (

    select * from {{ ref('stg_erp__companies') }}

),

located as (

    select
        booked.*,
        coalesce(booked.company_id, default_company.company_id) as book_company_id
    from booked
    cross join (select company_id from companies where is_default_company) as default_company

),

final as (

    select
        {%- for column in columns %}
        located.{{ column }},
        {%- endfor %}
        located.book_company_id as company_id,
        companies.company_currency,
        coalesce(located.document_currency, companies.company_currency) as document_currency,
        located.{{ document_amount }},
        {{ company_amount(
            'located.' ~ document_amount, 'located.booked_company_amount',
            'coalesce(located.document_currency, companies.company_currency)',
            'companies.company_currency', 'located.' ~ day) }} as {{ company_amount_as }}
    from located
    left join companies on located.book_company_id = companies.company_id

)

select * from final
{%- endmacro %}
